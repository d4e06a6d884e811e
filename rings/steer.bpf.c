// The XDP steering program: hands xdpload's own flows to its AF_XDP socket
// and every other frame to the kernel, untouched.
//
// A frame is steered when it is IPv4, not a fragment, TCP or UDP, and its
// (protocol, destination port) bit is set in `steer_bits` (for a port
// shared with a kernel socket, when its flow is one of the stack's); it goes to the
// socket of its port's program (`steer_slots`) on the queue it arrived on. ARP, ICMP, IPv6,
// fragments and all other ports go on to the kernel (XDP_PASS): the kernel
// keeps answering ARP and ping for the host and serving its own sockets.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "steer_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STEER_WORDS);
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, __u64);
} steer_bits SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STEER_SLOT_WORDS);
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, __u64);
} steer_slots SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STEER_MAX_SLOTS);
  __type(key, __u32);
  __type(value, __u32);
} steer_paused SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STEER_FLOW_PORT_WORDS);
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, __u64);
} steer_flow_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, STEER_MAX_FLOWS);
  __type(key, struct steer_flow);
  __type(value, __u8);
} steer_flows SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, STEER_XSKS);
  __type(key, __u32);
  __type(value, __u32);
} xsks SEC(".maps");

// Settings from user space: [STEER_CONF_MTU] the interface MTU.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STEER_CONF_COUNT);
  __type(key, __u32);
  __type(value, __u32);
} steer_conf SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, STEER_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} steer_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, STEER_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u64);
} queue_redirected SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64* v = bpf_map_lookup_elem(&steer_stats, &which);
  if (v) *v += 1;
}

static __always_inline void count_redirected(__u32 queue) {
  __u64* v = bpf_map_lookup_elem(&queue_redirected, &queue);
  if (v) *v += 1;
}

#ifdef STEER_STAMPING
// The stamping variant (built from this file with STEER_STAMPING, a second
// object: the kfunc below makes libbpf want the kernel's BTF, which the
// plain program must not need).
//
// The driver's hardware receive stamp (kernel 6.3+; the verifier puts the
// driver's own function in place of this call in a program bound to the
// device).
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md* ctx, __u64* timestamp) __ksym;

// Set by user space before the load (the object's only read-only data).
const volatile struct steer_stamp_conf stamp_conf = {};

// The frame's hardware stamp and the key into the metadata area before it
// (struct steer_rx_meta). A driver that keeps no metadata refuses the
// adjustment: the frame goes without, and user space, finding no key,
// takes no stamp.
static __always_inline void write_rx_meta(struct xdp_md* ctx) {
  if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct steer_rx_meta))) return;
  struct steer_rx_meta* meta = (void*)(long)ctx->data_meta;
  if ((void*)(meta + 1) > (void*)(long)ctx->data) return;
  __u64 stamp = 0;
  if (bpf_xdp_metadata_rx_timestamp(ctx, &stamp)) stamp = 0;
  if (!stamp && stamp_conf.test_fake_hw_stamp) stamp = bpf_ktime_get_ns();
  meta->hw_stamp = stamp;
  meta->key = stamp_conf.meta_key;
}
#define STAMPING 1
#else
static __always_inline void write_rx_meta(struct xdp_md* ctx) {}
#define STAMPING 0
#endif

