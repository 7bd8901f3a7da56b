#!/usr/bin/env bash
# Runs the libFuzzer targets side by side for SECONDS seconds each
# (`make fuzz` calls this after building them). Each fuzzer works on its own
# copy of the seed corpus in BUILD/corpus/NAME (new inputs it finds are kept
# there), logs to BUILD/logs/NAME.log and writes a crashing input to
# BUILD/crashes/NAME-crash-<sha1>. Prints every fuzzer's final stats and
# fails if any of them stopped with a crash, leak, timeout or failed check.
# The web targets share web.dict. fuzz_web_request runs a real server whose
# threads allocate across input boundaries, so libFuzzer's per-input leak
# check is off for it; LeakSanitizer still checks the whole process at exit
# (the target stops and frees its host first), and the target itself checks
# that no request or connection is left behind (see fuzz_web_request.c).
# Usage: tests/fuzz/run.sh BUILD SECONDS
set -uo pipefail
build=${1:?usage: run.sh BUILD SECONDS}
seconds=${2:?usage: run.sh BUILD SECONDS}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/corpus" "$build/logs" "$build/crashes"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

names=(json args parse web_router web_request)
declare -A pids
for name in "${names[@]}"; do
    bin="$build/bin/fuzz_$name"
    [ -x "$bin" ] || { echo "run.sh: $bin is missing" >&2; exit 1; }
    mkdir -p "$build/corpus/$name"
    cp -f "$here/corpus/$name/"* "$build/corpus/$name/"
    extra=()
    dict="$here/$name.dict"
    case $name in
    json) extra+=(-max_len=65536) ;;
    web_router) dict="$here/web.dict" ;;
    web_request) dict="$here/web.dict"; extra+=(-max_len=16384 -detect_leaks=0) ;;
    esac
    "$bin" "${extra[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -dict="$dict" \
        -artifact_prefix="$build/crashes/fuzz_$name-" \
        "$build/corpus/$name" >"$build/logs/$name.log" 2>&1 &
    pids[$name]=$!
done

failed=0
for name in "${names[@]}"; do
    wait "${pids[$name]}"
    rc=$?
    log="$build/logs/$name.log"
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    printf 'fuzz_%-11s rc=%d  %s\n' "$name" "$rc" "$last"
    printf '                 %s runs, %s exec/s, corpus %s files\n' "${execs:-?}" "${rate:-?}" \
        "$(find "$build/corpus/$name" -type f | wc -l)"
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "---- fuzz_$name failed; the end of $log:" >&2
        tail -n 60 "$log" >&2
        ls -1 "$build/crashes/fuzz_$name-"* 2>/dev/null | sed 's/^/reproducer: /' >&2
    fi
done
exit "$failed"
