# p11proxy. `make demo` and `make test` are the two commands; both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
BUILD_DIR ?= build
PROXY_SO := $(BUILD_DIR)/lib/libp11proxy.so
CC ?= cc
export BUILD_DIR PROXY_SO

# Debian packages the build, the demo and the tests use.
APT_PACKAGES := libp11-kit-dev libstdc++-12-dev pkg-config softhsm2 opensc p11-kit p11-kit-modules gnutls-bin jq openssl python3 \
	libengine-pkcs11-openssl libnss3-tools python3-venv libssl-dev openjdk-17-jdk-headless \
	dpkg-dev lintian mandoc zsh fish

# The shipped module is Embedded Swift: no Swift runtime to start, no type metadata
# to relocate, every generic specialised at build time. With the full Swift runtime linked in
# statically, a C program spent ~1 ms loading and initialising the module (0.5 ms of it in dlopen:
# 85 page faults, most of them relocating 15.7k pointers in the runtime's metadata, and the
# runtime's constructors), more than p11-kit-proxy.so's ~0.4 ms; now ~0.35 ms, 1.2 MB stripped
# instead of 7.1. Embedded Swift has no Glibc overlay: `import Glibc` is glibc's headers through
# support/embedded-libc (Syscalls.swift in P11ProxyConfig supplies errno and open). The same
# sources also build with the full stdlib: `swift build` (the unit tests, the `p11proxy` command)
# and the fuzzer, so they keep to what both accept (typed throws, no key paths or dynamic casts).
# The TSan and ASan builds below are this Embedded build again, instrumented. Each target is one whole-module swiftc run, in dependency order; clang links
# them with lld, exporting only the PKCS#11 entry points (version script). -z nodelete: the
# flusher thread and fork handlers must not outlive the code (dlclose leaves the library loaded).
# -z pack-relative-relocs: relative relocations as DT_RELR; -z defs: nothing left unresolved;
# -z now: every symbol bound at load, so the whole GOT can be read-only (full RELRO; Debian's
# hardening, which lintian checks in the package).
# No RUNPATH, no libstdc++ or libgcc_s: the library needs only libc and libm.
SWIFT_BIN_DIR := $(patsubst %/,%,$(dir $(shell readlink -f "$$(command -v swiftc)")))
EMBEDDED_TARGET := $(shell uname -m)-unknown-linux-gnu
EMBEDDED_STDLIB_DIR := $(SWIFT_BIN_DIR)/../lib/swift/embedded/$(EMBEDDED_TARGET)
EMBEDDED_FLAGS := -target $(EMBEDDED_TARGET) -enable-experimental-feature Embedded -wmo -parse-as-library \
	-O -g -package-name p11proxy -enforce-exclusivity=unchecked -I support/embedded-libc -I include \
	-Xcc -I/usr/include/p11-kit-1
