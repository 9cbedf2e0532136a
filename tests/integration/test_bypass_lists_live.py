"""Live bypass lists (``bypass-lists:``) on the real kernel, between two namespaces (``bl-*``).

* AF_PACKET, a CIDR entry: nginx in namespace B serves a file that curl in namespace A
  downloads; the client's address is listed, so the eBPF socket filter drops the flow's
  packets before they reach the ring (the engine never sees the flow: no flow record, the
  decoder counts no IPv4) and counts them for the entry (``bypass_list.<file>:<line>``,
  against the veth's own counters). The same download over IPv6 (not listed) is inspected.
* AF_PACKET, the file edited during the run: an entry removed -> the next download is
  delivered; added again -> bypassed; no restart (inotify), and SIGHUP rereads too.
* NFQ, a port entry: the first packets of the connection are accepted with the bypass mark
  as they are read, the connmark rules accept the rest before the queue (the queue's rule
  counters: almost none queued); a port not listed is queued and inspected.
* TLS SNI: ``openssl s_server`` and curl; an ``sni`` entry bypasses the flow once the client
  hello was parsed (reason ``list``), the kernel carries the rest, the entry counts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import kernel
from tests.integration import afp_engine as ae
from tests.integration import realtraffic as rt
from tests.integration import tls_servers as ts
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

PORT = 8080
QUEUE = 41  # unique to these tests
BYPASS_MARK = 0x1
BYPASSED_TIMEOUT = 2
RELOAD_WAIT = 2.5  # the engine looks at the list files about once a second
EMPTY_RULES = "# no rules: only the lists decide\n"
NGINX = """
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    keepalive_timeout 5;
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen {v4}:{port};
        listen [{v6}]:{port};
        root {work}/www;
    }}
}}
"""


def _require_afp() -> None:
    kernel.require_netns()
    kernel.require_bpf()
    kernel.require_command("nginx", "curl")
    from capture_backends import ebpf

    reason = ebpf.loader_unavailable("libbpf")
    if reason:
        kernel.skip(reason)


def _config(path: Path, lists: list[Path], *, nfq: bool = False, threads: int = 1) -> Path:
    """The AF_PACKET test config (or an NFQ one) with ``bypass-lists:`` and EVE flows."""
    ae.write_config(path, bypassed_timeout=BYPASSED_TIMEOUT, threads=threads)
    config = json.loads(path.read_text().split("---\n", 1)[1])
    config["bypass-lists"] = [str(p) for p in lists]
    config["outputs"].insert(0, {"eve-log": {
        "enabled": True, "filetype": "regular", "filename": "eve.json",
        "types": ["alert", "flow", "stats"]}})
    if nfq:
        del config["af-packet"]
        config["nfq"] = {"mode": "accept", "bypass-mark": BYPASS_MARK,
                         "bypass-mask": BYPASS_MARK}
    path.write_text("%YAML 1.1\n---\n" + json.dumps(config, indent=1) + "\n")
    return path


def _nginx(net: kernel.NetnsPair, work: Path, files: dict[str, int]) -> subprocess.Popen[bytes]:
    """nginx in B on both of B's addresses, serving sparse files of the given sizes."""
    for name, size in files.items():
        ts.sparse_file(work / "www" / name, size)
    return rt.start_nginx(net, net.ns_b, work,
                          NGINX.format(work=work, v4=net.v4_b, v6=net.v6_b, port=PORT), PORT)


def _curl(net: kernel.NetnsPair, host: str, name: str, local_port: int,
          rate: str | None = None) -> int:
    """Download ``name`` from B into /dev/null; the bytes received."""
    target = f"[{host}]" if ":" in host else host
    cmd = ["curl", "-sS", "-g", "--max-time", "60", "--local-port", str(local_port),
           "-o", "/dev/null", "-w", "%{size_download}"]
    if rate:
        cmd += ["--limit-rate", rate]
    out = net.run(net.ns_a, *cmd, f"http://{target}:{PORT}/{name}", timeout=90)
    return int(out.stdout.strip() or 0)


def _link(net: kernel.NetnsPair) -> int:
    rx, tx = ae.link_packets(net, net.ns_b, net.if_b)
    return rx + tx


