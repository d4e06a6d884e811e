// A lossy wire for the loss-recovery tests and benchmark: tc programs (for a
// clsact qdisc, direct action) that drop a random share of IPv4 frames.
// This kernel has no netem; `tc filter add dev IF ingress|egress bpf da obj
// tc_loss.bpf.o sec tc/loss_1` does the same for loss. One section per rate.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// TC_ACT_STOLEN, not TC_ACT_SHOT: on egress a shot frame is a local send
// failure that the sender's TCP sees and simply sends again, never a loss on
// the wire; a stolen one is reported sent, and is gone.
static __always_inline int lose(struct __sk_buff* skb, __u32 per_million) {
  if (skb->protocol != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  return bpf_get_prandom_u32() % 1000000 < per_million ? TC_ACT_STOLEN : TC_ACT_OK;
}

SEC("tc/loss_0_1") int loss_0_1(struct __sk_buff* skb) { return lose(skb, 1000); }
SEC("tc/loss_1") int loss_1(struct __sk_buff* skb) { return lose(skb, 10000); }
SEC("tc/loss_2") int loss_2(struct __sk_buff* skb) { return lose(skb, 20000); }

char LICENSE[] SEC("license") = "GPL";
