# Tests/C/tests.mk: builds the mock PKCS#11 modules (Tests/Mock) and the C test programs
# (Tests/C) that load the proxy exactly as a C application would.
# Included by the top Makefile; also works alone from the repository root:
#   make -f Tests/C/tests.mk mock-modules c-tests        # then: make -f Tests/C/tests.mk run-c-tests
#   make -f Tests/C/tests.mk c-tests-tsan run-c-tests-tsan
#   make -f Tests/C/tests.mk c-tests-asan                # build/mock-asan, build/tests-asan
#   make -f Tests/C/tests.mk trace-tests                 # for Tests/integration/test_trace.sh
#   make -f Tests/C/tests.mk mock-modules bench-programs # for scripts/bench.sh (Tests/Bench)
# Variables: BUILD_DIR (build), PROXY_SO (build/lib/libp11proxy.so), CC.

BUILD_DIR ?= build
PROXY_SO ?= build/lib/libp11proxy.so
CC ?= cc

# Alone, `make -f Tests/C/tests.mk` builds the tests; included, it must not steal the
# including Makefile's default goal (restored at the end of this file).
P11T_SAVED_GOAL := $(.DEFAULT_GOAL)
P11T_STANDALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),yes,)

P11T_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
P11T_MOCK_SRC := $(P11T_ROOT)/Tests/Mock/mock_module.c
P11T_MOCK_HDRS := $(wildcard $(P11T_ROOT)/Tests/Mock/*.h) $(P11T_ROOT)/include/pkcs11_3_0.h $(P11T_ROOT)/include/pkcs11_3_2.h
P11T_COMMON_SRC := $(P11T_ROOT)/Tests/C/p11test.c
P11T_COMMON_HDRS := $(P11T_ROOT)/Tests/C/p11test.h $(P11T_MOCK_HDRS)

P11T_CPPFLAGS := -I$(P11T_ROOT)/include -I/usr/include/p11-kit-1 -I$(P11T_ROOT)/Tests/Mock -I$(P11T_ROOT)/Tests/C
P11T_CFLAGS := -std=c11 -g -O2 -Wall -Wextra -pthread
TSAN_CC ?= $(CC)
# Extra libraries a TSan runtime may need (Swift's clang runtime intercepts libdispatch).
TSAN_LDLIBS ?=
P11T_TSAN_CFLAGS := -std=c11 -fsanitize=thread -g -O1 -Wall -Wextra -pthread
ASAN_CC ?= $(CC)
ASAN_LDLIBS ?=
P11T_ASAN_CFLAGS := -std=c11 -fsanitize=address -fno-omit-frame-pointer -g -O1 -Wall -Wextra -pthread
P11T_MOCK_LDFLAGS := -fPIC -shared -fvisibility=hidden -Wl,-z,defs
P11T_LDLIBS := -ldl -lpthread

P11T_MOCKS := mock-a mock-b mock-c mock-failinit mock-garbage mock-fast mock-hang mock-overreport mock-preinit \
	mock-v32 mock-v32-null mock-nointerface
P11T_PROGRAMS := test_mock_direct test_routing test_faults test_managed stress_managed test_shared_modules test_remote_faults test_remote_proxy \
	test_caller_input test_module_hang test_fork_calls test_load_cycles test_trace_secrets \
	test_trace_overreport test_trace_no_threads test_v32 test_token_filter
# Run by Tests/integration/test_trace.sh (they write traces for it to check), not by run.sh.
P11T_TRACE_PROGRAMS := trace_calls trace_concurrency

# One line per mock variant (see the top of Tests/Mock/mock_module.c).
P11T_MOCK_FLAGS_mock-a := -DMOCK_NAME='"mock-a"' -DMOCK_TAG=0xA -DMOCK_SLOTS='{1,5}' -DMOCK_V3=1
P11T_MOCK_FLAGS_mock-b := -DMOCK_NAME='"mock-b"' -DMOCK_TAG=0xB -DMOCK_SLOTS='{1}' -DMOCK_V3=0
P11T_MOCK_FLAGS_mock-c := -DMOCK_NAME='"mock-c"' -DMOCK_TAG=0xC -DMOCK_SLOTS='{7}' -DMOCK_V3=1
P11T_MOCK_FLAGS_mock-failinit := -DMOCK_NAME='"mock-failinit"' -DMOCK_TAG=0xF -DMOCK_SLOTS='{1}' -DMOCK_V3=1 \
	-DMOCK_FAIL_INIT=CKR_DEVICE_ERROR
P11T_MOCK_FLAGS_mock-garbage := -DMOCK_NAME='"mock-garbage"' -DMOCK_TAG=0xE -DMOCK_SLOTS='{1,3}' -DMOCK_V3=0 \
	-DMOCK_GARBAGE_SLOTS=1
P11T_MOCK_FLAGS_mock-fast := -DMOCK_NAME='"mock-fast"' -DMOCK_TAG=0xD -DMOCK_SLOTS='{1}' -DMOCK_V3=1 -DMOCK_FAST=1
P11T_MOCK_FLAGS_mock-hang := -DMOCK_NAME='"mock-hang"' -DMOCK_TAG=0x4 -DMOCK_SLOTS='{2}' -DMOCK_V3=1 -DMOCK_WAIT_HANG=1
P11T_MOCK_FLAGS_mock-overreport := -DMOCK_NAME='"mock-overreport"' -DMOCK_TAG=0x6 -DMOCK_SLOTS='{3}' -DMOCK_V3=1 \
	-DMOCK_OVERREPORT=1000
P11T_MOCK_FLAGS_mock-preinit := -DMOCK_NAME='"mock-preinit"' -DMOCK_TAG=0x7 -DMOCK_SLOTS='{4}' -DMOCK_V3=1 -DMOCK_PREINIT=1
P11T_MOCK_FLAGS_mock-v32 := -DMOCK_NAME='"mock-v32"' -DMOCK_TAG=0x32 -DMOCK_SLOTS='{1,5}' -DMOCK_V3=1 -DMOCK_V32=1
P11T_MOCK_FLAGS_mock-nointerface := -DMOCK_NAME='"mock-nointerface"' -DMOCK_TAG=0x9 -DMOCK_SLOTS='{3}' -DMOCK_V3=1 \
	-DMOCK_NO_INTERFACE=1
P11T_MOCK_FLAGS_mock-v32-null := -DMOCK_NAME='"mock-v32-null"' -DMOCK_TAG=0x26 -DMOCK_SLOTS='{2}' -DMOCK_V3=1 -DMOCK_V32=2

.PHONY: mock-modules c-tests c-tests-tsan c-tests-asan trace-tests bench-programs run-c-tests run-c-tests-tsan clean-c-tests

mock-modules: $(P11T_MOCKS:%=$(BUILD_DIR)/mock/lib%.so) $(BUILD_DIR)/mock/not-a-module.so

c-tests: mock-modules $(P11T_PROGRAMS:%=$(BUILD_DIR)/tests/%)

trace-tests: mock-modules $(P11T_TRACE_PROGRAMS:%=$(BUILD_DIR)/tests/%)

# OpenSSL ASYNC jobs over SoftHSM2 and stack depth per call, run by
# Tests/integration/test_openssl_async.sh; links libcrypto (libssl-dev).
.PHONY: async-tests
async-tests: mock-modules $(BUILD_DIR)/tests/test_async_jobs
$(BUILD_DIR)/tests/test_async_jobs: $(P11T_ROOT)/Tests/C/test_async_jobs.c $(P11T_COMMON_SRC) $(P11T_COMMON_HDRS)
	@mkdir -p $(@D)
	$(CC) $(P11T_CPPFLAGS) $(P11T_CFLAGS) -o $@ $< $(P11T_COMMON_SRC) $(P11T_LDLIBS) -lcrypto

# The benchmark (Tests/Bench/bench.c): not a test, run by scripts/bench.sh.
bench-programs: $(BUILD_DIR)/bench/bench

c-tests-tsan: $(P11T_MOCKS:%=$(BUILD_DIR)/mock-tsan/lib%.so) $(BUILD_DIR)/mock-tsan/not-a-module.so \
	$(P11T_PROGRAMS:%=$(BUILD_DIR)/tests-tsan/%)

c-tests-asan: $(P11T_MOCKS:%=$(BUILD_DIR)/mock-asan/lib%.so) $(BUILD_DIR)/mock-asan/not-a-module.so \
	$(P11T_PROGRAMS:%=$(BUILD_DIR)/tests-asan/%)

# Runs against whatever PROXY_SO is; building the proxy is the including Makefile's job.
run-c-tests: c-tests
	$(P11T_ROOT)/Tests/C/run.sh $(PROXY_SO) $(BUILD_DIR)/mock $(BUILD_DIR)/tests

run-c-tests-tsan: c-tests-tsan
	$(P11T_ROOT)/Tests/C/run.sh $(PROXY_SO) $(BUILD_DIR)/mock-tsan $(BUILD_DIR)/tests-tsan

clean-c-tests:
	rm -rf $(BUILD_DIR)/mock $(BUILD_DIR)/mock-tsan $(BUILD_DIR)/mock-asan $(BUILD_DIR)/tests $(BUILD_DIR)/tests-tsan \
		$(BUILD_DIR)/tests-asan $(BUILD_DIR)/bench/bench

$(BUILD_DIR)/mock/lib%.so: $(P11T_MOCK_SRC) $(P11T_MOCK_HDRS)
	@mkdir -p $(@D)
	$(CC) $(P11T_CPPFLAGS) $(P11T_CFLAGS) $(P11T_MOCK_LDFLAGS) $(P11T_MOCK_FLAGS_$*) -o $@ $< $(P11T_LDLIBS)

$(BUILD_DIR)/mock-tsan/lib%.so: $(P11T_MOCK_SRC) $(P11T_MOCK_HDRS)
	@mkdir -p $(@D)
	$(TSAN_CC) $(P11T_CPPFLAGS) $(P11T_TSAN_CFLAGS) -fPIC -shared -fvisibility=hidden $(P11T_MOCK_FLAGS_$*) \
		-o $@ $< $(P11T_LDLIBS)

$(BUILD_DIR)/mock-asan/lib%.so: $(P11T_MOCK_SRC) $(P11T_MOCK_HDRS)
	@mkdir -p $(@D)
	$(ASAN_CC) $(P11T_CPPFLAGS) $(P11T_ASAN_CFLAGS) -fPIC -shared -fvisibility=hidden $(P11T_MOCK_FLAGS_$*) \
		-o $@ $< $(P11T_LDLIBS)

# A valid shared object without C_GetFunctionList: the proxy must skip it.
$(BUILD_DIR)/mock/not-a-module.so $(BUILD_DIR)/mock-tsan/not-a-module.so $(BUILD_DIR)/mock-asan/not-a-module.so: \
		$(P11T_ROOT)/Tests/Mock/not_a_module.c
	@mkdir -p $(@D)
	$(CC) $(P11T_CFLAGS) -fPIC -shared -o $@ $<

$(BUILD_DIR)/tests/%: $(P11T_ROOT)/Tests/C/%.c $(P11T_COMMON_SRC) $(P11T_COMMON_HDRS)
	@mkdir -p $(@D)
	$(CC) $(P11T_CPPFLAGS) $(P11T_CFLAGS) -o $@ $< $(P11T_COMMON_SRC) $(P11T_LDLIBS)

$(BUILD_DIR)/bench/bench: $(P11T_ROOT)/Tests/Bench/bench.c $(P11T_ROOT)/include/p11proxy_pkcs11.h $(P11T_ROOT)/include/pkcs11_3_0.h
	@mkdir -p $(@D)
	$(CC) $(P11T_CPPFLAGS) $(P11T_CFLAGS) -o $@ $< $(P11T_LDLIBS)

$(BUILD_DIR)/tests-tsan/%: $(P11T_ROOT)/Tests/C/%.c $(P11T_COMMON_SRC) $(P11T_COMMON_HDRS)
	@mkdir -p $(@D)
	$(TSAN_CC) $(P11T_CPPFLAGS) $(P11T_TSAN_CFLAGS) -o $@ $< $(P11T_COMMON_SRC) $(P11T_LDLIBS) $(TSAN_LDLIBS)

$(BUILD_DIR)/tests-asan/%: $(P11T_ROOT)/Tests/C/%.c $(P11T_COMMON_SRC) $(P11T_COMMON_HDRS)
	@mkdir -p $(@D)
	$(ASAN_CC) $(P11T_CPPFLAGS) $(P11T_ASAN_CFLAGS) -o $@ $< $(P11T_COMMON_SRC) $(P11T_LDLIBS) $(ASAN_LDLIBS)

ifeq ($(P11T_STANDALONE),yes)
.DEFAULT_GOAL := c-tests
else
.DEFAULT_GOAL := $(P11T_SAVED_GOAL)
endif