def _stop(engine: ae.Engine) -> tuple[list[dict[str, Any]], dict[str, int]]:
    assert engine.stop() == 0, engine.stderr()
    err = engine.stderr()
    assert "Traceback" not in err, err
    for line in (engine.logdir / "eve.json").read_text().splitlines():
        validate_line(line)
    return engine.events(), engine.final_stats()


def _flows(events: list[dict[str, Any]], sport: int, dport: int = PORT) -> list[dict[str, Any]]:
    return ae.flow_events_for(events, sport, dport)


def _pkts(flow: dict[str, Any]) -> int:
    return int(flow["flow"]["pkts_toserver"]) + int(flow["flow"]["pkts_toclient"])


# --------------------------------------------------------------------------------------------
# AF_PACKET: a CIDR entry in the eBPF LPM trie
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_af_packet_cidr_entry_keeps_a_download_out_of_user_space(tmp_path: Path,
                                                                 workers: int) -> None:
    """With two workers the parent keeps the maps and reads their counters."""
    _require_afp()
    size, small = 20 << 20, 1 << 20
    rules = tmp_path / "none.rules"
    rules.write_text(EMPTY_RULES)
    with kernel.netns_pair("bl") as net:
        listed = tmp_path / "cidr.list"
        listed.write_text(f"# the client's IPv4 address\n{net.v4_a}/32\nport 9\n")
        config = _config(tmp_path / "suricata.yaml", [listed], threads=workers)
        nginx = _nginx(net, tmp_path / "nginx", {"big.bin": size, "small.bin": small})
        engine = ae.Engine(net, net.ns_b, net.if_b, rules, tmp_path / "log", config,
                           workers=workers)
        engine.wait_ready(net, net.ns_b, net.if_b)
        link0 = _link(net)
        assert _curl(net, net.v4_b, "big.bin", 41001) == size
        link1 = _link(net)
        assert _curl(net, net.v6_b, "small.bin", 41002) == small
        time.sleep(1.5)  # a stats interval: the kernel counters are read into the stats
        # after the wait: the v6 connection's last segments (and neighbour discovery) may
        # cross the veth after curl returned, and the engine captures them too
        link2 = _link(net)
        events, stats = _stop(engine)
        nginx.kill()
    v4_packets, v6_packets = link1 - link0, link2 - link1
    counted = stats["bypass_list.cidr.list:2.pkts"]
    print(f"AF_PACKET CIDR list, {workers} worker(s): v4 download {size} B, "
          f"{v4_packets} packets on the veth, "
          f"{counted} counted by the list entry ({stats['bypass_list.cidr.list:2.bytes']} B); "
          f"capture.kernel_packets {stats['capture.kernel_packets']} (v6 download "
          f"{v6_packets} packets)")
    # every packet of the flow (the veth's count less a few ARP) went to the entry
    assert v4_packets - 6 <= counted <= v4_packets, (counted, v4_packets)
    assert stats["bypass_list.cidr.list:2.bytes"] > size
    assert stats.get("bypass_list.cidr.list:3.pkts", 0) == 0  # stats.log leaves out zeros
    assert stats["bypass_list.entries"] == 2 and stats.get("bypass_list.kernel_errors", 0) == 0
    # the engine never saw the IPv4 flow: no record, no IPv4 decoded
    assert _flows(events, 41001) == []
    assert stats.get("decoder.ipv4", 0) <= 2, stats
    assert stats["capture.kernel_packets"] <= v6_packets + 6 + (v4_packets - counted)
    # the IPv6 download is not listed: inspected as usual
    (flow6,) = _flows(events, 41002)
    assert flow6["src_ip"] == net.v6_a and _pkts(flow6) >= v6_packets - 10, flow6