EMBEDDED_HEADERS := include/p11kit_paths.h $(wildcard include/*.h include/*.modulemap support/embedded-libc/*)
EMBEDDED_LINK_FLAGS := -shared -fuse-ld=lld -L$(EMBEDDED_STDLIB_DIR) -lswiftUnicodeDataTables -lm \
	-Wl,--version-script=$(CURDIR)/support/libp11proxy.map -Wl,-z,nodelete -Wl,-z,pack-relative-relocs \
	-Wl,--gc-sections -Wl,-z,defs -Wl,-z,now
EMBEDDED_MODULES := P11ProxyConfig P11ProxyNames P11ProxyRPC P11ProxyLoader P11Proxy

SWIFT_SOURCES := $(shell find Sources include -name '*.swift' -o -name '*.h' -o -name '*.modulemap' 2>/dev/null)

# The `p11proxy` command (Sources/P11ProxyCLI), runnable without a Swift toolchain: SwiftPM with
# the full stdlib linked in statically (it uses swift-argument-parser). Installed from CLI_BIN.
CLI_BIN := $(BUILD_DIR)/bin/p11proxy
# -z now: full RELRO, as for the module.
SWIFT_BUILD_FLAGS := -c release -Xswiftc -static-stdlib -Xswiftc -use-ld=lld -Xlinker -z -Xlinker now \
	--disable-local-rpath
SWIFT_CLI_FLAGS := $(SWIFT_BUILD_FLAGS) --product p11proxy-cli

# ThreadSanitizer: the shipped module's Embedded Swift build again with -sanitize=thread, and
# the C tests and mocks built with the toolchain's clang against the same TSan runtime (the one
# swiftc's instrumentation is made for; it intercepts libdispatch, hence -ldispatch).
SWIFT_RUNTIME_DIR := $(SWIFT_BIN_DIR)/../lib/swift/linux
TSAN_RUNTIME_DIR := $(shell $(SWIFT_BIN_DIR)/clang -print-resource-dir 2>/dev/null)/lib/linux
TSAN_PROXY_SO := $(BUILD_DIR)/lib-tsan/libp11proxy.so
export TSAN_PROXY_SO
export TSAN_CC := $(SWIFT_BIN_DIR)/clang -shared-libsan
export TSAN_LDLIBS := -Wl,-rpath,$(TSAN_RUNTIME_DIR) -L$(SWIFT_RUNTIME_DIR) -Wl,-rpath,$(SWIFT_RUNTIME_DIR) -ldispatch -lBlocksRuntime
export TSAN_LIBRARY_PATH := $(SWIFT_RUNTIME_DIR):$(TSAN_RUNTIME_DIR)

# AddressSanitizer, built the same way (and the same runtime directory): the proxy with
# -sanitize=address, the mocks and C tests with the toolchain's clang -fsanitize=address.
ASAN_PROXY_SO := $(BUILD_DIR)/lib-asan/libp11proxy.so
export ASAN_PROXY_SO
export ASAN_CC := $(TSAN_CC)
export ASAN_LDLIBS := $(TSAN_LDLIBS)
export ASAN_LIBRARY_PATH := $(TSAN_LIBRARY_PATH)
export ASAN_RUNTIME := $(TSAN_RUNTIME_DIR)/libclang_rt.asan-x86_64.so

.PHONY: build cli deps demo test bench generate check-generated tsan tsan-build asan asan-build clean

build: $(PROXY_SO) $(CLI_BIN)

cli: $(CLI_BIN)

# Installs missing packages only, so repeated runs cost nothing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# p11-kit's own paths, from pkg-config at build time (no hard-coded guesses).
include/p11kit_paths.h: | deps
	@sysconf=$$(pkg-config --variable=sysconfdir p11-kit-1); \
	{ echo "/* Written by make from pkg-config p11-kit-1; not committed. */"; \
	  echo "#define P11PROXY_P11_MODULE_PATH \"$$(pkg-config --variable=p11_module_path p11-kit-1)\""; \
	  echo "#define P11PROXY_P11_SYSTEM_CONFIG \"$$sysconf/pkcs11/pkcs11.conf\""; \
	  echo "#define P11PROXY_P11_SYSTEM_CONFIG_MODULES \"$$sysconf/pkcs11/modules\""; \
	  echo "#define P11PROXY_P11_PACKAGE_CONFIG_MODULES \"$$(pkg-config --variable=p11_module_configs p11-kit-1)\""; \
	} > $@

# One whole-module compile per target ($(1)), after the targets it imports ($(2)), for build
# $(3): embedded (the module), embedded-tsan and embedded-asan (the same with a sanitizer).
EMBEDDED_BUILD_FLAGS_embedded :=
EMBEDDED_BUILD_FLAGS_embedded-tsan := -sanitize=thread
EMBEDDED_BUILD_FLAGS_embedded-asan := -sanitize=address
define embedded_module
$(BUILD_DIR)/$(3)/$(1).o: $(shell find Sources/$(1) -name '*.swift') $(foreach d,$(2),$(BUILD_DIR)/$(3)/$(d).o) $(EMBEDDED_HEADERS) | deps
	@mkdir -p $(BUILD_DIR)/$(3)
	swiftc $(EMBEDDED_FLAGS) $(EMBEDDED_BUILD_FLAGS_$(3)) -I $(BUILD_DIR)/$(3) -module-name $(1) \
		-emit-module-path $(BUILD_DIR)/$(3)/$(1).swiftmodule -c -o $$@ $$(filter %.swift,$$^)
endef
$(foreach build,embedded embedded-tsan embedded-asan,\
	$(eval $(call embedded_module,P11ProxyConfig,,$(build)))\
	$(eval $(call embedded_module,P11ProxyNames,,$(build)))\
	$(eval $(call embedded_module,P11ProxyRPC,,$(build)))\
	$(eval $(call embedded_module,P11ProxyLoader,P11ProxyConfig P11ProxyNames P11ProxyRPC,$(build)))\
	$(eval $(call embedded_module,P11Proxy,P11ProxyConfig P11ProxyNames P11ProxyRPC P11ProxyLoader,$(build))))

