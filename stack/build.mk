# stack/: lwIP 2.1.3 (Debian's source package, our lwipopts.h) and the
# netif driver, Stack and kernel control-plane glue around it.

# Debian's tree stays pristine; the build compiles a copy with the series in
# stack/lwip/patches/ applied (each patch's header says what and why).
LWIP_PATCH_DIR := stack/lwip/patches
LWIP_PATCHES   := $(addprefix $(LWIP_PATCH_DIR)/,$(shell sed -e 's/\#.*//' $(LWIP_PATCH_DIR)/series))
LWIP_TREE  := $(BUILD)/lwip-patched
LWIP_SRC   := $(LWIP_TREE)/src
LWIP_READY := $(LWIP_TREE)/.applied
LWIP_C   := core/init.c core/def.c core/inet_chksum.c core/ip.c core/mem.c core/memp.c \
            core/netif.c core/pbuf.c core/stats.c core/sys.c core/tcp.c core/tcp_in.c \
            core/tcp_out.c core/tcp_recovery.c core/tcp_cc.c core/timeouts.c core/udp.c \
            core/ipv4/icmp.c core/ipv4/igmp.c core/ipv4/ip4.c core/ipv4/ip4_addr.c \
            core/ipv4/ip4_frag.c netif/ethernet.c
LWIP_OBJS := $(LWIP_C:%.c=$(BUILD)/lwip/%.o)
LWIP_INC  := -Istack/lwip -I$(LWIP_SRC)/include
# lwIP is C; warnings in its code are not ours to fix. Its writable globals
# are renamed into the sections family/family.ld shares between the
# processes of a family (family/shared_globals.h).
LWIP_CFLAGS := -std=gnu11 $(OPT) -g -fPIC -fvisibility=hidden -w $(SANITIZE)

STACK_SRCS := stack/netlink.cc stack/interface_info.cc stack/kernel_routes.cc \
              stack/neighbours.cc stack/lwip_port.cc stack/link_netif.cc stack/link_netif_udp.cc stack/stack.cc \
              stack/pcap_writer.cc
STACK_OBJS := $(STACK_SRCS:%.cc=$(BUILD)/%.o)
STACK_LIB  := $(BUILD)/libstack.a
ALL += $(STACK_LIB)

$(LWIP_READY): $(LWIP_PATCH_DIR)/series $(LWIP_PATCHES) | $(DEPS_STAMP)
	rm -rf $(LWIP_TREE) && mkdir -p $(LWIP_TREE) && cp -a $(LWIP_DIR)/src $(LWIP_TREE)/
	@for p in $(LWIP_PATCHES); do \
	  echo "lwip: applying $$p"; \
	  patch -d $(LWIP_TREE) -p1 --batch --quiet --no-backup-if-mismatch < $$p || exit 1; \
	done
	touch $@

$(BUILD)/lwip/%.o: $(LWIP_READY) stack/lwip/lwipopts.h stack/lwip/arch/cc.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LWIP_INC) $(LWIP_CFLAGS) -c $(LWIP_SRC)/$*.c -o $@.tmp
	objcopy --rename-section .data=.xdpload_family.data \
	  --rename-section .bss=.xdpload_family.bss $@.tmp $@ && rm -f $@.tmp

$(BUILD)/stack/%.o: stack/%.cc | $(DEPS_STAMP) $(LWIP_READY)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LWIP_INC) $(LIB_CXXFLAGS) -MMD -c $< -o $@

$(STACK_LIB): $(STACK_OBJS) $(LWIP_OBJS)
	rm -f $@ && ar rcs $@ $^
