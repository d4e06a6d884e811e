# tests/: unit tests (GoogleTest), helper programs for the integration tests.

UNIT_DEPS := $(BUILD)/shim/clock/tsc_clock.o $(BUILD)/shim/runtime/rules.o \
             $(BUILD)/tools/broker/policy.o $(STACK_LIB) $(RINGS_LIB)
UNIT_LIBS := $(RINGS_LIBS)
TEST_PROGS := $(BUILD)/tests/xsk_exchange $(BUILD)/tests/xsk_probe $(BUILD)/tests/stack_peer \
              $(BUILD)/tests/craft_segment $(BUILD)/tests/xdpload-stat-asan
ALL += $(TEST_PROGS)

$(BUILD)/tests/%.o: tests/progs/%.cc | $(DEPS_STAMP) $(LWIP_READY)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LWIP_INC) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/tests/stack_peer: $(BUILD)/tests/stack_peer.o $(STACK_LIB) $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@

$(BUILD)/tests/xsk_exchange $(BUILD)/tests/xsk_probe: $(BUILD)/tests/%: $(BUILD)/tests/%.o $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@

$(BUILD)/tests/craft_segment: $(BUILD)/tests/craft_segment.o
	$(CXX) $^ -o $@

# xdpload-stat under AddressSanitizer and UBSan, for the tests that feed it
# crafted segments: a read out of bounds fails the test, not only a crash.
STAT_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# (Its headers, the segment's layout among them, written to $@.d: a change
# to one rebuilds it. -MMD keeps only the last source's in a one-step build.)
$(BUILD)/tests/xdpload-stat-asan: tools/xdpload_stat.cc shim/stats/stat_shm.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -MM -MT $@ $(filter %.cc,$^) >$@.d
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) $(STAT_SANITIZE) $(filter %.cc,$^) -o $@

# Unit tests: one GoogleTest binary per file in tests/unit/.
UNIT_SRCS  := $(wildcard tests/unit/*_test.cc)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.cc=$(BUILD)/tests/unit/%)
ALL += $(UNIT_TESTS)

$(BUILD)/tests/unit/%.o: tests/unit/%.cc | $(DEPS_STAMP) $(LWIP_READY)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LWIP_INC) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/tests/unit/%_test: $(BUILD)/tests/unit/%_test.o $(UNIT_DEPS)
	$(CXX) $< $(UNIT_DEPS) -lgtest_main -lgtest -pthread $(UNIT_LIBS) -o $@

# A foreign XDP program (not ours) for the tests that check we refuse to
# replace one.
ALL += $(BUILD)/tests/xdp_pass.bpf.o
$(BUILD)/tests/xdp_pass.bpf.o: tests/progs/xdp_pass.bpf.c
	@mkdir -p $(@D)
	$(CLANG) -O2 -g -target bpf -Wall -I/usr/include/$(shell gcc -dumpmachine) -c $< -o $@

# The lossy wire of the loss-recovery test and benchmark (tc programs).
ALL += $(BUILD)/tests/tc_loss.bpf.o
$(BUILD)/tests/tc_loss.bpf.o: tests/progs/tc_loss.bpf.c
	@mkdir -p $(@D)
	$(CLANG) -O2 -g -target bpf -Wall -I/usr/include/$(shell gcc -dumpmachine) -c $< -o $@

# The reordering wire of the loss-recovery test (tc programs).
ALL += $(BUILD)/tests/tc_reorder.bpf.o
$(BUILD)/tests/tc_reorder.bpf.o: tests/progs/tc_reorder.bpf.c
	@mkdir -p $(@D)
	$(CLANG) -O2 -g -target bpf -Wall -I/usr/include/$(shell gcc -dumpmachine) -c $< -o $@

# A handshake held open (a tc program losing one client port's pure ACKs).
ALL += $(BUILD)/tests/tc_drop_ack.bpf.o
$(BUILD)/tests/tc_drop_ack.bpf.o: tests/progs/tc_drop_ack.bpf.c
	@mkdir -p $(@D)
	$(CLANG) -O2 -g -target bpf -Wall -I/usr/include/$(shell gcc -dumpmachine) -c $< -o $@

# C test programs, built the way distributions build programs (fortified),
# so that the __*_chk entry points are exercised.
TEST_C_PROGS := $(BUILD)/tests/errno_parity $(BUILD)/tests/fork_child $(BUILD)/tests/clock_check \
                $(BUILD)/tests/mux_parity $(BUILD)/tests/fork_patterns $(BUILD)/tests/fork_stress \
                $(BUILD)/tests/cmsg_parity $(BUILD)/tests/zerocopy_parity $(BUILD)/tests/api_fuzz \
                $(BUILD)/tests/close_race $(BUILD)/tests/die_holding_lock $(BUILD)/tests/sendfile_parity \
                $(BUILD)/tests/hw_stamps $(BUILD)/tests/exit_flush $(BUILD)/tests/cancel_sleepers \
                $(BUILD)/tests/jump_sleepers $(BUILD)/tests/fork_epoll_handover \
                $(BUILD)/tests/pass_descriptor
ALL += $(TEST_C_PROGS)
# The extensions API's probe, linked against each stub.
# The extensions API's programs, each linked against each stub.
EXT_PROBES := $(foreach p,ext_probe ext_zero_copy,$(BUILD)/tests/$(p)_shared $(BUILD)/tests/$(p)_static)
ALL += $(EXT_PROBES)
$(BUILD)/tests/%_shared: tests/progs/%.c $(EXT_SO) include/xdpload/extensions.h
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Iinclude -o $@ $< -L$(BUILD) -l:libxdpload_ext.so -Wl,-rpath,$(abspath $(BUILD)) -pthread
$(BUILD)/tests/%_static: tests/progs/%.c $(EXT_A) include/xdpload/extensions.h
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Iinclude -o $@ $< $(EXT_A) -ldl -pthread
$(BUILD)/tests/%: tests/progs/%.c tests/progs/parity.h tests/progs/sleepers.h
	@mkdir -p $(@D)
	$(CC) -O2 -D_FORTIFY_SOURCE=2 -Wall -Wextra -o $@ $< -pthread -ldl

# Fuzz harnesses (libFuzzer, with AddressSanitizer and UBSan): the rules
# and XDPLOAD_* parsers, which read what users and files say.
FUZZ_FLAGS := -std=c++20 -O1 -g -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all
FUZZERS := $(BUILD)/fuzz/rules_fuzz $(BUILD)/fuzz/config_fuzz
ALL += $(FUZZERS)
.PHONY: fuzz
fuzz: $(FUZZERS)
$(BUILD)/fuzz/rules_fuzz: tests/fuzz/rules_fuzz.cc shim/runtime/rules.cc shim/runtime/rules.h rings/user_file.cc
	@mkdir -p $(@D)
	$(CLANG)++ $(FUZZ_FLAGS) tests/fuzz/rules_fuzz.cc shim/runtime/rules.cc rings/user_file.cc -o $@
$(BUILD)/fuzz/config_fuzz: tests/fuzz/config_fuzz.cc shim/runtime/config.cc shim/runtime/config.h shim/runtime/options.def rings/queue_list.h
	@mkdir -p $(@D)
	$(CLANG)++ $(FUZZ_FLAGS) tests/fuzz/config_fuzz.cc shim/runtime/config.cc -o $@
