# `hostkit new` (build/bin/hostkit): --help and --version; every refused
# command line exits 2 with one line on stderr naming the problem and
# pointing to --help, and writes nothing; an existing non-empty target is
# refused; I/O failures exit 1 and leave nothing behind, also when they happen
# halfway through the files; a worker and a web project have exactly the
# expected files and modes; their units (the worker's .service, the web's
# .socket and .service) pass `systemd-analyze verify`, and each .service
# `systemd-analyze security --offline=yes` (exposure <= 2.0, "OK" or better;
# the web service rated as well as the worker's); their main.c compile
# warning-free against the build tree's headers.
. "$(dirname "$0")/lib.sh" || exit 1

CLI=$HK_BIN/hostkit
[[ -x $CLI ]] || fail "no hostkit binary at $CLI"
VERSION=$(sed -n 's/^project(hostkit VERSION \([0-9.]*\).*/\1/p' "$HK_SOURCE_DIR/CMakeLists.txt")
[[ -n $VERSION ]] || fail "cannot read the project version from CMakeLists.txt"
umask 022

# The work directory: every hostkit run below happens in it, and after a
# refused or failed run it must still be empty.
W=$T/w
mkdir "$W"
cd "$W" || fail "cd $W"
N=0

# cli ARGS...: runs hostkit ARGS in the current directory; sets RC, OUT, LOG.
cli() {
    N=$((N + 1))
    start "cli$N" "$CLI" "$@"
    wait_exit
}

# assert_nothing_written [DIR]: DIR (default $W) holds no entry at all.
assert_nothing_written() {
    local d=${1:-$W} left
    left=$(ls -A "$d")
    [[ -z $left ]] || fail "$(rel "$d") should be empty but holds: $left"
}

# refused TEXT ARGS...: hostkit ARGS exits 2, prints nothing on stdout and
# exactly one line on stderr that contains TEXT and points to --help; nothing
# is written.
refused() {
    local text=$1
    shift
    cli "$@"
    assert_rc 2 "hostkit $*"
    assert_empty "$OUT"
    [[ $(wc -l <"$LOG") == 1 ]] || fail "hostkit $*: expected one line on stderr, got $(wc -l <"$LOG")"
    assert_text "$LOG" "$text"
    has_regex "$LOG" "^hostkit: .*\(see 'hostkit( new)? --help'\)\$" ||
        fail "hostkit $*: the message does not start with 'hostkit: ' and point to --help: $(cat "$LOG")"
    assert_nothing_written
}

# ---- help and version ----------------------------------------------------------
step "--help, -h, --version, new --help"
cli --version
assert_rc 0
assert_file_is "$OUT" "hostkit $VERSION"
assert_empty "$LOG"

cli --help
assert_rc 0
assert_empty "$LOG"
assert_line "$OUT" "Usage: hostkit COMMAND [ARGS...]"
assert_text "$OUT" "new TEMPLATE NAME [--output DIR]"
assert_text "$OUT" "Exit codes: 0 success, 1 I/O failure, 2 usage error."
cp "$OUT" "$T/help.txt"
cli -h
assert_rc 0
cmp -s "$OUT" "$T/help.txt" || fail "-h and --help print different texts"

cli new --help
assert_rc 0
assert_empty "$LOG"
assert_line "$OUT" "Usage: hostkit new TEMPLATE NAME [--output DIR]"
assert_text "$OUT" "  worker  a background worker"
assert_text "$OUT" "  web     a web application on the web host (libhostkit-web)"
assert_text "$OUT" "  -o, --output DIR"
cp "$OUT" "$T/new-help.txt"
# --help wins wherever it is, even next to a bad name: it prints and writes nothing.
for args in "new worker --help" "new worker demo -h" "new --help worker 'bad name'" "new web x --help"; do
    eval "cli $args"
    assert_rc 0 "hostkit $args"
    cmp -s "$OUT" "$T/new-help.txt" || fail "hostkit $args does not print the new --help text"
    assert_nothing_written
done

