/* SPDX-License-Identifier: GPL-2.0-only */
/* Packet parsing shared by the socket filter, the fanout load balancer and the XDP filter.
 *
 * Builds for libbpf (clang -target bpf, kernel UAPI headers + libbpf's bpf_helpers.h) and for
 * BCC (-DUSE_BCC: BCC injects its own helper declarations; minik/ stands in for the kernel
 * headers this machine does not have).
 *
 * Socket programs read the packet relative to the network header (skb->protocol +
 * bpf_skb_load_bytes_relative(BPF_HDR_START_NET)): in a fanout demux program offset 0 is the
 * network header for received packets but the MAC header for sent ones, so absolute offsets
 * are wrong one way or the other. A VLAN tag the kernel already stripped into skb metadata
 * arrives as (vlan_present, vlan_tci); tags still in the data (QinQ, XDP) are walked here.
 */
#ifndef RULEENGINE_PARSE_H
#define RULEENGINE_PARSE_H

#ifdef USE_BCC
#define SEC(name)
#else
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#endif
#include "flow_keys.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NET16(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define NET32(x) ((__u32)__builtin_bswap32((__u32)(x)))
#else
#define NET16(x) ((__u16)(x))
#define NET32(x) ((__u32)(x))
#endif

/* VLAN ids in the flow key and in the load-balancer hash (suricata.yaml
 * vlan.use-for-tracking). libbpf: a read-only global the loader sets before loading, so the
 * verifier sees a constant and prunes the dead branch; BCC: -DVLAN_IN_KEY=0|1. */
#ifdef USE_BCC
#ifndef VLAN_IN_KEY
#define VLAN_IN_KEY 1
#endif
#else
const volatile __u32 vlan_in_key = 1;
#define VLAN_IN_KEY vlan_in_key
#endif

#define ETH_HEADER_LEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86DD
#define ETHERTYPE_8021Q 0x8100
#define ETHERTYPE_8021AD 0x88A8
#define ETHERTYPE_QINQ_OLD 0x9100
#define MAX_VLAN_TAGS_IN_DATA 2
#define MAX_IPV6_EXT_HEADERS 8

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_SCTP_ 132

/* What the programs need to know about one packet. Addresses and ports in network order. */
struct pkt_info {
    __u32 src[4];          /* IPv4 uses src[0] */
    __u32 dst[4];
    __u16 sport;
    __u16 dport;
    __u16 vlan0;           /* network order, 12-bit id */
    __u16 vlan1;
    __u8 family;           /* 4, 6, or 0 when not IP */
    __u8 proto;
    __u8 fragment;         /* any IP fragment (first or later) */
    __u8 pad;
};

static __always_inline int load_bytes(void *ctx, const int xdp, __u32 off, void *buf, __u32 len)
{
    if (xdp)
        return bpf_xdp_load_bytes(ctx, off, buf, len);
    return bpf_skb_load_bytes_relative(ctx, off, buf, len, BPF_HDR_START_NET);
}

static __always_inline int has_ports(__u8 proto)
{
    return proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_ || proto == IPPROTO_SCTP_;
}

static __always_inline int parse_ipv4(void *ctx, const int xdp, __u32 off, struct pkt_info *pi,
                                     __u32 *l4_off, int *ports_ok)
{
    __u8 iph[20];
    if (load_bytes(ctx, xdp, off, iph, sizeof(iph)) < 0)
        return -1;
    if ((iph[0] >> 4) != 4)
        return -1;
    __u32 ihl = (__u32)(iph[0] & 0x0f) * 4;
    if (ihl < 20)
        return -1;
    pi->family = 4;
    pi->proto = iph[9];
    __builtin_memcpy(&pi->src[0], &iph[12], 4);
    __builtin_memcpy(&pi->dst[0], &iph[16], 4);
    __u16 frag_offset = (((__u16)iph[6] & 0x1f) << 8) | iph[7];
    int more_fragments = iph[6] & 0x20;
    pi->fragment = (frag_offset != 0 || more_fragments) ? 1 : 0;
    *l4_off = off + ihl;
    *ports_ok = frag_offset == 0;      /* later fragments carry no L4 header */
    return 0;
}

static __always_inline int parse_ipv6(void *ctx, const int xdp, __u32 off, struct pkt_info *pi,
                                     __u32 *l4_off, int *ports_ok)
{
    __u8 h[40];
    if (load_bytes(ctx, xdp, off, h, sizeof(h)) < 0)
        return -1;
    if ((h[0] >> 4) != 6)
        return -1;
    pi->family = 6;
    __builtin_memcpy(pi->src, &h[8], 16);
    __builtin_memcpy(pi->dst, &h[24], 16);
    __u8 nh = h[6];
    __u32 l4 = off + 40;
    int first_fragment = 1;
#pragma unroll
    for (int i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
        __u8 eh[4];
        if (nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_DSTOPTS_) {
            if (load_bytes(ctx, xdp, l4, eh, 2) < 0)
                return -1;
            nh = eh[0];
            l4 += ((__u32)eh[1] + 1) * 8;
        } else if (nh == IPPROTO_FRAGMENT_) {
            if (load_bytes(ctx, xdp, l4, eh, 4) < 0)
                return -1;
            nh = eh[0];
            pi->fragment = 1;
            if (((((__u16)eh[2]) << 8) | eh[3]) & 0xfff8)
                first_fragment = 0;
            l4 += 8;
        } else if (nh == IPPROTO_AH_) {
            if (load_bytes(ctx, xdp, l4, eh, 2) < 0)
                return -1;
            nh = eh[0];
            l4 += ((__u32)eh[1] + 2) * 4;
        } else {
            break;
        }
    }
    pi->proto = nh;
    *l4_off = l4;
    *ports_ok = first_fragment;
    return 0;
}

