# Scenario 2 (docs/systemd.md#tested-against): a start that fails under
# systemd 252. build/bin/worker --Worker:FailStart=true as a Type=notify unit:
# `systemctl start` fails (no READY=1; the host exits 1), the journal has the
# error naming the service at PRIORITY 2 (crit, so `journalctl -p err` shows
# it), and StatusText names it ("Failed: service audit failed to start: ...").
. "$(dirname "$0")/lib.sh" || exit 1

U=hk-fail-start.service
ct_boot
ct_unit $U <<EOF
[Unit]
Description=hostkit example worker failing its start (tests/systemd scenario 2)

[Service]
Type=notify
NotifyAccess=main
ExecStart=$WORKER --Worker:FailStart=true
EOF

step "systemctl start fails: the host never sends READY=1 and exits 1"
if ct systemctl start $U; then
    fail "systemctl start $U succeeded"
fi
status $U
assert_prop $U ActiveState failed
assert_prop $U Result exit-code
assert_prop $U ExecMainStatus 1
assert_prop $U NRestarts 0

step "StatusText names the service"
assert_prop $U StatusText \
    'Failed: service audit failed to start: simulated start failure (Worker:FailStart=true) (Input/output error)'
assert_prop $U StatusErrno 5

step "the journal: the error naming the service at PRIORITY 2 (crit); nothing started"
L_FAILED='hostkit.host[0] Service audit failed to start: simulated start failure (Worker:FailStart=true) (Input/output error)'
wait_journal $U "'$L_FAILED' at PRIORITY 2" "$(jmsg "$L_FAILED") and .PRIORITY == \"2\""
# The same entry is what an operator finds with `journalctl -u UNIT -p err`.
ct journalctl -u $U -p err -o cat --no-pager >"$T/err.txt"
FILES+=("$T/err.txt")
assert_line "$T/err.txt" "$L_FAILED"
wait_journal $U "systemd's 'Failed with result' line" "$(jmsg "$U: Failed with result 'exit-code'.")"
assert_no_journal $U "'Application started.'" '.MESSAGE | test("Application started")'
assert_no_journal $U "systemd's 'Started' line" '.MESSAGE | test("^Started ")'

pass
