# The worker under valgrind (memcheck): no memory errors, no definite or
# indirect leaks, and no file descriptor left open at exit other than
# stdin/stdout/stderr and those inherited from the test, on the graceful
# path (SIGTERM), the failed-start path and the failed-service path.
# Skipped in sanitizer builds (HK_SANITIZE set) and without valgrind.
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || skip "sanitizer build (HK_SANITIZE=$HK_SANITIZE)"
command -v valgrind >/dev/null || skip "valgrind is not installed"

VG_EXIT=99
VG=(valgrind "--error-exitcode=$VG_EXIT" --leak-check=full
    "--errors-for-leak-kinds=definite,indirect" --track-fds=yes)
VG_DEADLINE=20 # valgrind is slow: generous deadlines

# check_valgrind: the valgrind report in $LOG is clean.
check_valgrind() {
    grep -Eq '== ERROR SUMMARY: 0 errors from 0 contexts' "$LOG" ||
        fail "valgrind reported errors: $(grep -E '== ERROR SUMMARY' "$LOG")"
    grep -Eq '== FILE DESCRIPTORS: [0-9]+ open' "$LOG" ||
        fail "no FILE DESCRIPTORS summary in the valgrind output"
    # Each open descriptor is followed by where it was opened, or by
    # "<inherited from parent>" for those the test harness passed down.
    local leaked
    leaked=$(awk '
        { sub(/^==[0-9]+== ?/, "") }
        want_origin && NF { if ($0 !~ /<inherited from parent>/) print fd; want_origin = 0; next }
        /^Open .*(descriptor|socket) [0-9]+/ {
            match($0, /(descriptor|socket) [0-9]+/); fd = substr($0, RSTART, RLENGTH); want_origin = 1
        }' "$LOG")
    [[ -z $leaked ]] || fail "file descriptors left open at exit: ${leaked//$'\n'/, }"
}

step "Count=3 IntervalMs=50: SIGTERM -> exit 0, clean"
start vg-graceful "${VG[@]}" "$WORKER" --Worker:Count=3 --Worker:IntervalMs=50
wait_started "$VG_DEADLINE"
wait_for_count_after "$LOG" 0 "] Worker 3 running at " 2 "$VG_DEADLINE"
signal TERM
wait_exit "$VG_DEADLINE"
assert_rc 0 "graceful stop under valgrind (99 = valgrind errors)"
assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" "$L_AUDIT_STOPPED"
check_valgrind
assert_empty "$OUT"

step "FailStart=true -> exit 1, clean"
start vg-fail-start "${VG[@]}" "$WORKER" --Worker:FailStart=true
wait_exit "$VG_DEADLINE"
assert_rc 1 "failed start under valgrind (99 = valgrind errors)"
assert_text "$LOG" "Service audit failed to start"
check_valgrind
assert_empty "$OUT"

step "FailAfterMs=200 IntervalMs=50 -> exit 1, clean"
start vg-fail-after "${VG[@]}" "$WORKER" --Worker:FailAfterMs=200 --Worker:IntervalMs=50
wait_exit "$VG_DEADLINE"
assert_rc 1 "failed background service under valgrind (99 = valgrind errors)"
assert_text "$LOG" "Background service worker-1 failed: simulated failure after 200 ms"
check_valgrind
assert_empty "$OUT"

step "bad configuration -> exit 78, clean"
start vg-bad-config "${VG[@]}" "$WORKER" --Worker:Count=abc --Host:ShutdownTimeoutSeconds=x
wait_exit "$VG_DEADLINE"
assert_rc 78 "invalid configuration under valgrind (99 = valgrind errors)"
check_valgrind
assert_empty "$OUT"

step "malformed command line -> exit 64, clean"
start vg-bad-args "${VG[@]}" "$WORKER" --Worker:Count=2 foo
wait_exit "$VG_DEADLINE"
assert_rc 64 "malformed command line under valgrind (99 = valgrind errors)"
check_valgrind
assert_empty "$OUT"

pass
