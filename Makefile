# Thin wrapper over CMake for the README's commands. Every target first runs
# scripts/deps.sh, which installs missing Debian packages and is a no-op
# when everything is present.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

.PHONY: all deps build test asan fuzz ci demo bench e2e format clean install deb

all: build

deps:
	@bash scripts/deps.sh

build: deps
	cmake -S . -B build $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j $(JOBS)

# The whole test suite, warnings as errors.
test: build
	cd build && ctest --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer,
# but for the tests labelled "slow" (install_deb builds the Debian packages
# from source with its own compiler flags, so it proves nothing more here).
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DESIM_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) -LE slow

# Every libFuzzer target for FUZZ_SECONDS each (clang), seeded from tests/fuzz/corpus.
fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DESIM_FUZZ=ON -DESIM_TESTS=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS)
	bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# What CI runs (.ci/run): tests, sanitizer run, bounded fuzzing.
ci: test asan fuzz

demo: build
	bash scripts/demo.sh build

# The SM-DP+ load generator (bench/README.md), optimised build, default run;
# BENCH_ARGS adds options, e.g. BENCH_ARGS="--concurrency 8 --curve brp".
# Warnings are not errors here: -O3 adds maybe-uninitialized false positives
# that the -O2 builds of `make test` (the gate) do not have.
BENCH_ARGS ?=
bench: deps
	cmake -S . -B build-bench -DESIM_BENCH=ON -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build build-bench -j $(JOBS) --target bench_download
	./build-bench/bench_download $(BENCH_ARGS)

# The end-to-end benchmark of the three programs (esim + esim-euicc +
# esim-smdp) over the socket and over pcscd + vpcd (bench/README.md, "End to
# end"), on the same Release build; E2E_ARGS adds options, e.g.
# E2E_ARGS="--downloads 200 --transports socket".
E2E_ARGS ?=
e2e: deps
	cmake -S . -B build-bench -DESIM_BENCH=ON -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build build-bench -j $(JOBS) --target esim esim-euicc esim-smdp esim-pki esim-operator
	bash bench/e2e.sh --build-dir build-bench $(E2E_ARGS)

# Install the programs, libesim (shared, headers, esim.pc), the portal's
# files, man pages, example settings and systemd units (docs/operations.md):
# PREFIX (default /usr/local) and DESTDIR are honoured.
PREFIX ?= /usr/local
install: deps
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install build

# Debian packages (debian/, debhelper) into build-deb/ (packaging/deb.sh).
deb: deps
	bash packaging/deb.sh build-deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz build-bench build-deb
