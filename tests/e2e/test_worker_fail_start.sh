# Worker:FailStart=true makes audit (registered last) fail its start: the
# host names it, rolls back the workers that had started (in reverse), never
# reports "Application started", and exits 1 by itself.
. "$(dirname "$0")/lib.sh" || exit 1

L_FAILED='crit: hostkit.host[0] Service audit failed to start: simulated start failure (Worker:FailStart=true) (Input/output error)'

step "FailStart=true -> exit 1, audit named"
run_worker plain --Worker:FailStart=true
assert_rc 1 "a service failed to start"
assert_line "$LOG" "$L_FAILED"
assert_no_text "$LOG" "Application started"
assert_no_text "$LOG" "Hosting environment"
assert_no_text "$LOG" "Application is shutting down"
assert_no_text "$LOG" "Audit started"
assert_no_text "$LOG" "Audit stopped"
assert_empty "$OUT"

step "FailStart=true with debug log: the started workers are stopped, audit is not"
run_worker debug --Worker:FailStart=true --Logging:LogLevel:Default=Debug
assert_rc 1
assert_order "$LOG" \
    "$(l_dbg Starting service worker-1)" "$(l_dbg Started service worker-1)" \
    "$(l_dbg Starting service worker-2)" "$(l_dbg Started service worker-2)" \
    "$(l_dbg Starting service worker-3)" "$(l_dbg Started service worker-3)" \
    "$(l_dbg Starting service audit)" "$L_FAILED" \
    "$(l_dbg Stopping service worker-3)" "$(l_dbg Stopping service worker-2)" "$(l_dbg Stopping service worker-1)"
for i in 1 2 3; do
    assert_order "$LOG" "$L_FAILED" "$(l_dbg Stopped service worker-$i)"
done
assert_no_text "$LOG" "Started service audit"
assert_no_text "$LOG" "Stopping service audit"
assert_no_text "$LOG" "Stopped service audit"
assert_no_text "$LOG" "Application started"
[[ $(grep -c 'failed to start' "$LOG") == 1 ]] || fail "expected exactly one 'failed to start' line"
assert_empty "$OUT"

step "FailStart=true with no workers: still exit 1"
run_worker no-workers --Worker:FailStart=true --Worker:Count=0
assert_rc 1
assert_file_is "$LOG" "$L_FAILED"
assert_empty "$OUT"

step "FailStart=true, worker-1 hangs on stop: the rollback honours Host:ShutdownTimeoutSeconds"
start_worker rollback-timeout --Worker:FailStart=true --Worker:HangOnStopMs=10000 \
    --Host:ShutdownTimeoutSeconds=0.3
wait_exit
assert_rc 1
took=$((EXIT_MS - START_MS))
((took < 5000)) || fail "exited after ${took} ms: expected well before the 10 s hang (< 5 s)"
assert_order "$LOG" "$L_FAILED" \
    "warn: Worker[0] Worker 1 ignores cancellation for 10000 ms (Worker:HangOnStopMs)"
assert_order "$LOG" "$L_FAILED" "fail: hostkit.host[0] Shutdown timed out after 0.3s; still running: worker-1"
assert_no_text "$LOG" "Application"
assert_empty "$OUT"

pass
