/* lwIP 2.1.3 configuration for xdpload.
 *
 * One lwIP instance per process, driven by polling (NO_SYS=1, raw API):
 * whoever holds the Stack lock runs rx, input and timers. Every setting that
 * differs from lwIP's default (src/include/lwip/opt.h) says why. */
#ifndef XDPLOAD_LWIPOPTS_H
#define XDPLOAD_LWIPOPTS_H

/* ---- system ---- */
/* No OS layer: no threads, mailboxes or semaphores inside lwIP. */
#define NO_SYS 1
/* Callers are serialized by the Stack lock, not by lwIP's own critical
 * sections. */
#define SYS_LIGHTWEIGHT_PROT 0
/* The BSD-socket and netconn layers need an OS layer; the shim is our socket
 * layer. */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_ALTCP 0

/* ---- memory ---- */
/* Heap allocations (PBUF_RAM: TCP send data, UDP datagrams built by lwIP) go
 * to the C library's malloc: it scales with connection count where a fixed
 * lwIP heap would have to be sized for the worst case. */
#define MEM_LIBC_MALLOC 1
/* Pools (PCBs, segments, pbuf headers) come from malloc too: thousands of
 * PCBs with 700 segments each cannot be preallocated. Per-connection queue
 * limits (TCP_SND_QUEUELEN, windows) and the fd limit bound the total. */
#define MEMP_MEM_MALLOC 1
/* "malloc" is the family arena (family/arena.h): memory shared with the
 * children the process forks, which use the same stack. Under the core lock
 * (always, but for setup) from the stack's own free lists, without the
 * arena's lock (stack/lwip_port.cc). */
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void* xdpload_family_malloc(size_t n);
void* xdpload_family_calloc(size_t n, size_t m);
void xdpload_family_free(void* p);
#ifdef __cplusplus
}
#endif
#define mem_clib_malloc xdpload_family_malloc
#define mem_clib_calloc xdpload_family_calloc
#define mem_clib_free xdpload_family_free
#define MEM_ALIGNMENT 8
/* Unused with libc malloc, but a value above 64000 makes mem_size_t 32 bits
 * wide, which TCP_SND_BUF above 64 KiB needs. */
#define MEM_SIZE (64 * 1024 * 1024)
/* Counts for the fixed pools (ignored for limits under MEMP_MEM_MALLOC, kept
 * meaningful for the stats). */
#define MEMP_NUM_TCP_PCB 8192
#define MEMP_NUM_TCP_PCB_LISTEN 1024
#define MEMP_NUM_UDP_PCB 4096
#define MEMP_NUM_TCP_SEG 65536
#define MEMP_NUM_PBUF 65536
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 16)
/* Received frames are custom pbufs pointing into UMEM (zero-copy rx); the
 * pbuf pool only serves the rare lwIP-internal allocation. */
#define PBUF_POOL_SIZE 64
#define LWIP_SUPPORT_CUSTOM_PBUF 1
/* Room in front of every pbuf lwIP allocates for the Ethernet header, so the
 * link layer never has to chain a header pbuf in front. */
#define PBUF_LINK_HLEN 14
#define PBUF_LINK_ENCAPSULATION_HLEN 0

/* ---- link and network layers ---- */
#define LWIP_ETHERNET 1
/* The kernel owns ARP: it answers for the host address (the XDP program
 * passes ARP to it) and resolves neighbours for us (netlink). lwIP's ARP
 * would be a second, disagreeing table. */
#define LWIP_ARP 0
#define LWIP_IPV4 1
#define LWIP_IPV6 0
/* Fragments never reach lwIP (the XDP program leaves them to the kernel,
 * which reassembles them into the backing socket); sending datagrams larger
 * than the MTU still needs fragmentation. */
#define IP_REASSEMBLY 0
#define IP_FRAG 1
#define IP_DEFAULT_TTL 64
/* Linux refuses to send to a broadcast address without SO_BROADCAST. */
#define IP_SOF_BROADCAST 1
#define IP_SOF_BROADCAST_RECV 1
/* ICMP frames go to the kernel; lwIP still sends port-unreachable for a
 * datagram to a steered port nobody listens on, as Linux would. */
