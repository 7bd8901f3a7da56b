# A malformed command line stops the worker before anything starts: exit 64
# and one line naming the offending argument; nothing on stdout. It wins over
# configuration errors (nothing of a malformed command line is applied).
. "$(dirname "$0")/lib.sh" || exit 1

P='crit: hostkit.host[0] malformed command line: '
FORMS='(options are --Key=Value, --Key Value, /Key=Value or Key=Value)'

# usage NAME "EXPECTED LINE" ARGS...
usage() {
    local name=$1 line=$2
    shift 2
    step "$name: worker $*"
    start_worker "$name" "$@"
    wait_exit
    assert_rc 64 "malformed command line"
    assert_file_is "$LOG" "$line"
    assert_empty "$OUT"
}

usage positional "${P}unexpected argument 'foo' $FORMS" foo
usage single-dash "${P}unknown option '-x' $FORMS" -x
usage missing-value "${P}missing value for '--Worker:Count'" --Worker:Count
usage missing-value-slash "${P}missing value for '/Worker:Count'" --Worker:IntervalMs=50 /Worker:Count
usage empty-key "${P}empty key in '--=5'" --=5
usage bare-empty-key "${P}empty key in '=5'" =5
usage dashdash "${P}empty key in '--'" --
usage after-good-args "${P}unexpected argument 'foo' $FORMS" --Worker:Count=2 foo
usage wins-over-config "${P}unexpected argument 'foo' $FORMS" --Worker:Count=abc foo

pass
