/* SPDX-License-Identifier: GPL-2.0-only */
/* AF_PACKET socket filter: packets of flows present in flow_table_v4/v6 are counted in the
 * map and not delivered to the capture socket (return 0); everything else is delivered whole.
 * Dropping here only affects this socket: the host stack still receives the packet. */
#include "flow_tables.h"

SEC("socket")
int bypass_filter(struct __sk_buff *skb)
{
    struct pkt_info pi = {};
    if (parse_packet(skb, 0, skb->protocol, skb->vlan_present, skb->vlan_tci, &pi) != 0)
        return -1;
    if (bypassed(&pi, skb->len))
        return 0;
    return -1;
}

#ifndef USE_BCC
char _license[] SEC("license") = "GPL";
#endif
