# While the host waits for a hung service, a second SIGINT/SIGTERM/SIGQUIT
# forces the shutdown: "Forced shutdown" is logged and the process exits at
# once with 128+signal.
. "$(dirname "$0")/lib.sh" || exit 1

# forced FIRST SECOND CODE
forced() {
    local first=$1 second=$2 code=$3
    step "HangOnStopMs=10000: SIG$first, then SIG$second -> exit $code"
    start_worker "$first-$second" --Worker:HangOnStopMs=10000
    wait_started
    signal "$first"
    wait_for_line "$LOG" "Application is shutting down..."
    signal "$second"
    wait_exit
    assert_rc "$code" "forced by a second signal"
    took=$((EXIT_MS - SIGNAL_MS))
    ((took < 5000)) || fail "exited ${took} ms after the second signal: expected at once"
    assert_order "$LOG" "$L_STARTED" "$L_SHUTTING" \
        "crit: hostkit.lifetime[0] Forced shutdown: second SIG$second received while stopping; exiting with code $code"
    [[ $(grep -c 'Forced shutdown' "$LOG") == 1 ]] || fail "expected one 'Forced shutdown' line"
    assert_no_text "$LOG" "Shutdown timed out"
    assert_empty "$OUT"
}

forced TERM INT 130
forced TERM TERM 143
forced INT INT 130
forced INT QUIT 131

pass
