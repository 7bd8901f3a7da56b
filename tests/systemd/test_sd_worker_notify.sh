# Scenario 1 (docs/systemd.md#tested-against): build/bin/worker as a
# Type=notify unit with WatchdogSec=2 under systemd 252. `systemctl start`
# returns only once READY=1 came (the unit is active (running) when it
# returns), StatusText is set, the watchdog is pinged and never fires in 10 s,
# `systemctl reload` (ExecReload sends SIGHUP) ends active with the reload in
# the journal, `systemctl stop` ends with Result=success and the shutdown
# lines in the journal at the right PRIORITY.
. "$(dirname "$0")/lib.sh" || exit 1

U=hk-worker.service
ct_boot
ct_unit $U <<EOF
[Unit]
Description=hostkit example worker (tests/systemd scenario 1)

[Service]
Type=notify
NotifyAccess=main
ExecStart=$WORKER --Worker:IntervalMs=500 --Logging:LogLevel:hostkit.host=Debug
ExecReload=/bin/kill -HUP \$MAINPID
WatchdogSec=2
Restart=on-watchdog
LimitCORE=0
EOF

step "systemctl start returns once READY=1 came: active (running) at once"
ct systemctl start $U || fail "systemctl start $U failed"
# No waiting here: a Type=notify unit is 'activating (start)' until READY=1.
assert_prop $U ActiveState active
assert_prop $U SubState running
assert_prop $U StatusText Running
assert_prop $U WatchdogUSec 2s
status $U
pid=$(prop $U MainPID)
((pid > 0)) || fail "no MainPID"
# journald writes asynchronously: poll for the lines.
wait_journal $U "'Application started.' at PRIORITY 6 (no Ctrl+C hint under systemd)" \
    "$(jmsg 'hostkit.lifetime[0] Application started.') and .PRIORITY == \"6\""
wait_journal $U "a worker line at PRIORITY 6 without the simple formatter's 'info:' tag" \
    '(.MESSAGE | test("^Worker\\[0\\] Worker 1 running at ")) and .PRIORITY == "6"'
assert_no_journal $U "lines in the simple format" '.MESSAGE | test("^(info|dbug|trce|warn|fail|crit): ")'

step "10 s: the watchdog is pinged and never fires (no restart, same MainPID)"
pings=() last=''
end=$(($(now_ms) + 10000))
while (($(now_ms) < end)); do
    [[ $(prop $U ActiveState) == active ]] || fail "$U left 'active' within 10 s: $(prop $U ActiveState)/$(prop $U SubState)"
    [[ $(prop $U MainPID) == "$pid" ]] || fail "MainPID changed from $pid to $(prop $U MainPID): restarted"
    w=$(prop $U WatchdogTimestampMonotonic)
    if [[ $w != "$last" ]]; then
        pings+=("$w")
        last=$w
    fi
    sleep 0.2
done
assert_prop $U NRestarts 0
# The host pings every WatchdogSec/2 = 1 s: about 10 in 10 s.
((${#pings[@]} >= 6)) || fail "only ${#pings[@]} distinct watchdog timestamps in 10 s (pings every 1 s expected)"
assert_no_journal $U "a watchdog timeout" '.MESSAGE | test("[Ww]atchdog timeout")'
echo "    ${#pings[@]} watchdog pings seen in 10 s"

step "systemctl reload: SIGHUP, RELOADING=1 ... READY=1, active (running) again"
ct systemctl reload $U || fail "systemctl reload $U failed"
wait_journal $U "the reload (debug, PRIORITY 7)" \
    "$(jmsg 'hostkit.host[0] Configuration reloaded (on request): nothing changed') and .PRIORITY == \"7\""
wait_prop $U SubState running
assert_prop $U ActiveState active
assert_prop $U StatusText Running
assert_prop $U MainPID "$pid"
assert_journal $U "systemd's own reload line" "$(jmsg "Reloaded $U - hostkit example worker (tests/systemd scenario 1).")"

step "systemctl stop: Result=success, the shutdown lines at PRIORITY 6 / 7"
ct systemctl stop $U || fail "systemctl stop $U failed"
assert_prop $U ActiveState inactive
assert_prop $U Result success
assert_prop $U ExecMainStatus 0
wait_journal $U "'Application is shutting down...' at PRIORITY 6" \
    "$(jmsg 'hostkit.lifetime[0] Application is shutting down...') and .PRIORITY == \"6\""
wait_journal $U "'Audit stopped' at PRIORITY 6" "$(jmsg 'Audit[0] Audit stopped') and .PRIORITY == \"6\""
wait_journal $U "'Stopped service worker-1' (debug) at PRIORITY 7" \
    "$(jmsg 'hostkit.host[0] Stopped service worker-1') and .PRIORITY == \"7\""
assert_journal $U "systemd's 'Deactivated successfully.'" '.MESSAGE | test("Deactivated successfully")'
assert_no_journal $U "a line of the worker at PRIORITY 0-4" "(.PRIORITY | tonumber) <= 4 and ._PID == \"$pid\""

pass
