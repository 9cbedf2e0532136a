/* SPDX-License-Identifier: GPL-2.0-only */
/* XDP variant of the bypass filter (generic or native mode): packets of flows in the tables
 * are counted and dropped before an skb is even built. XDP_DROP drops for the whole host,
 * so this is only for a dedicated capture (mirror/SPAN) port. */
#include "flow_tables.h"

SEC("xdp")
int xdp_bypass(struct xdp_md *ctx)
{
    struct pkt_info pi = {};
    if (parse_packet(ctx, 1, 0, 0, 0, &pi) != 0)
        return XDP_PASS;
    __u64 len = (__u64)(ctx->data_end - ctx->data);
    if (bypassed(&pi, len))
        return XDP_DROP;
    return XDP_PASS;
}

#ifndef USE_BCC
char _license[] SEC("license") = "GPL";
#endif
