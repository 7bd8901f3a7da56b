# A service that ignores cancellation longer than Host:ShutdownTimeoutSeconds
# (fractional allowed) is named in "Shutdown timed out", the process exits 1
# without waiting for it. A hang shorter than the timeout is waited for.
. "$(dirname "$0")/lib.sh" || exit 1

step "HangOnStopMs=10000, ShutdownTimeoutSeconds=0.3: SIGTERM -> timeout naming worker-1, exit 1"
start_worker timeout --Worker:HangOnStopMs=10000 --Host:ShutdownTimeoutSeconds=0.3
wait_started
signal TERM
wait_exit
assert_rc 1 "shutdown timed out"
took=$((EXIT_MS - SIGNAL_MS))
# >= 290: the 0.3 s timeout, less the granularity of the two clock readings.
((took >= 290)) || fail "exited ${took} ms after SIGTERM: before the 0.3 s shutdown timeout"
((took < 5000)) || fail "exited ${took} ms after SIGTERM: expected well before the 10 s hang (< 5 s)"
assert_order "$LOG" "$L_SHUTTING" "$L_AUDIT_STOPPED" \
    "fail: hostkit.host[0] Shutdown timed out after 0.3s; still running: worker-1"
assert_line "$LOG" "warn: Worker[0] Worker 1 ignores cancellation for 10000 ms (Worker:HangOnStopMs)"
[[ $(grep -c 'Shutdown timed out' "$LOG") == 1 ]] || fail "expected one 'Shutdown timed out' line"
assert_empty "$OUT"

step "HangOnStopMs=300 under the default 30 s timeout: waited for, exit 0"
start_worker short-hang --Worker:HangOnStopMs=300 --Logging:LogLevel:hostkit.host=Debug
wait_started
signal TERM
wait_exit
assert_rc 0 "a hang shorter than the shutdown timeout is not an error"
took=$((EXIT_MS - SIGNAL_MS))
((took >= 290)) || fail "exited ${took} ms after SIGTERM: did not wait for worker-1's 300 ms hang"
assert_order "$LOG" "$L_SHUTTING" \
    "warn: Worker[0] Worker 1 ignores cancellation for 300 ms (Worker:HangOnStopMs)" \
    "$(l_dbg Stopped service worker-1)"
assert_no_text "$LOG" "timed out"
assert_empty "$OUT"

step "ServicesStopConcurrently=true: the same timeout, the same message"
start_worker concurrent --Worker:HangOnStopMs=10000 --Host:ShutdownTimeoutSeconds=0.3 \
    --Host:ServicesStopConcurrently=true
wait_started
signal TERM
wait_exit
assert_rc 1
took=$((EXIT_MS - SIGNAL_MS))
((took >= 290 && took < 5000)) || fail "exited ${took} ms after SIGTERM, expected 0.3 s .. 5 s"
assert_order "$LOG" "$L_SHUTTING" "$L_AUDIT_STOPPED" \
    "fail: hostkit.host[0] Shutdown timed out after 0.3s; still running: worker-1"
assert_empty "$OUT"

pass
