# SIGQUIT stops the worker gracefully, like SIGTERM: the lifetime messages,
# audit stopped, every worker stopped, exit 0.
. "$(dirname "$0")/lib.sh" || exit 1

step "SIGQUIT -> graceful stop, exit 0"
start_worker quit --Worker:IntervalMs=50 --Logging:LogLevel:hostkit=Debug
wait_started
assert_order "$LOG" "$L_STARTED" "$L_ENV_PROD" "$(l_root "$T")"
for i in 1 2 3; do
    wait_for_regex "$LOG" "$(re_worker "$i")"
done
signal QUIT
wait_exit
assert_rc 0 "graceful stop after SIGQUIT"
assert_order "$LOG" "$L_STARTED" \
    "dbug: hostkit.lifetime[0] Received SIGQUIT; stopping gracefully (send it again to force)" \
    "$L_SHUTTING" "$L_AUDIT_STOPPED" "$(l_dbg Stopped service audit)"
for s in worker-1 worker-2 worker-3; do
    assert_order "$LOG" "$(l_dbg Stopped service audit)" "$(l_dbg Stopped service $s)"
done
assert_no_text "$LOG" "fail:"
assert_no_text "$LOG" "crit:"
assert_no_text "$LOG" "Forced shutdown"
assert_empty "$OUT"

pass
