"""``ruleengine sc`` (the suricatasc-like client) against a running pipeline's socket, and
``ruleengine run --unix-socket`` / ``unix-command`` opening and removing the socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.commands.test_control import LIMITED, PONG, SET_BIT, LiveRun

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "examples" / "pcaps" / "http-demo.pcap"


def engine(tmp_path: Path, *args: str, stdin: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "ruleengine", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120, input=stdin)


def test_sc_one_command_and_interactive(tmp_path: Path) -> None:
    live = LiveRun(tmp_path, f"{SET_BIT}\n{LIMITED}\n")
    try:
        out = engine(tmp_path, "sc", "-c", "iface-stat NFQ#0", live.socket)
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        assert answer["return"] == "OK" and "pkts" in answer["message"]
        missing = engine(tmp_path, "sc", "-c", "iface-stat", live.socket)
        assert missing.returncode == 1 and "missing arguments" in missing.stderr
        nok = engine(tmp_path, "sc", "-c", "iface-stat eth7", live.socket)
        assert nok.returncode == 1 and json.loads(nok.stdout)["return"] == "NOK"
        live.rules_path.write_text(f"{PONG}\n")
        session = engine(tmp_path, "sc", live.socket,
                         stdin="running-mode\nreload-rules\nruleset-stats\nquit\n")
        assert session.returncode == 0, session.stderr
        assert session.stdout.startswith("Command list: ")
        assert '"rules_loaded": 1' in session.stdout
        assert session.stdout.count("Success:") == 3
    finally:
        live.stop()


def test_sc_without_a_server_is_a_one_line_error(tmp_path: Path) -> None:
    out = engine(tmp_path, "sc", "-c", "version", str(tmp_path / "nothing.socket"))
    assert out.returncode == 1
    assert out.stderr.startswith("error: cannot connect to") and "Traceback" not in out.stderr


def test_run_opens_the_socket_when_asked_and_removes_it(tmp_path: Path) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text('alert http any any -> any any (msg:"x"; content:"GET"; sid:1;)\n')
    path = tmp_path / "ctl.socket"
    out = engine(tmp_path, "run", "-r", str(PCAP), "-S", str(rules), "-l", str(tmp_path),
                 "--no-progress", f"--unix-socket={path}")
    assert out.returncode == 0, out.stderr
    assert f"unix socket: listening on {path}" in out.stderr
    assert not path.exists()
    yaml_path = tmp_path / "yaml.socket"
    out = engine(tmp_path, "run", "-r", str(PCAP), "-S", str(rules), "-l", str(tmp_path),
                 "--no-progress", "--set", "unix-command.enabled=yes",
                 "--set", f"unix-command.filename={yaml_path}")
    assert out.returncode == 0, out.stderr
    assert f"listening on {yaml_path}" in out.stderr
    out = engine(tmp_path, "run", "-r", str(PCAP), "-S", str(rules), "-l", str(tmp_path),
                 "--no-progress")
    assert "unix socket" not in out.stderr  # enabled: auto (the default) opens nothing


def test_run_goes_on_when_the_socket_cannot_be_made(tmp_path: Path) -> None:
    rules = tmp_path / "r.rules"
    rules.write_text('alert http any any -> any any (msg:"x"; content:"GET"; sid:1;)\n')
    blocker = tmp_path / "file"
    blocker.write_text("not a socket")
    out = engine(tmp_path, "run", "-r", str(PCAP), "-S", str(rules), "-l", str(tmp_path),
                 "--no-progress", f"--unix-socket={blocker}")
    assert out.returncode == 0
    assert "warning: unix socket:" in out.stderr and "not a socket" in out.stderr
    assert blocker.read_text() == "not a socket"
