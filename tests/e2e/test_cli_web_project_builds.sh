# A web project made by an installed hostkit builds and serves: `cmake
# --install` of this build (libhostkit, libhostkit-web, the tool) into a
# temporary prefix; `hostkit new web demo` with the installed tool; the two
# build commands of the project's README, run exactly as written; then the
# program, from its directory, on an ephemeral port: GET /, GET
# /hello/{name}, POST /echo, /healthz and /metrics answer as the README says
# (checked with curl), a wrong path is 404, and SIGTERM stops it with exit
# code 0 after its background service logged the count its middleware kept.
# Also: --environment Development; socket activation as NAME.socket does
# it (a descriptor named "web", Web__ListenFdName=web: the program serves it
# instead of Web:Urls); the pkg-config fallback (hostkit-web.pc); the program
# installed by `cmake --install build` finds its libraries by itself.
# Skipped in sanitizer builds (their libraries do not link plain programs).
# shellcheck disable=SC2034 # VERSION, BUILD_DIR, P: read by install_hostkit, new_project, project_installs (lib.sh)
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || skip "sanitizer build (HK_SANITIZE=$HK_SANITIZE)"
command -v make >/dev/null || fail "make is not installed (the README's cmake commands use its default generator)"
command -v curl >/dev/null || fail "curl is not installed (Debian package curl; scripts/install-deps)"
VERSION=$(sed -n 's/^project(hostkit VERSION \([0-9.]*\).*/\1/p' "$HK_SOURCE_DIR/CMakeLists.txt")
BUILD_DIR=$(cd "$HK_BIN/.." && pwd)
P=$T/prefix
unset CMAKE_PREFIX_PATH PKG_CONFIG_PATH CMAKE_GENERATOR LD_LIBRARY_PATH
# The program reads every environment variable as configuration.
for v in $(compgen -e); do
    case ${v,,} in web__* | stats__* | management__* | urls) unset "$v" ;; esac
done

# http NAME CURL-ARGS... URL: one request with curl; the status goes to
# $T/NAME.status, the headers to $T/NAME.headers, the body to $T/NAME.body.
http() {
    local name=$1
    shift
    FILES+=("$T/$name.headers" "$T/$name.body" "$T/$name.curl")
    curl -sS --max-time "$DEADLINE" -D "$T/$name.headers" -o "$T/$name.body" \
        -w '%{http_code}\n' "$@" >"$T/$name.status" 2>"$T/$name.curl" ||
        fail "curl $* failed: $(cat "$T/$name.curl")"
}

# assert_http NAME STATUS CONTENT-TYPE: the answer of `http NAME ...`.
assert_http() {
    assert_file_is "$T/$1.status" "$2"
    has_regex "$T/$1.headers" "^Content-Type: $3"$'\r'"?\$" ||
        fail "$1: no 'Content-Type: $3' in: $(cat "$T/$1.headers")"
}

# assert_body NAME TEXT: the body of `http NAME ...` is exactly TEXT (no newline added).
assert_body() {
    printf '%s' "$2" | cmp -s - "$T/$1.body" || fail "$1: expected the body '$2', got '$(cat "$T/$1.body")'"
}

# listening_port: the port of the first "Now listening on" line in $LOG.
listening_port() {
    sed -n 's|^info: hostkit\.web\[0\] Now listening on: http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$LOG" | head -1
}

install_hostkit hostkit-web
new_project web

step "the configuration files load in both environments"
start print-config ./build/demo --print-config
wait_exit
assert_rc 0
assert_line "$OUT" "Web:Urls=http://localhost:8080 (appsettings.json)"
start print-config-dev ./build/demo --environment Development --print-config
wait_exit
assert_rc 0
assert_line "$OUT" "Stats:Interval=10s (appsettings.Development.json)"

step "run from its directory on an ephemeral port; the routes answer"
start demo ./build/demo --Web:Urls=http://localhost:0 --Stats:Interval=1d
wait_for_line "$LOG" "$L_STARTED"
PORT=$(listening_port)
[[ -n $PORT ]] || fail "no 'Now listening on: http://127.0.0.1:PORT' line before $L_STARTED"
U=http://127.0.0.1:$PORT
http root "$U/"
assert_http root 200 "text/plain; charset=utf-8"
assert_body root "Hello World!"
http hello "$U/hello/w%C3%B6rld"
assert_http hello 200 application/json
assert_body hello '{"message":"Hello, wörld!"}'
printf 'line 1\nline 2\n' >"$T/echo.in"
http echo -H 'Content-Type: text/x-demo' --data-binary "@$T/echo.in" "$U/echo"
assert_http echo 200 text/x-demo
cmp -s "$T/echo.in" "$T/echo.body" || fail "POST /echo did not echo the body: $(cat "$T/echo.body")"
http missing "$U/nope"
assert_file_is "$T/missing.status" 404

