# Scenario 4 (docs/systemd.md#tested-against): the web example, build/bin/webapp,
# as a .socket + .service pair under systemd 252. The socket unit listens on
# 127.0.0.1:8080 (the container's own loopback) and names its descriptor "web";
# the service (Type=notify, --Web:ListenFdName=web) does not run until the
# first connection, which starts it and is answered on the activated socket;
# GET /, /hello/{name}, /healthz, /healthz/live, /healthz/ready and /metrics
# answer there. The drain: a slow client's POST /echo is in flight (its
# headers taken, `100 Continue` received, half its body sent) when
# `systemctl stop` runs; the web host closes its listener, logs that it waits
# for 1 request, the client sends the rest and gets its whole answer (200,
# `Connection: close`), and only then does the service stop (Result=success).
# Afterwards the socket unit still listens and the next connection starts the
# service again (the shared listening socket survived the drain).
. "$(dirname "$0")/lib.sh" || exit 1

WEBAPP=$HK_BIN/webapp
[[ -x $WEBAPP ]] || fail "no $WEBAPP (the web example)"
S=hk-web.socket
U=hk-web.service
ADDR=127.0.0.1:8080

ct_boot
ct_unit $S <<EOF
[Unit]
Description=hostkit web example socket (tests/systemd scenario 4)

[Socket]
ListenStream=$ADDR
FileDescriptorName=web
Accept=no
EOF
ct_unit $U <<EOF
[Unit]
Description=hostkit web example (tests/systemd scenario 4)
Requires=$S
After=$S

[Service]
Type=notify
NotifyAccess=main
ExecStart=$WEBAPP --Web:ListenFdName=web --Web:Threads=2 --Logging:LogLevel:hostkit.host=Debug
LimitCORE=0
EOF

# get PATH: GET http://$ADDR/PATH inside the container; the status line,
# headers and body in $T/get.txt (CRs removed), the status code in $CODE.
CODE=''
FILES+=("$T/get.txt") # the last answer
get() {
    ct curl -sS -i --max-time 10 "http://$ADDR$1" >"$T/get.raw" 2>&1 || {
        tr -d '\r' <"$T/get.raw" >"$T/get.txt"
        fail "curl http://$ADDR$1 failed inside the container"
    }
    tr -d '\r' <"$T/get.raw" >"$T/get.txt"
    CODE=$(awk 'NR == 1 { print $2 }' "$T/get.txt")
}
# body: the body of the last get (after the first empty line).
body() { awk 'b { print } /^$/ { b = 1 }' "$T/get.txt"; }

step "the socket listens; the service does not run before a connection"
ct systemctl start $S || fail "systemctl start $S failed"
assert_prop $S ActiveState active
assert_prop $S SubState listening
assert_prop $S Listen "$ADDR (Stream)"
assert_prop $S FileDescriptorName web
assert_prop $U ActiveState inactive
assert_prop $U MainPID 0
assert_prop $U ExecMainStartTimestampMonotonic 0
assert_prop $U Triggers ''
assert_prop $U TriggeredBy $S

step "the first connection starts the service; GET / is answered on the activated socket"
get /
[[ $CODE == 200 ]] || fail "GET / answered $CODE, expected 200"
[[ $(body) == "Hello World!" ]] || fail "GET / body is '$(body)', expected 'Hello World!'"
assert_line "$T/get.txt" "Content-Type: text/plain"
# The web host answers as soon as its listener runs, which can be a moment
# before the host's start-up is complete (READY=1: active (running)).
wait_prop $U SubState running
assert_prop $U ActiveState active
assert_prop $U StatusText Running
status $U
pid=$(prop $U MainPID)
((pid > 0)) || fail "no MainPID"
# The activated descriptor, as it really is; nothing bound on Web:Urls (localhost:5000).
wait_journal $U "the web host serving the activated socket" \
    "._PID == \"$pid\" and $(jmsg "hostkit.web[0] Now listening on: http://$ADDR") and .PRIORITY == \"6\""
wait_journal $U "the request's log line" \
    "._PID == \"$pid\" and (.MESSAGE | test(\"^hostkit\\\\.web\\\\[0\\\\] GET / -> 200 in [0-9.]+ ms \\\\(12 bytes\\\\)\$\"))"
assert_no_journal $U "a listener on Web:Urls" '.MESSAGE | test("Now listening on: http://(localhost|127\\.0\\.0\\.1):5000")'

