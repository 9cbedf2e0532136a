"""Canonical flow keys: one key per flow whatever the packet's direction."""

from __future__ import annotations

import socket

import pytest

from capture_backends.base import FlowTuple
from capture_backends.ebpf import layout

A4, B4 = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
A6, B6 = socket.inet_pton(socket.AF_INET6, "fd00::1"), socket.inet_pton(socket.AF_INET6, "fd00::2")


@pytest.mark.parametrize(("a", "b"), [(A4, B4), (A6, B6)])
def test_both_directions_share_one_key(a: bytes, b: bytes) -> None:
    k1, rev1 = layout.canonical_key(FlowTuple(a, b, 40000, 80, 6))
    k2, rev2 = layout.canonical_key(FlowTuple(b, a, 80, 40000, 6))
    assert k1 == k2
    assert (rev1, rev2) == (False, True)


def test_key_bytes_are_wire_order() -> None:
    key, rev = layout.canonical_key(FlowTuple(B4, A4, 80, 40000, 17, (5, 7)))
    assert rev is True
    assert key == A4 + B4 + (40000).to_bytes(2, "big") + (80).to_bytes(2, "big") + \
        (5).to_bytes(2, "big") + (7).to_bytes(2, "big") + bytes([17, 0, 0, 0])


def test_same_address_orders_by_port() -> None:
    k1, rev1 = layout.canonical_key(FlowTuple(A4, A4, 9000, 53, 17))
    k2, rev2 = layout.canonical_key(FlowTuple(A4, A4, 53, 9000, 17))
    assert k1 == k2 and rev1 and not rev2


def test_vlan_is_part_of_the_key_and_masked() -> None:
    plain, _ = layout.canonical_key(FlowTuple(A4, B4, 1, 2, 6))
    tagged, _ = layout.canonical_key(FlowTuple(A4, B4, 1, 2, 6, (100,)))
    masked, _ = layout.canonical_key(FlowTuple(A4, B4, 1, 2, 6, (0x1000 | 100,)))
    assert plain != tagged == masked


def test_unpack_key_round_trip() -> None:
    flow = FlowTuple(A6, B6, 1234, 443, 6, (10, 20))
    key, _ = layout.canonical_key(flow)
    assert layout.unpack_key(key) == flow


@pytest.mark.parametrize("flow", [
    FlowTuple(A4, B6, 1, 2, 6), FlowTuple(b"", b"", 1, 2, 6), FlowTuple(b"123", b"456", 1, 2, 6)])
def test_bad_addresses_raise_value_error(flow: FlowTuple) -> None:
    with pytest.raises(ValueError):
        layout.canonical_key(flow)


def test_percpu_values_are_summed() -> None:
    per_cpu = layout.COUNTERS.pack(1, 100, 2, 200, 50) + layout.COUNTERS.pack(3, 300, 4, 400, 70)
    assert layout.sum_counters(per_cpu) == layout.FlowCounters(4, 400, 6, 600, 70)


def test_vlan_left_out_without_vlan_tracking() -> None:
    plain, _ = layout.canonical_key(FlowTuple(A4, B4, 1, 2, 6))
    tagged, _ = layout.canonical_key(FlowTuple(A4, B4, 1, 2, 6, (100, 7)), vlan_in_key=False)
    assert plain == tagged
