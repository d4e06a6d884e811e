// A handshake held open: a tc program (egress of the client's veth, clsact,
// direct action) that loses every pure ACK from client ports 31120-31139
// (a few per run of a test; below the ephemeral range, so that no other
// connection takes them), so that the server's side of such a connection
// stays in SYN_RCVD until the client sends data (whose segment carries the
// ACK), or holds data unacknowledged. tests/shim/shim-listener-share.sh
// hands a listener to the kernel while such a handshake is under way;
// tests/shim/shim-exec-handover.sh hands a connection over with data B has
// not acknowledged.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define HELD_CLIENT_PORTS 31120

SEC("tc/drop_pure_ack")
int drop_pure_ack(struct __sk_buff* skb) {
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5) return TC_ACT_OK;
  struct tcphdr* tcp = (void*)ip + ip->ihl * 4;
  if ((void*)(tcp + 1) > end) return TC_ACT_OK;
  const __u16 sport = bpf_ntohs(tcp->source);
  if (sport < HELD_CLIENT_PORTS || sport >= HELD_CLIENT_PORTS + 20) return TC_ACT_OK;
  const int payload = (int)bpf_ntohs(ip->tot_len) - ip->ihl * 4 - tcp->doff * 4;
  const int pure_ack = tcp->ack && !tcp->syn && !tcp->fin && !tcp->rst && !tcp->psh && payload == 0;
  // (STOLEN, as tc_loss.bpf.c says: gone, not a send failure the sender sees.)
  return pure_ack ? TC_ACT_STOLEN : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