# ---- usage errors ----------------------------------------------------------------
step "usage errors exit 2 with one line and write nothing"
refused "hostkit: missing command (see 'hostkit --help')"
refused "hostkit: unknown command 'create' (see 'hostkit --help')" create worker demo
refused "hostkit: unknown option '--frob' (see 'hostkit --help')" --frob
refused "hostkit: missing template and name: hostkit new worker NAME" new
refused "hostkit: unknown template 'daemon' (available: web, worker)" new daemon demo
refused "hostkit: unknown template 'work' (available: web, worker)" new work demo
refused "hostkit: unknown template 'src' (available: web, worker)" new src demo
refused "hostkit: missing project name: hostkit new worker NAME" new worker
refused "hostkit: unexpected argument 'extra'" new worker demo extra
refused "hostkit: unknown option '--force'" new worker demo --force
refused "hostkit: option '--output' needs a directory" new worker demo --output
refused "hostkit: empty output directory" new worker demo --output=
refused "hostkit: missing project name: hostkit new web NAME (see 'hostkit new --help')" new web
refused "hostkit: invalid project name 'my app': ' ' is not allowed" new web 'my app'

step "bad names exit 2 with the reason and write nothing"
LONG=a$(printf 'b%.0s' {1..64}) # 65 characters
refused "hostkit: invalid project name '': it is empty" new worker ''
refused "hostkit: invalid project name 'my app': ' ' is not allowed (use letters, digits, '_' and '-')" new worker 'my app'
refused "hostkit: invalid project name 'a/b': '/' is not allowed" new worker a/b
refused "hostkit: invalid project name '../evil': it must start with a letter" new worker ../evil
refused "hostkit: invalid project name 'my.app': '.' is not allowed" new worker my.app
refused "hostkit: invalid project name '1st': it must start with a letter (A-Z or a-z)" new worker 1st
refused "hostkit: invalid project name '_x': it must start with a letter" new worker _x
refused "hostkit: invalid project name '-x': it must start with a letter" new worker -- -x
refused "hostkit: invalid project name 'na\\xc3\\xafve': '\\xc3' is not allowed" new worker $'na\xc3\xafve'
refused "hostkit: invalid project name 'a\\x0ab': '\\x0a' is not allowed" new worker $'a\nb'
refused "hostkit: invalid project name '$LONG': it is 65 characters long (at most 64)" new worker "$LONG"

# ---- the target is taken ---------------------------------------------------------------
step "an existing non-empty directory or a file is refused, untouched"
mkdir "$W/demo"
echo keep >"$W/demo/keep"
cli new worker demo
assert_rc 2
assert_file_is "$LOG" "hostkit: demo exists and is not empty (see 'hostkit new --help')"
assert_empty "$OUT"
[[ $(ls -A "$W") == demo && $(ls -A "$W/demo") == keep && $(cat "$W/demo/keep") == keep ]] ||
    fail "a refused run changed $W: $(ls -AR "$W")"
rm -r "$W/demo"
echo file >"$W/demo"
cli new worker demo --output .
assert_rc 2
assert_file_is "$LOG" "hostkit: ./demo exists and is not a directory (see 'hostkit new --help')"
[[ $(ls -A "$W") == demo && $(cat "$W/demo") == file ]] || fail "a refused run changed $W"
rm "$W/demo"

# ---- I/O failures -------------------------------------------------------------------------
step "I/O failures exit 1 and leave nothing behind"
cli new worker demo --output "$W/missing"
assert_rc 1
assert_file_is "$LOG" "hostkit: cannot use output directory $W/missing: No such file or directory"
assert_empty "$OUT"
assert_nothing_written
echo file >"$T/afile"
cli new worker demo -o "$T/afile"
assert_rc 1
assert_file_is "$LOG" "hostkit: cannot use output directory $T/afile: Not a directory"
# A failure halfway: files larger than 4 KiB cannot be written (RLIMIT_FSIZE;
# SIGXFSZ ignored, so write(2) fails with EFBIG), and src/main.c is larger.
# Some files are complete in the temporary directory by then, one is partial.
(($(wc -c <"$HK_SOURCE_DIR/templates/worker/src/main.c") > 4096)) ||
    fail "templates/worker/src/main.c is no longer larger than 4 KiB: adjust this test"
mkdir "$T/full"
start "cli-efbig" bash -c 'ulimit -f 4 && trap "" XFSZ && exec "$@"' - "$CLI" new worker demo -o "$T/full"
wait_exit
assert_rc 1
assert_file_is "$LOG" "hostkit: cannot write $T/full/demo/src/main.c: File too large; nothing was created"
assert_nothing_written "$T/full"
if ((EUID != 0)); then # root writes anywhere: this case only means something for others
    mkdir "$T/ro" && chmod 555 "$T/ro"
    cli new worker demo -o "$T/ro"
    assert_rc 1
    assert_text "$LOG" "hostkit: cannot create a directory in $T/ro: Permission denied"
    assert_nothing_written "$T/ro"
fi