step "GET /hello/world and the health and metrics endpoints on the same socket"
get /hello/world
[[ $CODE == 200 ]] || fail "GET /hello/world answered $CODE"
[[ $(body | jq -r .message) == "Hello, world!" ]] || fail "GET /hello/world body: $(body)"
for path in /healthz /healthz/live /healthz/ready; do
    get $path
    [[ $CODE == 200 ]] || fail "GET $path answered $CODE, expected 200"
    assert_line "$T/get.txt" "Content-Type: application/json"
    assert_line "$T/get.txt" "Cache-Control: no-store"
    [[ $(body | jq -r .status) == Healthy ]] || fail "GET $path: status is not Healthy: $(body)"
done
get /healthz/ready
[[ $(body | jq -r '.checks[] | select(.name == "host") | .description') == running ]] ||
    fail "GET /healthz/ready: no 'host' check 'running': $(body)"
get /metrics
[[ $CODE == 200 ]] || fail "GET /metrics answered $CODE"
grep -Eq '^hostkit_http_requests_total\{method="GET",route="/",status="200"\} 1$' "$T/get.txt" ||
    fail "GET /metrics: no hostkit_http_requests_total for GET / = 1"
assert_prop $U MainPID "$pid"
assert_prop $U NRestarts 0

step "a slow POST /echo in flight (headers in, 100 Continue, half the body sent)"
# The client runs inside the container (the private network: its loopback) on
# bash's /dev/tcp; it sends the rest of its body only once the test writes a
# line into the fifo /run/hk-go, then reads the answer until the server closes.
ct mkfifo -m 0600 /run/hk-go || fail "mkfifo in the container failed"
SLOW=$T/slow.out
FILES+=("$SLOW")
: >"$SLOW"
# shellcheck disable=SC2016 # expanded by the bash inside the container
CT_TIMEOUT=60 ct bash -c '
    exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
    printf "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n" >&3
    IFS= read -r line <&3 || exit 2
    IFS= read -r blank <&3 || exit 3
    printf "%s\n" "$line"
    printf "hello" >&3
    IFS= read -r go </run/hk-go
    printf "[sent the rest]\n"
    printf " world" >&3
    cat <&3
    echo
' >"$SLOW" 2>&1 &
slow_pid=$!
PIDS+=("$slow_pid")
wait_until 10 "the server's 100 Continue" has_text "$SLOW" "HTTP/1.1 100 Continue"

step "systemctl stop while it is in flight: the listener closes, the drain waits for it"
CT_TIMEOUT=60 ct systemctl stop $U >"$T/stop.out" 2>&1 &
stop_pid=$!
PIDS+=("$stop_pid")
FILES+=("$T/stop.out")
wait_journal $U "'Application is shutting down...'" \
    "._PID == \"$pid\" and $(jmsg 'hostkit.lifetime[0] Application is shutting down...') and .PRIORITY == \"6\""
wait_journal $U "the drain waiting for the request (PRIORITY 6)" \
    "._PID == \"$pid\" and $(jmsg 'hostkit.web[0] Listeners closed; waiting for 1 request(s) in flight') and .PRIORITY == \"6\""
# Still draining: the stop job waits, the process runs, the answer is not out yet.
alive "$stop_pid" || fail "systemctl stop returned while a request was in flight"
assert_prop $U ActiveState deactivating
assert_prop $U MainPID "$pid"
[[ $(wc -l <"$SLOW") == 1 ]] || fail "the slow client got more than 100 Continue before it sent its body"
# A new client now: the listener is closed for the draining process, but
# systemd's socket still listens, so the connection queues (not refused) and
# is served by the next start.
QUEUED=$T/queued.out
FILES+=("$QUEUED")
CT_TIMEOUT=60 ct curl -sS -i --max-time 50 "http://$ADDR/hello/queued" >"$QUEUED" 2>&1 &
queued_pid=$!
PIDS+=("$queued_pid")
# Connected, not refused: two established connections on port 8080 (0x1F90)
# on the server's side, the slow one and the queued one, not accepted yet.
_queued() {
    (($(ct cat /proc/net/tcp | awk '$2 == "0100007F:1F90" && $4 == "01"' | wc -l) == 2))
}
wait_until 10 "the new connection queued on the socket" _queued

