# Restart policy from the command line: worker-1 fails every 100 ms
# (Worker:FailAfterMs) and is restarted with growing backoff caps (100, 200,
# 400, 800, 1600 ms; each delay a random value up to its cap) until the
# intensity limit (6 failures within 60 s, MaxRestarts=5) gives it up and
# the host stops by itself with exit code 1. Other workers keep running
# meanwhile; nothing is printed on stdout.
. "$(dirname "$0")/lib.sh" || exit 1

H='hostkit.host[0] Service worker-1 failed: simulated failure after 100 ms (Worker:FailAfterMs) (Input/output error)'

step "on-failure: restarts with growing delays, then gives up with exit 1"
start_worker restarts --Services:worker-1:Restart:Policy=on-failure --Worker:FailAfterMs=100 \
    --Worker:IntervalMs=50
wait_exit 20
assert_rc 1 "given up by the intensity limit"
assert_empty "$OUT"

cap=100
prev=0
for attempt in 1 2 3 4 5; do
    re="^warn: hostkit\\.host\\[0\\] Service worker-1 failed: simulated failure after 100 ms \\(Worker:FailAfterMs\\) \\(Input/output error\\); restarting in ([0-9]+) ms \\(attempt $attempt, backoff up to $cap ms\\)\$"
    line=$(grep -En -m1 -- "$re" "$LOG") || fail "no restart warning for attempt $attempt with cap $cap ms"
    n=${line%%:*}
    ((n > prev)) || fail "restart warning for attempt $attempt (line $n) comes before attempt $((attempt - 1))"
    [[ $line =~ restarting\ in\ ([0-9]+)\ ms ]] || fail "no delay in: $line"
    ((BASH_REMATCH[1] <= cap)) || fail "attempt $attempt: delay ${BASH_REMATCH[1]} ms above its cap $cap ms"
    prev=$n
    cap=$((cap * 2))
done
[[ $(grep -c 'restarting in' "$LOG") == 5 ]] || fail "expected exactly 5 restarts"
[[ $(grep -c '^info: hostkit.host\[0\] Service worker-1 restarted$' "$LOG") == 5 ]] ||
    fail "expected 5 'Service worker-1 restarted' lines"
assert_order "$LOG" \
    "$L_STARTED" \
    "fail: $H" \
    "crit: hostkit.host[0] Service worker-1 failed 6 times in 60s; giving up" \
    "$L_SHUTTING" \
    "$L_AUDIT_STOPPED"
# worker-2 ran the whole time, and was stopped (not restarted)
assert_text "$LOG" "Worker 2 running at"
assert_no_text "$LOG" "Service worker-2"

step "configuration from a file and the environment: a higher limit, a short window"
cat >appsettings.json <<'JSON'
{ "Services": { "worker-1": { "Restart": { "Policy": "on-failure", "MaxRestarts": 2,
  "BackoffInitialMs": 1, "BackoffMaxMs": 2 } } } }
JSON
start_worker file --Worker:FailAfterMs=0 --Worker:Count=1
wait_exit
assert_rc 1
assert_text "$LOG" "(attempt 2, backoff up to 2 ms)"
assert_line "$LOG" "crit: hostkit.host[0] Service worker-1 failed 3 times in 60s; giving up"
rm appsettings.json

step "a bad policy value fails the build with 78, naming the key"
start_worker bad --Services:worker-1:Restart:Policy=sometimes
wait_exit
assert_rc 78
assert_line "$LOG" "crit: hostkit.host[0] Invalid configuration: Services:worker-1:Restart:Policy: \"sometimes\" is not one of never, on-failure, always (from command line)"

pass
