# wippy — the README's commands. `make demo` and `make test` install what they need.

SHELL    := /bin/bash
CARGO    ?= cargo
LUA54    ?= lua5.4
LUA53    ?= lua5.3
LUA52    ?= lua5.2
LUA51    ?= lua5.1
LUAJIT   ?= luajit
BUILD    := build
RELEASE  := $(or $(CARGO_TARGET_DIR),target)/release
GUESTS   := $(BUILD)/guests
# Where LuaRocks puts pure-Lua shims for `require("funcs")`.
LUA_PATH_SHIMS := $(CURDIR)/lua/?.lua

.PHONY: all deps build build-all build-lua54 build-lua53 build-lua52 build-lua51 build-luajit guests demo test test-rust test-rock spec spec-lua54 bench-sched conformance \
        spec-luajit spec-lua53 spec-lua52 spec-lua51 bench bench-peers lint memcheck soak rock rock-luajit clean docs-check \
        test-openresty bench-openresty fuzz

all: build

## Install Debian packages and the wasm targets the build and tests need (idempotent).
deps:
	@bash scripts/deps.sh

## build/lua54/wippy.so and build/luajit/wippy.so (one release build per Lua ABI).
build: build-lua54 build-luajit

build-lua54: deps
	$(CARGO) build --release --features lua54,module
	@mkdir -p $(BUILD)/lua54
	# Copy then rename: a Lua process still running the old file keeps its mapping.
	cp $(RELEASE)/libwippy.so $(BUILD)/lua54/wippy.so.tmp && mv -f $(BUILD)/lua54/wippy.so.tmp $(BUILD)/lua54/wippy.so
	@# The launcher (SPEC §7.4): bin/wippy.lua on lua5.4 with this build's module.
	@mkdir -p $(BUILD)/bin
	printf '#!/bin/sh\nLUA_CPATH="%s/?.so;;" exec %s "%s" "$$@"\n' "$(CURDIR)/$(BUILD)/lua54" "$(LUA54)" "$(CURDIR)/bin/wippy.lua" > $(BUILD)/bin/wippy
	chmod +x $(BUILD)/bin/wippy

## Lua 5.3 (Debian's lua5.3): its own build; `make test` runs the specs on it too.
build-lua53: deps
	$(CARGO) build --release --features lua53,module
	@mkdir -p $(BUILD)/lua53
	cp $(RELEASE)/libwippy.so $(BUILD)/lua53/wippy.so.tmp && mv -f $(BUILD)/lua53/wippy.so.tmp $(BUILD)/lua53/wippy.so

## Lua 5.2 and 5.1 (Debian's lua5.2, lua5.1): numbers are doubles there (docs/lua-api.md, "Lua versions").
build-lua52: deps
	$(CARGO) build --release --features lua52,module
	@mkdir -p $(BUILD)/lua52
	cp $(RELEASE)/libwippy.so $(BUILD)/lua52/wippy.so.tmp && mv -f $(BUILD)/lua52/wippy.so.tmp $(BUILD)/lua52/wippy.so

build-lua51: deps
	$(CARGO) build --release --features lua51,module
	@mkdir -p $(BUILD)/lua51
	cp $(RELEASE)/libwippy.so $(BUILD)/lua51/wippy.so.tmp && mv -f $(BUILD)/lua51/wippy.so.tmp $(BUILD)/lua51/wippy.so

## All five: build/lua51, build/lua52, build/lua53, build/lua54, build/luajit (each rebuilds mlua
## and wippy for its ABI, one after the other: they share target/release/libwippy.so).
build-all:
	$(MAKE) build-lua51
	$(MAKE) build-lua52
	$(MAKE) build-lua53
	$(MAKE) build-luajit
	$(MAKE) build-lua54

build-luajit: deps
	$(CARGO) build --release --features luajit,module
	@mkdir -p $(BUILD)/luajit
	cp $(RELEASE)/libwippy.so $(BUILD)/luajit/wippy.so.tmp && mv -f $(BUILD)/luajit/wippy.so.tmp $(BUILD)/luajit/wippy.so

## Guest modules built from source by real toolchains (Rust for wasm32-unknown-unknown).
guests: deps
	@bash scripts/guests.sh $(GUESTS)

