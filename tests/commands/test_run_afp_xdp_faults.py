"""``ruleengine run --af-packet`` with an XDP program when the interface is removed and
created again (issue 15, section 3): with several workers the parent holds the XDP link and
attaches the program to the new device, the workers re-attach their sockets. Needs root
(namespaces ``f15b-*``)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.commands.test_run_afp_faults import _alerts, _packet_sockets, _send, afp_engine

pytestmark = pytest.mark.kernel
XDP = "    bypass: yes\n    xdp-filter-file: xdp_filter.o\n    xdp-mode: driver\n"


def _xdp_prog(net: kernel.NetnsPair) -> int | None:
    """The id of the XDP program on namespace B's veth end, None when there is none."""
    out = net.run(net.ns_b, "ip", "-j", "link", "show", "dev", net.if_b).stdout
    link: dict[str, Any] = json.loads(out)[0]
    prog = link.get("xdp", {}).get("prog", {}).get("id")
    return int(prog) if prog is not None else None


def test_two_workers_xdp_program_follows_a_re_created_interface(tmp_path: Path) -> None:
    """Veth deleted under ``run --af-packet`` (2 workers, XDP bypass) and created again: the
    same XDP program is on the new device within a second, said once; the workers capture
    again and the traffic after it alerts (5/5 before, 5/5 after); at the end the program is
    detached."""
    kernel.require_bpf()
    eve = tmp_path / "log" / "eve.json"
    out = tmp_path / "engine.out"
    outputs = "  - eve-log:\n      enabled: yes\n"
    with kernel.netns_pair("f15b") as net:
        rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
        with afp_engine(net, tmp_path, 2, outputs, afp_extra=XDP) as proc:
            prog = _xdp_prog(net)
            assert prog is not None, out.read_text()
            _send(net, 6001, 5, b"before")
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= 5, timeout=10)
            rx.close()
            net.run(net.ns_a, "ip", "link", "del", net.if_a)
            assert kernel.wait_for(lambda: "is gone" in out.read_text(), timeout=10)
            net.recreate_link()
            created = time.monotonic()
            assert kernel.wait_for(lambda: _xdp_prog(net) == prog, timeout=5), out.read_text()
            reattached_s = time.monotonic() - created
            rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
            assert kernel.wait_for(lambda: "re-attached to" in out.read_text()
                                   and _packet_sockets(net) >= 2, timeout=10), out.read_text()
            time.sleep(0.3)  # the second worker too
            _send(net, 6002, 5, b"after")
            assert kernel.wait_for(lambda: len(_alerts(eve)) >= 10, timeout=10), out.read_text()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(30)
        rx.close()
        assert _xdp_prog(net) is None, "XDP program left attached after the run"
        iface = net.if_b
    output = out.read_text()
    assert rc == 0 and "Traceback" not in output, output
    by_port: dict[int, int] = {}
    for alert in _alerts(eve):
        by_port[alert["src_port"]] = by_port.get(alert["src_port"], 0) + 1
    assert by_port == {6001: 5, 6002: 5}, (by_port, output)
    gone = [ln for ln in output.splitlines() if "is gone" in ln]
    assert len(gone) == 1 and "attaches the XDP program to it again" in gone[0], output
    again = [ln for ln in output.splitlines() if "XDP program attached again" in ln]
    assert len(again) == 1 and iface in again[0], output
    print(f"XDP on the re-created {iface}: program {prog} attached {reattached_s:.2f} s "
          "after the interface was created")
