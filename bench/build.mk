# bench/: benchmark programs (never run by make test).

BENCH_PROGS := $(BUILD)/bench/clock_bench
ALL += $(BENCH_PROGS)

$(BUILD)/bench/%.o: bench/%.cc | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/bench/clock_bench: $(BUILD)/bench/clock_bench.o
	$(CXX) $^ -lbenchmark -pthread -ldl -o $@
