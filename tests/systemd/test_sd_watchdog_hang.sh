# Scenario 3 (docs/systemd.md#tested-against): a hung host loop under
# systemd 252. build/bin/hang_probe (tests/systemd/hang_probe.c) blocks its
# host thread 500 ms after start, so the host stops pinging; with
# WatchdogSec=2 systemd kills it (SIGABRT, Result=watchdog), and
# Restart=on-watchdog brings it back. The probe hangs only on its first run
# (a marker file), so the restarted one keeps pinging and stays up.
. "$(dirname "$0")/lib.sh" || exit 1

PROBE=$HK_BIN/hang_probe
[[ -x $PROBE ]] || fail "no $PROBE (built with the tests)"
U=hk-hang.service
ct_boot
ct_unit $U <<EOF
[Unit]
Description=hostkit host whose loop hangs (tests/systemd scenario 3)

[Service]
Type=notify
NotifyAccess=main
ExecStart=$PROBE --Probe:HangAfterMs=500 --Probe:MarkerFile=/run/hk-hang.hung
WatchdogSec=2
Restart=on-watchdog
RestartSec=2
LimitCORE=0
EOF

step "start: active (running), pinging"
ct systemctl start $U || fail "systemctl start $U failed"
assert_prop $U SubState running
assert_prop $U StatusText Running
pid=$(prop $U MainPID)
wait_journal $U "the probe arming its hang" "$(jmsg 'Probe[0] The host loop will hang in 500 ms')"

step "the host loop hangs: no more pings; systemd's watchdog kills it (Result=watchdog)"
wait_journal $U "'Host loop hangs now' at PRIORITY 4" \
    "$(jmsg 'Probe[0] Host loop hangs now (Probe:HangAfterMs=500)') and .PRIORITY == \"4\""
# RestartSec=2: a two-second window in 'auto-restart' to read the result.
wait_prop $U SubState auto-restart 10
assert_prop $U Result watchdog
assert_prop $U ExecMainStatus 6 # SIGABRT
assert_prop $U ExecMainPID "$pid"
wait_journal $U "systemd's watchdog timeout" "$(jmsg "$U: Watchdog timeout (limit 2s)!")"
wait_journal $U "the SIGABRT" "$(jmsg "$U: Killing process $pid (hang_probe) with signal SIGABRT.")"
wait_journal $U "systemd's 'Failed with result'" "$(jmsg "$U: Failed with result 'watchdog'.")"

step "Restart=on-watchdog brings it back: a new process, active (running), pinging"
wait_prop $U SubState running 10
assert_prop $U ActiveState active
assert_prop $U NRestarts 1
pid2=$(prop $U MainPID)
[[ $pid2 != "$pid" && $pid2 -gt 0 ]] || fail "MainPID after the restart is '$pid2' (was $pid)"
wait_journal $U "the second run not hanging" "$(jmsg 'Probe[0] /run/hk-hang.hung exists: this run does not hang')"
w0=$(prop $U WatchdogTimestampMonotonic)
_pinged() { [[ $(prop $U WatchdogTimestampMonotonic) != "$w0" ]]; }
wait_until 5 "a watchdog ping from the restarted host" _pinged
assert_prop $U MainPID "$pid2"

step "stop: Result=success"
ct systemctl stop $U || fail "systemctl stop $U failed"
assert_prop $U Result success
wait_journal $U "the restarted host shutting down" "$(jmsg 'hostkit.lifetime[0] Application is shutting down...')"
assert_journal $U "one watchdog timeout only" "$(jmsg "$U: Watchdog timeout (limit 2s)!")"
(($(jcount $U '.MESSAGE | test("Watchdog timeout")') == 1)) || fail "more than one watchdog timeout"

pass
