# `cmake --install <build> --prefix DIR` gives a usable SDK: a tiny consumer
# (a hosted service that calls hk_host_stop from its start, so it exits 0 by
# itself) compiles and runs when built
#   - with pkg-config (shared library, LD_LIBRARY_PATH),
#   - with pkg-config --static against libhostkit.a,
#   - with CMake: find_package(hostkit) + hostkit::hostkit / hostkit::hostkit_static.
# Every check runs even if an earlier one failed; the test fails if any did.
# Skipped in sanitizer builds (their libraries do not link plain consumers).
# The check functions are called through `check NAME FUNCTION`.
# shellcheck disable=SC2317,SC2119,SC2120
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || skip "sanitizer build (HK_SANITIZE=$HK_SANITIZE)"
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
CC=${CC:-cc}
CFLAGS_STRICT=(-std=c11 -Wall -Wextra -Wstrict-prototypes -pedantic -Werror)
BUILD_DIR=$(cd "$HK_BIN/.." && pwd)
P=$T/prefix

step "cmake --install $BUILD_DIR --prefix $P"
cmake --install "$BUILD_DIR" --prefix "$P" >"$T/install.txt" 2>&1 || {
    cat "$T/install.txt" >&2
    fail "cmake --install failed"
}
pc=$(find "$P" -name hostkit.pc -path '*/pkgconfig/*' | head -1)
[[ -n $pc ]] || fail "no hostkit.pc installed under $P"
LIBDIR=$(dirname "$(dirname "$pc")") # lib/ or lib/<multiarch>/, per GNUInstallDirs
for f in libhostkit.so libhostkit.a cmake/hostkit/hostkitConfig.cmake; do
    [[ -e $LIBDIR/$f ]] || fail "missing $LIBDIR/$f after install"
done
[[ -e $P/include/hostkit/hostkit.h ]] || fail "missing $P/include/hostkit/hostkit.h after install"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

mkdir -p "$T/src"
cat >"$T/src/main.c" <<'C'
#include <hostkit/hostkit.h>

/* Requests a stop from its own start: the host stops at the next safe point
 * and run returns 0. */
static int stop_at_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    hk_host_stop(hk_service_host(svc));
    return 0;
}

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    hk_builder_add_hosted(b, "consumer", stop_at_start, NULL, NULL, NULL);
    return hk_builder_run(b);
}
C
cat >"$T/src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(consumer LANGUAGES C)
find_package(hostkit REQUIRED)
add_executable(app main.c)
target_link_libraries(app PRIVATE hostkit::hostkit)
add_executable(app_static main.c)
target_link_libraries(app_static PRIVATE hostkit::hostkit_static)
CMAKE

FAILED=()
# check NAME FUNCTION: runs FUNCTION, its output in $T/NAME.txt; records failure.
check() {
    step "$1"
    if "$2" >"$T/$1.txt" 2>&1; then
        echo "ok: $1"
    else
        echo "FAILED: $1" >&2
        sed 's/^/    /' "$T/$1.txt" >&2
        FAILED+=("$1")
    fi
}

# run_app EXE [ENV...]: EXE exits 0 by itself (deadline), prints nothing on stdout.
run_app() {
    local exe=$1
    shift
    start "$(basename "$exe")" env "$@" "$exe"
    wait_exit
    [[ $RC == 0 ]] || { echo "$exe exited $RC"; cat "$LOG"; return 1; }
    [[ ! -s $OUT ]] || { echo "$exe wrote to stdout"; return 1; }
}

# not_linked_to_shared EXE: EXE does not need libhostkit.so.
not_linked_to_shared() {
    if readelf -d "$1" | grep -F NEEDED | grep -Fq libhostkit; then
        echo "$1 needs the shared libhostkit:"
        readelf -d "$1" | grep -F NEEDED
        return 1
    fi
}

pc_points_into_prefix() {
    local prefix includedir libdir
    prefix=$(pkg-config --variable=prefix hostkit) || return 1
    includedir=$(pkg-config --variable=includedir hostkit)
    libdir=$(pkg-config --variable=libdir hostkit)
    echo "hostkit.pc: prefix=$prefix includedir=$includedir libdir=$libdir"
    # hostkit.pc derives its prefix from its own location (${pcfiledir}), so it
    # must resolve to the --prefix given to cmake --install, not the
    # configure-time CMAKE_INSTALL_PREFIX.
    [[ $(realpath -m "$prefix") == "$(realpath -m "$P")" && -e $includedir/hostkit/hostkit.h && -e $libdir/libhostkit.so ]] || {
        echo "expected prefix=$P, with the headers and libraries under it"
        return 1
    }
}

# Diagnostic after a pkg-config build failed: would it work with pkgconf's
# --define-prefix (prefix derived from where the .pc file is)?
diagnose_pc() {
    if pkg-config --define-prefix --cflags hostkit >/dev/null 2>&1 && "$@" --define-prefix; then
        echo "NOTE: the same build works with pkg-config --define-prefix: the .pc prefix is the problem"
    fi
    return 1
}

build_pc_shared() { # [extra pkg-config option]
    # shellcheck disable=SC2046 # word splitting of pkg-config output is intended
    "$CC" "${CFLAGS_STRICT[@]}" -o "$T/app-pc" "$T/src/main.c" $(pkg-config "$@" --cflags --libs hostkit)
}

pkg_config_shared() {
    build_pc_shared || diagnose_pc build_pc_shared || return 1
    run_app "$T/app-pc" LD_LIBRARY_PATH="$LIBDIR" || return 1
    local resolved
    resolved=$(LD_LIBRARY_PATH=$LIBDIR ldd "$T/app-pc" | grep -F libhostkit)
    [[ $resolved == *"$LIBDIR/"* ]] || { echo "libhostkit resolved elsewhere: $resolved"; return 1; }
}

build_pc_static() { # [extra pkg-config option]
    local libs
    libs=$(pkg-config "$@" --static --libs hostkit) || return 1
    # Take libhostkit.a even though libhostkit.so is installed next to it.
    libs=${libs//-lhostkit/-Wl,-Bstatic -lhostkit -Wl,-Bdynamic}
    # shellcheck disable=SC2046,SC2086
    "$CC" "${CFLAGS_STRICT[@]}" -o "$T/app-pc-static" "$T/src/main.c" \
        $(pkg-config "$@" --cflags hostkit) $libs
}

pkg_config_static() {
    build_pc_static || diagnose_pc build_pc_static || return 1
    not_linked_to_shared "$T/app-pc-static" || return 1
    run_app "$T/app-pc-static"
}

cmake_find_package() {
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake "${gen[@]}" -S "$T/src" -B "$T/cmake-build" -DCMAKE_PREFIX_PATH="$P" || return 1
    cmake --build "$T/cmake-build" || return 1
    run_app "$T/cmake-build/app" LD_LIBRARY_PATH="$LIBDIR" || return 1
    not_linked_to_shared "$T/cmake-build/app_static" || return 1
    run_app "$T/cmake-build/app_static"
}

check pc-points-into-prefix pc_points_into_prefix
check pkg-config-shared pkg_config_shared
check pkg-config-static pkg_config_static
check cmake-find-package cmake_find_package

((${#FAILED[@]} == 0)) || fail "failed checks: ${FAILED[*]}"
pass
