# appsettings.json and appsettings.{Environment}.json in the content root (the
# test's working directory) configure the worker; environment variables and
# the command line win over them. A malformed file exits 78 naming
# file:line:col; --help, --version and --print-config print to stdout and
# exit; a file change or SIGHUP reloads the running worker.
. "$(dirname "$0")/lib.sh" || exit 1

P='crit: hostkit.host[0] Invalid configuration: '
L_FILE_RELOADED='info: hostkit.host[0] Configuration reloaded (a configuration file changed): '
L_SECTION_CHANGED='info: Audit[0] Section Worker changed; workers pick it up on their next run'

# json FILE TEXT: writes FILE in $T atomically (write, then rename over it).
json() {
    if ! printf '%s\n' "$2" >"$T/$1.tmp" || ! mv -f "$T/$1.tmp" "$T/$1"; then
        fail "cannot write $1"
    fi
}

# config_line NAME EXPECTED_LINE [ENV=VALUE...] -- [ARGS...]: worker --print-config
# exits 0, prints EXPECTED_LINE and nothing on stderr.
config_line() {
    local name=$1 line=$2 envs=()
    shift 2
    while [[ $1 != -- ]]; do
        envs+=("$1")
        shift
    done
    shift
    step "$name: ${envs[*]:+${envs[*]} }worker --print-config${*:+ $*}"
    start "$name-print" env "${envs[@]}" "$WORKER" --print-config "$@"
    wait_exit
    assert_rc 0 "--print-config"
    assert_line "$OUT" "$line"
    assert_empty "$LOG"
}

# live NAME WORKERS [ENV=VALUE...] -- [ARGS...]: a running worker with that
# many workers, stopped with SIGTERM (exit 0).
live() {
    local name=$1 count=$2 envs=()
    shift 2
    while [[ $1 != -- ]]; do
        envs+=("$1")
        shift
    done
    shift
    step "$name: ${envs[*]:+${envs[*]} }worker${*:+ $*}"
    start "$name" env "${envs[@]}" "$WORKER" "$@"
    wait_started
    assert_line "$LOG" "$(l_audit_started "$count")"
    signal TERM
    wait_exit
    assert_rc 0
    assert_empty "$OUT"
}

# ---- values from the files ----------------------------------------------------------

json appsettings.json '{"Worker": {"Count": 2, "IntervalMs": 20}}'

step "appsettings.json: 2 workers, every 20 ms"
start_worker from-file
wait_started
assert_line "$LOG" "$(l_audit_started 2)"
# 20 runs of worker 1 before the deadline: only possible at 20 ms (the default is 1 s).
wait_for_count_after "$LOG" 0 "] Worker 1 running at " 20
wait_for_count_after "$LOG" 0 "] Worker 2 running at " 20
signal TERM
wait_exit
assert_rc 0
assert_no_text "$LOG" "] Worker 3 running"
assert_no_text "$LOG" "Unknown key"
assert_empty "$OUT"

config_line file-count "Worker:Count=2 (appsettings.json)" --
config_line file-interval "Worker:IntervalMs=20 (appsettings.json)" --

# ---- precedence ------------------------------------------------------------------------

live cmdline-beats-file 1 -- --Worker:Count=1
config_line cmdline-beats-file "Worker:Count=4 (command line)" -- --Worker:Count=4
live env-beats-file 3 Worker__Count=3 --
config_line env-beats-file "Worker:Count=3 (environment variable Worker__Count)" Worker__Count=3 --
config_line cmdline-beats-env "Worker:Count=4 (command line)" Worker__Count=3 -- --Worker:Count 4
config_line file-beats-hostkit-env "Worker:Count=2 (appsettings.json)" HOSTKIT_Worker__Count=7 --

json appsettings.Development.json '{"Worker": {"Count": 5}}'
live development-file 5 -- --environment Development
config_line development-file "Worker:Count=5 (appsettings.Development.json)" -- --environment Development
config_line development-keeps-base "Worker:IntervalMs=20 (appsettings.json)" -- --environment Development
config_line development-from-env "Worker:Count=5 (appsettings.Development.json)" HOSTKIT_ENVIRONMENT=Development --
config_line production-ignores-it "Worker:Count=2 (appsettings.json)" --
config_line env-beats-development "Worker:Count=1 (environment variable Worker__Count)" Worker__Count=1 -- --environment Development
rm -f "$T/appsettings.Development.json"

