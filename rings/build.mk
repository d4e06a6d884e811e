# rings/: the AF_XDP port. A static library of position-independent code
# (it ends up inside the preloaded libxdpload.so) plus the XDP program.

RINGS_SRCS := rings/umem.cc rings/xsk_port.cc rings/xsk_port_broker.cc rings/broker_client.cc rings/tcp_repair.cc rings/steering.cc rings/private_fd.cc rings/user_file.cc rings/stage_trace.cc
RINGS_OBJS := $(RINGS_SRCS:%.cc=$(BUILD)/%.o) $(BUILD)/rings/steer_obj.o
RINGS_LIB  := $(BUILD)/librings.a
RINGS_LIBS := -lbpf -lelf -lz -lnuma
STEER_BPF  := $(BUILD)/rings/steer.bpf.o
STAMP_BPF  := $(BUILD)/rings/steer_stamp.bpf.o

ALL += $(RINGS_LIB)

$(BUILD)/rings/%.o: rings/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LIB_CXXFLAGS) -MMD -c $< -o $@

# The XDP program: BPF object compiled by clang, debug info stripped (BTF
# stays: libbpf needs it for the maps), embedded into the library.
# The same source with STEER_STAMPING is the stamping variant (hardware
# receive stamps), a second object: only it needs the kernel's BTF.
$(STEER_BPF): rings/steer.bpf.c rings/steer_maps.h
	@mkdir -p $(@D)
	$(CLANG) -O2 -g -target bpf -Wall -I/usr/include/$(shell gcc -dumpmachine) -Irings \
	  -c $< -o $@.tmp
	llvm-strip -g $@.tmp -o $@ && rm -f $@.tmp
$(STAMP_BPF): rings/steer.bpf.c rings/steer_maps.h
	@mkdir -p $(@D)
	$(CLANG) -O2 -g -target bpf -Wall -I/usr/include/$(shell gcc -dumpmachine) -Irings \
	  -DSTEER_STAMPING -c $< -o $@.tmp
	llvm-strip -g $@.tmp -o $@ && rm -f $@.tmp

$(BUILD)/rings/steer_obj.o: rings/steer_obj.S $(STEER_BPF) $(STAMP_BPF)
	@mkdir -p $(@D)
	$(CC) -c -DSTEER_OBJ='"$(abspath $(STEER_BPF))"' -DSTAMP_OBJ='"$(abspath $(STAMP_BPF))"' $< -o $@

$(RINGS_LIB): $(RINGS_OBJS) $(FAMILY_OBJS)
	rm -f $@ && ar rcs $@ $^
