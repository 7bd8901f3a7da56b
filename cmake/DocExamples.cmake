# Extracts every ```c fenced block of a Markdown file into its own .c file (with
# awk, at configure time) and builds it against libhostkit, so the examples in
# README.md and docs/ compile. Blocks containing "int main" become executables;
# others are compiled only. LIBS: libraries to link instead of hostkit (e.g.
# hostkit_web for docs/web.md).
function(hk_doc_examples md prefix)
  cmake_parse_arguments(HKDOC "" "" "LIBS" ${ARGN})
  if(NOT HKDOC_LIBS)
    set(HKDOC_LIBS hostkit)
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${md})
  set(dir ${CMAKE_BINARY_DIR}/doc-examples)
  file(MAKE_DIRECTORY ${dir})
  file(GLOB old ${dir}/${prefix}_*.c)
  if(old)
    file(REMOVE ${old})
  endif()
  execute_process(
    COMMAND awk -v out=${dir}/${prefix} "/^```c$/ {n++; f=1; next} /^```/ {f=0} f {print > (out \"_\" n \".c\")}" ${md}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "extracting code blocks from ${md} failed")
  endif()
  file(GLOB files ${dir}/${prefix}_*.c)
  foreach(f IN LISTS files)
    get_filename_component(n ${f} NAME_WE)
    file(READ ${f} code)
    set(target docex_${n})
    if(code MATCHES "int main")
      add_executable(${target} ${f})
    else()
      add_library(${target} OBJECT ${f})
    endif()
    target_link_libraries(${target} PRIVATE ${HKDOC_LIBS} hk_warnings)
    set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${dir})
  endforeach()
endfunction()
