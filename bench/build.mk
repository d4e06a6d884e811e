# bench/: benchmark programs (never run by make test). bench/run.sh drives
# them with sockperf, iperf3, redis-benchmark, wrk and hyperfine.

BENCH_PROGS := $(BUILD)/bench/clock_bench $(BUILD)/bench/xsk_pingpong $(BUILD)/bench/stack_path_bench \
  $(BUILD)/bench/udp_pingpong $(BUILD)/bench/fork_cost $(BUILD)/bench/stamp_offset \
  $(BUILD)/bench/xsk_bulk
ALL += $(BENCH_PROGS)

$(BUILD)/bench/fork_cost: bench/fork_cost.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -o $@ $<

$(BUILD)/bench/%.o: bench/%.cc | $(DEPS_STAMP) $(LWIP_READY)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/bench/clock_bench: $(BUILD)/bench/clock_bench.o
	$(CXX) $^ -lbenchmark -pthread -ldl -o $@

# The raw AF_XDP floor: rings/ only.
$(BUILD)/bench/xsk_pingpong: $(BUILD)/bench/xsk_pingpong.o $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@

# The same floor under a bulk transfer (loss section).
$(BUILD)/bench/xsk_bulk: $(BUILD)/bench/xsk_bulk.o $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@

# The stack's share of a round trip, over the FakeLink test double.
$(BUILD)/bench/stack_path_bench.o: bench/stack_path_bench.cc | $(DEPS_STAMP) $(LWIP_READY)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LWIP_INC) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/bench/stack_path_bench: $(BUILD)/bench/stack_path_bench.o $(STACK_LIB) $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -lbenchmark -pthread -o $@

# The offset of xdpload's receive stamps from the kernel's (stamps section).
$(BUILD)/bench/stamp_offset: $(BUILD)/bench/stamp_offset.o
	$(CXX) $^ -o $@

# The leanest socket-API ping-pong, to run under xdpload beside sockperf.
$(BUILD)/bench/udp_pingpong: $(BUILD)/bench/udp_pingpong.o
	$(CXX) $^ -o $@
