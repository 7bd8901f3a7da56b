# Configuration on the command line: --Key=Value, --Key Value, /Key=Value and
# Key=Value all work, keys are case-insensitive, the value is everything after
# the first '=', the last occurrence wins, and the command line wins over
# environment variables (Worker__Count=2 is Worker:Count=2).
. "$(dirname "$0")/lib.sh" || exit 1

# expect NAME ENVIRONMENT WORKERS CMD...: the worker runs with that
# environment and that many workers, and stops on SIGTERM with exit 0.
expect() {
    local name=$1 env=$2 count=$3
    shift 3
    step "$name: $*"
    start "$name" "$@"
    wait_started
    assert_line "$LOG" "$(l_env "$env")"
    assert_line "$LOG" "$(l_audit_started "$count")"
    signal TERM
    wait_exit
    assert_rc 0
    assert_line "$LOG" "$L_AUDIT_STOPPED"
    assert_empty "$OUT"
}

expect dashdash-eq Development 3 "$WORKER" --environment=Development
expect dashdash-space Development 3 "$WORKER" --environment Development
expect slash Development 3 "$WORKER" /environment=Development
expect bare Development 3 "$WORKER" environment=Development
expect case-insensitive Development 2 "$WORKER" --ENVIRONMENT=Development --worker:count=2
expect last-wins B 3 "$WORKER" --environment=A --environment=B
expect value-with-eq "a=b" 3 "$WORKER" --environment=a=b
expect env-count Production 2 env Worker__Count=2 "$WORKER"
expect cmdline-over-env Production 1 env Worker__Count=2 "$WORKER" --Worker:Count 1
expect mixed Staging 2 "$WORKER" /Worker:Count=2 environment=Staging
# One log line per message: a line break in a value is rendered as \n.
expect newline 'a\nb' 3 "$WORKER" --environment=$'a\nb'

step "Worker:Count=0: no workers at all"
start_worker zero --Worker:Count=0
wait_started
assert_line "$LOG" "$(l_audit_started 0)"
signal TERM
wait_exit
assert_rc 0
assert_no_text "$LOG" "Worker[0]"
assert_empty "$OUT"

step "Worker:Count=1 from the command line: only worker 1 logs"
start_worker one --Worker:Count=1 --Worker:IntervalMs=20
wait_started
wait_for_count_after "$LOG" 0 "] Worker 1 running at " 3
signal TERM
wait_exit
assert_rc 0
assert_no_text "$LOG" "] Worker 2 running"
assert_empty "$OUT"

pass
