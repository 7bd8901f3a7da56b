# Socket activation end to end: systemd-socket-activate listens on a TCP port
# and, on the first connection, execs build/bin/sd_probe with LISTEN_PID,
# LISTEN_FDS=1 and LISTEN_FDNAMES=web. The probe's hosted service finds the
# descriptor by name (FD_CLOEXEC set, the variables unset), its background
# service answers "hello" on it and stops the host: exit 0.
. "$(dirname "$0")/lib.sh" || exit 1

command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
PROBE=$HK_BIN/sd_probe
[[ -x $PROBE ]] || fail "no probe binary at $PROBE"

# systemd-socket-activate passes on only TERM, PATH, USER, HOME and what -E
# names: the sanitizer options must be named.
SA_ENV=()
for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS; do
    [[ -n ${!v:-} ]] && SA_ENV+=(-E "$v=${!v}")
done

PORT=''
# shellcheck disable=SC2317 # called through wait_until
listening_or_gone() { has_text "$LOG" "Listening on 127.0.0.1:$PORT as 3." || ! alive "$PID"; }

step "systemd-socket-activate listens on a free port (a few random high ports tried)"
for try in 1 2 3 4 5 6 7 8; do
    PORT=$((20000 + RANDOM % 40000))
    start "activate-$try" systemd-socket-activate -l "127.0.0.1:$PORT" --fdname=web \
        "${SA_ENV[@]}" "$PROBE"
    wait_until "$DEADLINE" "systemd-socket-activate to listen on $PORT or give up" listening_or_gone
    has_text "$LOG" "Listening on 127.0.0.1:$PORT as 3." && break
    wait_exit # the port was taken: it gave up
    PORT=''
done
[[ -n $PORT ]] || fail "no free port after 8 tries"
has_text "$LOG" "Execing" && fail "the probe started before any connection"

step "the first connection starts the probe; it answers hello on the passed socket and exits 0"
exec {conn}<>"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect to 127.0.0.1:$PORT"
reply=''
read -r -t "$DEADLINE" reply <&"$conn" || fail "no line from the probe within ${DEADLINE}s (got '$reply')"
exec {conn}<&-
[[ $reply == hello ]] || fail "expected 'hello' from the probe, got '$reply'"
wait_exit
assert_rc 0 "the probe stops itself after one connection"
assert_order "$LOG" "Listening on 127.0.0.1:$PORT as 3." \
    "info: Probe[0] listening on fd 3 named web" \
    "info: Probe[0] 1 descriptor passed, FD_CLOEXEC set, LISTEN_* unset" \
    "$L_STARTED"
# served once started (the started line and the serving thread may log in either order)
assert_order "$LOG" "info: Probe[0] 1 descriptor passed, FD_CLOEXEC set, LISTEN_* unset" \
    "info: Probe[0] served one connection" "$L_SHUTTING"
assert_no_text "$LOG" "warn:"
assert_no_text "$LOG" "fail:"
assert_empty "$OUT"

pass
