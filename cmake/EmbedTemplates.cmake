# Embeds the project templates into the hostkit tool: reads every file under
# TEMPLATE_DIR (templates/ in the source tree, one folder per template) and
# writes OUTPUT, a C file defining cli_template_files[] (path relative to
# TEMPLATE_DIR, contents as bytes with a terminating NUL, size) and
# cli_template_nfiles, as declared in tools/hostkit/templates.h. Files are
# listed in byte order of their paths, so the output is reproducible.
#
#   cmake -DTEMPLATE_DIR=<dir> -DOUTPUT=<file.c> -P cmake/EmbedTemplates.cmake
#
# Run at build time by tools/hostkit/CMakeLists.txt whenever a template changes.
# The contents are written as hex bytes, so any byte (quotes, backslashes,
# "??" trigraphs, non-ASCII text) survives unchanged.
cmake_minimum_required(VERSION 3.20)
foreach(v TEMPLATE_DIR OUTPUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "EmbedTemplates.cmake: -D${v}=... is required")
  endif()
endforeach()

file(GLOB_RECURSE files RELATIVE "${TEMPLATE_DIR}" LIST_DIRECTORIES false "${TEMPLATE_DIR}/*")
list(SORT files)
list(LENGTH files nfiles)
if(nfiles EQUAL 0)
  message(FATAL_ERROR "EmbedTemplates.cmake: no files under ${TEMPLATE_DIR}")
endif()

set(out "/* Generated from templates/ by cmake/EmbedTemplates.cmake: do not edit. */\n")
string(APPEND out "#include \"templates.h\"\n")
set(table "")
set(i 0)
foreach(f IN LISTS files)
  file(READ "${TEMPLATE_DIR}/${f}" hex HEX)
  string(LENGTH "${hex}" nhex)
  math(EXPR size "${nhex} / 2")
  # 16 bytes per line: "0x23, 0x69, ..." (CMake regexes have no {n}: spell it out)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1, " bytes "${hex}")
  string(REPEAT "0x[0-9a-f][0-9a-f], " 16 line)
  string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
  string(REPLACE " \n" "\n" bytes "${bytes}")
  string(APPEND out "\n/* ${f} */\nstatic const unsigned char file_${i}[] = {\n    ${bytes}0x00};\n")
  string(REPLACE "\\" "\\\\" cpath "${f}")
  string(REPLACE "\"" "\\\"" cpath "${cpath}")
  string(APPEND table "    {\"${cpath}\", (const char *)file_${i}, ${size}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND out "\nconst cli_template_file_t cli_template_files[] = {\n${table}};\n")
string(APPEND out "const size_t cli_template_nfiles = ${nfiles};\n")

file(WRITE "${OUTPUT}" "${out}")