# ---- malformed files -----------------------------------------------------------------------

step "malformed appsettings.json: exit 78 naming file:line:col"
printf '{\n  "Worker": {\n    "Count": 2\n    "IntervalMs": 20\n  }\n}\n' >"$T/appsettings.json"
run_worker malformed
assert_rc 78 "invalid configuration"
assert_file_is "$LOG" "${P}appsettings.json:4:16: '}' expected near '\"IntervalMs\"'"
assert_empty "$OUT"

step "malformed appsettings.json: --print-config exits 78 too"
run_worker malformed-print --print-config
assert_rc 78
assert_line "$LOG" "${P}appsettings.json:4:16: '}' expected near '\"IntervalMs\"'"

step "malformed appsettings.Staging.json only matters in Staging"
json appsettings.json '{"Worker": {"Count": 2, "IntervalMs": 20}}'
printf '{"Worker": {"Count": 2,}}' >"$T/appsettings.Staging.json"
run_worker malformed-env-file --environment Staging
assert_rc 78
assert_file_is "$LOG" "${P}appsettings.Staging.json:1:24: string or '}' expected near '}'"
assert_empty "$OUT"
live production-ignores-staging-file 2 --
rm -f "$T/appsettings.Staging.json"

step "a bad value in appsettings.json names its source"
json appsettings.json '{"Worker": {"Count": 2, "IntervalMs": "soon"}}'
run_worker bad-value
assert_rc 78
assert_file_is "$LOG" "${P}Worker:IntervalMs: \"soon\" is not an integer (from appsettings.json)"
assert_empty "$OUT"

# ---- reserved switches -----------------------------------------------------------------------

json appsettings.json '{"Worker": {"Count": 2, "IntervalMs": 20}, "Db": {"Host": "db1", "Password": "hunter2"}}'

for sw in --help -h; do
    step "worker $sw: usage with the Worker and host options on stdout, exit 0"
    run_worker "help$sw" "$sw"
    assert_rc 0 "$sw"
    assert_empty "$LOG"
    assert_line "$OUT" "Usage: worker [--Key=Value | --Key Value | /Key=Value | Key=Value]..."
    assert_line "$OUT" "Worker options:"
    assert_regex "$OUT" '^  --Worker:Count <int> +Number of background workers \(default: 3; 0\.\.1000\)$'
    assert_regex "$OUT" '^  --Worker:IntervalMs <int> +Milliseconds between two runs of a worker'
    assert_regex "$OUT" '^  --Worker:FailAfterMs <int> +worker-1 fails after this many ms'
    assert_regex "$OUT" '^  --Worker:HangOnStopMs <int> +worker-1 ignores cancellation'
    assert_regex "$OUT" '^  --Worker:FailStart <bool> +the audit service fails to start \(default: false\)$'
    assert_line "$OUT" "Host options:"
    assert_regex "$OUT" '^  --environment <name> '
    assert_regex "$OUT" '^  --contentRoot <path> '
    assert_regex "$OUT" '^  --Host:ShutdownTimeoutSeconds <number> '
    assert_regex "$OUT" '^  --Host:ConfigReloadDebounceMs <int> '
    assert_regex "$OUT" '^  --print-config '
done

step "--help wins over a malformed appsettings.json and a bad value"
printf '{"Worker": ' >"$T/appsettings.json"
run_worker help-despite-errors --help --Worker:Count=abc
assert_rc 0
assert_empty "$LOG"
assert_line "$OUT" "Worker options:"

step "--version"
run_worker version --version
assert_rc 0
assert_file_is "$OUT" "worker 0.1.0 (hostkit 0.1.0)"
assert_empty "$LOG"

json appsettings.json '{"Worker": {"Count": 2, "IntervalMs": 20}, "Db": {"Host": "db1", "Password": "hunter2"}}'

step "--print-config: every key with its source, secrets masked"
start print-config env Api__Token=tok123 "$WORKER" --print-config --Cache:ConnectionString=cs123 --Worker:IntervalMs=30
wait_exit
assert_rc 0
assert_empty "$LOG"
assert_line "$OUT" "Worker:Count=2 (appsettings.json)"
assert_line "$OUT" "Worker:IntervalMs=30 (command line)"
assert_line "$OUT" "Db:Host=db1 (appsettings.json)"
assert_line "$OUT" "Db:Password=*** (appsettings.json)"
assert_line "$OUT" "Api:Token=*** (environment variable Api__Token)"
assert_line "$OUT" "Cache:ConnectionString=*** (command line)"
for secret in hunter2 tok123 cs123; do
    assert_no_text "$OUT" "$secret"
