# keystrata — the two commands:
#   make demo   build and run the demo
#   make test   install what is missing, then run every test suite
#
# Other targets: setup, build, lib, header, header-check, c-test,
# c-valgrind, c-shared, miri, cli (the keystrata command), cli-demo, kms-plugin and
# install-kms-plugin (the KMS v2 plugin program), install PREFIX=..., doc, clean, bench (writes docs/PERFORMANCE.md;
# not part of test), fuzz FUZZ_SECONDS=300 (every fuzz target in turn; not part
# of test), fuzz-smoke (a few seconds each; part of test).

SHELL := /bin/bash
CARGO ?= cargo
CC ?= cc
PREFIX ?= /usr/local
export GOTOOLCHAIN := local

LIBDIR := target/release
STATIC_LIB := $(LIBDIR)/libkeystrata.a
SHARED_LIB := $(LIBDIR)/libkeystrata.so
HEADER := include/keystrata.h
# The one version: [workspace.package] in Cargo.toml.
VERSION := $(shell bash scripts/version.sh)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The ABI version: the major from 1.0 on, 0.MINOR before (a 0.x minor may
# break the ABI). ffi/build.rs gives the shared library this SONAME.
ABI := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
SONAME := libkeystrata.so.$(ABI)
# The system libraries a program linking the static library also needs: the
# one list. It reaches every C and Go build through the pkg-config files
# written from ffi/keystrata{,-static}.pc.in (Libs.private, Libs).
NATIVE_LIBS := -lpthread -ldl -lm -lrt -lutil
# In-repo builds find the library through uninstalled pkg-config files
# (written by `make lib`): C rules here use keystrata-static, Go's cgo.go
# does too, and so do the scripts. Only pkg-config and go get
# PKG_CONFIG_PATH, never cargo: aws-lc-sys's build script watches that
# variable, and a new value rebuilds aws-lc and everything above it.
PCDIR := $(CURDIR)/$(LIBDIR)/pkgconfig
PC_ENV := PKG_CONFIG_PATH=$(PCDIR)
KS_LIBS = $$($(PC_ENV) pkg-config --libs keystrata-static)
CFLAGS_STRICT := -std=c11 -Wall -Wextra -Wpedantic -Werror -g -Iinclude
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
BUILD := build

.PHONY: cli-demo all build lib demo test setup doc clean bench header header-check miri c-test c-valgrind c-device-roots c-shared install c-demo python python-demo go-demo relay-demo rust-demo peers-start peers-stop fuzz fuzz-smoke

all: build

setup:
	@bash scripts/setup.sh

build: lib

# The static and shared library, the uninstalled pkg-config files
# (target/release/pkgconfig) and a libkeystrata.so.$(MAJOR) link beside the
# shared library, which carries that SONAME.
lib:
	$(CARGO) build --release -p keystrata-ffi
	@$(call write_pc,$(CURDIR),$(CURDIR)/$(LIBDIR),$(CURDIR)/include,$(PCDIR))
	@ln -sf libkeystrata.so $(LIBDIR)/$(SONAME)

# write_pc PREFIX,LIBDIR,INCLUDEDIR,DIR: keystrata.pc and keystrata-static.pc
# from their templates in ffi/.
define write_pc
mkdir -p $(4) && for pc in keystrata keystrata-static; do \
  sed -e 's|@PREFIX@|$(1)|' -e 's|@LIBDIR@|$(2)|' -e 's|@INCLUDEDIR@|$(3)|' \
    -e 's|@VERSION@|$(VERSION)|' -e 's|@NATIVE_LIBS@|$(NATIVE_LIBS)|' \
    ffi/$$pc.pc.in >$(4)/$$pc.pc; done
endef

# Regenerate the C header with the pinned cbindgen.
header:
	@bash scripts/header.sh write

# Fails if include/keystrata.h differs from what ffi/ generates.
header-check:
	@bash scripts/header.sh check

# The C ABI's pointer layer (ffi/src/abi.rs) under Miri: Rust-side
# undefined behaviour the C suites cannot see (needs nightly; installed if
# missing). Part of `make test`.
miri:
	@bash scripts/miri.sh

$(BUILD):
	mkdir -p $(BUILD)

# The C suite: tests/c/main.c runs the groups of every tests/c/test_<topic>.c
# (shared harness: tests/c/harness.{h,c}).
C_SUITE := tests/c/main.c tests/c/harness.c tests/c/test_errors.c tests/c/test_vectors.c tests/c/test_seal.c \
  tests/c/test_envelope.c tests/c/test_derive.c tests/c/test_keychain.c tests/c/test_threads.c tests/c/test_portable.c \
  tests/c/test_gateway.c tests/c/test_custom_root.c tests/c/test_sign.c tests/c/test_sign_more.c tests/c/test_stream.c \
  tests/c/test_rewrap.c

$(BUILD)/test_keystrata: $(C_SUITE) tests/c/harness.h $(HEADER) lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) $(SANITIZE) -pthread -o $@ $(C_SUITE) $(KS_LIBS) -ljansson

