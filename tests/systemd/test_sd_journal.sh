# Scenario 6 (docs/systemd.md#tested-against): the journal under systemd 252.
# (a) No FormatterName anywhere: the host sees JOURNAL_STREAM match its
#     stderr, picks the systemd formatter, and journald stores each line
#     with its level's PRIORITY (debug 7, info 6, warning 4, error 3) and
#     without a level tag; with FormatterName=simple (the control) the tags
#     are back and journald files everything at its default, 6.
# (b) --Logging:Journal:Enabled=true: the native journald sink sends each
#     record as fields: the template's named holes (WORKERID from "Worker
#     {WorkerId} running at {Time}"), the scope (RUN), LOGGER_CATEGORY,
#     CODE_FILE/LINE/FUNC, MESSAGE_TEMPLATE, SYSLOG_IDENTIFIER; all visible in
#     `journalctl -o json`.
. "$(dirname "$0")/lib.sh" || exit 1

ct_boot
# is_worker PID: a filter for entries the worker process itself wrote.
from() { printf '._PID == "%s"' "$1"; }

step "(a) stream: priorities from the automatically chosen systemd formatter"
U=hk-journal-stream.service
ct_unit $U <<EOF
[Unit]
Description=hostkit worker logging to its stream (tests/systemd scenario 6a)
[Service]
Type=notify
ExecStart=$WORKER --Worker:Count=1 --Worker:IntervalMs=300 --Worker:HangOnStopMs=100 --Logging:LogLevel:hostkit.host=Debug
EOF
ct systemctl start $U || fail "systemctl start $U failed"
pid=$(prop $U MainPID)
wait_journal $U "a worker line at PRIORITY 6" \
    "$(from "$pid") and (.MESSAGE | test(\"^Worker\\\\[0\\\\] Worker 1 running at \")) and .PRIORITY == \"6\""
ct systemctl stop $U || fail "systemctl stop $U failed"
assert_prop $U Result success
wait_journal $U "a debug line at PRIORITY 7" "$(from "$pid") and $(jmsg 'hostkit.host[0] Started service worker-1') and .PRIORITY == \"7\""
wait_journal $U "the warning at PRIORITY 4" \
    "$(from "$pid") and $(jmsg 'Worker[0] Worker 1 ignores cancellation for 100 ms (Worker:HangOnStopMs)') and .PRIORITY == \"4\""
wait_journal $U "'Application is shutting down...' at PRIORITY 6" \
    "$(from "$pid") and $(jmsg 'hostkit.lifetime[0] Application is shutting down...') and .PRIORITY == \"6\""
assert_journal $U "the lines came through the stream (_TRANSPORT=stdout)" "$(from "$pid") and ._TRANSPORT == \"stdout\""
assert_no_journal $U "a level tag of the simple formatter" "$(from "$pid") and (.MESSAGE | test(\"^(trce|dbug|info|warn|fail|crit): \"))"
assert_no_journal $U "a '<N>' prefix left in MESSAGE" "$(from "$pid") and (.MESSAGE | test(\"^<[0-7]>\"))"

step "(a) an error at PRIORITY 3: worker-1 fails after 300 ms"
U=hk-journal-error.service
ct_unit $U <<EOF
[Unit]
Description=hostkit worker failing while running (tests/systemd scenario 6a)
[Service]
Type=notify
ExecStart=$WORKER --Worker:Count=1 --Worker:FailAfterMs=300
EOF
ct systemctl start $U || fail "systemctl start $U failed"
pid=$(prop $U MainPID)
wait_prop $U ActiveState failed
assert_prop $U ExecMainStatus 1
L_ERR='hostkit.host[0] Background service worker-1 failed: simulated failure after 300 ms (Worker:FailAfterMs) (Input/output error)'
wait_journal $U "'$L_ERR' at PRIORITY 3" "$(from "$pid") and $(jmsg "$L_ERR") and .PRIORITY == \"3\""

