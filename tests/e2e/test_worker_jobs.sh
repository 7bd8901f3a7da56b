# Timed and queued work in the example worker: the periodic job "report"
# every Worker:ReportInterval, fed by the queue "work" that every worker run
# puts an item on; at SIGTERM the queue drains and says how much it
# processed and left. Bad schedules fail the build with 78, naming the key
# (and, for cron expressions and durations, the position of the error).
. "$(dirname "$0")/lib.sh" || exit 1

re_report() { echo "^info: Report\\[0\\] Report $1: [0-9]+ worker runs, [0-9]+ items processed\$"; }

step "report every 200 ms, counting the items the queue processed"
start_worker jobs --Worker:ReportInterval=200ms --Worker:IntervalMs=50 --Worker:Count=2
wait_started
wait_for_regex "$LOG" "$(re_report 3)"
signal TERM
wait_exit
assert_rc 0
assert_empty "$OUT"
for n in 1 2 3; do
    has_regex "$LOG" "$(re_report $n)" || fail "no line for report $n"
done
# the items counted grow from one report to the next (workers keep feeding the queue)
p1=$(grep -E "$(re_report 1)" "$LOG" | sed -E 's/.* ([0-9]+) items processed$/\1/')
p3=$(grep -E "$(re_report 3)" "$LOG" | sed -E 's/.* ([0-9]+) items processed$/\1/')
((p3 > p1)) || fail "items processed did not grow: report 1 says $p1, report 3 says $p3"
assert_regex_line() { has_regex "$LOG" "$1" || fail "no line matching /$1/ in $(rel "$LOG")"; }
assert_regex_line '^info: hostkit\.jobs\[0\] Queue work stopped \(Drain\): [0-9]+ items processed during shutdown, 0 left over and destroyed$'
assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" "$L_AUDIT_STOPPED"
assert_no_text "$LOG" "queue is full"

step "the job's own section: a cron schedule from the environment (every minute: no run in a short test)"
Jobs__report__Cron='* * * * *' start_worker cron --Worker:IntervalMs=50
wait_started
signal TERM
wait_exit
assert_rc 0
assert_no_text "$LOG" "Report 1:"

step "a bad interval: exit 78 naming Worker:ReportInterval"
run_worker bad-interval --Worker:ReportInterval=soon
assert_rc 78
assert_text "$LOG" 'Worker:ReportInterval: "soon" is not a duration'

step "a bad cron expression: exit 78 naming the key and the position"
run_worker bad-cron --Jobs:report:Cron="0 24 * * *"
assert_rc 78
assert_line "$LOG" 'crit: hostkit.host[0] Invalid configuration: Jobs:report:Cron: "0 24 * * *": hour 24 is out of range 0-23 at position 3 (from command line)'

step "a bad queue setting: exit 78 naming the key"
run_worker bad-queue --Queues:work:Workers=0
assert_rc 78
assert_line "$LOG" 'crit: hostkit.host[0] Invalid configuration: Queues:work:Workers: "0" is out of range [1, 1024] (from command line)'

pass
