# tests/systemd/lib.sh - helpers for the tests under a real systemd.
#
# Source it first thing in a tests/systemd/test_sd_*.sh script (CTest runs
# them as root with HK_BIN=<build>/bin, label "systemd"; `make test-systemd`).
# It sources ../e2e/lib.sh (temp dir $T, fail/step/pass, wait_until, ...) and
# common.sh, then gives the script:
#   - ct_boot [NSPAWN ARGS...]: boots its own container (a unique machine name)
#     from the cached tree with systemd-nspawn --volatile=overlay (every write
#     is thrown away) and --private-network, the build directory bound
#     read-only at the same path (so build/bin/* and their RUNPATH work), its
#     own cgroup directory, and polls `systemctl is-system-running` until the
#     boot is done;
#   - an EXIT trap that always shuts the container down (SIGRTMIN+4 = poweroff,
#     SIGKILL at a deadline) and removes its cgroups, whether the test passed, failed or
#     timed out; a timer that ends the script (SIGTERM -> the trap) before
#     CTest's timeout would SIGKILL it; every command inside is time-limited;
#   - ct CMD...: runs CMD inside the container (nsenter, a clean environment);
#   - ct_unit NAME < TEXT: installs a unit in /etc/systemd/system, daemon-reload;
#   - prop UNIT PROPERTY / assert_prop / wait_prop: `systemctl show` values;
#   - journal UNIT: `journalctl -u UNIT -o json` into a file ($J);
#     jcount / assert_journal / wait_journal: entries matching a jq filter;
#   - build_demo / ct_install_demo: build a `hostkit new` project as its README
#     says, boot and install hostkit ($P) and it in the container;
#   - assert_hardened UNIT PID FAMILIES: the `hostkit new` unit's sandbox is
#     in force in the running process.
# Containers left by a run killed outright are removed by the next run.

# shellcheck disable=SC2034
SD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
. "$SD_DIR/../e2e/lib.sh" || exit 1 # changes into $T
. "$SD_DIR/common.sh" || exit 1

HK_BUILD_DIR=$(cd "$HK_BIN/.." && pwd -P)
# The script ends itself this long after it started (keep it below the
# CTest timeout, HK_SYSTEMD_TIMEOUT, so the EXIT trap can clean up).
SD_SCRIPT_DEADLINE=${HK_SYSTEMD_SCRIPT_DEADLINE:-120}
CT_NAME='' CT_NSPAWN='' CT_LEADER='' CT_CONSOLE=''

sd_require
[[ -f $SD_TREE/etc/hostkit-tree ]] || sd_tree_ensure

# ---- cleanup ----------------------------------------------------------------
# ct_down: shut the container down and remove its traces. Idempotent.
ct_down() {
    [[ -n $CT_NSPAWN ]] || return 0
    local deadline next=0
    # SIGRTMIN+4 asks systemd for poweroff.target: works without D-Bus, even
    # while the container is still booting; repeated until nspawn is gone.
    deadline=$(($(now_ms) + 20000))
    while alive "$CT_NSPAWN" && (($(now_ms) < deadline)); do
        if [[ -n $CT_LEADER ]] && (($(now_ms) >= next)); then
            kill -s SIGRTMIN+4 "$CT_LEADER" 2>/dev/null
            next=$(($(now_ms) + 3000))
        fi
        sleep 0.05
    done
    if alive "$CT_NSPAWN"; then
        echo "warning: container $CT_NAME did not power off within 20 s; killing it" >&9
        [[ -n $CT_LEADER ]] && kill -KILL "$CT_LEADER" 2>/dev/null
        kill -KILL "$CT_NSPAWN" 2>/dev/null
    fi
    wait "$CT_NSPAWN" 2>/dev/null
    sd_cgroup_remove "$CT_NAME"
    rm -f "$SD_STATE/$CT_NAME.ct"
    CT_NSPAWN='' CT_LEADER=''
}

_sd_cleanup() {
    ct_down
    _cleanup
}
trap _sd_cleanup EXIT

# The script's own deadline: SIGTERM to this shell, whose trap exits 1 and so
# runs the EXIT trap (commands inside the container are bounded by timeout,
# so the shell gets to the trap in time).
mkfifo "$T/.deadline"
(
    exec 9>&- </dev/null >/dev/null 2>&1
    # one process (no sleep child), so _cleanup's SIGKILL ends it for good
    read -r -t "$SD_SCRIPT_DEADLINE" <>"$T/.deadline"
    echo "FAIL: $TEST_NAME: script deadline (${SD_SCRIPT_DEADLINE}s) passed" >/proc/$$/fd/2
    kill -TERM $$
) &
PIDS+=("$!")

# ---- the container -------------------------------------------------------------
# ct CMD...: CMD inside the container, as root, in a clean environment, at most
# CT_TIMEOUT (30) seconds.
ct() {
    timeout -k 2 "${CT_TIMEOUT:-30}" nsenter -t "$CT_LEADER" -a -- \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        SYSTEMD_PAGER='' SYSTEMD_COLORS=0 "$@" </dev/null
}

_ct_boot_fail() {
    FILES+=("$CT_CONSOLE")
    fail "$@"
}

# ct_boot [NSPAWN ARGS...]: boots the container and waits until it runs.
ct_boot() {
    local root t0 leader='' cgdirs=() st
    t0=$(now_ms)
    sd_reap_stale
    # A machine name is a host name: letters, digits and '-'; unique per test run.
    CT_NAME=hk-${TEST_NAME//_/-}-$$
    CT_NAME=${CT_NAME:0:63}
    for root in $(sd_cgroup_roots); do
        mkdir -p "$root/$SD_CGROUP_PARENT/$CT_NAME" || fail "cannot create a cgroup under $root"
        cgdirs+=("$root/$SD_CGROUP_PARENT/$CT_NAME")
    done
    mkdir -p "$SD_STATE"
    CT_CONSOLE=$T/console.log # dumped only when the boot fails (see _ct_boot_fail)
    # The subshell moves itself into the container's own cgroups, then becomes
    # nspawn, which (with --keep-unit) puts the container below them.
    (
        for root in "${cgdirs[@]}"; do
            echo "$BASHPID" >"$root/cgroup.procs" || exit 1
        done
        exec systemd-nspawn --quiet -D "$SD_TREE" --machine="$CT_NAME" --boot \
            --register=no --keep-unit --volatile=overlay --private-network \
            --bind-ro="$HK_BUILD_DIR:$HK_BUILD_DIR" "$@"
    ) </dev/null >"$CT_CONSOLE" 2>&1 9>&- &
    CT_NSPAWN=$!
    printf 'owner=%s\nnspawn=%s\n' "$$" "$CT_NSPAWN" >"$SD_STATE/$CT_NAME.ct"
    # The leader: nspawn's child running systemd (PID 1 inside).
    local deadline=$(($(now_ms) + 10000))
    while :; do
        for leader in $(pgrep -P "$CT_NSPAWN"); do
            sd_pid_is "$leader" systemd && break 2
        done
        leader=''
        alive "$CT_NSPAWN" || _ct_boot_fail "systemd-nspawn exited while booting $CT_NAME"
        (($(now_ms) < deadline)) || _ct_boot_fail "no systemd inside $CT_NAME after 10 s"
        sleep 0.02
    done
    CT_LEADER=$leader
    printf 'leader=%s\n' "$CT_LEADER" >>"$SD_STATE/$CT_NAME.ct"
    # Poll (without --wait: that fails at once while D-Bus is not up yet).
    deadline=$(($(now_ms) + 60000))
    while :; do
        st=$(CT_TIMEOUT=10 ct systemctl is-system-running 2>&1)
        case $st in
        running | degraded) break ;;
        initializing | starting | "Failed to connect to bus"* | "System has not been booted"*) ;;
        *) _ct_boot_fail "$CT_NAME did not boot: systemctl is-system-running says '$st'" ;;
        esac
        alive "$CT_NSPAWN" || _ct_boot_fail "systemd-nspawn exited while booting $CT_NAME"
        (($(now_ms) < deadline)) || _ct_boot_fail "$CT_NAME still '$st' after 60 s"
        sleep 0.05
    done
    [[ $st == degraded ]] &&
        echo "note: $CT_NAME is degraded: $(ct systemctl --failed --plain --no-legend | tr '\n' ' ')" >&9
    echo "--- container $CT_NAME booted in $(($(now_ms) - t0)) ms (systemd $(ct systemctl --version | awk 'NR == 1 { print $2 }'))"
}

