# The hosting environment and content root come from HOSTKIT_ENVIRONMENT /
# HOSTKIT_CONTENTROOT and from --environment / --contentRoot; the command line
# wins. A relative content root is resolved against the working directory.
. "$(dirname "$0")/lib.sh" || exit 1

# lifetime NAME ENVIRONMENT CONTENT_ROOT CMD...: runs CMD (a worker), checks the
# two lifetime lines, stops it with SIGTERM and expects exit 0.
lifetime() {
    local name=$1 env=$2 root=$3
    shift 3
    step "$name: environment '$env', content root '$root'"
    start "$name" "$@"
    wait_started
    assert_order "$LOG" "$L_STARTED" "$(l_env "$env")" "$(l_root "$root")"
    signal TERM
    wait_exit
    assert_rc 0
    assert_order "$LOG" "$L_SHUTTING" "$L_AUDIT_STOPPED"
    [[ $(grep -c 'Hosting environment:' "$LOG") == 1 ]] || fail "more than one 'Hosting environment' line"
    assert_empty "$OUT"
}

lifetime default Production "$T" "$WORKER"
lifetime env-staging Staging "$T" env HOSTKIT_ENVIRONMENT=Staging "$WORKER"
lifetime cmdline-wins Development "$T" env HOSTKIT_ENVIRONMENT=Staging "$WORKER" --environment Development
lifetime env-root Production /tmp env HOSTKIT_CONTENTROOT=/tmp "$WORKER"
mkdir -p "$T/app/data"
lifetime cmdline-root Production "$T/app" env HOSTKIT_CONTENTROOT=/tmp "$WORKER" --contentRoot "$T/app"
lifetime relative-root Production "$T/app/data" "$WORKER" --contentRoot app/data
lifetime dot-root Production "$T" "$WORKER" --contentRoot .
lifetime both Testing "$T/app" env HOSTKIT_ENVIRONMENT=Staging HOSTKIT_CONTENTROOT=/tmp \
    "$WORKER" --environment=Testing --contentRoot="$T/app"

step "content root /: file paths without a doubled slash"
start_worker slash-root --contentRoot / --Logging:LogLevel:hostkit=Debug
wait_started
signal TERM
wait_exit
assert_rc 0
assert_line "$LOG" "$(l_root /)"
assert_line "$LOG" "$(l_dbg Not watching /appsettings.json: it does not exist)"
assert_no_text "$LOG" "//appsettings"

pass