step "(a) the control: FormatterName=simple puts the tags back, all at journald's default 6"
U=hk-journal-simple.service
ct_unit $U <<EOF
[Unit]
Description=hostkit worker with the simple formatter (tests/systemd scenario 6a)
[Service]
Type=notify
ExecStart=$WORKER --Worker:Count=1 --Logging:Console:FormatterName=simple --Logging:LogLevel:hostkit.host=Debug
EOF
ct systemctl start $U || fail "systemctl start $U failed"
pid=$(prop $U MainPID)
ct systemctl stop $U || fail "systemctl stop $U failed"
wait_journal $U "the debug line, tagged, at PRIORITY 6" \
    "$(from "$pid") and $(jmsg 'dbug: hostkit.host[0] Started service worker-1') and .PRIORITY == \"6\""
assert_no_journal $U "a line of the worker at a PRIORITY other than 6" "$(from "$pid") and .PRIORITY != \"6\""

step "(b) the native journald sink: named holes, scope and call site as fields"
U=hk-journal-native.service
ct_unit $U <<EOF
[Unit]
Description=hostkit worker with the native journald sink (tests/systemd scenario 6b)
[Service]
Type=notify
ExecStart=$WORKER --Worker:Count=2 --Worker:IntervalMs=300 --Logging:Journal:Enabled=true --Logging:Console:LogLevel:Default=None
EOF
ct systemctl start $U || fail "systemctl start $U failed"
pid=$(prop $U MainPID)
W1="$(from "$pid") and .MESSAGE_TEMPLATE == \"Worker {WorkerId} running at {Time}\" and .WORKERID == \"1\""
wait_journal $U "worker 1's line with WORKERID=1" "$W1"
wait_journal $U "worker 2's line with WORKERID=2" \
    "$(from "$pid") and .MESSAGE_TEMPLATE == \"Worker {WorkerId} running at {Time}\" and .WORKERID == \"2\""
ct systemctl stop $U || fail "systemctl stop $U failed"
assert_prop $U Result success
journal $U
jq -c "select($W1)" "$J" | head -1 >"$T/entry.json"
FILES+=("$T/entry.json")
# field NAME: the value of NAME in that entry.
field() { jq -r --arg f "$1" '.[$f] // "(missing)"' "$T/entry.json"; }
expect_field() {
    local v
    v=$(field "$1")
    [[ $v =~ $2 ]] || fail "worker 1's entry: $1 is '$v', expected /$2/"
}
expect_field MESSAGE '^Worker 1 running at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{2}:[0-9]{2}$'
expect_field PRIORITY '^6$'
expect_field LOGGER_CATEGORY '^Worker$'
expect_field TIME '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{2}:[0-9]{2}$'
expect_field RUN '^[0-9]+$'
expect_field CODE_FILE 'examples/worker/main\.c$'
expect_field CODE_LINE '^[0-9]+$'
expect_field CODE_FUNC '^worker_execute$'
expect_field SYSLOG_IDENTIFIER '^worker$'
expect_field TID '^[0-9]+$'
expect_field _TRANSPORT '^journal$'
[[ $(field MESSAGE) == *"$(field TIME)" ]] || fail "the {Time} hole ($(field TIME)) is not the one in MESSAGE"
assert_journal $U "the audit line with its hole WORKERS=2" \
    "$(from "$pid") and $(jmsg 'Audit started: watching 2 workers') and .WORKERS == \"2\" and .LOGGER_CATEGORY == \"Audit\""
assert_journal $U "a host line with its category" \
    "$(from "$pid") and $(jmsg 'Application is shutting down...') and .LOGGER_CATEGORY == \"hostkit.lifetime\" and .PRIORITY == \"6\""
# Console at None: each line once, through the native protocol only.
assert_no_journal $U "a line of the worker through the stream" "$(from "$pid") and ._TRANSPORT == \"stdout\""

pass
