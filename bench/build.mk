# bench/: benchmark programs (never run by make test). bench/run.sh drives
# them with sockperf, iperf3, redis-benchmark, wrk and hyperfine.

BENCH_PROGS := $(BUILD)/bench/clock_bench $(BUILD)/bench/xsk_pingpong
ALL += $(BENCH_PROGS)

$(BUILD)/bench/%.o: bench/%.cc | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/bench/clock_bench: $(BUILD)/bench/clock_bench.o
	$(CXX) $^ -lbenchmark -pthread -ldl -o $@

# The raw AF_XDP floor: rings/ only.
$(BUILD)/bench/xsk_pingpong: $(BUILD)/bench/xsk_pingpong.o $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@