# ct_path PATH: the container's PATH as seen from the host.
ct_path() {
    echo "/proc/$CT_LEADER/root$1"
}

# ct_put SRC DEST [MODE]: copies a host file into the container.
ct_put() {
    install -D -m "${3:-0644}" "$1" "$(ct_path "$2")" || fail "cannot copy $1 to $2 in the container"
}

# ct_unit NAME: installs stdin as /etc/systemd/system/NAME; daemon-reload.
ct_unit() {
    local f=$T/$1
    cat >"$f"
    FILES+=("$f" "$T/journal-$1.txt")
    ct_put "$f" "/etc/systemd/system/$1"
    ct systemctl daemon-reload || fail "systemctl daemon-reload failed after installing $1"
}

# ---- systemctl show ----------------------------------------------------------------
prop() {
    ct systemctl show -p "$2" --value "$1"
}

assert_prop() {
    local v
    v=$(prop "$1" "$2")
    [[ $v == "$3" ]] || fail "$1: $2 is '$v', expected '$3'"
}

_prop_is() { [[ $(prop "$1" "$2") == "$3" ]]; }

# wait_prop UNIT PROPERTY VALUE [TIMEOUT_S]
wait_prop() {
    wait_until "${4:-$DEADLINE}" "$1 $2=$3" _prop_is "$1" "$2" "$3"
}

# status UNIT: `systemctl status` into the test's output, for the record.
status() {
    ct systemctl status --no-pager --lines=0 "$1" | sed 's/^/    /'
}

# ---- the journal ------------------------------------------------------------------
# journal UNIT: the unit's journal as JSON, one entry a line, in $J
# ($T/journal-UNIT.json; a readable copy, journal-UNIT.txt, is dumped on failure).
journal() {
    J=$T/journal-$1.json
    ct journalctl -u "$1" -o json --no-pager >"$J" 2>&1 || : >"$J"
    # The readable form, dumped on failure (in FILES since ct_unit: this may
    # run in a subshell).
    jq -r '"<\(.PRIORITY)> \(._COMM // "?")[\(._PID // "?")]: \(.MESSAGE)"' "$J" >"$T/journal-$1.txt" 2>&1
}

# jcount UNIT FILTER: how many of UNIT's entries match the jq FILTER (a
# boolean over one entry, e.g. '.MESSAGE == "x" and .PRIORITY == "6"').
jcount() {
    journal "$1"
    jq -c "select($2)" "$J" 2>/dev/null | wc -l
}

_journal_has() { (($(jcount "$1" "$2") >= ${3:-1})); }

# wait_journal UNIT DESCRIPTION FILTER [N [TIMEOUT_S]]: until N entries match
# (journald stores lines asynchronously: poll, never assume).
wait_journal() {
    wait_until "${5:-$DEADLINE}" "$2 in the journal of $1" _journal_has "$1" "$3" "${4:-1}"
}

# assert_journal UNIT DESCRIPTION FILTER: at least one entry matches now.
assert_journal() {
    _journal_has "$1" "$3" || fail "no entry in the journal of $1: $2 (filter: $3)"
}

assert_no_journal() {
    local n
    n=$(jcount "$1" "$3")
    ((n == 0)) || fail "$n unexpected entries in the journal of $1: $2: $(jq -c "select($3)" "$J" | head -1)"
}

# jmsg TEXT: a filter for an entry whose MESSAGE is exactly TEXT.
jmsg() {
    printf '.MESSAGE == %s' "$(jq -Rn --arg m "$1" '$m')"
}

# ---- a `hostkit new` project in the container -------------------------------------------
# build_demo: in the project's directory, the build commands of its README
# against the staged hostkit in $P.
build_demo() {
    run_logged build-configure cmake -B build -DCMAKE_PREFIX_PATH="$P"
    run_logged build cmake --build build
    [[ -x build/demo ]] || fail "no build/demo"
}

