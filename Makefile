# hostkit - developer entry points. CMake + Ninja do the work; this file only
# wires the set-up contract: make, make demo, make test, make test-asan,
# make test-tsan, make install PREFIX=..., make clean.
BUILD      ?= build
PREFIX     ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
CTEST_ARGS ?= --output-on-failure
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

CMAKE_GEN = cmake -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

.PHONY: all build deps demo test test-asan test-tsan install clean

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
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

build-asan/build.ninja: | deps
	$(CMAKE_GEN) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHK_SANITIZE=address,undefined

test-asan: deps build-asan/build.ninja
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest $(CTEST_ARGS) -j $(JOBS) -LE novalgrind-only -E valgrind

build-tsan/build.ninja: | deps
	$(CMAKE_GEN) -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHK_SANITIZE=thread

test-tsan: deps build-tsan/build.ninja
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest $(CTEST_ARGS) -j $(JOBS) -E valgrind

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan
