# An invalid configuration value stops the worker before anything starts:
# exit 78, one "Invalid configuration" line per bad value naming the key, the
# value, what is wrong and where it came from; nothing on stdout.
. "$(dirname "$0")/lib.sh" || exit 1

P='crit: hostkit.host[0] Invalid configuration: '

# bad NAME "EXPECTED LINE..." -- CMD...: CMD exits 78 by itself and its stderr
# is exactly the expected lines.
bad() {
    local name=$1 lines=()
    shift
    while [[ $1 != -- ]]; do
        lines+=("$1")
        shift
    done
    shift
    step "$name: $*"
    start "$name" "$@"
    wait_exit
    assert_rc 78 "invalid configuration"
    assert_file_is "$LOG" "${lines[@]}"
    assert_empty "$OUT"
}

bad count-not-int "${P}Worker:Count: \"abc\" is not an integer (from command line)" \
    -- "$WORKER" --Worker:Count=abc
bad count-env "${P}Worker:Count: \"abc\" is not an integer (from environment variable Worker__Count)" \
    -- env Worker__Count=abc "$WORKER"
bad count-range "${P}Worker:Count: \"5000\" is out of range [0, 1000] (from command line)" \
    -- "$WORKER" --Worker:Count=5000
bad count-negative "${P}Worker:Count: \"-1\" is out of range [0, 1000] (from command line)" \
    -- "$WORKER" --Worker:Count -1
bad interval-zero "${P}Worker:IntervalMs: \"0\" is out of range [1, 86400000] (from command line)" \
    -- "$WORKER" /Worker:IntervalMs=0
bad failstart-not-bool "${P}Worker:FailStart: \"maybe\" is not a boolean (true or false) (from command line)" \
    -- "$WORKER" --Worker:FailStart=maybe
bad timeout-not-number "${P}Host:ShutdownTimeoutSeconds: \"x\" is not a number (from command line)" \
    -- "$WORKER" --Host:ShutdownTimeoutSeconds=x
bad timeout-negative "${P}Host:ShutdownTimeoutSeconds: \"-1\" is out of range [0, 1000000000] (from command line)" \
    -- "$WORKER" --Host:ShutdownTimeoutSeconds=-1
bad timeout-nan "${P}Host:ShutdownTimeoutSeconds: \"nan\" is not a number (from command line)" \
    -- "$WORKER" --Host:ShutdownTimeoutSeconds=nan
bad timeout-env "${P}Host:ShutdownTimeoutSeconds: \"soon\" is not a number (from environment variable Host__ShutdownTimeoutSeconds)" \
    -- env Host__ShutdownTimeoutSeconds=soon "$WORKER"
bad behavior "${P}Host:BackgroundServiceExceptionBehavior: \"Sometimes\" is not one of StopHost, Ignore (from command line)" \
    -- "$WORKER" --Host:BackgroundServiceExceptionBehavior=Sometimes
bad suppress-not-bool "${P}Host:SuppressStatusMessages: \"yes\" is not a boolean (true or false) (from command line)" \
    -- "$WORKER" --Host:SuppressStatusMessages=yes
bad log-level "${P}Logging:LogLevel:Default: \"Verbose\" is not one of Trace, Debug, Information, Warning, Error, Critical, None (from command line)" \
    -- "$WORKER" --Logging:LogLevel:Default=Verbose
bad two-at-once \
    "${P}Worker:Count: \"abc\" is not an integer (from command line)" \
    "${P}Host:ShutdownTimeoutSeconds: \"x\" is not a number (from command line)" \
    -- "$WORKER" --Worker:Count=abc --Host:ShutdownTimeoutSeconds=x
bad env-and-cmdline \
    "${P}Worker:IntervalMs: \"often\" is not an integer (from environment variable Worker__IntervalMs)" \
    "${P}Host:BackgroundServiceExceptionBehavior: \"Sometimes\" is not one of StopHost, Ignore (from command line)" \
    -- env Worker__IntervalMs=often "$WORKER" --Host:BackgroundServiceExceptionBehavior=Sometimes

step "the command line overrides a bad environment value"
start worker-ok env Worker__Count=abc "$WORKER" --Worker:Count=2
wait_started
assert_line "$LOG" "$(l_audit_started 2)"
signal TERM
wait_exit
assert_rc 0
assert_no_text "$LOG" "Invalid configuration"
assert_empty "$OUT"

pass
