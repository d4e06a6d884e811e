// A reordering wire for the loss-recovery tests: a tc program (clsact,
// direct action, on either hook) that holds a random share of TCP segments
// carrying data and lets the next frames of that CPU go ahead before
// sending the held one. This kernel has neither netem nor fq (whose
// departure times a tc program could set), so the program moves frames
// itself: it keeps the held frame's bytes in a map, and when its turn comes
// it sends the current frame ahead as a clone (bpf_clone_redirect to the
// same hook) and rewrites the current frame into the held one.
//
// Order seen by the receiver, for a frame N held and k = kPassedAhead:
// - egress: N+1 .. N+k, then N (the clone leaves at once);
// - ingress: N+1 .. N+k-1, N, then N+k (the clone waits in the CPU's
//   backlog while the rewritten frame goes on up).
// (Ingress: while the backlog is empty; the clone joins its tail.) Only
// IPv4 TCP frames go ahead or carry the held frame: ARP or IPv6 bytes would
// keep their own protocol and checksum state, and a held frame rewritten
// into them would be lost. A held frame waits for later TCP frames on the
// same CPU; one that never sees any (the end of a transfer) is lost, as on
// a wire that drops it; so is one whose clone a device drops.
//
// reorder_counts[0]: frames held; [1]: frames sent late.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define kMaxFrame 1514   // MTU 1500 and the Ethernet header
#define kPassedAhead 3   // frames that overtake a held one
#define kOurClone 0x5e0de7

struct held_frame {
  __u32 len;    // 0: none held
  __u32 ahead;  // frames that went ahead of it so far
  __u8 bytes[kMaxFrame];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct held_frame);
} held SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u64);
} reorder_counts SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64* n = bpf_map_lookup_elem(&reorder_counts, &which);
  if (n) __sync_fetch_and_add(n, 1);
}

enum { kNotTcp, kTcpNoData, kTcpData };

// What the frame is: IPv4 TCP with data, IPv4 TCP without (a handshake or a
// bare ACK), or anything else.
static __always_inline int classify(struct __sk_buff* skb) {
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return kNotTcp;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5) return kNotTcp;
  struct tcphdr* tcp = (void*)ip + ip->ihl * 4;
  if ((void*)(tcp + 1) > end) return kNotTcp;
  return bpf_ntohs(ip->tot_len) > ip->ihl * 4 + tcp->doff * 4 ? kTcpData : kTcpNoData;
}

static __always_inline int reorder(struct __sk_buff* skb, __u32 per_million, __u64 hook) {
  if (skb->mark == kOurClone) {  // a frame we sent ahead, passing again
    skb->mark = 0;
    return TC_ACT_OK;
  }
  const int what = classify(skb);
  if (what == kNotTcp) return TC_ACT_OK;
  __u32 key = 0;
  struct held_frame* h = bpf_map_lookup_elem(&held, &key);
  if (!h) return TC_ACT_OK;
  if (h->len) {
    if (++h->ahead < kPassedAhead) return TC_ACT_OK;
    // This frame goes ahead as a clone; the held one takes its place.
    const __u32 mark = skb->mark;
    skb->mark = kOurClone;
    const long sent = bpf_clone_redirect(skb, skb->ifindex, hook);
    skb->mark = mark;
    if (sent != 0) return TC_ACT_OK;  // (held for the next frame)
    __u32 len = h->len;
    h->len = 0;
    if (len > kMaxFrame || len < ETH_HLEN) return TC_ACT_SHOT;
    if (bpf_skb_change_tail(skb, len, 0) || bpf_skb_store_bytes(skb, 0, h->bytes, len, 0))
      return TC_ACT_SHOT;
    count(1);
    return TC_ACT_OK;
  }
  if (what != kTcpData || bpf_get_prandom_u32() % 1000000 >= per_million) return TC_ACT_OK;
  __u32 len = skb->len;
  if (len > kMaxFrame || len < ETH_HLEN) return TC_ACT_OK;
  if (bpf_skb_load_bytes(skb, 0, h->bytes, len)) return TC_ACT_OK;
  h->len = len;
  h->ahead = 0;
  count(0);
  // STOLEN, not SHOT: on egress the sender takes it for sent.
  return TC_ACT_STOLEN;
}

SEC("tc/reorder_ingress_1") int reorder_ingress_1(struct __sk_buff* skb) {
  return reorder(skb, 10000, BPF_F_INGRESS);
}
SEC("tc/reorder_egress_1") int reorder_egress_1(struct __sk_buff* skb) {
  return reorder(skb, 10000, 0);
}

char LICENSE[] SEC("license") = "GPL";