step "the health and metrics endpoints answer"
http health "$U/healthz"
assert_http health 200 application/json
assert_text "$T/health.body" '{"status":"Healthy",'
http ready "$U/healthz/ready"
assert_file_is "$T/ready.status" 200
# A request is counted once its response was sent, so poll for the last one.
# shellcheck disable=SC2317 # called through wait_until
metrics_show() {
    http metrics "$U/metrics"
    [[ $(cat "$T/metrics.status") == 200 ]] && has_line "$T/metrics.body" "$1"
}
wait_until "$DEADLINE" "/metrics to count POST /echo" \
    metrics_show 'hostkit_http_requests_total{method="POST",route="/echo",status="200"} 1'
assert_line "$T/metrics.body" 'hostkit_http_requests_total{method="GET",route="/hello/{name}",status="200"} 1'
assert_text "$T/metrics.body" '# TYPE hostkit_http_request_duration_seconds histogram'

step "SIGTERM stops it with exit code 0; the background service logs the middleware's count"
signal TERM
wait_exit
assert_rc 0 "SIGTERM"
assert_empty "$OUT"
assert_line "$LOG" "$(l_root "$T/demo")"
# 4 application requests (/, /hello, /echo, the 404); the endpoints are not counted.
assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" "info: Stats[0] 4 requests answered"
assert_no_text "$LOG" "warn:"
assert_no_text "$LOG" "fail:"

step "--environment Development: debug logs show each request"
start demo-dev ./build/demo --environment Development --Web:Urls=http://localhost:0
wait_for_line "$LOG" "$L_STARTED"
PORT=$(listening_port)
[[ -n $PORT ]] || fail "no 'Now listening on' line"
http dev-root "http://127.0.0.1:$PORT/"
assert_file_is "$T/dev-root.status" 200
wait_for_regex "$LOG" '^dbug: hostkit\.web\[0\] .*GET / .*200'
signal TERM
wait_exit
assert_rc 0 "SIGTERM"

step "socket-activated as demo.socket does it: the passed descriptor is served, not Web:Urls"
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate is not installed (Debian package systemd)"
SA_PORT=''
# shellcheck disable=SC2317 # called through wait_until
sa_listening_or_gone() { has_text "$LOG" "Listening on 127.0.0.1:$SA_PORT as 3." || ! alive "$PID"; }
for try in 1 2 3 4 5 6 7 8; do
    SA_PORT=$((20000 + RANDOM % 40000))
    # The unit pair's settings: FileDescriptorName=web and Web__ListenFdName=web.
    start "activate-$try" systemd-socket-activate -l "127.0.0.1:$SA_PORT" --fdname=web \
        -E Web__ListenFdName=web ./build/demo
    wait_until "$DEADLINE" "systemd-socket-activate to listen on $SA_PORT or give up" sa_listening_or_gone
    has_text "$LOG" "Listening on 127.0.0.1:$SA_PORT as 3." && break
    wait_exit # the port was taken: it gave up
    SA_PORT=''
done
[[ -n $SA_PORT ]] || fail "no free port after 8 tries"
# The first connection starts the program (exec'd in place: $PID is the program).
http sa-root "http://127.0.0.1:$SA_PORT/"
assert_http sa-root 200 "text/plain; charset=utf-8"
assert_body sa-root "Hello World!"
http sa-health "http://127.0.0.1:$SA_PORT/healthz"
assert_file_is "$T/sa-health.status" 200
wait_for_line "$LOG" "$L_STARTED"
assert_regex "$LOG" "^info: hostkit\.web\[0\] Now listening on: .*:$SA_PORT\$"
assert_no_text "$LOG" "127.0.0.1:8080" # appsettings.json's Web:Urls was not bound
signal TERM
wait_exit
assert_rc 0 "SIGTERM (socket-activated)"
assert_no_text "$LOG" "warn:"
assert_no_text "$LOG" "fail:"

project_installs hostkit-web libhostkit-web

pass
