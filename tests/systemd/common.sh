# tests/systemd/common.sh - what tree.sh and lib.sh share: where the cached
# Debian tree lives, how it is built (debootstrap from the mirror apt already
# uses), where running containers are recorded, and how containers left by a
# killed run are found and removed. Plain bash; no test helpers here.
#
# Environment (all optional):
#   HK_SYSTEMD_CACHE   where trees are cached (/var/cache/hostkit/systemd)
#   HK_SYSTEMD_MIRROR  the Debian mirror (default: the one apt uses for bookworm)

# Variables here are used by the scripts that source this file.
# shellcheck disable=SC2034

SD_SUITE=bookworm
# What the container needs beyond minbase: systemd as PID 1, dbus for systemctl,
# procps for ps/pgrep, the shared libraries libhostkit and libhostkit-web link
# (the binaries are built on the host, with the same glibc, and bind-mounted
# in), and curl, the HTTP client for the web scenarios inside the container.
SD_INCLUDE=systemd,systemd-sysv,dbus,procps,libuv1,libjansson4,libmicrohttpd12,curl
# Bump when the customisation in sd_tree_ensure changes: a new key, a new tree.
SD_TREE_REV=1
SD_CACHE=${HK_SYSTEMD_CACHE:-/var/cache/hostkit/systemd}
SD_KEY=$(printf '%s %s %s' "$SD_SUITE" "$SD_INCLUDE" "$SD_TREE_REV" | sha256sum | cut -c1-12)
SD_TREE=$SD_CACHE/$SD_SUITE-$SD_KEY
# One file per running container (owner, nspawn and leader pids, cgroups):
# lets a later run remove what a killed run left behind.
SD_STATE=/run/hostkit-systemd
# Our containers' cgroups go under this name in each cgroup hierarchy.
SD_CGROUP_PARENT=hostkit-systemd

sd_die() {
    echo "FAIL: $*" >&2
    exit 1
}

# sd_require: root and the two tools, or a clear failure (never a skip: a
# run that asked for these tests must not pass without running them).
sd_require() {
    [[ $EUID == 0 ]] || sd_die "the systemd tests need root (systemd-nspawn); run make test-systemd as root"
    command -v systemd-nspawn >/dev/null || sd_die "systemd-nspawn missing: scripts/install-deps installs systemd-container"
    command -v debootstrap >/dev/null || sd_die "debootstrap missing: scripts/install-deps installs it"
    command -v nsenter >/dev/null || sd_die "nsenter missing (util-linux)"
    command -v jq >/dev/null || sd_die "jq missing: scripts/install-deps installs it"
}

# sd_mirror: the Debian mirror apt uses for $SD_SUITE (one-line .list and
# deb822 .sources files), HK_SYSTEMD_MIRROR if set, else deb.debian.org.
sd_mirror() {
    if [[ -n ${HK_SYSTEMD_MIRROR:-} ]]; then
        echo "$HK_SYSTEMD_MIRROR"
        return
    fi
    local f m=''
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        m=$(awk -v s="$SD_SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == s) { print $i; exit } }' "$f")
        [[ -n $m ]] && break
    done
    if [[ -z $m ]]; then
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -r $f ]] || continue
            m=$(awk -v s="$SD_SUITE" '
                function flush() { if (deb && suite && uri != "" && !done) { print uri; done = 1 } deb = suite = 0; uri = "" }
                /^[ \t]*$/ { flush(); next }
                /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                /^URIs:/ { uri = $2 }
                /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) suite = 1 }
                END { flush() }' "$f")
            [[ -n $m ]] && break
        done
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

