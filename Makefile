# The two commands of the README, and the few others around them.
#   make run        set up, build (release), start the reference program (apps/hello on PORT)
#   make test       set up, build (debugoptimized, assertions on), run every suite
#   make bench      set up (with peers), build, run benchmarks side by side with peers
#   make test-asan  the suites under AddressSanitizer + UBSan
#   make test-tsan  the suites under ThreadSanitizer
#   make fuzz       the libFuzzer targets (clang), FUZZ_SECONDS each
MESON ?= meson
JOBS ?= $(shell nproc)
WERROR ?= false
FUZZ_SECONDS ?= 60
PORT ?= 8080

.PHONY: setup run test bench test-asan test-tsan fuzz build clean format

setup:
	@scripts/setup

build/release/build.ninja:
	$(MESON) setup build/release --buildtype=release -Db_lto=true -Dwerror=$(WERROR)
build/test/build.ninja:
	$(MESON) setup build/test --buildtype=debugoptimized -Db_ndebug=false -Dwerror=$(WERROR)
build/asan/build.ninja:
	$(MESON) setup build/asan --buildtype=debugoptimized -Db_ndebug=false \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false -Dwerror=$(WERROR)
build/fuzz/build.ninja:
	CC=clang CXX=clang++ $(MESON) setup build/fuzz --buildtype=debugoptimized -Db_ndebug=false \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dtests=false -Dapps=false -Dbench=false \
	  -Dfuzz=true -Dfuzz_seconds=$(FUZZ_SECONDS) -Dwerror=$(WERROR)
build/tsan/build.ninja:
	$(MESON) setup build/tsan --buildtype=debugoptimized -Db_ndebug=false \
	  -Db_sanitize=thread -Db_lundef=false -Dbench=false -Dwerror=$(WERROR)

build: setup build/release/build.ninja
	$(MESON) compile -C build/release -j $(JOBS)

run: build
	build/release/apps/hello --port $(PORT)

test: setup build/test/build.ninja
	$(MESON) compile -C build/test -j $(JOBS)
	$(MESON) test -C build/test --print-errorlogs --num-processes 1

test-asan: setup build/asan/build.ninja
	$(MESON) compile -C build/asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(MESON) test -C build/asan --print-errorlogs --num-processes 1 --timeout-multiplier 4

test-tsan: setup build/tsan/build.ninja
	$(MESON) compile -C build/tsan -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(MESON) test -C build/tsan --print-errorlogs --num-processes 1 --timeout-multiplier 6

fuzz: setup build/fuzz/build.ninja
	$(MESON) compile -C build/fuzz -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(MESON) test -C build/fuzz --print-errorlogs --suite fuzz

bench: build
	@scripts/setup bench
	python3 bench/run.py --build build/release
	python3 bench/echo_bench.py --build build/release
	python3 bench/http_bench.py --build build/release

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp' '*.h' '*.c' | grep -v '^subprojects/')

clean:
	rm -rf build
