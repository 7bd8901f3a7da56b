# The worker's file sink: lines go to Logging:File:Path (json parsed back
# line by line), an external logrotate (rename + SIGUSR1) makes the host
# reopen the path, size-based rolling keeps MaxFiles files, and a path that
# cannot be opened is a configuration error (exit 78) naming the key.
. "$(dirname "$0")/lib.sh" || exit 1

step "json lines in the file, the console unchanged"
start_worker file --Worker:IntervalMs=20 --Logging:File:Path=app.log --Logging:File:FormatterName=json
wait_started
wait_for_line "$T/app.log" '"Message":"Worker 1 running at '
wait_for_line "$T/app.log" '"WorkerId":1'
signal TERM
wait_exit
assert_rc 0
python3 - "$T/app.log" <<'PY' || fail "app.log is not one JSON object per line"
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    assert {"Timestamp", "EventId", "LogLevel", "Category", "Message", "State"} <= o.keys(), o
    n += 1
assert n >= 5, n
PY
assert_text "$T/app.log" '"Message":"Application is shutting down..."' 
assert_line "$LOG" "$L_SHUTTING"

step "logrotate: rename, SIGUSR1, new lines go to a new file at the path"
start_worker rotate --Worker:IntervalMs=20 --Logging:File:Path=rot.log
wait_started
wait_for_line "$T/rot.log" "] Worker 1 running at "
mv "$T/rot.log" "$T/rot.log.1"
signal USR1
wait_until "$DEADLINE" "rot.log to be created again" test -f "$T/rot.log"
wait_for_line "$T/rot.log" "] Worker 1 running at "
signal TERM
wait_exit
assert_rc 0
assert_text "$T/rot.log" "Application is shutting down..."
assert_no_text "$T/rot.log.1" "Application is shutting down..."

step "size rolling: MaxFileSizeBytes=2000, MaxFiles=3"
start_worker rolling --Worker:IntervalMs=1 --Logging:File:Path=roll.log \
    --Logging:File:MaxFileSizeBytes=2000 --Logging:File:MaxFiles=3
wait_started
wait_until "$DEADLINE" "roll.log.2 to appear" test -f "$T/roll.log.2"
signal TERM
wait_exit
assert_rc 0
[[ ! -e $T/roll.log.3 ]] || fail "roll.log.3 exists: MaxFiles=3 keeps roll.log, .1 and .2"
for f in roll.log roll.log.1 roll.log.2; do
    size=$(stat -c %s "$T/$f")
    ((size <= 2000)) || fail "$f has $size bytes, more than MaxFileSizeBytes"
    [[ $(tail -c1 "$T/$f" | od -An -c | tr -d ' ') == '\n' ]] || fail "$f ends in the middle of a line"
done

step "an unopenable path: exit 78 naming Logging:File:Path"
run_worker badpath --Logging:File:Path=no/such/dir/app.log
assert_rc 78
assert_text "$LOG" 'Logging:File:Path: cannot open "no/such/dir/app.log": No such file or directory'
assert_no_text "$LOG" "Application started"

pass