#define LWIP_ICMP 1
/* Multicast receive filtering (IP_ADD_MEMBERSHIP); the kernel socket joins
 * too, so that the kernel programs the NIC's filter and answers queries. */
#define LWIP_IGMP 1
#define LWIP_MULTICAST_TX_OPTIONS 1
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_DNS 0
#define LWIP_SINGLE_NETIF 0
#define LWIP_NETIF_LOOPBACK 0
/* Address-change and link callbacks are not used: the kernel's view is read
 * when a Stack starts. */
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0

/* ---- UDP ---- */
#define LWIP_UDP 1
/* SO_REUSEADDR / SO_REUSEPORT: the kernel backing socket decides whether a
 * bind is allowed; lwIP must then accept the same port twice. */
#define SO_REUSE 1
#define SO_REUSE_RXTOALL 1

/* ---- TCP ---- */
#define LWIP_TCP 1
/* glibc's <netinet/tcp.h> has a TCP_MSS of its own (512): ours must win in
 * every file that sees both, or derived sizes would differ from lwIP's. */
#undef TCP_MSS
#define TCP_MSS 1460
/* A 256 KiB receive window (Linux autotunes far higher; this is what one
 * connection may hold in UMEM frames before the application reads).
 * Window scaling makes it expressible: 65535 << 3 = 512 KiB max. */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 3
#define TCP_WND (256 * 1024)
/* A send buffer to match the window, and enough segments to fill it with
 * small writes (4 per MSS, as lwIP's sanity check suggests). */
#define TCP_SND_BUF (256 * 1024)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
/* Writable (POLLOUT) when this much of the send buffer is free. lwIP's
 * sanity check still wants it below 64 KiB minus 4 MSS. */
#define TCP_SNDLOWAT (48 * 1024)
/* ... and when the segment queue has room. A segment sent from the frame
 * its data was written into (send() of whole segments, sendfile) takes 2
 * entries, header and data: a full 256 KiB buffer of them is 360 of the
 * 718, and a third of the queue would keep a socket unwritable long after
 * its buffer had room (a buffer with 48 KiB free holds 284 entries). */
#define TCP_SNDQUEUELOWAT ((TCP_SND_QUEUELEN * 3) / 4)
/* Keep out-of-order segments, bounded: they hold UMEM frames. */
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_PBUFS 256
/* Tell the peer what we hold out of order, so it retransmits only holes. */
#define LWIP_TCP_SACK_OUT 1
#define LWIP_TCP_MAX_SACK_NUM 4
/* The fast timer sends delayed ACKs; lwIP's 250 ms default would stall a
 * Nagle-using peer for a quarter second. 20 ms is below Linux's 40 ms
 * delayed-ACK floor; the slow timer (retransmit, keepalive) ticks at 40 ms. */
#define TCP_TMR_INTERVAL 20
/* Linux gives up on an unanswered SYN after 6 retries and on data after 15;
 * lwIP's backoff table tops out earlier, so these are its equivalents. */
#define TCP_MAXRTX 12
#define TCP_SYNMAXRTX 6
/* Bounds connections in the handshake per listener (lwIP counts them in a
 * u8_t). The backlog of listen(fd, n) is the shim's accept queue. */
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 255
/* TIME_WAIT lasts 2 MSL: 60 s, as on Linux (lwIP's default is 2 min). */
#define TCP_MSL 30000UL
/* SO_KEEPALIVE with TCP_KEEPIDLE/INTVL/CNT per socket. */
#define LWIP_TCP_KEEPALIVE 1
/* tcp_write fills the tail of the last queued pbuf first, so small writes
 * share a segment instead of one pbuf each. */
#define TCP_OVERSIZE TCP_MSS
/* Segments as one pbuf with room for all headers: one contiguous copy into
 * the tx frame. */
#define LWIP_NETIF_TX_SINGLE_PBUF 1
/* No checksum while copying in tcp_write: the driver completes TCP
 * checksums, or has the link complete them (CHECKSUM_GEN_TCP below). */