$(PROXY_SO): $(EMBEDDED_MODULES:%=$(BUILD_DIR)/embedded/%.o) support/libp11proxy.map Makefile
	@mkdir -p $(@D)
	$(SWIFT_BIN_DIR)/clang -o $@ $(filter %.o,$^) $(EMBEDDED_LINK_FLAGS)

# The sanitizer runtime is a shared library of the toolchain's clang (-shared-libsan): the C
# tests load the same one, and pkcs11-tool gets it by LD_PRELOAD (scripts/sanitizer-integration.sh).
$(TSAN_PROXY_SO): $(EMBEDDED_MODULES:%=$(BUILD_DIR)/embedded-tsan/%.o) support/libp11proxy.map Makefile
	@mkdir -p $(@D)
	$(SWIFT_BIN_DIR)/clang -fsanitize=thread -shared-libsan -o $@ $(filter %.o,$^) $(EMBEDDED_LINK_FLAGS)

$(ASAN_PROXY_SO): $(EMBEDDED_MODULES:%=$(BUILD_DIR)/embedded-asan/%.o) support/libp11proxy.map Makefile
	@mkdir -p $(@D)
	$(SWIFT_BIN_DIR)/clang -fsanitize=address -shared-libsan -o $@ $(filter %.o,$^) $(EMBEDDED_LINK_FLAGS)

# The Makefile too: swift build then sees changed flags itself (a no-op when none changed).
$(CLI_BIN): include/p11kit_paths.h $(SWIFT_SOURCES) Package.swift Makefile | deps
	swift build $(SWIFT_CLI_FLAGS)
	@mkdir -p $(@D)
	cp .build/release/p11proxy-cli $@

# Man pages and shell completions, built from the command itself rather than committed: they
# are outputs of the built command, as the command is, so they cannot go stale and no check
# is needed for it (the generated Swift sources are committed because they are its inputs).
# p11proxy(1) comes from swift-argument-parser's generate-manual plugin over the command's
# argument definitions (scripts/generate-manual.sh; the plugin shares the command's release
# build, so it costs a build of the generator once); p11proxy.module(5) is written by hand
# (man/). Completions: the parser's own scripts for bash, zsh and fish.
MAN_DIR := $(BUILD_DIR)/man
MAN_PAGES := $(MAN_DIR)/p11proxy.1 $(MAN_DIR)/p11proxy.module.5
COMPLETIONS_DIR := $(BUILD_DIR)/completions
COMPLETIONS := $(COMPLETIONS_DIR)/p11proxy.bash $(COMPLETIONS_DIR)/_p11proxy $(COMPLETIONS_DIR)/p11proxy.fish
.PHONY: man completions
man: $(MAN_PAGES)
completions: $(COMPLETIONS)

$(MAN_DIR)/p11proxy.1: $(CLI_BIN) scripts/generate-manual.sh
	SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" bash scripts/generate-manual.sh $@

$(MAN_DIR)/p11proxy.module.5: man/p11proxy.module.5
	@mkdir -p $(@D)
	cp $< $@

$(COMPLETIONS_DIR)/p11proxy.bash: SHELL_NAME := bash
$(COMPLETIONS_DIR)/_p11proxy: SHELL_NAME := zsh
$(COMPLETIONS_DIR)/p11proxy.fish: SHELL_NAME := fish
# The bash script starts with #!/bin/bash, but completions are sourced, never run (lintian:
# bash-completion-with-hashbang): the first line goes if it is one.
$(COMPLETIONS): $(CLI_BIN)
	@mkdir -p $(@D)
	$(CLI_BIN) --generate-completion-script $(SHELL_NAME) | sed '1{/^#!/d}' >$@.tmp
	mv -f $@.tmp $@

tsan-build: $(TSAN_PROXY_SO) c-tests-tsan

asan-build: $(ASAN_PROXY_SO) c-tests-asan

# The C tests (stress test included) with the proxy, the mocks and the programs under TSan;
# any report fails the program (TSan's exit code 66). Then the SoftHSM2 pkcs11-tool test with
# the TSan proxy (scripts/sanitizer-integration.sh).
tsan: tsan-build
	LD_LIBRARY_PATH=$(TSAN_LIBRARY_PATH) P11TEST_NO_BUILD=1 bash Tests/C/run.sh $(TSAN_PROXY_SO) $(BUILD_DIR)/mock-tsan $(BUILD_DIR)/tests-tsan
	bash scripts/sanitizer-integration.sh tsan