def test_af_packet_list_edited_during_the_run_applies_without_restart(tmp_path: Path) -> None:
    _require_afp()
    size = 2 << 20
    rules = tmp_path / "none.rules"
    rules.write_text(EMPTY_RULES)
    with kernel.netns_pair("bl") as net:
        listed = tmp_path / "edit.list"
        listed.write_text(f"port 9\n{net.v4_a}/32\n")
        config = _config(tmp_path / "suricata.yaml", [listed])
        nginx = _nginx(net, tmp_path / "nginx", {"f.bin": size})
        engine = ae.Engine(net, net.ns_b, net.if_b, rules, tmp_path / "log", config)
        engine.wait_ready(net, net.ns_b, net.if_b)
        assert _curl(net, net.v4_b, "f.bin", 41011) == size  # listed: bypassed
        # the address goes (an editor's write to a temporary file and rename over it)
        tmp = tmp_path / "edit.list.new"
        tmp.write_text("port 9\n")
        os.replace(tmp, listed)
        time.sleep(RELOAD_WAIT)
        link0 = _link(net)
        assert _curl(net, net.v4_b, "f.bin", 41012) == size  # delivered again
        link1 = _link(net)
        listed.write_text(f"port 9\n{net.v4_a}/32\n")  # back, in place
        time.sleep(RELOAD_WAIT)
        link2 = _link(net)
        assert _curl(net, net.v4_b, "f.bin", 41013) == size  # bypassed again
        link3 = _link(net)
        engine.proc.send_signal(signal.SIGHUP)  # rereads the lists (and reopens the logs)
        time.sleep(RELOAD_WAIT)
        events, stats = _stop(engine)
        nginx.kill()
    assert _flows(events, 41011) == [] and _flows(events, 41013) == []
    (delivered,) = _flows(events, 41012)
    assert _pkts(delivered) >= (link1 - link0) - 6, (delivered, link1 - link0)
    # the entry came back as a new kernel key: it counts the third download only
    third = link3 - link2
    assert third - 6 <= stats["bypass_list.edit.list:2.pkts"] <= third, (stats, third)
    assert stats["bypass_list.reloads"] >= 3, stats  # two edits and SIGHUP
    assert stats["bypass_list.entries"] == 2


# --------------------------------------------------------------------------------------------
# NFQ: a port entry, accepted with the bypass mark
# --------------------------------------------------------------------------------------------


def _rule_counts(net: kernel.NetnsPair) -> tuple[int, int]:
    """(packets the NFQUEUE rules queued, packets accepted on the bypass mark), IPv4."""
    out = net.run(net.ns_b, "iptables", "-w", "5", "-t", "mangle", "-L", "-n", "-v",
                  "-x").stdout
    queued = marked = 0
    for line in out.splitlines():
        fields = line.split()
        if f"/* ruleengine-{QUEUE} */" not in line or len(fields) < 3:
            continue
        if fields[2] == "NFQUEUE":
            queued += int(fields[0])
        elif fields[2] == "ACCEPT" and "mark match" in line:
            marked += int(fields[0])
    return queued, marked


def test_nfq_port_entry_accepts_with_the_mark_and_the_queue_sees_almost_none(
        tmp_path: Path) -> None:
    kernel.require_netns()
    kernel.require_command("iptables", "ip6tables")
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        kernel.skip("netfilterqueue binding not installed (pip install '.[nfq]')")
    size, small = 20 << 20, 256 << 10
    rules = tmp_path / "none.rules"
    rules.write_text(EMPTY_RULES)
    listed = tmp_path / "port.list"
    listed.write_text(f"port {PORT}\n")
    config = _config(tmp_path / "suricata.yaml", [listed], nfq=True)
    with kernel.netns_pair("bl") as net:
        engine = ae.NfqEngine(net, net.ns_b, QUEUE, rules, tmp_path / "log", config)
        stopped = False
        servers: list[ae.HttpServer] = []
        try:
            engine.wait_bound(net, net.ns_b)
            servers = [ae.HttpServer(net, net.ns_b, net.v4_b, PORT),
                       ae.HttpServer(net, net.ns_b, net.v4_b, PORT + 1)]
            q0, m0 = _rule_counts(net)
            got = ae.http_client(net, net.ns_a, (net.v4_b, PORT), (net.v4_a, 41021),
                                 f"/listed?size={size}", timeout=120)
            q1, m1 = _rule_counts(net)
            other = ae.http_client(net, net.ns_a, (net.v4_b, PORT + 1), (net.v4_a, 41022),
                                   f"/other?size={small}", timeout=60)
            q2, _ = _rule_counts(net)
            time.sleep(1.5)
            events, stats = _stop(engine)
            stopped = True
        finally:
            if not stopped:
                engine.proc.kill()
            for server in servers:
                server.close()
    assert got.received >= size and other.received >= small
    queued, marked = q1 - q0, m1 - m0
    print(f"NFQ port list: {size} B download, {queued} packets queued, {marked} accepted "
          f"on the mark before the queue; capture.nfq.list_bypassed "
          f"{stats.get('capture.nfq.list_bypassed')}")
    assert 1 <= queued <= 6, (queued, marked)  # the first packet(s) of each direction
    assert marked >= size // 65536, (queued, marked)  # the rest (GSO packets)
    # each queued packet of the listed flow was accepted with the mark, counted for the entry
    assert stats["capture.nfq.list_bypassed"] == queued, stats
    assert stats["bypass_list.port.list:1.pkts"] == queued, stats
    assert stats.get("capture.bypass.ipv4_success", 0) == 0  # the list did it, not the engine
    assert _flows(events, 41021) == []  # the engine never saw the flow
    # the other port is queued and inspected
    (flow,) = _flows(events, 41022, PORT + 1)
    assert q2 - q1 >= 10 and _pkts(flow) >= q2 - q1, (flow, q2 - q1)


