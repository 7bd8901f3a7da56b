# The example worker with Management:Urls: health and metrics over HTTP for a
# worker with no routes. /healthz/live lists the workers' heartbeat checks,
# /healthz/ready the host, services and job checks, /metrics the built-in
# hostkit_* series; without Management:Urls nothing listens.
. "$(dirname "$0")/lib.sh" || exit 1
command -v curl >/dev/null || fail "curl not found: run scripts/install-deps"

step "Management:Urls=http://127.0.0.1:0: endpoints on an ephemeral port"
start_worker mgmt --Management:Urls=http://127.0.0.1:0 --Worker:IntervalMs=50
wait_started
wait_for_regex "$LOG" '^info: hostkit\.web\[0\] Now listening on: http://127\.0\.0\.1:[0-9]+ \(health and metrics\)$'
port=$(grep -oE 'Now listening on: http://127\.0\.0\.1:[0-9]+' "$LOG" | head -1 | grep -oE '[0-9]+$')
base=http://127.0.0.1:$port

code=$(curl -s -o "$T/live.json" -w '%{http_code}' "$base/healthz/live")
[[ $code == 200 ]] || fail "/healthz/live answered $code"
python3 - "$T/live.json" <<'PY' || fail "/healthz/live: unexpected body: $(cat "$T/live.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "Healthy", r
names = {c["name"]: c for c in r["checks"]}
for i in (1, 2, 3):
    c = names["heartbeat:worker-%d" % i]
    assert c["status"] == "Healthy" and "live" in c["tags"], c
assert all("live" in c["tags"] for c in r["checks"]), r
PY

code=$(curl -s -o "$T/ready.json" -w '%{http_code}' "$base/healthz/ready")
[[ $code == 200 ]] || fail "/healthz/ready answered $code"
python3 - "$T/ready.json" <<'PY' || fail "/healthz/ready: unexpected body: $(cat "$T/ready.json")"
import json, sys
r = json.load(open(sys.argv[1]))
names = {c["name"]: c for c in r["checks"]}
assert names["host"]["status"] == "Healthy", names
assert names["services"]["status"] == "Healthy", names
assert names["services"]["data"]["worker-1"] == "Running", names["services"]
PY

curl -s -o "$T/metrics.txt" "$base/metrics" || fail "/metrics failed"
FILES+=("$T/metrics.txt")
for s in 'hostkit_service_up{service="worker-1"} 1' 'hostkit_service_up{service="audit"} 1' \
         'hostkit_service_state{service="worker-2",state="Running"} 1' \
         'hostkit_health_status{check="services"} 2' 'hostkit_log_dropped_total 0'; do
    assert_line "$T/metrics.txt" "$s"
done
assert_text "$T/metrics.txt" 'hostkit_log_messages_total{level="information"} '
assert_text "$T/metrics.txt" 'process_resident_memory_bytes '
signal TERM
wait_exit
assert_rc 0 "graceful stop with the management listener"

step "without Management:Urls nothing listens"
start_worker quiet
wait_started
signal TERM
wait_exit
assert_rc 0
assert_no_text "$LOG" "Now listening"
assert_no_text "$LOG" "no listener"

pass
