# tools/: xdpload-stat (reads the statistics segments of running processes).

XSTAT := $(BUILD)/xdpload-stat
ALL += $(XSTAT)

$(BUILD)/tools/%.o: tools/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(XSTAT): $(BUILD)/tools/xdpload_stat.o
	$(CXX) $^ -o $@
