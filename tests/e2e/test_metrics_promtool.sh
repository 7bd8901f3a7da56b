# The metrics exposition passes `promtool check metrics` (parse and lint):
# every metric type, labels needing escapes, the process_* series and the
# built-in hostkit_* series (build/bin/metrics_probe). promtool comes from
# Debian's prometheus package, which scripts/install-deps installs: a
# missing promtool fails this test instead of skipping it.
. "$(dirname "$0")/lib.sh" || exit 1

command -v promtool >/dev/null ||
    fail "promtool not found: run scripts/install-deps (Debian package prometheus)"

step "promtool rejects a broken exposition (the check is real)"
printf '# HELP x_total X.\n# TYPE x_total counter\nx_total{a="b} 1\n' >"$T/broken.txt"
promtool check metrics <"$T/broken.txt" >"$T/broken.out" 2>&1 && fail "promtool accepted a broken exposition"
FILES+=("$T/broken.out")

step "metrics_probe writes an exposition"
start probe "$HK_BIN/metrics_probe" --Host:HandleSignals=false
wait_exit
assert_rc 0 "metrics_probe"
for s in 'probe_requests_total{method="GET",path="/a \"quoted\" \\ path\nx"} 41.5' \
         'probe_request_duration_seconds_bucket{method="GET",le="+Inf"} 100' \
         'probe_response_size_bytes_count 2' 'probe_in_flight 1' \
         'hostkit_service_state{service="audit",state="Stopped"} 1' \
         'hostkit_service_up{service="audit"} 0' 'hostkit_service_restarts_total{service="audit"} 0' \
         'hostkit_health_status{check="services"} 2' 'hostkit_log_dropped_total 0' \
         'probe_untyped -1.5'; do
    assert_line "$OUT" "$s"
done
for s in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
         process_open_fds process_max_fds process_start_time_seconds; do
    assert_text "$OUT" "$s "
done

step "promtool check metrics accepts it with no lint message"
promtool check metrics <"$OUT" >"$T/promtool.out" 2>&1
rc=$?
FILES+=("$T/promtool.out")
[[ $rc == 0 ]] || fail "promtool check metrics exited with $rc"
[[ ! -s $T/promtool.out ]] || fail "promtool check metrics printed problems"
pass
