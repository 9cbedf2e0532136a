"""A real OpenSSH client/server exchange captured on loopback (see ``ssh_capture``): banners,
hassh against the algorithm lists ssh -vvv printed, and against a KEXINIT decoded here."""

from __future__ import annotations

import hashlib
import json
import re
import struct

import pytest

from ruleengine.applayer.ssh import SshParser, parse_config
from ruleengine.applayer.ssh.logger import alert_ssh, eve_ssh
from ruleengine.applayer.ssh.parser import FINISHED
from tests.outputs.eve_schema import validate_line

from . import ssh_capture

pytestmark = pytest.mark.skipif(not ssh_capture.available(), reason="no ssh/sshd")
HASSH_ON, _ = parse_config({"hassh": "yes"})


@pytest.fixture(scope="module")
def exchange() -> ssh_capture.Capture:
    cap = ssh_capture.capture()
    if cap is None or not cap.c2s or not cap.s2c:
        pytest.skip("sshd did not start")
    return cap


def own_kexinit_lists(stream: bytes) -> list[bytes]:
    """The first KEXINIT of a direction, decoded by this test (RFC 4253 7.1)."""
    pos = stream.index(b"\n") + 1
    while True:
        length, _pad, code = struct.unpack_from(">IBB", stream, pos)
        if code == 20:
            body = stream[pos + 6 : pos + 4 + length]
            break
        pos += 4 + length
    off = 16
    lists = []
    for _ in range(10):
        (n,) = struct.unpack_from(">I", body, off)
        lists.append(body[off + 4 : off + 4 + n])
        off += 4 + n
    return lists


def run(cap: ssh_capture.Capture, step: int) -> SshParser:
    p = SshParser(HASSH_ON)
    i = j = 0
    while i < len(cap.c2s) or j < len(cap.s2c):
        if i < len(cap.c2s):
            p.feed(True, cap.c2s[i : i + step])
            i += step
        if j < len(cap.s2c):
            p.feed(False, cap.s2c[j : j + step])
            j += step
    return p


def test_banners_are_openssh(exchange: ssh_capture.Capture) -> None:
    p = run(exchange, 100000)
    version = re.search(r"OpenSSH_[0-9A-Za-z.]+", exchange.client_log)
    assert version is not None
    for side in (p.tx.client, p.tx.server):
        assert side.protover == b"2.0"
        assert side.swver == version.group(0).encode()  # the banner comment is not included
    assert p.tx.events == []


def test_hassh_matches_the_proposals_ssh_printed(exchange: ssh_capture.Capture) -> None:
    props = ssh_capture.proposals(exchange.client_log)
    c, s = props["client"], props["server"]
    want_c = ";".join((c["KEX algorithms"], c["ciphers ctos"], c["MACs ctos"],
                       c["compression ctos"]))
    want_s = ";".join((s["KEX algorithms"], s["ciphers stoc"], s["MACs stoc"],
                       s["compression stoc"]))
    p = run(exchange, 100000)
    assert p.tx.client.hassh_string.decode() == want_c
    assert p.tx.server.hassh_string.decode() == want_s
    assert p.tx.client.hassh.decode() == hashlib.md5(want_c.encode()).hexdigest()
    assert p.tx.server.hassh.decode() == hashlib.md5(want_s.encode()).hexdigest()


def test_hassh_matches_a_kexinit_decoded_here(exchange: ssh_capture.Capture) -> None:
    lc = own_kexinit_lists(exchange.c2s)
    ls = own_kexinit_lists(exchange.s2c)
    p = run(exchange, 100000)
    assert p.tx.client.hassh_string == b";".join((lc[0], lc[2], lc[4], lc[6]))
    assert p.tx.server.hassh_string == b";".join((ls[0], ls[3], ls[5], ls[7]))


@pytest.mark.parametrize("step", [1, 3, 64, 1460])
def test_any_segmentation_gives_the_same_facts(exchange: ssh_capture.Capture,
                                               step: int) -> None:
    ref = run(exchange, 100000)
    p = run(exchange, step)
    for a, b in ((p.tx.client, ref.tx.client), (p.tx.server, ref.tx.server)):
        assert (a.protover, a.swver, a.hassh, a.hassh_string) == \
            (b.protover, b.swver, b.hassh, b.hassh_string)
        assert a.state == FINISHED
    assert p.encrypted and p.tx.events == []


def test_every_split_point_of_the_client_stream(exchange: ssh_capture.Capture) -> None:
    ref = run(exchange, 100000).tx.client
    data = exchange.c2s
    for cut in range(len(data) + 1):
        p = SshParser(HASSH_ON)
        p.feed(True, data[:cut])
        p.feed(True, data[cut:])
        side = p.tx.client
        assert (side.hassh, side.swver, side.state) == (ref.hassh, ref.swver, FINISHED), cut


def test_eve_and_alert_objects_validate(exchange: ssh_capture.Capture) -> None:
    p = run(exchange, 100000)
    obj = eve_ssh(p.tx, {})
    assert obj is not None and eve_ssh(p.tx, {}) is None  # once per flow
    assert obj["client"]["hassh"]["hash"] == p.tx.client.hassh.decode()
    assert obj["server"]["software_version"].startswith("OpenSSH_")
    for body in (obj, alert_ssh(p.tx, {})):
        event = {"timestamp": "2024-01-01T00:00:00.000000+0000", "event_type": "ssh",
                 "src_ip": "127.0.0.1", "src_port": 40000, "dest_ip": "127.0.0.1",
                 "dest_port": 22, "proto": "TCP", "flow_id": 1, "ssh": body}
        validate_line(json.dumps(event))
