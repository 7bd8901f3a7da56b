# tests/e2e/lib.sh - shared helpers for the black-box tests of build/bin/worker.
#
# Source it first thing in a test_*.sh script (CTest runs them with bash and
# HK_BIN=<build>/bin, HK_SANITIZE=<sanitizer list or empty>). It gives the
# script:
#   - a private directory $T (mktemp -d), which is also the working directory,
#     so tests can run in parallel; removed on exit;
#   - an EXIT trap that SIGKILLs every process the script started and did not
#     reap, so no worker outlives its test;
#   - sanitizer options that give sanitizer reports a distinct exit code (66),
#     and a check of every reaped process's log for sanitizer reports;
#   - polling waits with deadlines (never sleeps as synchronisation): each
#     wait polls every 20 ms and, at its deadline, fails the test with a clear
#     message and dumps every log the test produced.
#
# Conventions: start/start_worker set PID, LOG (stderr) and OUT (stdout) of
# the process they start; wait_exit sets RC. Assertions on exact log lines
# compare whole lines (grep -Fx), so a changed wording fails loudly.

# Variables and functions here are used by the scripts that source this file.
# shellcheck disable=SC2034,SC2119,SC2120

set -u -o pipefail

: "${HK_BIN:?HK_BIN must be set to the bin directory of the build}"
HK_SANITIZE=${HK_SANITIZE:-}
WORKER=$HK_BIN/worker
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HK_SOURCE_DIR=$(cd "$E2E_DIR/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)

# Deadline for waits, in seconds. Generous: a passing test never waits for it.
DEADLINE=${HK_E2E_DEADLINE:-10}

# ---- sanitizers --------------------------------------------------------------
# Appended, so these win over options given by the caller (e.g. make test-asan).
# exitcode=66 makes "sanitizer reported" distinct from the host's own exit 1.
SAN_EXIT=66
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=$SAN_EXIT:halt_on_error=1:detect_leaks=1"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=$SAN_EXIT"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=$SAN_EXIT:halt_on_error=1:print_stacktrace=1"
TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}exitcode=$SAN_EXIT:halt_on_error=1"
if [[ -s $HK_SOURCE_DIR/tests/tsan.supp ]]; then
    TSAN_OPTIONS+=":suppressions=$HK_SOURCE_DIR/tests/tsan.supp"
fi
export TSAN_OPTIONS

SAN_MARKERS=("ERROR: AddressSanitizer" "ERROR: LeakSanitizer" "WARNING: ThreadSanitizer"
             "runtime error:" "ThreadSanitizer: " "AddressSanitizer: ")

# ---- a hermetic environment ----------------------------------------------------
# The worker reads every environment variable as configuration: drop the ones
# that would change its behaviour (HOSTKIT_*, Worker__*, Host__*, Logging__*,
# environment, contentRoot) so an ambient variable cannot break a test.
for _v in $(compgen -e); do
    case ${_v,,} in
    hostkit_* | worker__* | host__* | logging__* | systemd__* | environment | contentroot) unset "$_v" ;;
    # a CI runner that is itself a systemd unit must not make the worker talk to systemd
    invocation_id | notify_socket | journal_stream | watchdog_usec | watchdog_pid | listen_*) unset "$_v" ;;
    esac
done
unset _v

# ---- temp dir, process bookkeeping, cleanup -------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/hk-e2e-$TEST_NAME.XXXXXX") || { echo "FAIL: mktemp -d" >&2; exit 1; }
T=$(cd "$T" && pwd -P)
cd "$T" || exit 1

PIDS=()  # started and not yet reaped
FILES=() # logs to dump on failure
PID='' LOG='' OUT='' RC=''

_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    cd / && rm -rf "$T"
}
trap _cleanup EXIT
trap 'echo "FAIL: $TEST_NAME: interrupted" >&2; exit 1' INT TERM HUP

# ---- reporting -------------------------------------------------------------------
# fd 9: the test's own stderr, so a failure is reported even from inside a
# function whose output is redirected. Not passed to the processes we start.
exec 9>&2

# rel PATH: PATH relative to $T, for messages.
rel() { echo "${1#"$T/"}"; }

