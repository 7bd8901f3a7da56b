# Worker:FailAfterMs makes worker-1 return an error (1000 ms: well after start-up
# even in a sanitizer build on a loaded machine). By default
# (Host:BackgroundServiceExceptionBehavior=StopHost) the host logs it, shuts
# down and exits 1 by itself. With =Ignore it logs it and keeps running:
# the other workers keep logging and SIGTERM still gives exit 0.
. "$(dirname "$0")/lib.sh" || exit 1

L_FAIL='fail: hostkit.host[0] Background service worker-1 failed: simulated failure after 1000 ms (Worker:FailAfterMs) (Input/output error)'

step "FailAfterMs=1000 (StopHost) -> error, shutdown, exit 1"
start_worker stophost --Worker:FailAfterMs=1000 --Worker:IntervalMs=50
wait_started
wait_exit
assert_rc 1 "a background service failed (StopHost)"
assert_order "$LOG" "$L_STARTED" "$L_FAIL" "$L_SHUTTING" "$L_AUDIT_STOPPED"
[[ $(grep -c 'Background service' "$LOG") == 1 ]] || fail "expected one 'Background service' line"
assert_no_text "$LOG" "keeps running"
assert_empty "$OUT"

step "explicit StopHost, debug log: worker-1 reported once, the others stopped"
start_worker stophost-debug --Worker:FailAfterMs=1000 --Worker:IntervalMs=50 \
    --Host:BackgroundServiceExceptionBehavior=StopHost --Logging:LogLevel:hostkit=Debug
wait_started
wait_exit
assert_rc 1
assert_order "$LOG" "$L_STARTED" "$L_FAIL" "$L_SHUTTING" "$L_AUDIT_STOPPED"
for i in 2 3; do
    assert_order "$LOG" "$L_SHUTTING" "$(l_dbg Stopped service worker-$i)"
done
assert_no_text "$LOG" "Stopped service worker-1"
assert_empty "$OUT"

step "FailAfterMs=1000 with Ignore: error logged, host keeps running, SIGTERM -> exit 0"
start_worker ignore --Worker:FailAfterMs=1000 --Worker:IntervalMs=50 \
    --Host:BackgroundServiceExceptionBehavior=Ignore
wait_started
wait_for_line "$LOG" "Background service worker-1 failed"
assert_line "$LOG" "$L_FAIL; the host keeps running (Host:BackgroundServiceExceptionBehavior=Ignore)"
failed_at=$(text_line_no "$LOG" "Background service worker-1 failed")
for i in 2 3; do
    wait_for_count_after "$LOG" "$failed_at" "] Worker $i running at " 3
done
assert_no_text "$LOG" "Application is shutting down"
signal TERM
wait_exit
assert_rc 0 "Ignore: the failure does not change the exit code"
[[ $(count_after "$LOG" "$failed_at" "] Worker 1 running at ") == 0 ]] ||
    fail "worker-1 logged after it failed"
assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" "$L_AUDIT_STOPPED"
[[ $(grep -c 'Background service' "$LOG") == 1 ]] || fail "expected one 'Background service' line"
assert_empty "$OUT"

step "FailAfterMs=0, 50 workers: exit 1 whether the failure lands during start-up or after"
start_worker immediate --Worker:FailAfterMs=0 --Worker:Count=50
wait_exit
assert_rc 1
assert_line "$LOG" 'fail: hostkit.host[0] Background service worker-1 failed: simulated failure after 0 ms (Worker:FailAfterMs) (Input/output error)'
if has_line "$LOG" "$L_STARTED"; then
    assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" "$L_AUDIT_STOPPED"
else
    # Seen during start-up: the rest is not started, what started is stopped.
    assert_line "$LOG" 'info: hostkit.host[0] Stop requested during start-up; stopping what has started'
    assert_no_text "$LOG" "Application is shutting down"
fi
assert_empty "$OUT"

pass