## Builds and runs examples/hello on lua5.4 and LuaJIT.
demo: build guests
	@mkdir -p examples/hello/wasm
	cp $(GUESTS)/hello_guest.wasm examples/hello/wasm/fib.wasm
	cd examples/hello && LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" LUA_PATH="$(LUA_PATH_SHIMS);;" $(LUA54) main.lua
	cd examples/hello && LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" LUA_PATH="$(LUA_PATH_SHIMS);;" $(LUAJIT) main.lua
	@echo "== a C program (clang + wasi-libc) run as a command by the launcher"
	$(BUILD)/bin/wippy run $(GUESTS)/c_cmd.wasm echo hello from a WASI command

## Every test: Rust unit + integration tests (registry, golden diagnostics), then busted
## specs on lua5.4, lua5.3, lua5.2, lua5.1 and LuaJIT, the docs check, the rock, nginx.
test: lint test-rust docs-check spec test-rock test-openresty
	@bash scripts/summary.sh $(BUILD)/spec-lua54.log $(BUILD)/spec-lua53.log $(BUILD)/spec-lua52.log \
	  $(BUILD)/spec-lua51.log $(BUILD)/spec-luajit.log

test-rust: deps
	$(CARGO) test --release --features lua54,vendored

spec: spec-lua54 spec-lua53 spec-lua52 spec-lua51 spec-luajit

## The docs match the code: LuaLS stubs against the module, every ```lua block of docs/ and the
## README run (fixtures: tests/docs), no link out of the repository (scripts/docs-check.lua).
docs-check: build guests
	LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" LUA_PATH="$(LUA_PATH_SHIMS);;" $(LUA54) scripts/docs-check.lua $(BUILD)

## wippy inside Debian's nginx with its Lua module (docs/openresty.md): examples/openresty on
## 127.0.0.1, two workers, a bounded load, overlapping sleeps, a graceful reload.
test-openresty: build-luajit guests
	bash scripts/openresty-test.sh

## wrk against examples/openresty on one worker (figures in BENCHMARKS.md).
bench-openresty: build-luajit guests
	bash bench/openresty.sh

## Long fuzzing runs (docs/reliability.md#fuzzing): each harness for FUZZ_SECS seconds (default
## 300), one after the other; WIPPY_FUZZ_SEED=N repeats a run. `make test` runs each briefly.
FUZZ_SECS ?= 300
fuzz: deps
	WIPPY_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) test --release --features lua54,vendored --test all fuzz_loader -- --nocapture
	WIPPY_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) test --release --features lua54,vendored --test all fuzz_wasm -- --nocapture
	WIPPY_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) test --release --features lua54,vendored --lib convert::fuzz -- --nocapture --include-ignored

## The LuaRocks build into empty trees, loaded from lua5.4, lua5.3, lua5.2, lua5.1 and LuaJIT.
test-rock: deps
	bash scripts/rock-test.sh

spec-lua54: build-lua54 guests
	@mkdir -p $(BUILD)
	set -o pipefail; XDG_CACHE_HOME=$(CURDIR)/$(BUILD)/cache busted --lua=$(LUA54) --cpath="$(CURDIR)/$(BUILD)/lua54/?.so" --lpath="$(LUA_PATH_SHIMS)" spec | tee $(BUILD)/spec-lua54.log

# Debian installs busted's pure-Lua modules for 5.1 and 5.4 only; 5.3 reads the 5.4 ones (its
# C modules, lua-system and lua-term, are installed for every version).
spec-lua53: build-lua53 guests
	@mkdir -p $(BUILD)
	set -o pipefail; XDG_CACHE_HOME=$(CURDIR)/$(BUILD)/cache LUA_PATH="/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;;" \
	  $(LUA53) /usr/bin/busted --lua=$(LUA53) --cpath="$(CURDIR)/$(BUILD)/lua53/?.so" --lpath="$(LUA_PATH_SHIMS)" spec | tee $(BUILD)/spec-lua53.log

# Debian installs busted for 5.1 and 5.2 too (/usr/share/lua/5.1, /usr/share/lua/5.2).
spec-lua52: build-lua52 guests
	@mkdir -p $(BUILD)
	set -o pipefail; XDG_CACHE_HOME=$(CURDIR)/$(BUILD)/cache busted --lua=$(LUA52) --cpath="$(CURDIR)/$(BUILD)/lua52/?.so" --lpath="$(LUA_PATH_SHIMS)" spec | tee $(BUILD)/spec-lua52.log