# ---- a project ----------------------------------------------------------------------------
step "hostkit new worker demo: the files, their modes, no placeholder left"
cli new worker demo
assert_rc 0
assert_empty "$LOG"
assert_line "$OUT" "Created the worker project demo in demo/:"
assert_line "$OUT" "  demo/demo.service"
(cd "$W" && find . -mindepth 1 -printf '%y %m %p\n' | LC_ALL=C sort -k3) >"$T/files.txt"
assert_file_is "$T/files.txt" \
    "d 755 ./demo" \
    "f 644 ./demo/CMakeLists.txt" \
    "f 644 ./demo/README.md" \
    "f 644 ./demo/appsettings.Development.json" \
    "f 644 ./demo/appsettings.json" \
    "f 644 ./demo/demo.service" \
    "d 755 ./demo/src" \
    "f 644 ./demo/src/main.c"
! grep -rn '{{' "$W/demo" >"$T/placeholders.txt" || fail "placeholders left: $(cat "$T/placeholders.txt")"
assert_text "$W/demo/CMakeLists.txt" "project(demo VERSION"
assert_text "$W/demo/src/main.c" '"Hello from demo"'
assert_line "$W/demo/demo.service" "ExecStart=/usr/local/bin/demo"
assert_line "$W/demo/demo.service" "Environment=HOSTKIT_CONTENTROOT=/etc/demo"

step "hostkit new web site: the files, their modes, no placeholder left"
cli new web site
assert_rc 0
assert_empty "$LOG"
assert_line "$OUT" "Created the web project site in site/:"
assert_line "$OUT" "  site/site.socket"
(cd "$W" && find site -printf '%y %m %p\n' | LC_ALL=C sort -k3) >"$T/files-web.txt"
assert_file_is "$T/files-web.txt" \
    "d 755 site" \
    "f 644 site/CMakeLists.txt" \
    "f 644 site/README.md" \
    "f 644 site/appsettings.Development.json" \
    "f 644 site/appsettings.json" \
    "f 644 site/site.service" \
    "f 644 site/site.socket" \
    "d 755 site/src" \
    "f 644 site/src/main.c"
! grep -rn '{{' "$W/site" >"$T/placeholders.txt" || fail "placeholders left: $(cat "$T/placeholders.txt")"
assert_text "$W/site/CMakeLists.txt" "project(site VERSION"
assert_text "$W/site/CMakeLists.txt" "hostkit-web>=$VERSION"
assert_text "$W/site/src/main.c" "Created by \`hostkit new web site\`"
assert_line "$W/site/site.service" "ExecStart=/usr/local/bin/site"
assert_line "$W/site/site.service" "Environment=HOSTKIT_CONTENTROOT=/etc/site"
assert_line "$W/site/site.service" "Type=notify"
assert_line "$W/site/site.service" "After=site.socket"
assert_line "$W/site/site.service" "Also=site.socket"
# The pair: the socket's descriptor name is the one the service serves.
assert_line "$W/site/site.socket" "ListenStream=8080"
assert_line "$W/site/site.socket" "FileDescriptorName=web"
assert_line "$W/site/site.service" "Environment=Web__ListenFdName=web"
assert_text "$W/site/appsettings.json" '"Urls": "http://localhost:8080"'
rm -r "$W/site"

step "--output DIR, --output=DIR and an empty target directory"
mkdir -p "$T/out/two" "$T/out/three"
cli new worker one --output "$T/out/"
assert_rc 0
assert_line "$OUT" "Created the worker project one in $T/out/one/:"
cli new worker two --output="$T/out"
assert_rc 0
cli new worker -o "$T/out" three
assert_rc 0
for p in one two three; do
    [[ -f $T/out/$p/$p.service && -f $T/out/$p/src/main.c ]] || fail "$T/out/$p is incomplete"
done
[[ $(ls -A "$T/out") == $'one\nthree\ntwo' ]] || fail "unexpected entries in out/: $(ls -A "$T/out")"

step "the configuration files parse (the example worker loads them, strictly)"
for env in Production Development; do
    start "print-config-$env" "$WORKER" --contentRoot "$W/demo" --environment "$env" --print-config
    wait_exit
    assert_rc 0 "loading demo/appsettings*.json with --environment $env"
done
assert_line "$OUT" "Worker:Interval=1s (appsettings.Development.json)"

