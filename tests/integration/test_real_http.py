"""HTTP events on traffic of a real nginx and real curl clients (issue 13's done-means).

nginx (namespace B) serves files the test wrote; curl (namespace A) sends requests the test
chose: methods, URIs, Host, User-Agent, Referer, keep-alive and one-shot connections, a POST.
tcpdump records B's veth end and ``ruleengine run -r`` reads the pcap. The http event count
must equal the number of requests, every event must validate against Suricata's schema, and
each event's fields must equal what the client sent and what nginx answered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import kernel
from tests.integration import realtraffic as rt
from tests.outputs.eve_schema import validate_line

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

PORT = 8080
CONFIG = """%YAML 1.1
---
outputs:
  - eve-log:
      enabled: yes
      filename: eve.json
      types:
        - http:
            extended: yes
        - flow
"""
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
    keepalive_timeout 10;
    default_type application/octet-stream;
    types {{ text/html html; }}
    server {{
        listen {host}:{port};
        root {work}/www;
    }}
}}
"""
FILES = {"small.html": b"<html>hi</html>\n", "mid.bin": bytes(range(256)) * 40,
         "big.html": b"<p>lorem ipsum</p>\n" * 3000}
# (connection: [(method, path, user agent, referer)]): one-shot and keep-alive connections
CONNECTIONS = [
    [("GET", "/small.html", "curl/7.88.1", None)],
    [("GET", "/mid.bin?x=1&y=two", "Mozilla/5.0 (X11; Linux x86_64)", "http://ref.example/")],
    [("GET", "/small.html", "agent-a", None), ("GET", "/big.html", "agent-a", None),
     ("GET", "/missing", "agent-a", None)],
    [("HEAD", "/mid.bin", "agent-head", None)],
    [("POST", "/small.html", "poster/1.0", None)],
]


def _curl(conn: list[tuple[str, str, str, str | None]], host: str) -> list[str]:
    method, _, agent, referer = conn[0]
    cmd = ["curl", "-s", "--max-time", "10", "-A", agent, "-H", "Host: www.example.test"]
    if referer:
        cmd += ["-e", referer]
    if method == "HEAD":
        cmd.append("-I")
    elif method == "POST":
        cmd += ["--data-binary", "user=alice&password=secret"]
    for _, path, _, _ in conn:
        cmd += ["-o", "/dev/null", f"http://{host}:{PORT}{path}"]
    return cmd


def test_http_events_equal_what_curl_sent_and_nginx_answered(tmp_path: Path) -> None:
    kernel.require_netns()
    kernel.require_command("tcpdump", "nginx", "curl")
    work = tmp_path / "nginx"
    (work / "www").mkdir(parents=True)
    for name, data in FILES.items():
        (work / "www" / name).write_bytes(data)
    pcap = tmp_path / "http.pcap"
    with kernel.netns_pair("rh") as net:
        rt.tx_checksums_in_software(net)
        nginx = rt.start_nginx(net, net.ns_b, work,
                               NGINX.format(work=work, host=net.v4_b, port=PORT), PORT)
        with rt.capture(net, net.ns_b, net.if_b, pcap):
            for conn in CONNECTIONS:
                done = rt.run_client(net, net.ns_a, _curl(conn, net.v4_b))
                assert done.returncode == 0, done.stderr
        rt.stop(nginx)
    run = rt.run_engine(pcap, "", tmp_path / "log", config=CONFIG)
    for line in run.lines:
        validate_line(line)
    http = sorted(run.of("http"), key=lambda e: (e["timestamp"], e.get("tx_id", 0)))
    sent = [req for conn in CONNECTIONS for req in conn]
    assert len(http) == len(sent), [e["http"].get("url") for e in http]
    for event, (method, path, agent, referer) in zip(http, sent, strict=True):
        h = event["http"]
        assert h["http_method"] == method
        assert h["url"] == path
        assert h["hostname"] == "www.example.test"
        assert h["http_user_agent"] == agent
        assert h.get("http_refer") == referer
        assert h["protocol"] == "HTTP/1.1"
        name = path.split("?")[0].lstrip("/")
        if method == "POST":
            assert h["status"] == 405  # nginx: no POST to a static file
        elif name in FILES:
            assert h["status"] == 200
            assert h["length"] == (0 if method == "HEAD" else len(FILES[name]))
        else:
            assert h["status"] == 404
    # one flow per curl invocation, keep-alive requests sharing theirs
    flows = {e["flow_id"] for e in http}
    assert len(flows) == len(CONNECTIONS)