#define LWIP_CHECKSUM_ON_COPY 0
/* RFC 7323 timestamps, as Linux negotiates by default: the peer measures
 * RTT on every ACK, and a reconnect from a port in TIME-WAIT is told apart
 * from an old duplicate (RFC 6191). */
#define LWIP_TCP_TIMESTAMPS 1
/* CUBIC, Linux's default congestion control (stack/lwip/patches 0004);
 * TCP_CONGESTION "reno" chooses NewReno per socket. */
#define TCP_CC_DEFAULT 1 /* TCP_CC_CUBIC */
/* Two slots of per-PCB data with a "destroyed" callback: the shim releases
 * the port's steering when lwIP frees a PCB (after TIME_WAIT, say), and a
 * socket still holding the PCB forgets it. */
#define LWIP_TCP_PCB_NUM_EXT_ARGS 2
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0

/* ---- checksums ---- */
/* Generated in software, except TCP's: lwIP leaves that field 0 and the
 * netif driver finishes it as the frame leaves (LinkNetif::
 * finish_tcp_checksum), by AF_XDP transmit metadata where the kernel takes
 * it (copy mode, kernel 6.11+), else in software. */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 0
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
/* TCP and UDP checksums are verified by the netif driver before lwIP sees
 * the frame: on veth the kernel peer's frames carry partial checksums
 * (CHECKSUM_PARTIAL) that lwIP would reject; the driver knows which link can
 * produce them. */
#define CHECKSUM_CHECK_UDP 0
#define CHECKSUM_CHECK_TCP 0
#define CHECKSUM_CHECK_ICMP 1

/* ---- statistics ---- */
/* Pool and heap usage for the leak tests; MIB-2 counters (segments in/out,
 * retransmits, datagrams) for xdpload-stat. */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define MEM_STATS 1
#define MEMP_STATS 1
#define SYS_STATS 0
#define LINK_STATS 1
#define IP_STATS 1
#define TCP_STATS 1
#define UDP_STATS 1
#define ICMP_STATS 0
#define IGMP_STATS 0
#define ETHARP_STATS 0
#define MIB2_STATS 1

/* lwIP's htons/ntohl... macros would clash with <arpa/inet.h> in our C++. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

/* ---- hooks (stack/lwip_port.cc) ---- */
#ifdef __cplusplus
extern "C" {
#endif
struct ip4_addr;
struct netif;
struct netif* xdpload_route_src(const struct ip4_addr* src, const struct ip4_addr* dest);
unsigned short xdpload_lwip_chksum(const void* data, int len);
unsigned int xdpload_tcp_isn(const struct ip4_addr* local_ip, unsigned short local_port,
                             const struct ip4_addr* remote_ip, unsigned short remote_port);
unsigned int xdpload_now_us(void);
unsigned int xdpload_now_s(void);
#ifdef __cplusplus
}
#endif
/* The Internet checksum 32 bytes per step (stack/checksum.h) instead of
 * lwIP's 2 bytes per step. */
#define LWIP_CHKSUM xdpload_lwip_chksum
/* Several netifs (two Stacks in one process, in tests): route by the
 * source address a PCB is bound to before falling back to the subnet. */
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest) xdpload_route_src(src, dest)
/* lwIP's own ISN is a counter; use RFC 6528's keyed hash of the 4-tuple
 * plus a clock, as Linux does. */
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
  xdpload_tcp_isn(local_ip, local_port, remote_ip, remote_port)
/* RACK-TLP's clock (stack/lwip/patches): microseconds, where a veth round
 * trip is tens of them and sys_now's milliseconds would say nothing. */
#define TCP_NOW_US() xdpload_now_us()
/* PAWS' idle rule (patch 0017): seconds that do not wrap with sys_now's
 * milliseconds, from the coarse clock (a few ns: read per segment). */
#define TCP_NOW_S() xdpload_now_s()

#endif /* XDPLOAD_LWIPOPTS_H */