step() { echo "--- $*"; }

dump_logs() {
    local f
    for f in "${FILES[@]}"; do
        [[ -e $f ]] || continue
        echo "----- $(rel "$f"): $(wc -l <"$f") lines -----" >&9
        sed 's/^/    /' "$f" >&9
    done
}

# fail MESSAGE: the test fails with MESSAGE; every log is dumped.
fail() {
    echo "FAIL: $TEST_NAME: $*" >&9
    dump_logs
    exit 1
}

pass() {
    echo "PASS: $TEST_NAME"
    exit 0
}

skip() {
    echo "skipped: $TEST_NAME: $*"
    exit 0
}

# ---- time --------------------------------------------------------------------------
# Milliseconds since the epoch, without forking (EPOCHREALTIME, any locale).
now_ms() {
    local us=${EPOCHREALTIME//[!0-9]/}
    echo $((us / 1000))
}

# to_ms SECONDS: "5" or "0.3" -> milliseconds.
to_ms() {
    local s=$1 i f
    if [[ $s == *.* ]]; then
        i=${s%%.*} f=${s#*.}000
        echo $((10#${i:-0} * 1000 + 10#${f:0:3}))
    else
        echo $((10#$s * 1000))
    fi
}

# ---- processes ---------------------------------------------------------------------
# start NAME CMD [ARGS...]: runs CMD in the background in $T with stdout in
# $T/NAME.out and stderr in $T/NAME.log. Sets PID, LOG, OUT, START_MS.
start() {
    local name=$1
    shift
    OUT=$T/$name.out
    LOG=$T/$name.log
    : >"$OUT"
    : >"$LOG"
    FILES+=("$LOG" "$OUT")
    START_MS=$(now_ms)
    "$@" >"$OUT" 2>"$LOG" 9>&- &
    PID=$!
    PIDS+=("$PID")
}

# start_worker NAME [ARGS...]: start NAME $WORKER ARGS...
start_worker() {
    local name=$1
    shift
    start "$name" "$WORKER" "$@"
}

# alive PID: true while PID runs (a zombie counts as exited).
alive() {
    local st
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# signal SIG: sends SIG (TERM, INT, ...) to $PID, which must still run.
signal() {
    alive "$PID" || fail "cannot send SIG$1: process $PID already exited"
    kill -s "$1" "$PID" || fail "kill -s $1 $PID failed"
    SIGNAL_MS=$(now_ms)
}

_forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# wait_exit [TIMEOUT_S]: waits until $PID exits; sets RC and EXIT_MS. Fails at
# the deadline, and when the log shows a sanitizer report.
wait_exit() {
    local timeout=${1:-$DEADLINE}
    local deadline=$(($(now_ms) + $(to_ms "$timeout")))
    while alive "$PID"; do
        (($(now_ms) < deadline)) || fail "process $PID did not exit within ${timeout}s"
        sleep 0.02
    done
    EXIT_MS=$(now_ms)
    wait "$PID"
    RC=$?
    _forget_pid "$PID"
    check_sanitizers "$LOG"
}

# run_worker NAME [ARGS...]: a worker expected to exit by itself; waits for it.
run_worker() {
    start_worker "$@"
    wait_exit
}

# ---- waiting --------------------------------------------------------------------------
# wait_until TIMEOUT_S DESCRIPTION CMD [ARGS...]: polls CMD every 20 ms until it
# succeeds. Fails when the deadline passes or when $PID exited without CMD
# becoming true (after one last try).
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$(($(now_ms) + $(to_ms "$timeout")))
    while ! "$@"; do
        if [[ -n $PID ]] && ! alive "$PID"; then
            "$@" && return 0
            fail "process $PID exited while waiting for $what"
        fi
        (($(now_ms) < deadline)) || fail "timed out after ${timeout}s waiting for $what"
        sleep 0.02
    done
}

has_text() { grep -Fq -- "$2" "$1"; }
has_line() { grep -Fxq -- "$2" "$1"; }
has_regex() { grep -Eq -- "$2" "$1"; }

# wait_for_line FILE TEXT [TIMEOUT_S]: until a line of FILE contains TEXT.
wait_for_line() {
    wait_until "${3:-$DEADLINE}" "a line containing '$2' in $(rel "$1")" has_text "$1" "$2"
}

# wait_for_regex FILE ERE [TIMEOUT_S]: until a line of FILE matches ERE.
wait_for_regex() {
    wait_until "${3:-$DEADLINE}" "a line matching /$2/ in $(rel "$1")" has_regex "$1" "$2"
}

# count_after FILE LINENO TEXT: lines after line LINENO that contain TEXT.
count_after() {
    awk -v n="$2" -v t="$3" 'NR > n && index($0, t) { c++ } END { print c + 0 }' "$1"
}

_count_after_ge() { (($(count_after "$1" "$2" "$3") >= $4)); }

# wait_for_count_after FILE LINENO TEXT N [TIMEOUT_S]: until N lines after
# line LINENO contain TEXT.
wait_for_count_after() {
    wait_until "${5:-$DEADLINE}" "$4 lines containing '$3' after line $2 of $(rel "$1")" \
        _count_after_ge "$1" "$2" "$3" "$4"
}

# ---- assertions -------------------------------------------------------------------------
# line_no FILE EXACT_LINE: number of the first line equal to EXACT_LINE, or empty.
line_no() {
    grep -Fxn -m1 -- "$2" "$1" | cut -d: -f1
}

# text_line_no FILE TEXT: number of the first line containing TEXT, or empty.
text_line_no() {
    grep -Fn -m1 -- "$2" "$1" | cut -d: -f1
}

assert_rc() {
    [[ $RC == "$1" ]] || fail "expected exit code $1, got $RC${2:+ ($2)}"
}

assert_line() {
    has_line "$1" "$2" || fail "missing line in $(rel "$1"): '$2'"
}

assert_text() {
    has_text "$1" "$2" || fail "no line in $(rel "$1") contains '$2'"
}

assert_no_text() {
    ! has_text "$1" "$2" || fail "unexpected line in $(rel "$1"): $(grep -F -m1 -- "$2" "$1")"
}

# assert_order FILE LINE1 LINE2 ...: each exact line is present, and each one's
# first occurrence comes after the previous one's.
assert_order() {
    local f=$1 prev=0 prev_line='' n l
    shift
    for l in "$@"; do
        n=$(line_no "$f" "$l")
        [[ -n $n ]] || fail "missing line in $(rel "$f"): '$l'"
        ((n > prev)) || fail "order in $(rel "$f"): '$l' (line $n) should come after '$prev_line' (line $prev)"
        prev=$n prev_line=$l
    done
}

# assert_file_is FILE LINE...: FILE holds exactly these lines, nothing else.
assert_file_is() {
    local f=$1
    shift
    if ! diff -u <(printf '%s\n' "$@") "$f" >"$T/diff.txt"; then
        cat "$T/diff.txt" >&9
        fail "$(rel "$f") differs from the expected lines (diff above: - expected, + actual)"
    fi
}

# assert_empty FILE: e.g. the worker's stdout, which must stay empty.
assert_empty() {
    [[ ! -s $1 ]] || fail "$(rel "$1") should be empty but holds $(wc -c <"$1") bytes"
}

# check_sanitizers FILE: fails when FILE holds a sanitizer report.
check_sanitizers() {
    local m
    for m in "${SAN_MARKERS[@]}"; do
        ! grep -Fq -- "$m" "$1" || fail "sanitizer report in $(rel "$1"): $(grep -F -m1 -- "$m" "$1")"
    done
}

# assert_elapsed_below FROM_MS MAX_MS WHAT
assert_elapsed_below() {
    local took=$((EXIT_MS - $1))
    ((took < $2)) || fail "$3 took ${took} ms, expected < $2 ms"
}

# ---- fixed texts --------------------------------------------------------------------------
L_STARTED='info: hostkit.lifetime[0] Application started. Press Ctrl+C to shut down.'
L_ENV_PROD='info: hostkit.lifetime[0] Hosting environment: Production'
L_SHUTTING='info: hostkit.lifetime[0] Application is shutting down...'
L_AUDIT_STOPPED='info: Audit[0] Audit stopped'
l_env() { echo "info: hostkit.lifetime[0] Hosting environment: $1"; }
l_root() { echo "info: hostkit.lifetime[0] Content root path: $1"; }
l_audit_started() { echo "info: Audit[0] Audit started: watching $1 workers"; }
l_dbg() { echo "dbug: hostkit.host[0] $*"; }
# "Worker N running at 2026-11-25T19:08:29.123+00:00"
re_worker() { echo "^info: Worker\\[0\\] Worker $1 running at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2}\$"; }

# wait_started: the worker in $PID reached "Application started" (its signal
# handlers are installed from then on).
wait_started() {
    wait_for_line "$LOG" "Application started. Press Ctrl+C to shut down." "${1:-$DEADLINE}"
}

# ---- helpers for scripts that build things -----------------------------------------------
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

# ---- a project made by an installed hostkit (test_cli_*project_builds.sh) -----------------
# install_hostkit PC_NAME: `cmake --install` of this build ($BUILD_DIR) into $P;
# sets pc to the installed PC_NAME.pc.
install_hostkit() {
    step "cmake --install $BUILD_DIR --prefix $P"
    run_logged install cmake --install "$BUILD_DIR" --prefix "$P"
    [[ -x $P/bin/hostkit ]] || fail "no bin/hostkit after install"
    pc=$(find "$P" -name "$1.pc" -path '*/pkgconfig/*' | head -1)
    [[ -n $pc ]] || fail "no $1.pc installed under $P"
}

# new_project TEMPLATE: `hostkit new TEMPLATE demo` with the installed tool,
# cd into demo/, then the two build commands of its README, run exactly as
# written: no warnings, build/demo built.
new_project() {
    step "hostkit new $1 demo, with the installed tool"
    start new "$P/bin/hostkit" new "$1" demo
    wait_exit
    assert_rc 0
    cd "$T/demo" || fail "no demo/ directory"

    step "the two build commands of the README, as written"
    awk '/^## Build$/ { b = 1; next } b && /^```sh$/ { f = 1; next } f && /^```$/ { exit } f' README.md \
        >"$T/build-commands.txt"
    assert_file_is "$T/build-commands.txt" "cmake -B build -DCMAKE_PREFIX_PATH=$P" "cmake --build build"
    FILES+=("$T/build.txt")
    local cmd
    while IFS= read -r cmd; do
        echo "\$ $cmd" >>"$T/build.txt"
        bash -c "$cmd" >>"$T/build.txt" 2>&1 || fail "'$cmd' failed"
    done <"$T/build-commands.txt"
    assert_no_text "$T/build.txt" "warning:"
    [[ -x build/demo ]] || fail "no build/demo after the build"
}

# project_installs PC_NAME LIBRARY: the project also builds through the
# pkg-config fallback of its CMakeLists.txt (PC_NAME.pc from $pc's directory),
# and the program installed by `cmake --install build` finds LIBRARY by itself.
project_installs() {
    step "the pkg-config fallback (no CMake package found): $1.pc"
    export PKG_CONFIG_PATH=${pc%/*}
    run_logged configure-pc cmake -S . -B build-pc -DCMAKE_DISABLE_FIND_PACKAGE_hostkit=ON
    assert_text "$T/configure-pc.txt" "Checking for module '$1>=$VERSION'"
    run_logged build-pc cmake --build build-pc
    assert_no_text "$T/build-pc.txt" "warning:"
    start version-pc ./build-pc/demo --version
    wait_exit
    assert_rc 0
    assert_file_is "$OUT" "demo 0.1.0 (hostkit $VERSION)"
    unset PKG_CONFIG_PATH

    step "cmake --install build: the installed program finds $2 by itself"
    run_logged install-demo cmake --install build --prefix "$T/app"
    start version-installed "$T/app/bin/demo" --version
    wait_exit
    assert_rc 0
    assert_file_is "$OUT" "demo 0.1.0 (hostkit $VERSION)"
}

[[ -x $WORKER ]] || fail "no worker binary at $WORKER"