$(BUILD)/test_keystrata_plain: $(C_SUITE) tests/c/harness.h $(HEADER) lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) -O1 -pthread -o $@ $(C_SUITE) $(KS_LIBS) -ljansson

# The C suite under AddressSanitizer + UndefinedBehaviorSanitizer.
c-test: $(BUILD)/test_keystrata
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./$(BUILD)/test_keystrata tests/vectors

# The C suite once under valgrind (quick mode: fewer thread iterations).
c-valgrind: $(BUILD)/test_keystrata_plain
	KS_TEST_QUICK=1 valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  --quiet ./$(BUILD)/test_keystrata_plain tests/vectors

$(BUILD)/test_device_roots: tests/c/test_device_roots.c $(HEADER) lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) $(SANITIZE) -o $@ tests/c/test_device_roots.c $(KS_LIBS)

# ks_root_pkcs11_new / ks_root_kmip_new against SoftHSM2 and PyKMIP (start
# them first: eval "$$(bash scripts/peers.sh start)"), under ASan + UBSan.
# Leak checking is off: SoftHSM2 keeps process-wide state until exit.
c-device-roots: $(BUILD)/test_device_roots
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(BUILD)/test_device_roots

$(BUILD)/test_shared: tests/c/test_shared.c $(HEADER) lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) $(SANITIZE) -pthread -o $@ tests/c/test_shared.c $(KS_LIBS)

# Shared keychains under ASan + UBSan: two handles on one file, a parent and
# its forked children, an encrypt-only process beside a rotating one.
c-shared: $(BUILD)/test_shared
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$(BUILD)/test_shared

$(BUILD)/demo_c: examples/c/demo.c $(HEADER) lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) -o $@ examples/c/demo.c $(KS_LIBS)

c-demo: $(BUILD)/demo_c
	@echo '== the story in C (examples/c/demo.c)'
	./$(BUILD)/demo_c

# Installs the Python module into the project venv (.venv). maturin builds
# in the workspace's target/ (the crate is a workspace member), so it reuses
# what `make lib` built; -v shows cargo's progress instead of minutes of
# silence.
python: setup
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/pip install -v --disable-pip-version-check --no-build-isolation ./bindings/python

python-demo: python
	@echo '== the story in Python (examples/python/demo.py)'
	.venv/bin/python examples/python/demo.py

go-demo: lib
	@echo '== the story in Go (examples/go)'
	cd examples/go && $(PC_ENV) go run .

$(BUILD)/relay_c: examples/c/relay.c $(HEADER) lib | $(BUILD)
	$(CC) $(CFLAGS_STRICT) -o $@ examples/c/relay.c $(KS_LIBS)

