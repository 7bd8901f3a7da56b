# Host:SuppressStatusMessages=true hides the lifetime status lines
# ("Application started...", "Hosting environment", "Content root path" and
# "Application is shutting down..."); the services run and stop as usual.
. "$(dirname "$0")/lib.sh" || exit 1

step "SuppressStatusMessages=true: no status lines, services run, SIGTERM -> exit 0"
start_worker suppressed --Host:SuppressStatusMessages=true --Worker:IntervalMs=50 \
    --Logging:LogLevel:hostkit.host=Debug
# Without the status line, the last start-up line is the debug "Started service audit".
wait_for_line "$LOG" "$(l_dbg Started service audit)"
for i in 1 2 3; do
    wait_for_count_after "$LOG" 0 "] Worker $i running at " 2
done
signal TERM
wait_exit
assert_rc 0
assert_order "$LOG" "$(l_audit_started 3)" "$L_AUDIT_STOPPED" "$(l_dbg Stopped service audit)"
assert_no_text "$LOG" "hostkit.lifetime"
assert_no_text "$LOG" "Application started"
assert_no_text "$LOG" "Hosting environment"
assert_no_text "$LOG" "Content root path"
assert_no_text "$LOG" "Application is shutting down"
assert_empty "$OUT"

step "SuppressStatusMessages=false: the status lines are back"
start_worker not-suppressed --Host:SuppressStatusMessages=false
wait_started
assert_order "$LOG" "$L_STARTED" "$L_ENV_PROD" "$(l_root "$T")"
signal TERM
wait_exit
assert_rc 0
assert_line "$LOG" "$L_SHUTTING"
assert_empty "$OUT"

pass