done
# Sorted by key, case-insensitively (these keys at least; the rest is the environment).
unsorted=$(grep -E '^(Api|Cache|Db|Worker):' "$OUT" | cut -d= -f1 |
    LC_ALL=C awk 'tolower(prev) > tolower($0) { print prev " > " $0 } { prev = $0 }')
[[ -z $unsorted ]] || fail "--print-config is not sorted: $unsorted"
assert_no_text "$OUT" "Application started"

step "--print-config with a bad value: exit 78"
run_worker print-config-bad --print-config --Worker:Count=abc
assert_rc 78 "--print-config with an invalid configuration"
assert_line "$LOG" "${P}Worker:Count: \"abc\" is not an integer (from command line)"

# ---- unknown keys ------------------------------------------------------------------------------

json appsettings.json '{"Worker": {"Count": 2, "IntervalMs": 1000, "Intervall": 5}}'
step "unknown keys in the Worker section are warned about, with a suggestion"
start_worker unknown --Worker:Cuont=3
wait_started
assert_line "$LOG" "warn: hostkit.host[0] Unknown key Worker:Cuont (from command line); did you mean Worker:Count?"
assert_line "$LOG" "warn: hostkit.host[0] Unknown key Worker:Intervall (from appsettings.json); did you mean Worker:IntervalMs?"
assert_line "$LOG" "$(l_audit_started 2)"
signal TERM
wait_exit
assert_rc 0
assert_empty "$OUT"

# ---- live reload ----------------------------------------------------------------------------------

json appsettings.json '{"Worker": {"Count": 1, "IntervalMs": 1000}}'
step "live reload: a rewritten appsettings.json and SIGHUP"
start_worker reload --Logging:LogLevel:hostkit=Debug
wait_started
wait_for_line "$LOG" "] Worker 1 running at "
# Rewritten in place, as an editor or `echo > file` does.
printf '{"Worker": {"Count": 1, "IntervalMs": 20}}\n' >"$T/appsettings.json"
wait_for_line "$LOG" "${L_FILE_RELOADED}1 key changed"
wait_for_line "$LOG" "$L_SECTION_CHANGED"
n=$(text_line_no "$LOG" "$L_FILE_RELOADED")
# 20 more runs before the deadline: only possible at the new 20 ms interval.
wait_for_count_after "$LOG" "$n" "] Worker 1 running at " 20
[[ $(grep -Fc -- "$L_SECTION_CHANGED" "$LOG") == 1 ]] || fail "'Section Worker changed' logged more than once"

signal HUP
wait_for_line "$LOG" "dbug: hostkit.lifetime[0] Received SIGHUP; reloading the configuration"
wait_for_line "$LOG" "dbug: hostkit.host[0] Configuration reloaded (on request): nothing changed"

# A malformed rewrite is refused; the worker keeps running on the old values.
json appsettings.json '{"Worker": {"Count": 1, "IntervalMs": 20,}}'
wait_for_line "$LOG" "fail: hostkit.host[0] Keeping the previous configuration"
assert_line "$LOG" "fail: hostkit.host[0] Configuration reload failed: appsettings.json:1:42: string or '}' expected near '}'"
# A value options validation refuses: the same.
json appsettings.json '{"Worker": {"Count": 1, "IntervalMs": 0}}'
wait_for_count_after "$LOG" 0 "Keeping the previous configuration" 2
assert_line "$LOG" "fail: hostkit.host[0] Configuration reload failed: Worker:IntervalMs: \"0\" is out of range [1, 86400000] (from appsettings.json)"
n=$(wc -l <"$LOG")
wait_for_count_after "$LOG" "$n" "] Worker 1 running at " 3
alive "$PID" || fail "the worker exited after a refused reload"

signal TERM
wait_exit
assert_rc 0
[[ $(grep -Fc -- "$L_SECTION_CHANGED" "$LOG") == 1 ]] || fail "a refused reload notified the Worker section"
assert_line "$LOG" "$L_AUDIT_STOPPED"
assert_empty "$OUT"

pass
