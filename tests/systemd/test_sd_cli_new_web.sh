# Scenario 5, web half (docs/systemd.md#tested-against): the units that
# `hostkit new web` generates, demo.socket + demo.service, under systemd 252,
# with all their hardening. hostkit is installed (`cmake --install` of this
# build, prefix /usr/local, staged with DESTDIR) and `hostkit new web demo`
# made on the host; the project is built with the two commands of its README;
# then, inside the container, the README's install steps: hostkit and the
# program into /usr/local (ldconfig), appsettings.json into /etc/demo, the
# generated demo.socket and demo.service unchanged into /etc/systemd/system
# (no drop-in), `systemctl enable --now demo.socket`, and curl.
# Asserts: the socket listens on port 8080 (every address) and the service
# does not run before the first connection; that connection starts it and is
# answered on the passed socket (named "web", not Web:Urls); its routes and
# health endpoints answer (/healthz, /healthz/live, /healthz/ready: Healthy);
# the hardening is in force in the running process (a dynamic non-root user,
# no capabilities, no_new_privs, a seccomp filter, a read-only /usr, a
# private /tmp and user namespace); `systemctl stop demo` ends with
# Result=success, the socket still listening, and the next connection starts
# the service again.
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || fail "run make test-systemd from the plain build (HK_SANITIZE=$HK_SANITIZE)"
BUILD_DIR=$HK_BUILD_DIR
STAGE=$T/stage
P=$STAGE/usr/local
S=demo.socket
U=demo.service
unset CMAKE_PREFIX_PATH PKG_CONFIG_PATH CMAKE_GENERATOR LD_LIBRARY_PATH DESTDIR

# get URL: GET URL with curl inside the container; the status line, headers
# and body in $T/get.txt (CRs removed), the status code in $CODE.
CODE=''
FILES+=("$T/get.txt") # the last answer
get() {
    ct curl -sS -i --max-time 10 "$1" >"$T/get.raw" 2>&1
    local rc=$?
    tr -d '\r' <"$T/get.raw" >"$T/get.txt"
    ((rc == 0)) || fail "curl $1 failed inside the container (exit code $rc)"
    CODE=$(awk 'NR == 1 { print $2 }' "$T/get.txt")
}
body() { awk 'b { print } /^$/ { b = 1 }' "$T/get.txt"; }

step "install hostkit (prefix /usr/local, staged in $(rel "$STAGE")); hostkit new web demo"
run_logged install env DESTDIR="$STAGE" cmake --install "$BUILD_DIR" --prefix /usr/local
[[ -x $P/bin/hostkit ]] || fail "no usr/local/bin/hostkit in the staged install"
run_logged new "$P/bin/hostkit" new web demo
cd "$T/demo" || fail "no demo/ directory"
[[ -f demo.service && -f demo.socket ]] || fail "hostkit new web made no demo.service and demo.socket"
FILES+=("$T/demo/demo.socket" "$T/demo/demo.service" "$T/journal-$S.txt" "$T/journal-$U.txt")

step "build it as its README says"
build_demo

step "boot; install as the README says: hostkit and demo in /usr/local, /etc/demo, both units"
ct_install_demo
ct_put demo.socket /etc/systemd/system/demo.socket
ct_put demo.service /etc/systemd/system/demo.service
ct systemctl daemon-reload || fail "daemon-reload failed"
assert_prop $U FragmentPath /etc/systemd/system/demo.service
assert_prop $S FragmentPath /etc/systemd/system/demo.socket
assert_prop $U DropInPaths ''
assert_prop $S DropInPaths ''

step "systemctl enable --now demo.socket: listening on 8080; the service does not run yet"
ct systemctl enable --now $S || fail "systemctl enable --now $S failed"
assert_prop $S ActiveState active
assert_prop $S SubState listening
assert_prop $S UnitFileState enabled
assert_prop $S FileDescriptorName web
assert_prop $U ActiveState inactive
assert_prop $U MainPID 0
assert_prop $U TriggeredBy $S

