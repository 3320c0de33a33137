# Build contract: `make build LUA=<interpreter>` leaves build/<interpreter>/luaevent/core.so (and
# luaevent.lua once it exists); `make test` builds all six and runs every test.
# One cargo target folder serves every interpreter: each feature set keeps its own artifacts, so
# switching interpreters relinks only this crate. The .so is copied out right after its build,
# since the next build overwrites target/release/libluaevent_core.so, and renamed into place so
# that a process still running the previous build keeps its mapping intact.

INTERPRETERS := lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit
LUA ?= lua5.4
CARGO ?= cargo
BUSTED ?= /usr/bin/busted

feature_lua5.1 := lua51
feature_lua5.2 := lua52
feature_lua5.3 := lua53
feature_lua5.4 := lua54
feature_lua5.5 := lua55
feature_luajit := luajit

SOURCES := Cargo.toml $(wildcard Cargo.lock) $(wildcard src/*.rs src/*/*.rs)

.PHONY: build build-all test cargo-test spec spec-gc spec-c example deps dist clean docs docs-check check-types

build: build/$(LUA)/luaevent/core.so $(if $(wildcard lua/luaevent.lua),build/$(LUA)/luaevent.lua)

build-all:
	@for lua in $(INTERPRETERS); do $(MAKE) --no-print-directory build LUA=$$lua || exit 1; done

build/%/luaevent/core.so: $(SOURCES)
	@test -n "$(feature_$*)" || { echo "unknown interpreter '$*' (one of: $(INTERPRETERS))"; exit 1; }
	$(CARGO) build --release --locked --features "module $(feature_$*)"
	mkdir -p $(dir $@)
	cp target/release/libluaevent_core.so $@.tmp && mv $@.tmp $@

build/%/luaevent.lua: lua/luaevent.lua
	mkdir -p $(dir $@)
	cp $< $@.tmp && mv $@.tmp $@

# Everything: Rust unit tests, then the specs on every interpreter (normal GC, stop-the-world
# GC, and the differential run against Debian's C module), then the short fault-injection run
# on lua5.4 and luajit. tests/run prints the summary line.
test: build-all
	tests/run all

cargo-test:
	$(CARGO) test --release --locked --features lua54 --lib

spec: build
	tests/run spec $(LUA)

spec-gc: build
	tests/run spec-gc $(LUA)

spec-c:
	tests/run spec-c $(LUA)

example: build
	LUA_CPATH="build/$(LUA)/?.so;;" LUA_PATH="build/$(LUA)/?.lua;;" $(LUA) examples/timer_and_socket.lua

deps:
	bash scripts/install-deps.sh

# The API reference (doc/api.md), the LuaLS addon (types/) and the generated part of
# doc/migrating.md, from the API description doc/api.lua. Any interpreter gives the same files.
docs:
	$(LUA) scripts/gen-docs.lua

# Fails when a generated file is stale (the specs check the same on every interpreter).
docs-check:
	$(LUA) scripts/gen-docs.lua --check

# The LuaLS addon under emmylua_check, on the sample programs in tests/types/ (part of make test).
check-types:
	$(LUA) $(BUSTED) tests/spec/types_spec.lua

# The release files under dist/: the source tarball (crates vendored), the .src.rock and a rocks
# server manifest, made without network access; see scripts/dist.sh.
dist:
	bash scripts/dist.sh

clean:
	rm -rf build target dist

# Benchmarks: this build against Debian's C module, luv, LuaSec (TLS) and raw libevent, for lua5.4
# and luajit. BENCH_QUICK=1 make bench takes about a minute. See bench/README.md.
# make bench BENCH_INTERPRETERS=lua5.5 measures 5.5 too (against raw libevent only: Debian has
# no C module nor luv for 5.5, and the table says so).
BENCH_INTERPRETERS := lua5.4 luajit

.PHONY: bench
bench:
	bash scripts/install-deps.sh
	@for lua in $(BENCH_INTERPRETERS); do $(MAKE) --no-print-directory build LUA=$$lua || exit 1; done
	bench/run.sh $(BENCH_INTERPRETERS)

# Reliability: see doc/reliability.md for what each one checks and the last figures.
.PHONY: fuzz memcheck soak soak-quick load load-quick threads

# Several Lua states on several threads at once, plainly, under helgrind and failalloc (lua5.4).
threads:
	$(MAKE) --no-print-directory build LUA=lua5.4
	tests/threads/run.sh

fuzz: build-all
	tests/fuzz/run.sh

memcheck:
	tests/memcheck/run.sh lua5.4 luajit

soak: build-all
	tests/soak/run.sh all

load: build-all
	tests/load/run.sh all

soak-quick: build-all
	SOAK_QUICK=1 tests/soak/run.sh

load-quick: build-all
	LOAD_QUICK=1 tests/load/run.sh

# Fault injection: allocations failing (failalloc.c) and I/O faults (iofault.c), LD_PRELOAD shims
# built by the script; see doc/reliability.md. faults-quick is the short run in `make test`.
.PHONY: faults faults-quick

faults:
	@for lua in lua5.4 luajit; do $(MAKE) --no-print-directory build LUA=$$lua || exit 1; done
	nice tests/faults/run.sh lua5.4 luajit

faults-quick:
	@for lua in lua5.4 luajit; do $(MAKE) --no-print-directory build LUA=$$lua || exit 1; done
	FAULTS_QUICK=1 tests/faults/run.sh lua5.4 luajit