static __always_inline int steer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;

  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) goto pass;

  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->ihl < 5) goto pass;
  // Fragments: only the first carries the port. The kernel reassembles them
  // and delivers to the backing socket that holds the same port.
  if (ip->frag_off & bpf_htons(0x3fff)) goto pass;

  __u16 port, source;
  int pure_syn = 0;  // a TCP SYN without ACK: a connection's start
  void* l4 = (void*)ip + ip->ihl * 4;
  if (ip->protocol == IPPROTO_UDP) {
    struct udphdr* udp = l4;
    if ((void*)(udp + 1) > end) goto pass;
    port = udp->dest;
    source = udp->source;
    // A UDP packet longer than the MTU is a GSO super-packet holding several
    // datagrams whose boundaries only the kernel knows: it segments them
    // into the backing socket that holds the same port.
    __u32 conf = STEER_CONF_MTU;
    __u32* mtu = bpf_map_lookup_elem(&steer_conf, &conf);
    if (mtu && *mtu && bpf_ntohs(ip->tot_len) > *mtu) goto pass;
  } else if (ip->protocol == IPPROTO_TCP) {
    struct tcphdr* tcp = l4;
    if ((void*)(tcp + 1) > end) goto pass;
    port = tcp->dest;
    source = tcp->source;
    pure_syn = tcp->syn && !tcp->ack;
  } else {
    goto pass;
  }
  __u32 bit = steer_bit(ip->protocol, bpf_ntohs(port));
  __u32 word = bit / 64;
  __u64* bits = bpf_map_lookup_elem(&steer_bits, &word);
  if (!bits || !(*bits & (1ull << (bit % 64)))) goto pass;
  // A multicast or broadcast datagram to a port that a socket not on the
  // stack holds too (the third bitmap, set by user space): every socket gets a
  // copy, the kernel's delivery.
  if (ip->protocol == IPPROTO_UDP && (eth->h_dest[0] & 1)) {
    __u32 gword = 2 * STEER_WORDS + word;
    __u64* group = bpf_map_lookup_elem(&steer_flow_ports, &gword);
    if (group && (*group & (1ull << (bit % 64)))) goto pass;
  }
  // A port shared with a kernel socket: the stack's flows only, and no new
  // connection. The kernel listens there: a SYN is its, even one reusing
  // the addresses and ports of a flow of the stack's (ended, in TIME-WAIT),
  // which from then on is the kernel's connection.
  __u64* shared = bpf_map_lookup_elem(&steer_flow_ports, &word);
  if (shared && (*shared & (1ull << (bit % 64)))) {
    struct steer_flow flow = {.remote_ip = ip->saddr, .remote_port = source,
                              .local_port = port, .proto = ip->protocol};
    if (pure_syn) {
      bpf_map_delete_elem(&steer_flows, &flow);
      goto pass;
    }
    __u8* whose = bpf_map_lookup_elem(&steer_flows, &flow);
    if (!whose || *whose != STEER_FLOW_STACK) goto pass;
  } else {
    // The stack's port, but some of its connections are the kernel's now
    // (handed over with their state). A SYN reusing one's addresses and
    // ports starts a new connection: the stack's listener's.
    __u32 eword = STEER_WORDS + word;
    __u64* excepted = bpf_map_lookup_elem(&steer_flow_ports, &eword);
    if (excepted && (*excepted & (1ull << (bit % 64)))) {
      struct steer_flow flow = {.remote_ip = ip->saddr, .remote_port = source,
                                .local_port = port, .proto = ip->protocol};
      if (pure_syn) {
        bpf_map_delete_elem(&steer_flows, &flow);
      } else {
        __u8* whose = bpf_map_lookup_elem(&steer_flows, &flow);
        if (whose && *whose == STEER_FLOW_KERNEL) goto pass;
      }
    }
  }

  __u32 queue = ctx->rx_queue_index;
  if (queue >= STEER_MAX_QUEUES) {
    count(STEER_STAT_NO_SOCKET);
    return XDP_PASS;
  }
  // Which program's sockets: the port's slot (0 for a process alone).
  __u32 sword = bit / 8;
  __u64* slots = bpf_map_lookup_elem(&steer_slots, &sword);
  __u32 slot = slots ? steer_slot_of(*slots, bit) : 0;
  if (slot) {
    __u32* paused = bpf_map_lookup_elem(&steer_paused, &slot);
    if (paused && *paused) {
      count(STEER_STAT_OVER_QUOTA);
      return XDP_DROP;
    }
  }
  __u32 key = slot * STEER_MAX_QUEUES + queue;
  if (!bpf_map_lookup_elem(&xsks, &key)) {
    // Ours, but no socket on the queue it arrived on (RSS spread it): the
    // kernel gets it. Counted, because the flow will not work.
    count(STEER_STAT_NO_SOCKET);
    return XDP_PASS;
  }
  count(STEER_STAT_REDIRECTED);
  count_redirected(queue);
  if (STAMPING) write_rx_meta(ctx);
  return bpf_redirect_map(&xsks, key, XDP_PASS);

pass:
  count(STEER_STAT_PASSED);
  return XDP_PASS;
}

// "xdp.frags": frames larger than one UMEM chunk (GRO or GSO super-packets,
// which generic XDP sees) are handed over as several descriptors instead of
// being dropped.
#ifndef STEER_STAMPING
SEC("xdp.frags")
int xdpload_steer(struct xdp_md* ctx) { return steer(ctx); }
#else
// Loaded instead of xdpload_steer, bound to the device, when hardware
// receive stamps are asked for (XDPLOAD_HW_STAMPS) and XDP runs in the
// driver.
SEC("xdp.frags")
int xdpload_stamp(struct xdp_md* ctx) { return steer(ctx); }
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";
