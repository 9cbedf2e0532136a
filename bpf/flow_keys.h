/* SPDX-License-Identifier: GPL-2.0-only */
/* Key and value layouts of the bypass flow tables, shared by every program in this directory,
 * by the layout test (compiled with the host gcc) and mirrored ONCE in Python:
 * capture_backends/ebpf/layout.py. tests/bpf/test_layout.py asserts they agree.
 *
 * One entry covers both directions of a flow: the key holds the two endpoints in canonical
 * order, endpoint "a" being the smaller (address, port) pair compared as big-endian numbers.
 * All multi-byte key fields are in network byte order (as on the wire); padding is zero.
 * Counters are per direction: "ab" counts packets sent by endpoint a, "ba" those sent by b.
 */
#ifndef RULEENGINE_FLOW_KEYS_H
#define RULEENGINE_FLOW_KEYS_H

#ifndef USE_BCC
#include <linux/types.h>
#endif

struct flow_key_v4 {
    __u32 a_ip;        /* network order */
    __u32 b_ip;
    __u16 a_port;      /* network order; 0 for protocols without ports / non-first fragments */
    __u16 b_port;
    __u16 vlan0;       /* outermost VLAN id (12 bits), network order; 0 = untagged */
    __u16 vlan1;       /* second VLAN id (QinQ), network order; 0 = none */
    __u8 proto;        /* IP protocol (after IPv6 extension headers) */
    __u8 pad[3];
};                     /* 20 bytes */

struct flow_key_v6 {
    __u32 a_ip[4];
    __u32 b_ip[4];
    __u16 a_port;
    __u16 b_port;
    __u16 vlan0;
    __u16 vlan1;
    __u8 proto;
    __u8 pad[3];
};                     /* 44 bytes */

struct flow_counters {
    __u64 pkts_ab;
    __u64 bytes_ab;
    __u64 pkts_ba;
    __u64 bytes_ba;
    __u64 last_ns;     /* bpf_ktime_get_ns() of the last packet (CLOCK_MONOTONIC) */
};                     /* 40 bytes; a per-CPU map holds one per possible CPU */

/* Bypass lists (capture_backends/bypass_lists.py): CIDRs in LPM tries, ports in a hash.
 * An LPM key is the prefix length then the address (network order); one value per map
 * entry, counted with atomic adds. */
struct lpm_key_v4 {
    __u32 prefixlen;
    __u32 addr;
};                     /* 8 bytes */

struct lpm_key_v6 {
    __u32 prefixlen;
    __u32 addr[4];
};                     /* 20 bytes */

struct list_port_key {
    __u16 port;        /* network order */
    __u16 pad;
};                     /* 4 bytes */

struct list_counters {
    __u64 pkts;
    __u64 bytes;
};                     /* 16 bytes */

#define FLOW_TABLE_V4 flow_table_v4
#define FLOW_TABLE_V6 flow_table_v6

#endif
