# The worker starts its services, reports the lifetime messages, its workers
# log periodically, and SIGTERM stops it gracefully (exit 0). With debug
# logging, services start in registration order and audit (registered last)
# is stopped before the workers report stopped.
. "$(dirname "$0")/lib.sh" || exit 1

step "defaults: 3 workers, lifetime lines, SIGTERM -> graceful stop"
start_worker default
wait_started
assert_order "$LOG" "$(l_audit_started 3)" "$L_STARTED" "$L_ENV_PROD" "$(l_root "$T")"
for i in 1 2 3; do
    wait_for_regex "$LOG" "$(re_worker "$i")"
done
signal TERM
wait_exit
assert_rc 0 "graceful stop after SIGTERM"
assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" "$L_AUDIT_STOPPED"
assert_no_text "$LOG" "Background service"
assert_no_text "$LOG" "fail:"
assert_no_text "$LOG" "crit:"
assert_empty "$OUT"

step "IntervalMs=50: every worker logs again and again"
start_worker interval --Worker:IntervalMs=50
wait_started
for i in 1 2 3; do
    wait_for_count_after "$LOG" 0 "] Worker $i running at " 3
done
bad=$(grep -E '^info: Worker\[0\] ' "$LOG" | grep -Ev "$(re_worker '[123]')" | head -1)
[[ -z $bad ]] || fail "malformed worker line: $bad"
signal TERM
wait_exit
assert_rc 0
assert_empty "$OUT"

step "debug log: start in registration order, stop in reverse"
start_worker debug --Logging:LogLevel:Default=Debug
wait_started
signal TERM
wait_exit
assert_rc 0
assert_order "$LOG" \
    "$(l_dbg Starting service worker-1)" "$(l_dbg Started service worker-1)" \
    "$(l_dbg Starting service worker-2)" "$(l_dbg Started service worker-2)" \
    "$(l_dbg Starting service worker-3)" "$(l_dbg Started service worker-3)" \
    "$(l_dbg Starting service audit)" "$(l_audit_started 3)" "$(l_dbg Started service audit)" \
    "$L_STARTED"
assert_order "$LOG" "$L_STARTED" \
    "dbug: hostkit.lifetime[0] Received SIGTERM; stopping gracefully (send it again to force)" \
    "$L_SHUTTING"
# Background services are cancelled in reverse order ...
assert_order "$LOG" "$L_SHUTTING" \
    "$(l_dbg Stopping service worker-3)" "$(l_dbg Stopping service worker-2)" "$(l_dbg Stopping service worker-1)"
# ... and audit (registered last) is stopped before any worker reports stopped.
for i in 1 2 3; do
    assert_order "$LOG" "$L_SHUTTING" "$(l_dbg Stopping service audit)" "$L_AUDIT_STOPPED" \
        "$(l_dbg Stopped service audit)" "$(l_dbg Stopped service worker-$i)"
done
for s in worker-1 worker-2 worker-3 audit; do
    n=$(grep -Fxc -- "$(l_dbg Stopped service $s)" "$LOG")
    [[ $n == 1 ]] || fail "'Stopped service $s' logged $n times, expected once"
done
assert_empty "$OUT"

step "Host:HandleSignals=false: the host leaves SIGTERM alone (default action kills it)"
start_worker no-signals --Host:HandleSignals=false
wait_started
signal TERM
wait_exit
# bash reports a death by SIGTERM as 128+15; no graceful stop happened.
assert_rc 143 "killed by SIGTERM"
assert_no_text "$LOG" "Application is shutting down"
assert_no_text "$LOG" "Audit stopped"
assert_no_text "$LOG" "Forced shutdown"
assert_empty "$OUT"

pass
