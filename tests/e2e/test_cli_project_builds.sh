# A project made by an installed hostkit builds and runs: `cmake --install`
# of this build into a temporary prefix; `hostkit new worker demo` with the
# installed tool; the two build commands the project's README shows, run
# exactly as written; then the program, from its directory, with a short
# interval: it starts, runs jobs in their scopes, and SIGTERM stops it with
# exit code 0. Also: appsettings.Development.json applies with --environment
# Development; the pkg-config fallback of the generated CMakeLists.txt builds;
# the program installed by `cmake --install build` finds libhostkit by itself.
# Skipped in sanitizer builds (their libraries do not link plain programs).
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || skip "sanitizer build (HK_SANITIZE=$HK_SANITIZE)"
command -v make >/dev/null || fail "make is not installed (the README's cmake commands use its default generator)"
VERSION=$(sed -n 's/^project(hostkit VERSION \([0-9.]*\).*/\1/p' "$HK_SOURCE_DIR/CMakeLists.txt")
BUILD_DIR=$(cd "$HK_BIN/.." && pwd)
P=$T/prefix
unset CMAKE_PREFIX_PATH PKG_CONFIG_PATH CMAKE_GENERATOR LD_LIBRARY_PATH

# run_logged NAME CMD...: runs CMD with its output in $T/NAME.txt (dumped on failure).
run_logged() {
    local name=$1
    shift
    FILES+=("$T/$name.txt")
    "$@" >"$T/$name.txt" 2>&1 || fail "$* failed (exit code $?)"
}

assert_regex() {
    has_regex "$1" "$2" || fail "no line in $(rel "$1") matches /$2/"
}

step "cmake --install $BUILD_DIR --prefix $P"
run_logged install cmake --install "$BUILD_DIR" --prefix "$P"
[[ -x $P/bin/hostkit ]] || fail "no bin/hostkit after install"
[[ -f $P/share/man/man1/hostkit.1 ]] || fail "no share/man/man1/hostkit.1 after install"
pc=$(find "$P" -name hostkit.pc -path '*/pkgconfig/*' | head -1)
[[ -n $pc ]] || fail "no hostkit.pc installed under $P"

step "hostkit new worker demo, with the installed tool"
start new "$P/bin/hostkit" new worker demo
wait_exit
assert_rc 0
cd "$T/demo" || fail "no demo/ directory"

step "the two build commands of the README, as written"
awk '/^## Build$/ { b = 1; next } b && /^```sh$/ { f = 1; next } f && /^```$/ { exit } f' README.md \
    >"$T/build-commands.txt"
assert_file_is "$T/build-commands.txt" "cmake -B build -DCMAKE_PREFIX_PATH=$P" "cmake --build build"
FILES+=("$T/build.txt")
while IFS= read -r cmd; do
    echo "\$ $cmd" >>"$T/build.txt"
    bash -c "$cmd" >>"$T/build.txt" 2>&1 || fail "'$cmd' failed"
done <"$T/build-commands.txt"
assert_no_text "$T/build.txt" "warning:"
[[ -x build/demo ]] || fail "no build/demo after the build"

step "run from its directory with a short interval; SIGTERM stops it with exit code 0"
start demo ./build/demo --Worker:Interval=50ms
wait_for_line "$LOG" "Application started"
wait_for_line "$LOG" "info: Worker[0] Job 3: Hello from demo"
signal TERM
wait_exit
assert_rc 0 "SIGTERM"
assert_empty "$OUT"
assert_line "$LOG" "info: Audit[0] Audit started: one job every 50 ms"
assert_line "$LOG" "$(l_root "$T/demo")"
assert_order "$LOG" "info: Worker[0] Job 1: Hello from demo" "info: Worker[0] Job 2: Hello from demo" \
    "$L_SHUTTING"
assert_regex "$LOG" '^info: Audit\[0\] Audit stopped after [3-9][0-9]* jobs$'

step "--environment Development reads appsettings.Development.json"
start demo-dev ./build/demo --environment Development
wait_for_line "$LOG" "info: Audit[0] Audit started: one job every 1000 ms"
signal TERM
wait_exit
assert_rc 0 "SIGTERM"

step "the pkg-config fallback (no CMake package found)"
export PKG_CONFIG_PATH=${pc%/*}
run_logged configure-pc cmake -S . -B build-pc -DCMAKE_DISABLE_FIND_PACKAGE_hostkit=ON
assert_text "$T/configure-pc.txt" "Checking for module 'hostkit>=$VERSION'"
run_logged build-pc cmake --build build-pc
assert_no_text "$T/build-pc.txt" "warning:"
start version-pc ./build-pc/demo --version
wait_exit
assert_rc 0
assert_file_is "$OUT" "demo 0.1.0 (hostkit $VERSION)"
unset PKG_CONFIG_PATH

step "cmake --install build: the installed program finds libhostkit by itself"
run_logged install-demo cmake --install build --prefix "$T/app"
start version-installed "$T/app/bin/demo" --version
wait_exit
assert_rc 0
assert_file_is "$OUT" "demo 0.1.0 (hostkit $VERSION)"

pass