# ---- the systemd unit -----------------------------------------------------------------------
command -v systemd-analyze >/dev/null || fail "systemd-analyze is not installed (Debian package systemd)"
# check_unit KIND NAME: an offline root holding the units of `hostkit new
# KIND NAME` (NAME.service, and NAME.socket for web) with what verify looks
# for (the ExecStart binary, /bin/kill for ExecReload, stub targets for the
# default dependencies); verify must print nothing (it exits 0 even on
# unknown keys) and security must rate the service's exposure 2.0 or lower,
# "OK" or better. Sets EXPOSURE and LABEL.
check_unit() {
    local kind=$1 name=$2 root=$T/root-$2 line units=("$2.service")
    mkdir -p "$root/etc/systemd/system" "$root/usr/local/bin" "$root/bin" "$root/usr/lib/systemd/system"
    cli new "$kind" "$name" -o "$T"
    assert_rc 0 "hostkit new $kind $name"
    [[ $kind == web ]] && units=("$name.socket" "$name.service")
    for u in "${units[@]}"; do
        cp "$T/$name/$u" "$root/etc/systemd/system/"
    done
    printf '#!/bin/sh\n' >"$root/usr/local/bin/$name"
    printf '#!/bin/sh\n' >"$root/bin/kill"
    chmod 755 "$root/usr/local/bin/$name" "$root/bin/kill"
    for t in sysinit.target basic.target shutdown.target sockets.target; do
        printf '[Unit]\nDescription=stub\n' >"$root/usr/lib/systemd/system/$t"
    done
    FILES+=("$T/verify-$name.txt" "$T/security-$name.txt")
    systemd-analyze verify --root="$root" "${units[@]}" >"$T/verify-$name.txt" 2>&1 ||
        fail "systemd-analyze verify ${units[*]} failed"
    assert_empty "$T/verify-$name.txt"
    systemd-analyze security --offline=yes --root="$root" "$name.service" >"$T/security-$name.txt" 2>&1 ||
        fail "systemd-analyze security --offline=yes $name.service failed"
    line=$(grep -F "Overall exposure level for $name.service:" "$T/security-$name.txt") ||
        fail "no 'Overall exposure level' line for $name.service"
    read -r EXPOSURE LABEL _ <<<"${line#*"$name.service: "}"
    echo "$kind $name.service: exposure $EXPOSURE $LABEL"
    [[ $EXPOSURE =~ ^[0-9]+\.[0-9]$ ]] || fail "cannot read the exposure in: $line"
    ((10#${EXPOSURE/./} <= 20)) || fail "$name.service: exposure $EXPOSURE > 2.0"
    [[ $LABEL == OK || $LABEL == SAFE || $LABEL == PERFECT ]] || fail "$name.service: rated $LABEL, not OK or better"
}

step "the worker unit passes systemd-analyze verify and security (exposure <= 2.0)"
check_unit worker demo
WORKER_LABEL=$LABEL
check_unit worker "Z$(printf 'x%.0s' {1..60})_-9" # 64 characters, every kind allowed

step "the web unit pair passes verify; the service is rated as well as the worker's"
check_unit web site
[[ $LABEL == "$WORKER_LABEL" ]] || fail "site.service is rated $LABEL, the worker's unit $WORKER_LABEL"
# Above the worker's only by what listening without the socket needs:
# AF_INET/AF_INET6 and an IP allow list of localhost instead of none.
((10#${EXPOSURE/./} <= 10)) || fail "site.service: exposure $EXPOSURE > 1.0"
check_unit web "W$(printf 'y%.0s' {1..60})-_8"

# ---- the generated C ------------------------------------------------------------------------
step "src/main.c of both templates compiles warning-free against the build tree's headers"
CC=${CC:-cc}
FILES+=("$T/cc.txt")
"$CC" -std=c17 -pedantic -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
    -Werror -I"$HK_SOURCE_DIR/include" -c "$W/demo/src/main.c" -o "$T/main.o" >"$T/cc.txt" 2>&1 ||
    fail "demo/src/main.c does not compile"
assert_empty "$T/cc.txt"
FILES+=("$T/cc-web.txt")
"$CC" -std=c17 -pedantic -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
    -Werror -I"$HK_SOURCE_DIR/include" -c "$T/site/src/main.c" -o "$T/main-web.o" >"$T/cc-web.txt" 2>&1 ||
    fail "site/src/main.c (web) does not compile"
assert_empty "$T/cc-web.txt"

# ---- the man page ----------------------------------------------------------------------------
if command -v groff >/dev/null; then
    step "docs/hostkit.1 renders without warnings"
    FILES+=("$T/groff.txt")
    groff -man -ww -z "$HK_SOURCE_DIR/docs/hostkit.1" >"$T/groff.txt" 2>&1 || fail "groff failed on docs/hostkit.1"
    assert_empty "$T/groff.txt"
fi

pass
