# tests/: unit tests (GoogleTest), helper programs for the integration tests.

UNIT_DEPS := $(RINGS_LIB)
UNIT_LIBS := $(RINGS_LIBS)
TEST_PROGS := $(BUILD)/tests/xsk_exchange $(BUILD)/tests/xsk_probe
ALL += $(TEST_PROGS)

$(BUILD)/tests/%.o: tests/progs/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/tests/xsk_exchange $(BUILD)/tests/xsk_probe: $(BUILD)/tests/%: $(BUILD)/tests/%.o $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@

# Unit tests: one GoogleTest binary per file in tests/unit/.
UNIT_SRCS  := $(wildcard tests/unit/*_test.cc)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.cc=$(BUILD)/tests/unit/%)
ALL += $(UNIT_TESTS)

$(BUILD)/tests/unit/%.o: tests/unit/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(BUILD)/tests/unit/%_test: $(BUILD)/tests/unit/%_test.o $(UNIT_DEPS)
	$(CXX) $< $(UNIT_DEPS) -lgtest_main -lgtest -pthread $(UNIT_LIBS) -o $@
