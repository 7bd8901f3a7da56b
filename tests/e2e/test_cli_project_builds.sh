# A project made by an installed hostkit builds and runs: `cmake --install`
# of this build into a temporary prefix; `hostkit new worker demo` with the
# installed tool; the two build commands the project's README shows, run
# exactly as written; then the program, from its directory, with a short
# interval: it starts, runs jobs in their scopes, and SIGTERM stops it with
# exit code 0. Also: appsettings.Development.json applies with --environment
# Development; the pkg-config fallback of the generated CMakeLists.txt builds;
# the program installed by `cmake --install build` finds libhostkit by itself.
# Skipped in sanitizer builds (their libraries do not link plain programs).
# shellcheck disable=SC2034 # VERSION, BUILD_DIR, P: read by install_hostkit, new_project, project_installs (lib.sh)
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || skip "sanitizer build (HK_SANITIZE=$HK_SANITIZE)"
command -v make >/dev/null || fail "make is not installed (the README's cmake commands use its default generator)"
VERSION=$(sed -n 's/^project(hostkit VERSION \([0-9.]*\).*/\1/p' "$HK_SOURCE_DIR/CMakeLists.txt")
BUILD_DIR=$(cd "$HK_BIN/.." && pwd)
P=$T/prefix
unset CMAKE_PREFIX_PATH PKG_CONFIG_PATH CMAKE_GENERATOR LD_LIBRARY_PATH

install_hostkit hostkit
[[ -f $P/share/man/man1/hostkit.1 ]] || fail "no share/man/man1/hostkit.1 after install"
new_project worker

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

project_installs hostkit libhostkit

pass