# ct_install_demo [NSPAWN ARGS...]: boots the container (ct_boot ARGS), copies the staged hostkit
# ($P) to /usr/local, installs the built demo there and its appsettings.json
# in /etc/demo, as the README says.
ct_install_demo() {
    ct_boot "$@"
    mkdir -p "$(ct_path /usr/local)"
    cp -a "$P/." "$(ct_path /usr/local)/" || fail "cannot copy hostkit into the container"
    ct ldconfig || fail "ldconfig failed in the container"
    run_logged install-demo env DESTDIR="$(ct_path /)" cmake --install build --prefix /usr/local
    [[ -x $(ct_path /usr/local/bin/demo) ]] || fail "no /usr/local/bin/demo in the container"
    ct_put appsettings.json /etc/demo/appsettings.json
}

# ---- the sandbox of a `hostkit new` unit ---------------------------------------------
# assert_hardened UNIT PID ADDRESS_FAMILIES: the unit's hardening (DynamicUser,
# ProtectSystem=strict, PrivateTmp, NoNewPrivileges, RestrictAddressFamilies=
# ADDRESS_FAMILIES, a SystemCallFilter, PrivateUsers) is in force in the
# running process PID: a dynamic uid, no privileges or capabilities, seccomp,
# / read-only and /tmp its own in its mount namespace, its own user namespace,
# and /usr/local/bin not writable from inside it.
assert_hardened() {
    local unit=$1 pid=$2 families=$3 pstat uid mi
    assert_prop "$unit" DynamicUser yes
    assert_prop "$unit" ProtectSystem strict
    assert_prop "$unit" PrivateTmp yes
    assert_prop "$unit" NoNewPrivileges yes
    assert_prop "$unit" RestrictAddressFamilies "$families"
    [[ -n $(prop "$unit" SystemCallFilter) ]] || fail "SystemCallFilter is empty"
    pstat=$(cat "$(ct_path "/proc/$pid/status")") || fail "cannot read /proc/$pid/status"
    echo "$pstat" >"$T/proc-status.txt"
    FILES+=("$T/proc-status.txt")
    uid=$(awk '/^Uid:/ { print $2 }' <<<"$pstat")
    ((uid >= 61184 && uid <= 65519)) || fail "runs as uid $uid, not a dynamic user (61184-65519)"
    assert_line "$T/proc-status.txt" "NoNewPrivs:	1"
    assert_line "$T/proc-status.txt" "Seccomp:	2"
    assert_line "$T/proc-status.txt" "CapEff:	0000000000000000"
    assert_line "$T/proc-status.txt" "CapBnd:	0000000000000000"
    # The service's own mount namespace: / (and so /usr, /etc/...) read-only; /tmp its own.
    mi=$(cat "$(ct_path "/proc/$pid/mountinfo")") || fail "cannot read /proc/$pid/mountinfo"
    echo "$mi" >"$T/mountinfo.txt"
    FILES+=("$T/mountinfo.txt")
    awk '$5 == "/" { split($6, o, ","); if (o[1] == "ro") ok = 1 } END { exit !ok }' "$T/mountinfo.txt" ||
        fail "/ is not mounted read-only for the service (ProtectSystem=strict)"
    awk '$5 == "/tmp" { ok = 1 } END { exit !ok }' "$T/mountinfo.txt" || fail "no private /tmp mount (PrivateTmp=yes)"
    [[ $(awk '{ print $1 $2 $3 }' "$(ct_path "/proc/$pid/uid_map")") != 004294967295 ]] ||
        fail "not in its own user namespace (PrivateUsers=yes)"
    # And through the filter and the read-only file system from inside its namespaces.
    if ct nsenter -t "$pid" -m -- touch /usr/local/bin/written-by-test 2>"$T/touch.txt"; then
        fail "/usr/local/bin is writable in the service's mount namespace"
    fi
    FILES+=("$T/touch.txt")
    assert_text "$T/touch.txt" "Read-only file system"
}