# The C tests and the SoftHSM2 pkcs11-tool test with the proxy under AddressSanitizer (leaks
# included); any report fails (scripts/sanitizer-integration.sh: pkcs11-tool gets the runtime
# by LD_PRELOAD).
asan: asan-build
	LD_LIBRARY_PATH=$(ASAN_LIBRARY_PATH) P11TEST_NO_BUILD=1 bash Tests/C/run.sh $(ASAN_PROXY_SO) $(BUILD_DIR)/mock-asan $(BUILD_DIR)/tests-asan
	bash scripts/sanitizer-integration.sh asan

# libFuzzer targets (Tests/Fuzz/README.md), each built by swiftc directly into
# build/fuzz/NAME-fuzz (not SwiftPM) from its entry file and the sources it fuzzes: the config
# reader and the pkcs11: URI parser (P11ProxyConfig), the trace statistics reader
# (P11ProxyTraceStats), the RPC reply decoder (P11ProxyRPC). `make fuzz` runs each for a fixed
# number of inputs from a fixed seed.
FUZZERS := config uri trace rpc
FUZZ_BINS := $(FUZZERS:%=$(BUILD_DIR)/fuzz/%-fuzz)
FUZZ_SWIFTC := swiftc -sanitize=fuzzer,address -parse-as-library -O -use-ld=lld -package-name p11proxy
$(BUILD_DIR)/fuzz/config-fuzz: Tests/Fuzz/ConfigFuzz.swift
$(BUILD_DIR)/fuzz/uri-fuzz: Tests/Fuzz/URIFuzz.swift
$(BUILD_DIR)/fuzz/config-fuzz $(BUILD_DIR)/fuzz/uri-fuzz: $(wildcard Sources/P11ProxyConfig/*.swift) Tests/Fuzz/FuzzSupport.swift
	@mkdir -p $(@D)
	$(FUZZ_SWIFTC) -module-name P11ProxyConfigFuzz $(filter %.swift,$^) -o $@
$(BUILD_DIR)/fuzz/trace-fuzz: Tests/Fuzz/TraceStatsFuzz.swift $(wildcard Sources/P11ProxyTraceStats/*.swift)
	@mkdir -p $(@D)
	$(FUZZ_SWIFTC) -module-name P11ProxyTraceStatsFuzz $(filter %.swift,$^) -o $@

$(BUILD_DIR)/fuzz/rpc-fuzz: Tests/Fuzz/RPCReplyFuzz.swift $(shell find Sources/P11ProxyRPC -name '*.swift') \
		include/module.modulemap include/p11proxy_libc.h
	@mkdir -p $(@D)
	$(FUZZ_SWIFTC) -module-name P11ProxyRPCFuzz -I include -Xcc -I/usr/include/p11-kit-1 $(filter %.swift,$^) -o $@

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	status=0; for name in $(FUZZERS); do bash Tests/Fuzz/run.sh $$name || status=1; done; exit $$status

# The benchmark: prints its tables (also build/bench/results.md); not a test.
# THREADS="1 2 4 8 16": the thread counts of the scaling table (default 1 2).
bench: build deps
	BENCH_THREADS="$(THREADS)" bash scripts/bench.sh

# How fast `p11proxy stats` reads text and JSON traces (MB/s; build/bench-stats/results.md).
.PHONY: bench-stats
bench-stats: $(CLI_BIN)
	bash scripts/bench-stats.sh

generate:
	swift run p11proxy-generate $(CURDIR)

check-generated:
	swift run p11proxy-generate --check $(CURDIR)

include Tests/C/tests.mk

demo: build
	bash scripts/demo.sh

# Everything, with one closing line "N passed, N failed" (scripts/run-tests.sh).
test: build tsan-build asan-build fuzz-build deps python-venv pykcs11-tests deb
	bash scripts/run-tests.sh

# Install (scripts/install.sh): libp11proxy.so into p11-kit's module directory and
# p11proxy.module where p11-kit reads it, so `p11-kit list-modules` shows p11proxy. PREFIX=/usr
# (packagers, with DESTDIR): pkg-config's p11_module_path and p11_module_configs exactly.
# Any other PREFIX: the library under PREFIX (p11_module_path with prefix=PREFIX) and the
# .module in p11-kit's system config dir (sysconfdir/pkcs11/modules), the one directory
# p11-kit reads that is meant for local additions, naming the library by absolute path.
# PROXY_CONFIG_DIR=DIR adds `x-init-reserved: config-dir=DIR` to the installed .module.
# `make uninstall` with the same PREFIX/DESTDIR removes what the install's manifest lists.
P11KIT_MODULE_DIR = $(shell pkg-config --variable=p11_module_path p11-kit-1)
INSTALL_MODULE_DIR ?= $(shell pkg-config --define-variable=prefix=$(PREFIX) --variable=p11_module_path p11-kit-1)
INSTALL_MODULE_CONF_DIR ?= $(if $(filter /usr,$(patsubst %/,%,$(PREFIX))),$(shell pkg-config --variable=p11_module_configs p11-kit-1),$(shell pkg-config --variable=sysconfdir p11-kit-1)/pkcs11/modules)
BINDIR ?= $(PREFIX)/bin
PROXY_CONFIG_DIR ?=
# Man pages under PREFIX/share/man; completions where each shell looks: Debian's directories
# for PREFIX=/usr, otherwise the same under PREFIX/share (bash-completion and fish search
# $$XDG_DATA_DIRS, /usr/local/share by default), except zsh, whose Debian fpath has no
# vendor-completions under /usr/local but does have /usr/local/share/zsh/site-functions.
MANDIR ?= $(PREFIX)/share/man
BASH_COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
ZSH_COMPLETION_DIR ?= $(PREFIX)/share/zsh/$(if $(filter /usr,$(patsubst %/,%,$(PREFIX))),vendor-completions,site-functions)
FISH_COMPLETION_DIR ?= $(PREFIX)/share/fish/vendor_completions.d
INSTALL_ENV = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" MODULE_DIR="$(INSTALL_MODULE_DIR)" \
	MODULE_CONF_DIR="$(INSTALL_MODULE_CONF_DIR)" P11KIT_MODULE_DIR="$(P11KIT_MODULE_DIR)" \
	BINDIR="$(BINDIR)" CLI_BIN="$(CLI_BIN)" PROXY_SO="$(PROXY_SO)" PROXY_CONFIG_DIR="$(PROXY_CONFIG_DIR)" \
	MANDIR="$(MANDIR)" MAN_BUILD_DIR="$(MAN_DIR)" BASH_COMPLETION_DIR="$(BASH_COMPLETION_DIR)" \
	ZSH_COMPLETION_DIR="$(ZSH_COMPLETION_DIR)" FISH_COMPLETION_DIR="$(FISH_COMPLETION_DIR)" \
	COMPLETIONS_BUILD_DIR="$(COMPLETIONS_DIR)"

# python-pkcs11 from PyPI for Tests/integration/test_python_pkcs11.sh (pinned versions).
PYTHON_VENV := $(BUILD_DIR)/venv
.PHONY: python-venv
python-venv: $(PYTHON_VENV)/.installed
$(PYTHON_VENV)/.installed: Tests/integration/python-requirements.txt | deps
	python3 -m venv $(PYTHON_VENV)
	$(PYTHON_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	@touch $@

# PyKCS11's own test suite, from its sdist on PyPI (the version pinned in python-requirements.txt),
# for Tests/integration/test_real_clients.sh.
PYKCS11_VERSION := $(shell sed -n 's/^PyKCS11==//p' Tests/integration/python-requirements.txt)
.PHONY: pykcs11-tests
pykcs11-tests: $(BUILD_DIR)/pykcs11/.unpacked
$(BUILD_DIR)/pykcs11/.unpacked: $(PYTHON_VENV)/.installed
	rm -rf $(BUILD_DIR)/pykcs11 && mkdir -p $(BUILD_DIR)/pykcs11
	$(PYTHON_VENV)/bin/pip download -q --disable-pip-version-check --no-deps --no-binary :all: --no-build-isolation \
		-d $(BUILD_DIR)/pykcs11 PyKCS11==$(PYKCS11_VERSION)
	tar -xzf $(BUILD_DIR)/pykcs11/pykcs11-$(PYKCS11_VERSION).tar.gz -C $(BUILD_DIR)/pykcs11 --strip-components=1
	@touch $@

.PHONY: install install-strip uninstall
install install-strip: build $(CLI_BIN) man completions
	$(INSTALL_ENV) bash scripts/install.sh $@

uninstall:
	$(INSTALL_ENV) bash scripts/install.sh uninstall

# A Debian package of what `make install-strip PREFIX=/usr` installs (scripts/build-deb.sh):
# build/deb/p11proxy_VERSION_ARCH.deb; `lintian` on it is part of Tests/integration/test_deb.sh.
DEB_DIR := $(BUILD_DIR)/deb
.PHONY: deb
deb: build man completions | deps
	rm -rf $(DEB_DIR)
	$(MAKE) --no-print-directory install-strip PREFIX=/usr DESTDIR=$(abspath $(DEB_DIR))/debian/p11proxy
	bash scripts/build-deb.sh $(DEB_DIR)

clean:
	rm -rf .build $(BUILD_DIR) include/p11kit_paths.h
