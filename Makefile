# hostkit - developer entry points. CMake + Ninja do the work; this file only
# wires the set-up contract: make, make demo, make test, make test-asan,
# make test-tsan, make install PREFIX=..., make clean; also make fuzz
# (libFuzzer, clang), make bench (hostkit against its peers; SCENARIO=name
# for one), make bench-config, make bench-services and make bench-metrics
# (not tests); make test-systemd (the end-to-end tests under a real systemd
# in systemd-nspawn containers: root; tests/systemd, label systemd, which the
# other test targets leave out).
BUILD      ?= build
PREFIX     ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
CTEST_ARGS ?= --output-on-failure
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
SCENARIO   ?=

CMAKE_GEN = cmake -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

.PHONY: all build deps demo test test-asan test-tsan test-systemd fuzz bench bench-config bench-services bench-metrics install clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	$(CMAKE_GEN) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@echo "== build/bin/worker in examples/worker (its appsettings*.json): 3 workers and an audit service."
	@echo "== Edit examples/worker/appsettings.json while it runs to see a live reload. Ctrl+C stops it. =="
	@cd examples/worker && $(CURDIR)/$(BUILD)/bin/worker --environment Development

test: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS) -LE systemd

# Under a real systemd 252 (tests/systemd/lib.sh): the cached Debian tree
# first (systemd.tree, a fixture), then each scenario in its own container.
# The scenarios mostly wait (watchdog periods, journald, drains), so they run
# all at once rather than one per CPU (SD_JOBS).
SD_JOBS    ?= 8
test-systemd: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(SD_JOBS) -L systemd

build-asan/build.ninja: | deps
	$(CMAKE_GEN) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHK_SANITIZE=address,undefined

test-asan: deps build-asan/build.ninja
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest $(CTEST_ARGS) -j $(JOBS) -LE 'novalgrind-only|systemd' -E valgrind

build-tsan/build.ninja: | deps
	$(CMAKE_GEN) -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHK_SANITIZE=thread

test-tsan: deps build-tsan/build.ninja
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest $(CTEST_ARGS) -j $(JOBS) -LE systemd -E valgrind

# libFuzzer targets (tests/fuzz): clang, everything built with ASan+UBSan and
# coverage; the three run in parallel for FUZZ_SECONDS each on build-fuzz/corpus.
build-fuzz/build.ninja: | deps
	CC=clang $(CMAKE_GEN) -S . -B build-fuzz -DHK_FUZZ=ON -DHK_BUILD_TESTS=OFF

fuzz: deps build-fuzz/build.ninja
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# Benchmarks against the peers (bench/README.md): installs what the peers need
# (bench/install-peers), builds build-bench/ and the peers, runs every scenario
# (or SCENARIO=lifecycle|cancel|logging|config|services|http) and rewrites
# bench/RESULTS.md. About two minutes once built; each scenario under two.
bench: deps build-bench/build.ninja
	@bench/install-peers
	bench/run $(SCENARIO)

# Configuration benchmark (bench/config): a Release build at -O2, run once.
build-bench/build.ninja: | deps
	$(CMAKE_GEN) -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DHK_BUILD_BENCH=ON -DHK_BUILD_TESTS=OFF

bench-config: deps build-bench/build.ninja
	cmake --build build-bench -j $(JOBS) --target bench_config
	build-bench/bin/bench_config

# Service registry benchmark (bench/services): same Release build, run once.
bench-services: deps build-bench/build.ninja
	cmake --build build-bench -j $(JOBS) --target bench_services
	build-bench/bin/bench_services

# Metrics benchmark (bench/metrics): same Release build, run once.
bench-metrics: deps build-bench/build.ninja
	cmake --build build-bench -j $(JOBS) --target bench_metrics
	build-bench/bin/bench_metrics

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz build-bench
