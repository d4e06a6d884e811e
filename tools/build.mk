# tools/: the xdpload wrapper (a script, tools/xdpload), xdpload-tune (the
# host audit, tools/tune/), xdpload-stat (reads
# the statistics segments of running processes) and xdpload-options (the
# option table, for the wrapper and the README).

XSTAT := $(BUILD)/xdpload-stat
XOPTIONS := $(BUILD)/xdpload-options
XBROKER := $(BUILD)/xdpload-broker
XTUNE := $(BUILD)/xdpload-tune
ALL += $(XSTAT) $(XOPTIONS) $(XBROKER) $(XTUNE)

$(BUILD)/tools/%.o: tools/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(XSTAT): $(BUILD)/tools/xdpload_stat.o $(BUILD)/tools/stat_shm.o
	$(CXX) $^ -o $@

# The broker (`xdpload daemon`): rings/ plus its own rooms in tools/broker/.
BROKER_OBJS := $(patsubst tools/broker/%.cc,$(BUILD)/tools/broker/%.o,$(wildcard tools/broker/*.cc))
$(XBROKER): $(BROKER_OBJS) $(RINGS_LIB)
	$(CXX) $^ $(RINGS_LIBS) -o $@

# The host audit (`xdpload tune`): its own rooms in tools/tune/, and the
# library's rule for trusting the TSC.
TUNE_OBJS := $(patsubst tools/tune/%.cc,$(BUILD)/tools/tune/%.o,$(wildcard tools/tune/*.cc))
$(XTUNE): $(TUNE_OBJS) $(BUILD)/tools/tsc_clock.o
	$(CXX) $^ -o $@
$(BUILD)/tools/tsc_clock.o: shim/clock/tsc_clock.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

# The same listing of statistics segments the library makes them for.
$(BUILD)/tools/stat_shm.o: shim/stats/stat_shm.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

# The same config.cc the library parses the environment with.
$(BUILD)/tools/config.o: shim/runtime/config.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(TEST_CXXFLAGS) -MMD -c $< -o $@

$(XOPTIONS): $(BUILD)/tools/xdpload_options.o $(BUILD)/tools/config.o
	$(CXX) $^ -o $@

# The README's option table is generated from shim/runtime/options.def.
.PHONY: readme-options
readme-options: $(XOPTIONS)
	tools/update-readme-options.sh $(XOPTIONS) README.md
