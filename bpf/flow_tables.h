/* SPDX-License-Identifier: GPL-2.0-only */
/* The two bypass flow tables and their per-packet update, for the socket and XDP filters.
 * Size and type are set by the loader: libbpf rewrites max_entries/type before loading the
 * object (bpf_map__set_max_entries / bpf_map__set_type); BCC gets -DMAP_ENTRIES=N and
 * -DUSE_PERCPU. */
#ifndef RULEENGINE_FLOW_TABLES_H
#define RULEENGINE_FLOW_TABLES_H
#include "parse.h"

#ifndef MAP_ENTRIES
#define MAP_ENTRIES 32768
#endif

#ifndef LIST_ENTRIES
#define LIST_ENTRIES 65536
#endif

#ifdef USE_BCC
BPF_F_TABLE("lpm_trie", struct lpm_key_v4, struct list_counters, bypass_cidr_v4, LIST_ENTRIES,
            BPF_F_NO_PREALLOC);
BPF_F_TABLE("lpm_trie", struct lpm_key_v6, struct list_counters, bypass_cidr_v6, LIST_ENTRIES,
            BPF_F_NO_PREALLOC);
BPF_HASH(bypass_ports, struct list_port_key, struct list_counters, LIST_ENTRIES);
static __always_inline struct list_counters *list_v4(struct lpm_key_v4 *k)
{
    return bypass_cidr_v4.lookup(k);
}
static __always_inline struct list_counters *list_v6(struct lpm_key_v6 *k)
{
    return bypass_cidr_v6.lookup(k);
}
static __always_inline struct list_counters *list_port(struct list_port_key *k)
{
    return bypass_ports.lookup(k);
}
#else
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, LIST_ENTRIES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_key_v4);
    __type(value, struct list_counters);
} bypass_cidr_v4 SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, LIST_ENTRIES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_key_v6);
    __type(value, struct list_counters);
} bypass_cidr_v6 SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, LIST_ENTRIES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct list_port_key);
    __type(value, struct list_counters);
} bypass_ports SEC(".maps");
static __always_inline struct list_counters *list_v4(struct lpm_key_v4 *k)
{
    return bpf_map_lookup_elem(&bypass_cidr_v4, k);
}
static __always_inline struct list_counters *list_v6(struct lpm_key_v6 *k)
{
    return bpf_map_lookup_elem(&bypass_cidr_v6, k);
}
static __always_inline struct list_counters *list_port(struct list_port_key *k)
{
    return bpf_map_lookup_elem(&bypass_ports, k);
}
#endif

#ifdef USE_BCC
#ifdef USE_PERCPU
BPF_PERCPU_HASH(flow_table_v4, struct flow_key_v4, struct flow_counters, MAP_ENTRIES);
BPF_PERCPU_HASH(flow_table_v6, struct flow_key_v6, struct flow_counters, MAP_ENTRIES);
#else
BPF_HASH(flow_table_v4, struct flow_key_v4, struct flow_counters, MAP_ENTRIES);
BPF_HASH(flow_table_v6, struct flow_key_v6, struct flow_counters, MAP_ENTRIES);
#endif
static __always_inline struct flow_counters *lookup_v4(struct flow_key_v4 *k)
{
    return flow_table_v4.lookup(k);
}
static __always_inline struct flow_counters *lookup_v6(struct flow_key_v6 *k)
{
    return flow_table_v6.lookup(k);
}
#else
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAP_ENTRIES);
    __type(key, struct flow_key_v4);
    __type(value, struct flow_counters);
} flow_table_v4 SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAP_ENTRIES);
    __type(key, struct flow_key_v6);
    __type(value, struct flow_counters);
} flow_table_v6 SEC(".maps");
static __always_inline struct flow_counters *lookup_v4(struct flow_key_v4 *k)
{
    return bpf_map_lookup_elem(&flow_table_v4, k);
}
static __always_inline struct flow_counters *lookup_v6(struct flow_key_v6 *k)
{
    return bpf_map_lookup_elem(&flow_table_v6, k);
}
#endif

static __always_inline void count_packet(struct flow_counters *c, int from_b, __u64 len)
{
    /* atomic adds: in a shared (non per-CPU) map two CPUs may hit the same entry */
    if (from_b) {
        __sync_fetch_and_add(&c->pkts_ba, 1);
        __sync_fetch_and_add(&c->bytes_ba, len);
    } else {
        __sync_fetch_and_add(&c->pkts_ab, 1);
        __sync_fetch_and_add(&c->bytes_ab, len);
    }
    c->last_ns = bpf_ktime_get_ns();
}

static __always_inline int count_list(struct list_counters *c, __u64 len)
{
    if (!c)
        return 0;
    __sync_fetch_and_add(&c->pkts, 1);
    __sync_fetch_and_add(&c->bytes, len);
    return 1;
}

/* 1 when a bypass list entry holds the source or destination address, else a port
 * (TCP/UDP/SCTP, first fragments: later ones have sport = dport = 0, never a list key). */
static __always_inline int listed(const struct pkt_info *pi, __u64 len)
{
    if (pi->family == 4) {
        struct lpm_key_v4 k = {32, pi->src[0]};
        if (count_list(list_v4(&k), len))
            return 1;
        k.addr = pi->dst[0];
        if (count_list(list_v4(&k), len))
            return 1;
    } else if (pi->family == 6) {
        struct lpm_key_v6 k = {128};
        __builtin_memcpy(k.addr, pi->src, 16);
        if (count_list(list_v6(&k), len))
            return 1;
        __builtin_memcpy(k.addr, pi->dst, 16);
        if (count_list(list_v6(&k), len))
            return 1;
    } else {
        return 0;
    }
    if (!has_ports(pi->proto) || (pi->sport == 0 && pi->dport == 0))
        return 0;
    struct list_port_key pk = {pi->sport, 0};
    if (count_list(list_port(&pk), len))
        return 1;
    pk.port = pi->dport;
    return count_list(list_port(&pk), len);
}

/* 1 when the packet belongs to a bypassed flow (and was counted), else 0. */
static __always_inline int bypassed(const struct pkt_info *pi, __u64 len)
{
    if (pi->family == 4) {
        struct flow_key_v4 k = {};
        int rev = make_key_v4(pi, &k);
        struct flow_counters *c = lookup_v4(&k);
        if (c) {
            count_packet(c, rev, len);
            return 1;
        }
    } else if (pi->family == 6) {
        struct flow_key_v6 k = {};
        int rev = make_key_v6(pi, &k);
        struct flow_counters *c = lookup_v6(&k);
        if (c) {
            count_packet(c, rev, len);
            return 1;
        }
    }
    return listed(pi, len);
}

#endif