# --------------------------------------------------------------------------------------------
# TLS: an sni entry, after the client hello
# --------------------------------------------------------------------------------------------


def test_sni_entry_bypasses_the_tls_flow_in_the_kernel(tmp_path: Path) -> None:
    _require_afp()
    kernel.require_command("openssl")
    size = 30 << 20
    rules = tmp_path / "none.rules"
    rules.write_text(EMPTY_RULES)
    listed = tmp_path / "sni.list"
    listed.write_text("sni *.bypass.example\n")
    config = _config(tmp_path / "suricata.yaml", [listed])
    certs = ts.make_certs(tmp_path / "certs", "dl.bypass.example")
    kept = ts.make_certs(tmp_path / "certs-kept", "kept.example")
    ts.sparse_file(tmp_path / "www" / "big.bin", size)
    with kernel.netns_pair("bl") as net:
        servers = [ts.OpensslServer(net, net.ns_b, net.v4_b, 8443, certs, tmp_path / "www",
                                    tmp_path / "s1"),
                   ts.OpensslServer(net, net.ns_b, net.v4_b, 8444, kept, tmp_path / "www",
                                    tmp_path / "s2")]
        engine = ae.Engine(net, net.ns_b, net.if_b, rules, tmp_path / "log", config)
        engine.wait_ready(net, net.ns_b, net.if_b)
        bypassed = ts.curl_download(net, net.ns_a, certs, net.v4_b, 8443, "/big.bin",
                                    local_port=41031)
        inspected = ts.curl_download(net, net.ns_a, kept, net.v4_b, 8444, "/big.bin",
                                     local_port=41032)
        time.sleep(BYPASSED_TIMEOUT + 2.5)  # the kernel counters are still: the flow ends
        events, stats = _stop(engine)
        for server in servers:
            server.close()
    assert bypassed.size == size and inspected.size == size, (bypassed, inspected)
    (flow,) = _flows(events, 41031, 8443)
    body = flow["flow"]
    assert flow["app_proto"] == "tls", flow
    assert body["state"] == "bypassed" and body["bypass"] == "capture", body
    assert flow["metadata"]["flowvars"][0] == {"bypass_reason": "list"}, flow
    assert stats["flow_bypassed.reason.list"] == 1, stats
    kernel_pkts = int(body["bypassed"]["pkts_toserver"]) + int(body["bypassed"]["pkts_toclient"])
    leaked = stats.get("flow_bypassed.local_capture_pkts", 0)
    print(f"SNI list: {size} B TLS download, flow {_pkts(flow)} packets, "
          f"{kernel_pkts} in the kernel after the bypass, {leaked} already in the ring")
    # s_server answers at once, unpaced: what reached the ring while the engine decided
    # reaches user space (1-5 % here, depending on the machine's load), and is counted
    assert kernel_pkts >= 0.8 * _pkts(flow) and kernel_pkts > size // 65536, body
    assert _pkts(flow) - kernel_pkts - leaked <= 40, (body, leaked)  # inspected: handshakes
    assert stats["bypass_list.sni.list:1.pkts"] == kernel_pkts, stats
    assert stats["flow_bypassed.by_reason.list.pkts"] == kernel_pkts, stats
    (other,) = _flows(events, 41032, 8444)
    assert other["flow"]["state"] != "bypassed", other
