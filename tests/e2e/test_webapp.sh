# build/bin/webapp with curl: the three routes, HEAD, 404/405, health and
# metrics endpoints, the request log, a bind error (exit 1 naming the URL),
# Management:Urls, and a graceful SIGTERM while a connection is open.
. "$(dirname "$0")/lib.sh" || exit 1
WEBAPP=$HK_BIN/webapp
[[ -x $WEBAPP ]] || fail "no webapp binary at $WEBAPP"
command -v curl >/dev/null || fail "curl not found: run scripts/install-deps"

port_of() { sed -nE 's|^info: hostkit.web\[0\] Now listening on: http://127.0.0.1:([0-9]+)$|\1|p' "$1" | head -1; }

step "start on an ephemeral port; the bound port is logged"
start web "$WEBAPP" --Web:Urls=http://127.0.0.1:0
wait_started
PORT=$(port_of "$LOG")
[[ -n $PORT ]] || fail "no 'Now listening on' line"
U=http://127.0.0.1:$PORT

step "GET / -> Hello World! (text/plain)"
body=$(curl -sS "$U/") || fail "curl /"
[[ $body == "Hello World!" ]] || fail "GET / body: $body"
ct=$(curl -sS -o /dev/null -w '%{content_type}' "$U/")
[[ $ct == text/plain* ]] || fail "GET / content type: $ct"

step "GET /hello/{name} -> JSON"
body=$(curl -sS "$U/hello/hostkit")
[[ $body == '{"message":"Hello, hostkit!"}' ]] || fail "GET /hello: $body"

step "POST /echo echoes the body"
body=$(curl -sS --data-binary 'ping pong' -H 'Content-Type: text/plain' "$U/echo")
[[ $body == "ping pong" ]] || fail "POST /echo: $body"

step "HEAD /, 404, 405 with Allow"
code=$(curl -sS -I -o /dev/null -w '%{http_code}' "$U/")
[[ $code == 200 ]] || fail "HEAD /: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$U/nope")
[[ $code == 404 ]] || fail "GET /nope: $code"
hdrs=$(curl -sS -D - -o /dev/null -X DELETE "$U/echo")
grep -q '^HTTP/1.1 405' <<<"$hdrs" || fail "DELETE /echo: $hdrs"
grep -qi '^Allow: POST' <<<"$hdrs" || fail "no Allow header: $hdrs"

step "health and metrics endpoints"
for p in /healthz /healthz/live /healthz/ready; do
    body=$(curl -sS -w ' %{http_code}' "$U$p")
    [[ $body == '{"status":"Healthy"'*' 200' ]] || fail "GET $p: $body"
done
# counted when the engine reports the response sent, which may trail the client: poll
hello_counted() { curl -sS "$U/metrics" | grep -q '^hostkit_http_requests_total{method="GET",route="/hello/{name}",status="200"} 1$'; }
wait_until "$DEADLINE" "the /hello series in /metrics" hello_counted

step "request log lines"
wait_for_regex "$LOG" '^info: hostkit.web\[0\] POST /echo -> 200 in [0-9.]+ ms \(9 bytes\)$'

step "SIGTERM with an idle keep-alive connection open: graceful, exit 0"
exec 3<>/dev/tcp/127.0.0.1/"$PORT"
printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' >&3
signal TERM
wait_exit
exec 3>&-
assert_rc 0 "graceful stop"
assert_no_text "$LOG" "crit:"
assert_no_text "$LOG" "fail:"

step "a bind error: exit 1 naming the URL"
start busy "$WEBAPP" --Web:Urls=http://127.0.0.1:0
wait_started
PORT=$(port_of "$LOG")
BUSYPID=$PID
start clash "$WEBAPP" --Web:Urls=http://127.0.0.1:"$PORT"
wait_exit
assert_rc 1 "address in use"
assert_text "$LOG" "cannot listen on http://127.0.0.1:$PORT: Address already in use"
PID=$BUSYPID
signal TERM
wait_exit
assert_rc 0 "the first one stops"

step "Management:Urls: the endpoints on their own listener"
start mgmt "$WEBAPP" --Web:Urls=http://127.0.0.1:0 --Management:Urls=http://127.0.0.1:0
wait_started
MPORT=$(sed -nE 's|^info: hostkit.web\[0\] Now listening on: http://127.0.0.1:([0-9]+) \(health and metrics\)$|\1|p' "$LOG")
[[ -n $MPORT ]] || fail "no management listener line"
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz/ready")
[[ $code == 200 ]] || fail "management /healthz/ready: $code"
signal TERM
wait_exit
assert_rc 0 "graceful stop"
pass