spec-lua51: build-lua51 guests
	@mkdir -p $(BUILD)
	set -o pipefail; XDG_CACHE_HOME=$(CURDIR)/$(BUILD)/cache busted --lua=$(LUA51) --cpath="$(CURDIR)/$(BUILD)/lua51/?.so" --lpath="$(LUA_PATH_SHIMS)" spec | tee $(BUILD)/spec-lua51.log

spec-luajit: build-luajit guests
	@mkdir -p $(BUILD)
	set -o pipefail; XDG_CACHE_HOME=$(CURDIR)/$(BUILD)/cache busted --lua=$(LUAJIT) --cpath="$(CURDIR)/$(BUILD)/luajit/?.so" --lpath="$(LUA_PATH_SHIMS)" spec | tee $(BUILD)/spec-luajit.log

## Benchmarks: figures go to BENCHMARKS.md by hand, with this command.
bench: build guests bench-sched
	@echo "== lua5.4"; LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) bench/call.lua
	@echo "== luajit"; LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" $(LUAJIT) bench/call.lua
	@echo "== grant cost, lua5.4"; LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) bench/grant.lua
	@echo "== grant cost, luajit"; LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" $(LUAJIT) bench/grant.lua
	@echo "== security check, lua5.4"; LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) bench/security.lua
	@echo "== registry calls from WebAssembly, lua5.4"; LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) bench/guest_calls.lua
	@echo "== the launcher"; bash bench/launcher.sh $(BUILD)/bin/wippy
	@echo "== actors, lua5.4"; LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) bench/actors.lua
	@echo "== registry calls from WebAssembly, luajit"; LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" $(LUAJIT) bench/guest_calls.lua

## The official WASI test suite's preview-1 tests through the launcher, by hand (CI cannot
## reach it): make conformance WASI_TESTSUITE=DIR, DIR a checkout of WebAssembly/wasi-testsuite's
## prod/testsuite-base branch (kept out of this repository). Results: docs/processes.md.
conformance: build-lua54
	@test -n "$(WASI_TESTSUITE)" || { echo "set WASI_TESTSUITE=DIR (WebAssembly/wasi-testsuite, branch prod/testsuite-base)"; exit 2; }
	bash scripts/conformance.sh "$(WASI_TESTSUITE)"

## Scheduler, pools, isolate and compiled-code cache: Markdown tables, both VMs.
bench-sched: build guests
	bash bench/issue4.sh

## wippy vs wasmtime-py vs jco on the types guest, side by side (installs the peers).
bench-peers: build guests
	bash bench/peers/run.sh

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --release --features lua54,vendored --all-targets -- -D warnings

## Valgrind's memcheck over the Rust unit tests and the lua5.4 specs that run under it (0
## errors or it fails; what runs and why: docs/reliability.md). Installs valgrind if missing.
memcheck: build-lua54 guests
	@bash scripts/deps.sh valgrind
	CARGO="$(CARGO)" LUA54="$(LUA54)" bash scripts/memcheck.sh

## Soak (docs/reliability.md, "Soak"): 1,000,000 mixed calls, 10,000 tasks in flight and
## 1,000,000 calls under GC stress, each in its own process, on lua5.4 and LuaJIT; any wrong
## result or RSS growth past 5 MiB fails. `make test` runs spec/soak_spec.lua instead (the same,
## with 100,000 calls under GC stress).
SOAK = bench/soak.lua
soak: build guests
	LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) $(SOAK) mixed calls=1000000
	LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) $(SOAK) tasks tasks=10000
	LUA_CPATH="$(CURDIR)/$(BUILD)/lua54/?.so;;" $(LUA54) $(SOAK) gc calls=1000000
	LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" $(LUAJIT) $(SOAK) mixed calls=1000000
	LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" $(LUAJIT) $(SOAK) tasks tasks=10000
	LUA_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so;;" $(LUAJIT) $(SOAK) gc calls=1000000

## Installs the rock into a tree for lua5.4 (make rock TREE=/tmp/t) or LuaJIT (make rock-luajit).
rock: deps
	luarocks --lua-version=5.4 --tree "$(or $(TREE),$(BUILD)/rocks)" make wippy-dev-1.rockspec

rock-luajit: deps
	luarocks --lua-version=5.1 --tree "$(or $(TREE),$(BUILD)/rocks)" make wippy-dev-1.rockspec \
		LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1

clean:
	rm -rf $(BUILD) examples/hello/wasm
