# Scenario 5, worker half (docs/systemd.md#tested-against): the unit that
# `hostkit new worker` generates, under systemd 252, with all its hardening.
# hostkit is installed (`cmake --install` of this build, prefix /usr/local,
# staged with DESTDIR) and `hostkit new worker demo` made on the host; the
# project is built with the two commands of its README; then, inside the
# container, the README's install steps: hostkit and the program into
# /usr/local (ldconfig), appsettings.json into /etc/demo, the generated
# demo.service unchanged into /etc/systemd/system, `systemctl enable --now`.
# One drop-in shortens WatchdogSec (30 s -> 2 s) so that the pings, which the
# host sends only while its liveness checks pass, are seen within the test.
# Asserts: start returns active (running) with StatusText Running; the
# hardening is in force in the running process (a dynamic non-root user, no
# capabilities, no_new_privs, a seccomp filter, a read-only /usr, a private
# /tmp and user namespace); the program works (its jobs in the journal) and
# pings the watchdog; `systemctl stop` ends with Result=success.
# The web half (`hostkit new web`) is test_sd_cli_new_web.sh.
. "$(dirname "$0")/lib.sh" || exit 1

[[ -z $HK_SANITIZE ]] || fail "run make test-systemd from the plain build (HK_SANITIZE=$HK_SANITIZE)"
BUILD_DIR=$HK_BUILD_DIR
STAGE=$T/stage
P=$STAGE/usr/local
unset CMAKE_PREFIX_PATH PKG_CONFIG_PATH CMAKE_GENERATOR LD_LIBRARY_PATH DESTDIR

step "install hostkit (prefix /usr/local, staged in $(rel "$STAGE")); hostkit new worker demo"
run_logged install env DESTDIR="$STAGE" cmake --install "$BUILD_DIR" --prefix /usr/local
[[ -x $P/bin/hostkit ]] || fail "no usr/local/bin/hostkit in the staged install"
run_logged new "$P/bin/hostkit" new worker demo
cd "$T/demo" || fail "no demo/ directory"
[[ -f demo.service ]] || fail "hostkit new worker made no demo.service"

step "build it as its README says"
build_demo

step "boot; install as the README says: hostkit and demo in /usr/local, /etc/demo, the unit"
ct_install_demo
FILES+=("$T/demo/demo.service" "$T/journal-demo.service.txt")
ct_put demo.service /etc/systemd/system/demo.service
ct_put /dev/stdin /etc/systemd/system/demo.service.d/watchdog.conf <<'EOF'
# tests/systemd: see the pings within the test (the generated unit has 30s)
[Service]
WatchdogSec=2s
EOF
ct systemctl daemon-reload || fail "daemon-reload failed"
assert_prop demo.service FragmentPath /etc/systemd/system/demo.service
assert_prop demo.service DropInPaths /etc/systemd/system/demo.service.d/watchdog.conf

step "systemctl enable --now demo: active (running) once READY=1 came"
ct systemctl enable --now demo || fail "systemctl enable --now demo failed"
assert_prop demo.service ActiveState active
assert_prop demo.service SubState running
assert_prop demo.service StatusText Running
assert_prop demo.service UnitFileState enabled
status demo.service
pid=$(prop demo.service MainPID)
((pid > 0)) || fail "no MainPID"
wait_journal demo.service "its jobs running" "._PID == \"$pid\" and $(jmsg 'Worker[0] Job 2: Hello from demo')"
wait_journal demo.service "the content root /etc/demo" \
    "._PID == \"$pid\" and $(jmsg 'hostkit.lifetime[0] Content root path: /etc/demo')"

step "the hardening is in force in the running process"
assert_hardened demo.service "$pid" AF_UNIX

step "health: the host pings the watchdog (only while its liveness checks pass)"
w0=$(prop demo.service WatchdogTimestampMonotonic)
_pinged() { [[ $(prop demo.service WatchdogTimestampMonotonic) != "$w0" ]]; }
wait_until 5 "a watchdog ping" _pinged
assert_no_journal demo.service "a failed liveness check" '.MESSAGE | test("liveness check failed")'
assert_prop demo.service NRestarts 0

step "systemctl stop: Result=success, a clean shutdown in the journal"
ct systemctl stop demo || fail "systemctl stop demo failed"
assert_prop demo.service ActiveState inactive
assert_prop demo.service Result success
assert_prop demo.service ExecMainStatus 0
wait_journal demo.service "'Application is shutting down...'" \
    "._PID == \"$pid\" and $(jmsg 'hostkit.lifetime[0] Application is shutting down...') and .PRIORITY == \"6\""
wait_journal demo.service "the audit's last line" "._PID == \"$pid\" and (.MESSAGE | test(\"^Audit\\\\[0\\\\] Audit stopped after [0-9]+ jobs$\"))"
assert_no_journal demo.service "a line of the program at PRIORITY 0-4" "._PID == \"$pid\" and (.PRIORITY | tonumber) <= 4"

pass