# One story across languages, bytes passed through files: C generates a
# keychain under an age identity, Python seals and encrypts with it, Go
# rotates, decrypts both and derives an origin key that C and Python derive
# too. No server, no network.
relay-demo: $(BUILD)/relay_c python
	@echo '== one story, three languages'
	@d=$$(mktemp -d /tmp/keystrata-relay-XXXXXX) && \
	  ./$(BUILD)/relay_c gen $$d && \
	  .venv/bin/python examples/python/relay.py seal $$d && \
	  (cd examples/go && $(PC_ENV) go run ./relay $$d) && \
	  ./$(BUILD)/relay_c derive $$d && \
	  .venv/bin/python examples/python/relay.py derive $$d

rust-demo:
	@echo '== the story in Rust (core/examples/demo.rs)'
	$(CARGO) run --quiet --release -p keystrata --example demo

# A short operator session with the keystrata command (examples/cli/demo.sh).
cli-demo: cli
	@echo '== an operator session with the keystrata command (examples/cli/demo.sh)'
	@bash examples/cli/demo.sh $(CURDIR)/$(CLI_BIN)

# The whole story in each language (C, Python, Go, Rust), then one story
# across them, then a short session with the keystrata command.
demo: setup
	@$(MAKE) --no-print-directory c-demo python-demo go-demo rust-demo
	@$(MAKE) --no-print-directory relay-demo
	@$(MAKE) --no-print-directory cli-demo

# make lib install PREFIX=/usr/local [libdir=...] [DESTDIR=...] [KEEP_DEBUG=1]
# installs libkeystrata.so.$(VERSION) with the $(SONAME) and .so links,
# libkeystrata.a, keystrata.h and pkgconfig/keystrata{,-static}.pc. The
# release profile keeps debug info for profiling (Cargo.toml); the installed
# libraries are stripped of it (the .a by about 70%) unless KEEP_DEBUG=1.
# install builds the libraries only if they are missing, so
# `make lib cli && sudo make install` needs no Rust toolchain as root; name
# `lib` and `cli` first to install what the sources say now.
libdir ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
bindir ?= $(PREFIX)/bin
mandir ?= $(PREFIX)/share/man
bashcompdir ?= $(PREFIX)/share/bash-completion/completions
zshcompdir ?= $(PREFIX)/share/zsh/site-functions
fishcompdir ?= $(PREFIX)/share/fish/vendor_completions.d
STRIP ?= strip
CLI_BIN := $(LIBDIR)/keystrata
$(STATIC_LIB) $(SHARED_LIB):
	$(MAKE) --no-print-directory lib
$(CLI_BIN):
	$(MAKE) --no-print-directory cli

# The keystrata command (cli/, docs/CLI.md), in release.
.PHONY: cli
cli:
	$(CARGO) build --release -p keystrata-cli

# The Kubernetes KMS v2 plugin program that `keystrata kms-plugin` runs
# (kms-plugin/, docs/KMS-PLUGIN.md), in release with every root and store.
# Apart from `cli` and `install`: its gRPC server and runtime change the
# features of crates the library shares, so it is a second release build
# of the core that only its users pay for.
KMS_PLUGIN_BIN := $(LIBDIR)/keystrata-kms-plugin
.PHONY: kms-plugin install-kms-plugin
kms-plugin:
	$(CARGO) build --release -p keystrata-kms-plugin --features etcd,pkcs11,kmip,aws-kms --bin keystrata-kms-plugin
install-kms-plugin: kms-plugin
	install -d $(DESTDIR)$(bindir)
	install -m 0755 $(KMS_PLUGIN_BIN) $(DESTDIR)$(bindir)/keystrata-kms-plugin
ifneq ($(KEEP_DEBUG),1)
	$(STRIP) $(DESTDIR)$(bindir)/keystrata-kms-plugin
endif

install: $(STATIC_LIB) $(SHARED_LIB) $(CLI_BIN)
	install -d $(DESTDIR)$(libdir)/pkgconfig $(DESTDIR)$(includedir)
	install -m 0644 $(STATIC_LIB) $(DESTDIR)$(libdir)/libkeystrata.a
	install -m 0755 $(SHARED_LIB) $(DESTDIR)$(libdir)/libkeystrata.so.$(VERSION)
