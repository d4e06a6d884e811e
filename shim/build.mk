# shim/: the preloaded library, build/libxdpload.so. One shared object with
# the stack and rings inside; libstdc++ linked statically so that a C program
# that loads us does not get a C++ runtime it never asked for; libbpf and
# libnuma loaded only when the stack starts (shim/lazy_libs.h).

SHIM_SRCS := shim/libc.cc shim/config.cc shim/log.cc shim/fd_table.cc shim/waiting.cc \
             shim/signals.cc shim/runtime.cc shim/tcp_socket.cc shim/udp_socket.cc \
             shim/socket_ops.cc shim/epoll_set.cc shim/intercept_socket.cc \
             shim/intercept_poll.cc shim/clock.cc shim/init.cc shim/socket.cc \
             shim/stat_publisher.cc shim/stat_dir.cc shim/tsc_clock.cc shim/intercept_privilege.cc \
             shim/rules.cc shim/lazy_libs.cc shim/runtime_family.cc shim/fatal_signals.cc
SHIM_OBJS := $(SHIM_SRCS:%.cc=$(BUILD)/%.o)
SHIM_LIB  := $(BUILD)/libxdpload.so
SHIM_MAP  := $(BUILD)/shim/libxdpload.map
ALL += $(SHIM_LIB)

$(BUILD)/shim/%.o: shim/%.cc | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LWIP_INC) $(LIB_CXXFLAGS) -MMD -c $< -o $@

# The version script exports exactly the names in the intercept table.
$(SHIM_MAP): shim/intercepts.def
	@mkdir -p $(@D)
	{ echo '{ global:'; \
	  sed -n 's/^XDPLOAD_V\?CALL([^,]*, *\([A-Za-z0-9_]*\),.*/  \1;/p' $<; \
	  echo '  local: *; };'; } > $@

$(SHIM_LIB): $(SHIM_OBJS) $(STACK_LIB) $(RINGS_LIB) $(SHIM_MAP) $(FAMILY_LDSCRIPT)
	$(CXX) -shared -o $@ $(SHIM_OBJS) $(STACK_LIB) $(RINGS_LIB) \
	  -Wl,--version-script=$(SHIM_MAP) -Wl,-T,$(FAMILY_LDSCRIPT) -Wl,-z,defs -Wl,-z,now -Wl,-z,relro \
	  -static-libstdc++ -static-libgcc -ldl -lpthread $(SANITIZE)
