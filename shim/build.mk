# shim/: the preloaded library, build/libxdpload.so. One shared object with
# the stack and rings inside; libstdc++ linked statically so that a C program
# that loads us does not get a C++ runtime it never asked for; libbpf and
# libnuma loaded only when the stack starts (shim/runtime/lazy_libs.h).

# One room a line (each room's README.md says what it holds).
SHIM_SRCS := $(addprefix shim/intercept/,libc.cc init.cc intercept_socket.cc intercept_poll.cc \
               intercept_privilege.cc intercept_exec.cc intercept_spawn.cc) \
             $(addprefix shim/socket/,socket.cc tcp_socket.cc tcp_handover.cc udp_socket.cc rx_cmsg.cc tx_stamps.cc tcp_tx_stamps.cc tcp_opt_stats.cc zerocopy_notices.cc socket_ops.cc fd_table.cc passed_connections.cc user_memory.cc) \
             $(addprefix shim/files/,file_reader.cc send_file.cc) \
             $(addprefix shim/wait/,waiting.cc epoll_set.cc signals.cc) \
             $(addprefix shim/clock/,clock.cc tsc_clock.cc) \
             $(addprefix shim/runtime/,runtime.cc runtime_family.cc handed_flows.cc group_sharing.cc fatal_signals.cc config.cc rules.cc \
               log.cc lazy_libs.cc host_settings.cc) \
             $(addprefix shim/stats/,stat_publisher.cc stat_shm.cc) \
             $(addprefix shim/ext/,extensions.cc lent_buffers.cc zero_copy.cc)
SHIM_OBJS := $(SHIM_SRCS:%.cc=$(BUILD)/%.o)
SHIM_LIB  := $(BUILD)/libxdpload.so
SHIM_MAP  := $(BUILD)/shim/libxdpload.map
ALL += $(SHIM_LIB)

$(BUILD)/shim/%.o: shim/%.cc | $(DEPS_STAMP) $(LWIP_READY)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LWIP_INC) $(LIB_CXXFLAGS) -MMD -c $< -o $@

# The version script exports exactly the names in the intercept table and
# the extensions API's (shim/ext/exports.list).
$(SHIM_MAP): shim/intercept/intercepts.def shim/ext/exports.list
	@mkdir -p $(@D)
	{ echo '{ global:'; \
	  sed -n 's/^XDPLOAD_V\?CALL([^,]*, *\([A-Za-z0-9_]*\),.*/  \1;/p' $<; \
	  sed 's/.*/  &;/' shim/ext/exports.list; \
	  echo '  local: *; };'; } > $@

$(SHIM_LIB): $(SHIM_OBJS) $(STACK_LIB) $(RINGS_LIB) $(SHIM_MAP) $(FAMILY_LDSCRIPT)
	$(CXX) -shared -o $@ $(SHIM_OBJS) $(STACK_LIB) $(RINGS_LIB) \
	  -Wl,--version-script=$(SHIM_MAP) -Wl,-T,$(FAMILY_LDSCRIPT) -Wl,-z,defs -Wl,-z,now -Wl,-z,relro \
	  -l:liburing.a -static-libstdc++ -static-libgcc -ldl -lpthread $(SANITIZE)
