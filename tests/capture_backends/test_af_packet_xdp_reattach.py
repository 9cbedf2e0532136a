"""The XDP program follows an interface that is removed and created again (issue 15,
section 3): the kernel detaches a link whose device goes away, the process holding the link
attaches the program to the new device, and the bypass tables (kept) work there again.
Needs root (namespaces ``f15b-*``)."""

from __future__ import annotations

import time

import pytest

from tests import kernel
from tests.capture_backends.afp_helpers import count_flows, drain, flow
from tests.capture_backends.test_af_packet_bypass import PAYLOAD, _require, _xdp_on, capture

pytestmark = pytest.mark.kernel


def test_xdp_is_attached_again_to_a_re_created_interface() -> None:
    """One worker (it holds the link): bypass a flow, delete the veth, create it again. The
    worker re-attaches its socket and the XDP program to the new ifindex, said once; the
    bypassed flow is dropped by XDP on the new device (nothing reaches the ring or the
    server, the kernel entry counts it), another flow is delivered in full."""
    _require()
    with kernel.netns_pair("f15b") as net, capture(
            net, bypass=True, xdp_filter_file="xdp_filter.o", xdp_mode="driver") as (group, be):
        notices: list[str] = []
        infos: list[str] = []
        be.notice, be.info = notices.append, infos.append
        old_ifindex = group.xdp_ifindex
        assert old_ifindex == net.ifindex(net.ns_b, net.if_b) and _xdp_on(net)
        bypassed = flow(net.v4_a, net.v4_b, 6000, 5000)
        assert be.bypass(bypassed, 0)
        net.run(net.ns_a, "ip", "link", "del", net.if_a)
        with net.entered(net.ns_b):
            deadline = time.monotonic() + 5
            while not notices and time.monotonic() < deadline:
                be.read_batch(50)
        assert len(notices) == 1 and "is gone" in notices[0], notices
        assert "attaches the XDP program to it again" in notices[0], notices
        net.recreate_link()
        with net.entered(net.ns_b):
            deadline = time.monotonic() + 5
            while not infos and time.monotonic() < deadline:
                be.read_batch(50)
        assert len(infos) == 1 and "XDP program attached again" in infos[0], infos
        new_ifindex = net.ifindex(net.ns_b, net.if_b)
        assert new_ifindex != old_ifindex and group.xdp_ifindex == new_ifindex
        assert _xdp_on(net), net.run(net.ns_b, "ip", "link", "show", net.if_b).stdout
        server = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
        other = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
        client = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
        try:
            with net.entered(net.ns_b):
                drain(be)  # ND/MLD of the new link
            assert kernel.udp_exchange(client, server, 40, size=PAYLOAD) == 0
            assert kernel.udp_exchange(client, other, 25, size=PAYLOAD) == 25
            with net.entered(net.ns_b):
                seen = count_flows(drain(be))
        finally:
            for sock in (server, other, client):
                sock.close()
        assert seen.get(bypassed, 0) == 0, seen
        assert seen.get(flow(net.v4_a, net.v4_b, 6000, 5001)) == 25, seen
        counters = be.bypassed_flow_counters(bypassed)
        assert counters is not None and counters[0] == 40, counters
        assert group.reattach_xdp() is None  # same device now: nothing to do