ifneq ($(KEEP_DEBUG),1)
	$(STRIP) --strip-debug $(DESTDIR)$(libdir)/libkeystrata.a
	$(STRIP) --strip-unneeded $(DESTDIR)$(libdir)/libkeystrata.so.$(VERSION)
endif
	ln -sf libkeystrata.so.$(VERSION) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(libdir)/libkeystrata.so
	install -m 0644 $(HEADER) $(DESTDIR)$(includedir)/keystrata.h
	@$(call write_pc,$(PREFIX),$(libdir),$(includedir),$(DESTDIR)$(libdir)/pkgconfig)
	@# The command, its man pages (keystrata.1, keystrata-COMMAND.1) and
	@# completions, all generated by the binary from its clap definitions.
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(bashcompdir) \
	  $(DESTDIR)$(zshcompdir) $(DESTDIR)$(fishcompdir)
	install -m 0755 $(CLI_BIN) $(DESTDIR)$(bindir)/keystrata
ifneq ($(KEEP_DEBUG),1)
	$(STRIP) $(DESTDIR)$(bindir)/keystrata
endif
	$(CLI_BIN) man --dir $(DESTDIR)$(mandir)/man1
	$(CLI_BIN) completions bash >$(DESTDIR)$(bashcompdir)/keystrata
	$(CLI_BIN) completions zsh >$(DESTDIR)$(zshcompdir)/_keystrata
	$(CLI_BIN) completions fish >$(DESTDIR)$(fishcompdir)/keystrata.fish
	@echo "installed keystrata $(VERSION) in $(DESTDIR)$(PREFIX); run ldconfig if $(libdir) is a system library directory"

# make uninstall PREFIX=... [libdir=...] [DESTDIR=...]: what install put there.
.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(libdir)/libkeystrata.a $(DESTDIR)$(libdir)/libkeystrata.so \
	  $(DESTDIR)$(libdir)/$(SONAME) $(DESTDIR)$(libdir)/libkeystrata.so.$(VERSION) \
	  $(DESTDIR)$(includedir)/keystrata.h \
	  $(DESTDIR)$(libdir)/pkgconfig/keystrata.pc $(DESTDIR)$(libdir)/pkgconfig/keystrata-static.pc
	rm -f $(DESTDIR)$(bindir)/keystrata $(DESTDIR)$(bindir)/keystrata-kms-plugin $(DESTDIR)$(mandir)/man1/keystrata.1 \
	  $(DESTDIR)$(mandir)/man1/keystrata-*.1 $(DESTDIR)$(bashcompdir)/keystrata \
	  $(DESTDIR)$(zshcompdir)/_keystrata $(DESTDIR)$(fishcompdir)/keystrata.fish

test: setup
	@bash scripts/test.sh

# The real peers of the device roots, for running single suites by hand:
#   eval "$$(make -s peers-start)"
peers-start:
	@bash scripts/peers.sh start

peers-stop:
	@bash scripts/peers.sh stop

# keystrata beside its peers in Rust, Python, Go and C, interleaved, medians;
# writes docs/PERFORMANCE.md (bench/run.py). Not part of `make test`.
bench: python
	python3 bench/run.py

# Every fuzz target (fuzz/) for FUZZ_SECONDS each (default 300), one after
# another; FUZZ_RUNS=N runs N executions each instead. Needs nightly Rust;
# installs cargo-fuzz into ~/.cache/keystrata/fuzz-tools (KEYSTRATA_CACHE_DIR). See docs/SECURITY.md.
fuzz:
	@bash scripts/fuzz.sh run

# Every fuzz target for a few seconds (FUZZ_SMOKE_SECONDS, default 3).
fuzz-smoke:
	@bash scripts/fuzz.sh smoke

doc:
	$(CARGO) doc --workspace --no-deps --all-features

clean:
	$(CARGO) clean
	rm -rf $(BUILD) .venv