/* proto: the frame's ethertype (network order) after any tag the kernel stripped, or 0 for
 * XDP (read from the frame). vlan_tci: that stripped tag when vlan_present. Returns 0 when
 * pi->family is filled (4 or 6), 1 for non-IP, -1 for truncated/malformed packets. */
static __always_inline int parse_packet(void *ctx, const int xdp, __u16 proto, int vlan_present,
                                        __u32 vlan_tci, struct pkt_info *pi)
{
    __u32 off = 0;
    int nvlan = 0;
    if (xdp) {
        __u8 eth[ETH_HEADER_LEN];
        if (load_bytes(ctx, xdp, 0, eth, sizeof(eth)) < 0)
            return -1;
        __builtin_memcpy(&proto, &eth[12], 2);
        off = ETH_HEADER_LEN;
    } else if (vlan_present) {
        pi->vlan0 = NET16(vlan_tci & 0x0fff);
        nvlan = 1;
    }
#pragma unroll
    for (int i = 0; i < MAX_VLAN_TAGS_IN_DATA; i++) {
        if (proto == NET16(ETHERTYPE_8021Q) || proto == NET16(ETHERTYPE_8021AD) ||
            proto == NET16(ETHERTYPE_QINQ_OLD)) {
            __u16 tag[2];                       /* TCI, encapsulated ethertype */
            if (load_bytes(ctx, xdp, off, tag, sizeof(tag)) < 0)
                return -1;
            if (nvlan == 0)
                pi->vlan0 = tag[0] & NET16(0x0fff);
            else if (nvlan == 1)
                pi->vlan1 = tag[0] & NET16(0x0fff);
            nvlan++;
            proto = tag[1];
            off += 4;
        }
    }
    __u32 l4 = 0;
    int ports_ok = 0;
    if (proto == NET16(ETHERTYPE_IPV4)) {
        if (parse_ipv4(ctx, xdp, off, pi, &l4, &ports_ok) < 0)
            return -1;
    } else if (proto == NET16(ETHERTYPE_IPV6)) {
        if (parse_ipv6(ctx, xdp, off, pi, &l4, &ports_ok) < 0)
            return -1;
    } else {
        return 1;
    }
    if (ports_ok && has_ports(pi->proto)) {
        __u16 ports[2];
        if (load_bytes(ctx, xdp, l4, ports, sizeof(ports)) < 0)
            return -1;
        pi->sport = ports[0];
        pi->dport = ports[1];
    }
    return 0;
}

/* Canonical order: 1 when the packet's source is the larger endpoint (it travels b -> a). */
static __always_inline int source_is_b(const struct pkt_info *pi)
{
    int words = pi->family == 6 ? 4 : 1;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (i < words) {
            __u32 s = NET32(pi->src[i]), d = NET32(pi->dst[i]);
            if (s != d)
                return s > d;
        }
    }
    return NET16(pi->sport) > NET16(pi->dport);
}

static __always_inline int make_key_v4(const struct pkt_info *pi, struct flow_key_v4 *k)
{
    int rev = source_is_b(pi);
    k->a_ip = rev ? pi->dst[0] : pi->src[0];
    k->b_ip = rev ? pi->src[0] : pi->dst[0];
    k->a_port = rev ? pi->dport : pi->sport;
    k->b_port = rev ? pi->sport : pi->dport;
    if (VLAN_IN_KEY) {
        k->vlan0 = pi->vlan0;
        k->vlan1 = pi->vlan1;
    }
    k->proto = pi->proto;
    return rev;
}

static __always_inline int make_key_v6(const struct pkt_info *pi, struct flow_key_v6 *k)
{
    int rev = source_is_b(pi);
    if (rev) {
        __builtin_memcpy(k->a_ip, pi->dst, 16);
        __builtin_memcpy(k->b_ip, pi->src, 16);
        k->a_port = pi->dport;
        k->b_port = pi->sport;
    } else {
        __builtin_memcpy(k->a_ip, pi->src, 16);
        __builtin_memcpy(k->b_ip, pi->dst, 16);
        k->a_port = pi->sport;
        k->b_port = pi->dport;
    }
    if (VLAN_IN_KEY) {
        k->vlan0 = pi->vlan0;
        k->vlan1 = pi->vlan1;
    }
    k->proto = pi->proto;
    return rev;
}

#endif