step "the first connection (curl http://localhost:8080/, as the README) starts demo.service"
get http://localhost:8080/
[[ $CODE == 200 ]] || fail "GET / answered $CODE, expected 200"
[[ $(body) == "Hello World!" ]] || fail "GET / body is '$(body)', expected 'Hello World!'"
# The web host answers as soon as its listener runs, which can be a moment
# before the host's start-up is complete (READY=1: active (running)).
wait_prop $U SubState running
assert_prop $U ActiveState active
assert_prop $U StatusText Running
assert_prop $S SubState running
status $U
pid=$(prop $U MainPID)
((pid > 0)) || fail "no MainPID"
journal $U
# The socket systemd passed (ListenStream=8080: every address, dual-stack),
# found by its name; not Web:Urls (http://localhost:8080 in appsettings.json).
ct_url=$(jq -r "select(._PID == \"$pid\") | .MESSAGE | capture(\"^hostkit\\\\.web\\\\[0\\\\] Now listening on: (?<u>.*)\$\").u" "$J")
[[ $ct_url == "http://[::]:8080" || $ct_url == "http://0.0.0.0:8080" ]] ||
    fail "the web host listens on '$ct_url', not on the passed socket (http://[::]:8080)"
wait_journal $U "the content root /etc/demo" \
    "._PID == \"$pid\" and $(jmsg 'hostkit.lifetime[0] Content root path: /etc/demo')"

step "its routes and health endpoints answer on the socket"
get http://127.0.0.1:8080/hello/world
[[ $CODE == 200 && $(body | jq -r .message) == "Hello, world!" ]] || fail "GET /hello/world: $CODE $(body)"
for path in /healthz /healthz/live /healthz/ready; do
    get "http://localhost:8080$path"
    [[ $CODE == 200 ]] || fail "GET $path answered $CODE, expected 200"
    [[ $(body | jq -r .status) == Healthy ]] || fail "GET $path: not Healthy: $(body)"
done
get http://localhost:8080/metrics
[[ $CODE == 200 ]] || fail "GET /metrics answered $CODE"
assert_text "$T/get.txt" 'hostkit_http_requests_total{method="GET",route="/",status="200"} 1'
assert_prop $U NRestarts 0

step "the hardening is in force in the running process"
assert_hardened $U "$pid" "AF_INET AF_INET6 AF_UNIX"
assert_prop $U WatchdogUSec 30s
[[ -n $(prop $U IPAddressDeny) ]] || fail "IPAddressDeny is empty"

step "systemctl stop demo: Result=success, a clean drain; the socket keeps listening"
ct systemctl stop $U || fail "systemctl stop $U failed"
assert_prop $U ActiveState inactive
assert_prop $U Result success
assert_prop $U ExecMainStatus 0
wait_journal $U "'Application is shutting down...'" \
    "._PID == \"$pid\" and $(jmsg 'hostkit.lifetime[0] Application is shutting down...') and .PRIORITY == \"6\""
wait_journal $U "the stats service's last count" \
    "._PID == \"$pid\" and (.MESSAGE | test(\"^Stats\\\\[0\\\\] [0-9]+ requests answered\$\"))"
assert_no_journal $U "a line of the program at PRIORITY 0-4" "._PID == \"$pid\" and (.PRIORITY | tonumber) <= 4"
journal $S
assert_no_journal $S "a failure of the socket unit" '.PRIORITY == "3" or (.MESSAGE | test("[Ff]ailed"))'
assert_prop $S ActiveState active
assert_prop $S SubState listening

step "the next connection starts it again; then stop both"
# GET /: a readiness probe that reaches the host while it starts answers 503
# ("starting"), truthfully; this connection is what starts it.
get http://localhost:8080/
[[ $CODE == 200 && $(body) == "Hello World!" ]] || fail "GET / after the stop answered $CODE: $(body)"
wait_prop $U SubState running
get http://localhost:8080/healthz/ready
[[ $CODE == 200 ]] || fail "GET /healthz/ready once started again answered $CODE: $(body)"
pid2=$(prop $U MainPID)
[[ $pid2 != "$pid" && $pid2 -gt 0 ]] || fail "MainPID after the second activation is '$pid2' (was $pid)"
ct systemctl stop $S $U || fail "systemctl stop $S $U failed"
assert_prop $U Result success
assert_prop $S Result success
assert_prop $S ActiveState inactive

pass
