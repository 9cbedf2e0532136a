"""End to end through the engine: `ruleengine run --af-packet IFACE` in a namespace, traffic
from the other one. A rule with the `bypass` keyword must hand its flow to the kernel (the
kernel counts the rest of the flow, user space stops seeing it) while other flows are fully
inspected; SIGINT ends the run and leaves no XDP program behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import kernel

pytestmark = pytest.mark.kernel
RULES = """\
alert udp any any -> any 5000 (msg:"bypass me"; content:"BYPASSME"; bypass; sid:1;)
alert udp any any -> any 5001 (msg:"inspect me"; content:"SEEN"; sid:2;)
"""
DATAGRAMS = 50


def _alerted(logdir: Path, sid: int) -> bool:
    eve = logdir / "eve.json"
    if not eve.exists():
        return False
    for line in eve.read_text().splitlines():
        if '"event_type":"alert"' in line.replace(" ", "") and \
                json.loads(line)["alert"]["signature_id"] == sid:
            return True
    return False


def _packet_sockets(net: kernel.NetnsPair) -> int:
    lines = net.run(net.ns_b, "cat", "/proc/net/packet").stdout.splitlines()
    return max(0, len(lines) - 1)


@pytest.mark.parametrize(("threads", "cluster_type", "loader", "xdp"), [
    (2, "cluster_ebpf", "libbpf", False),
    (1, "cluster_flow", "bcc", False),
    (1, "cluster_flow", "libbpf", True),
])
def test_bypass_rule_hands_the_flow_to_the_kernel(tmp_path: Path, threads: int,
                                                  cluster_type: str, loader: str,
                                                  xdp: bool) -> None:
    kernel.require_root()
    kernel.require_bpf()
    from capture_backends import ebpf

    if reason := ebpf.loader_unavailable(loader):
        kernel.skip(reason)
    exe = Path(sys.executable).with_name("ruleengine")
    if not exe.exists():
        kernel.skip(f"{exe} not installed (make setup)")
    rules, yaml_file, logdir = tmp_path / "t.rules", tmp_path / "s.yaml", tmp_path / "log"
    rules.write_text(RULES)
    logdir.mkdir()
    xdp_lines = "    xdp-filter-file: xdp_filter.o\n    xdp-mode: soft\n" if xdp else ""
    yaml_file.write_text(
        "%YAML 1.1\n---\naf-packet:\n  - interface: default\n"
        f"    threads: {threads}\n    cluster-type: {cluster_type}\n    bypass: yes\n"
        f"{xdp_lines}")
    with kernel.netns_pair() as net:
        proc = net.popen(net.ns_b, str(exe), "run", "--af-packet", net.if_b, "-S", str(rules),
                         "-l", str(logdir), "-c", str(yaml_file), "--bpf-loader", loader,
                         "--no-progress", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert kernel.wait_for(lambda: _packet_sockets(net) >= threads
                                   or proc.poll() is not None, timeout=20)
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            time.sleep(0.3)
            bypass_rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5000)
            bypass_tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 6000)
            other_rx = kernel.udp_socket(net, net.ns_b, net.v4_b, 5001)
            other_tx = kernel.udp_socket(net, net.ns_a, net.v4_a, 6001)
            # the first datagram triggers the rule; once its alert is out the kernel has the
            # flow, and every later datagram must be counted there, not in user space
            bypass_tx.sendto(b"BYPASSME 0", (net.v4_b, 5000))
            assert kernel.wait_for(lambda: _alerted(logdir, 1), timeout=10), "no alert"
            time.sleep(0.2)
            for i in range(DATAGRAMS):
                if i:
                    bypass_tx.sendto(b"BYPASSME %d" % i, (net.v4_b, 5000))
                other_tx.sendto(b"SEEN %d" % i, (net.v4_b, 5001))
                time.sleep(0.002)
            time.sleep(0.5)
            if xdp:
                assert "xdp" in net.run(net.ns_b, "ip", "link", "show", net.if_b).stdout
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                output = proc.communicate(timeout=20)[0].decode(errors="replace")
            except subprocess.TimeoutExpired:
                proc.kill()
                output = proc.communicate()[0].decode(errors="replace")
                pytest.fail(f"ruleengine did not stop on SIGINT:\n{output}")
        assert proc.returncode == 0, output
        assert "xdp" not in net.run(net.ns_b, "ip", "link", "show", net.if_b).stdout
        for s in (bypass_rx, bypass_tx, other_rx, other_tx):
            s.close()

    events = [json.loads(line) for line in (logdir / "eve.json").read_text().splitlines()]
    alerts = [e["alert"]["signature_id"] for e in events if e["event_type"] == "alert"]
    assert alerts.count(1) == 1, output
    assert alerts.count(2) == DATAGRAMS, output
    flows = [e for e in events if e["event_type"] == "flow" and e.get("src_port") == 6000
             and e.get("dest_port") == 5000]
    assert len(flows) == 1, output
    record = flows[0]["flow"]
    assert record.get("bypass") == "capture", record
    assert record["pkts_toserver"] == DATAGRAMS, record
    # the kernel counted every packet after the one that matched
    assert record["bypassed"]["pkts_toserver"] == DATAGRAMS - 1, record
