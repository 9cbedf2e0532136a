/* SPDX-License-Identifier: GPL-2.0-only */
/* PACKET_FANOUT_EBPF load balancer: a symmetric flow hash, so both directions of a flow reach
 * the same worker (the kernel takes the return value modulo the number of sockets).
 * The endpoints are combined with XOR, which is order-independent. IP fragments hash on
 * addresses (and VLAN, protocol) only, so every fragment of a datagram reaches one worker,
 * like the kernel's own cluster_flow hash. */
#include "parse.h"

static __always_inline __u32 fmix32(__u32 h)
{
    /* murmur3 finaliser: spreads the XOR so that "% num_workers" is balanced */
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

SEC("socket")
int lb_symmetric(struct __sk_buff *skb)
{
    struct pkt_info pi = {};
    if (parse_packet(skb, 0, skb->protocol, skb->vlan_present, skb->vlan_tci, &pi) != 0)
        return 0;
    __u32 h = pi.proto;
    if (VLAN_IN_KEY)
        h ^= ((__u32)pi.vlan0 << 8) ^ ((__u32)pi.vlan1 << 20);
#pragma unroll
    for (int i = 0; i < 4; i++)
        h ^= pi.src[i] ^ pi.dst[i];          /* IPv4 leaves words 1-3 zero */
    if (!pi.fragment)
        h ^= ((__u32)(pi.sport ^ pi.dport)) * 0x9e3779b1;
    return fmix32(h) & 0x7fffffff;
}

#ifndef USE_BCC
char _license[] SEC("license") = "GPL";
#endif