# sd_tree_ensure: builds $SD_TREE once (under a lock, into a temporary
# directory renamed at the end, so a failed or killed debootstrap leaves no
# half tree behind). Prints what it did on stderr.
sd_tree_ensure() {
    mkdir -p "$SD_CACHE" || sd_die "cannot create $SD_CACHE"
    exec {lockfd}>"$SD_CACHE/.lock"
    flock -w 600 "$lockfd" || sd_die "timed out waiting for the lock on $SD_CACHE"
    if [[ -f $SD_TREE/etc/hostkit-tree ]]; then
        exec {lockfd}>&-
        return 0
    fi
    local mirror tmp t0=$EPOCHSECONDS
    mirror=$(sd_mirror)
    rm -rf "$SD_CACHE"/.tmp-*
    tmp=$(mktemp -d "$SD_CACHE/.tmp-XXXXXX")
    echo "systemd tests: building the $SD_SUITE tree (debootstrap from $mirror) into $SD_TREE" >&2
    if ! debootstrap --variant=minbase --include="$SD_INCLUDE" "$SD_SUITE" "$tmp" "$mirror" \
        >"$tmp.log" 2>&1; then
        tail -20 "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        sd_die "debootstrap failed (log above)"
    fi
    # Boot faster and quieter: no login prompt on the console; nothing in
    # the tree that the tests do not use.
    ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
    ln -sf /dev/null "$tmp/etc/systemd/system/getty@.service"
    ln -sf /dev/null "$tmp/etc/systemd/system/apt-daily.timer"
    ln -sf /dev/null "$tmp/etc/systemd/system/apt-daily-upgrade.timer"
    rm -rf "$tmp/var/cache/apt/archives"/*.deb
    printf 'suite=%s\ninclude=%s\nrev=%s\nmirror=%s\n' "$SD_SUITE" "$SD_INCLUDE" "$SD_TREE_REV" "$mirror" \
        >"$tmp/etc/hostkit-tree"
    rm -rf "$SD_TREE"
    mv "$tmp" "$SD_TREE"
    rm -f "$tmp.log"
    # Trees of an older package list or revision are not used any more.
    local old
    for old in "$SD_CACHE/$SD_SUITE"-*; do
        [[ $old == "$SD_TREE" || ! -d $old ]] || rm -rf "$old"
    done
    echo "systemd tests: tree ready in $((EPOCHSECONDS - t0)) s ($(du -sh "$SD_TREE" | cut -f1))" >&2
    exec {lockfd}>&-
}

# sd_cgroup_roots: the cgroup hierarchies a container must get its own
# directory in (cgroup2 alone, or the hybrid layout's unified + name=systemd).
sd_cgroup_roots() {
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        echo /sys/fs/cgroup
        return
    fi
    local d
    for d in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
        [[ -d $d ]] && echo "$d"
    done
}

# sd_cgroup_remove NAME: removes the container's cgroup directories (deepest
# first), killing whatever is still inside them.
sd_cgroup_remove() {
    local root d p i
    for root in $(sd_cgroup_roots); do
        d=$root/$SD_CGROUP_PARENT/$1
        [[ -d $d ]] || continue
        for ((i = 0; i < 50; i++)); do
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
            [[ -d $d ]] || break
            find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
                kill -KILL "$p" 2>/dev/null
            done
            sleep 0.1
        done
        [[ -d $d ]] && echo "warning: could not remove cgroup $d" >&2
    done
    return 0
}

# sd_pid_is PID COMM: true when PID is alive (not a zombie) and its command
# name is COMM.
sd_pid_is() {
    local c st
    c=$(cat "/proc/$1/comm" 2>/dev/null) && [[ $c == "$2" ]] || return 1
    read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# sd_reap_stale: containers recorded in $SD_STATE whose owning test is gone
# (killed by a CTest timeout, say) are killed, and their cgroups removed.
sd_reap_stale() {
    local f owner nspawn leader name
    [[ -d $SD_STATE ]] || return 0
    for f in "$SD_STATE"/*.ct; do
        [[ -e $f ]] || continue
        owner='' nspawn='' leader=''
        # shellcheck disable=SC1090
        . "$f"
        name=$(basename "$f" .ct)
        [[ -n $owner ]] && sd_pid_is "$owner" bash && continue
        echo "systemd tests: removing container $name left by an earlier run" >&2
        # Only our processes: the leader must be systemd and a child of our nspawn.
        if [[ -n $leader ]] && sd_pid_is "$leader" systemd &&
            [[ $(awk '{ print $4 }' "/proc/$leader/stat" 2>/dev/null) == "$nspawn" ]]; then
            kill -KILL "$leader" 2>/dev/null
        fi
        if [[ -n $nspawn ]] && sd_pid_is "$nspawn" systemd-nspawn &&
            tr '\0' ' ' <"/proc/$nspawn/cmdline" | grep -q -- "--machine=$name "; then
            kill -KILL "$nspawn" 2>/dev/null
        fi
        sd_cgroup_remove "$name"
        rm -f "$f"
    done
}
