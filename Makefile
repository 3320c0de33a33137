# Build contract: `make build LUA=<interpreter>` leaves build/<interpreter>/luaevent/core.so (and
# luaevent.lua once it exists); `make test` builds all five and runs every test.
# One cargo target folder serves every interpreter: each feature set keeps its own artifacts, so
# switching interpreters relinks only this crate. The .so is copied out right after its build,
# since the next build overwrites target/release/libluaevent_core.so, and renamed into place so
# that a process still running the previous build keeps its mapping intact.

INTERPRETERS := lua5.1 lua5.2 lua5.3 lua5.4 luajit
LUA ?= lua5.4
CARGO ?= cargo
BUSTED ?= /usr/bin/busted

feature_lua5.1 := lua51
feature_lua5.2 := lua52
feature_lua5.3 := lua53
feature_lua5.4 := lua54
feature_luajit := luajit

SOURCES := Cargo.toml $(wildcard Cargo.lock) $(wildcard src/*.rs)

.PHONY: build build-all test cargo-test spec spec-gc spec-c example deps dist clean

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
# GC, and the differential run against Debian's C module). tests/run prints the summary line.
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

# The release files under dist/: the source tarball (crates vendored), the .src.rock and a rocks
# server manifest, made without network access; see scripts/dist.sh.
dist:
	bash scripts/dist.sh

clean:
	rm -rf build target dist

# Benchmarks (issue 5): this build against Debian's C module, luv and raw libevent, for lua5.4
# and luajit. BENCH_QUICK=1 make bench takes about a minute. See bench/README.md.
BENCH_INTERPRETERS := lua5.4 luajit

.PHONY: bench
bench:
	bash scripts/install-deps.sh
	@for lua in $(BENCH_INTERPRETERS); do $(MAKE) --no-print-directory build LUA=$$lua || exit 1; done
	bench/run.sh $(BENCH_INTERPRETERS)

# Reliability (issue 6): see doc/reliability.md for what each one checks and the last figures.
.PHONY: fuzz memcheck soak soak-quick load load-quick

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