step "the client sends the rest: its full answer arrives, then the process exits (success)"
echo go >"$(ct_path /run/hk-go)"
PID=$slow_pid wait_until 10 "the slow client's answer" has_text "$SLOW" "hello world"
tr -d '\r' <"$SLOW" >"$T/slow.txt"
FILES+=("$T/slow.txt" "$T/queued.txt")
# 100 Continue before the rest of the body was sent, the answer after it
assert_order "$T/slow.txt" "HTTP/1.1 100 Continue" "[sent the rest]" "HTTP/1.1 200 OK" "hello world"
assert_line "$T/slow.txt" "Connection: close" # answered while draining
assert_line "$T/slow.txt" "Content-Length: 11"
assert_line "$T/slow.txt" "Content-Type: text/plain"
[[ $(tail -1 "$T/slow.txt") == "hello world" ]] || fail "the slow answer does not end with its body"
_stopped() { ! alive "$stop_pid"; }
wait_until 20 "systemctl stop to return" _stopped
wait "$stop_pid" || fail "systemctl stop $U failed: $(cat "$T/stop.out")"
_forget_pid "$stop_pid"
wait "$slow_pid" || fail "the slow client failed (exit $?)"
_forget_pid "$slow_pid"
# No Result=success through `systemctl show` here: the queued connection
# starts the service again at once, which resets it (checked at the end).
wait_journal $U "the slow request's log line, after the drain started" \
    "._PID == \"$pid\" and (.MESSAGE | test(\"^hostkit\\\\.web\\\\[0\\\\] POST /echo -> 200 in [0-9.]+ ms \\\\(11 bytes\\\\)\$\"))"
journal $U
jq -r "select(._PID == \"$pid\") | .MESSAGE" "$J" >"$T/messages.txt"
FILES+=("$T/messages.txt")
assert_order "$T/messages.txt" "hostkit.lifetime[0] Application is shutting down..." \
    "hostkit.web[0] Listeners closed; waiting for 1 request(s) in flight" \
    "hostkit.host[0] Stopped service web"
grep -n -m1 '^hostkit\.web\[0\] POST /echo -> 200' "$T/messages.txt" | cut -d: -f1 >"$T/n"
(($(cat "$T/n") > $(line_no "$T/messages.txt" "hostkit.web[0] Listeners closed; waiting for 1 request(s) in flight"))) ||
    fail "the slow request was answered before the drain began"
assert_no_journal $U "a shutdown timeout" '.MESSAGE | test("Shutdown timeout")'
assert_no_journal $U "a line of the webapp at PRIORITY 0-4" "._PID == \"$pid\" and (.PRIORITY | tonumber) <= 4"
wait_journal $U "systemd's 'Deactivated successfully.' for the drained process" \
    "$(jmsg "$U: Deactivated successfully.")"
assert_no_journal $U "a failed exit" '.MESSAGE | test("Main process exited|Failed with result")'

step "the socket still listens: the connection queued during the drain starts the service again"
journal $S # for the record, dumped on failure
assert_no_journal $S "a failure of the socket unit" '.PRIORITY == "3" or (.MESSAGE | test("[Ff]ailed"))'
_queued_done() { ! alive "$queued_pid"; }
wait_until 20 "the queued client's answer" _queued_done
wait "$queued_pid" || fail "the client that connected during the drain failed: $(cat "$QUEUED")"
_forget_pid "$queued_pid"
tr -d '\r' <"$QUEUED" >"$T/queued.txt"
assert_line "$T/queued.txt" "HTTP/1.1 200 OK"
[[ $(tail -1 "$T/queued.txt" | jq -r .message) == "Hello, queued!" ]] ||
    fail "the queued request's body is not {\"message\":\"Hello, queued!\"}"
assert_prop $S ActiveState active
assert_prop $S SubState running
wait_prop $U SubState running
pid2=$(prop $U MainPID)
[[ $pid2 != "$pid" && $pid2 -gt 0 ]] || fail "MainPID after the second activation is '$pid2' (was $pid)"
wait_journal $U "the queued request answered by the new process" \
    "._PID == \"$pid2\" and (.MESSAGE | test(\"^hostkit\\\\.web\\\\[0\\\\] GET /hello/queued -> 200 \"))"
get /
[[ $CODE == 200 && $(body) == "Hello World!" ]] || fail "GET / after the restart answered $CODE: $(body)"
assert_prop $U MainPID "$pid2"

step "stop the socket and the service"
ct systemctl stop $S $U || fail "systemctl stop $S $U failed"
assert_prop $U Result success
assert_prop $S ActiveState inactive
ct curl -sS --max-time 5 "http://$ADDR/" >/dev/null 2>&1 && fail "the port still answers after the socket was stopped"

pass
