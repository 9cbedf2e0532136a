"""The unix socket protocol over a real AF_UNIX socket: handshake, commands, bad input,
answers that come later. The server is polled by a thread here, as the packet loop polls
it in a run; the client is ``sc_client`` (suricatasc's wire behaviour)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ruleengine.control.commands import command_table
from ruleengine.control.server import (
    DEFAULT_PATH,
    MAX_MESSAGE,
    CommandServer,
    ControlError,
    Pending,
    Reply,
    socket_path,
)
from tests.control.sc_client import ScClient


class FakeTarget:
    running_mode = "single"
    capture_mode = "NFQ"

    def __init__(self) -> None:
        self.pending: list[Pending] = []
        self.stopped = False
        self.removed: list[dict[str, Any]] = []

    def reload(self) -> Pending:
        pending = Pending()
        self.pending.append(pending)
        return pending

    def reload_times(self) -> list[dict[str, Any]]:
        return [{"id": 0, "last_reload": "2026-01-01T00:00:00.000000+0000"}]

    def ruleset_stats(self) -> list[dict[str, Any]]:
        return [{"id": 0, "rules_loaded": 3, "rules_failed": 1, "rules_skipped": 0}]

    def failed_rules(self) -> list[dict[str, Any]]:
        return [{"tenant_id": 0, "rule": f"bad {i}", "filename": "x.rules", "line": i,
                 "error": "oops"} for i in range(30)]

    def counters(self) -> dict[str, Any]:
        return {"uptime": 1, "decoder": {"pkts": 7}}

    def ifaces(self) -> list[str]:
        return ["NFQ#0"]

    def iface_stat(self, name: str) -> dict[str, Any] | None:
        return {"pkts": 7, "drop": 0, "invalid-checksums": 0, "bypassed": 0} \
            if name == "NFQ#0" else None

    def shutdown(self) -> None:
        self.stopped = True

    def conf_get(self, name: str) -> Any:
        return {"a.b": "yes", "flag": True, "tree": {"x": 1}, "n": 5}.get(name)

    def reopen_logs(self) -> None:
        self.reopened = True

    def bypassed(self) -> list[dict[str, Any]]:
        return [{"flow_id": 5}]

    def unbypass(self, args: dict[str, Any]) -> Reply:
        if args.get("flow_id") == 5:
            self.removed.append(args)
            return Reply(True, {"count": 1})
        return Reply(False, "no bypassed flow matches")


class Served:
    def __init__(self, path: Path) -> None:
        self.target = FakeTarget()
        self.path = str(path)
        self.server = CommandServer(self.path, command_table(self.target))
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop:
            self.server.poll(0.01)

    def client(self, handshake: bool = True) -> ScClient:
        client = ScClient(self.path, timeout=5)
        if handshake:
            assert client.handshake() == {"return": "OK"}
        return client

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path / "run" / "command.socket")
    yield s
    s.close()


def test_handshake_then_command_list_as_suricatasc_does(served: Served) -> None:
    client = served.client()
    for name in ("version", "uptime", "running-mode", "capture-mode", "reload-rules",
                 "ruleset-reload-nonblocking", "ruleset-reload-time", "ruleset-stats",
                 "ruleset-failed-rules", "dump-counters", "iface-list", "iface-stat",
                 "shutdown", "command-list", "help", "bypass-list", "bypass-remove"):
        assert name in client.commands
    assert client.command("running-mode") == {"return": "OK", "message": "single"}
    assert client.command("capture-mode") == {"return": "OK", "message": "NFQ"}
    assert isinstance(client.command("uptime")["message"], int)
    assert "RELEASE" in client.command("version")["message"]
    client.close()


def test_answers_are_compact_json_lines(served: Served) -> None:
    client = served.client()
    client.sock.send(b'{"command": "iface-list"}\n')
    raw = b""
    while not raw.endswith(b"\n"):
        raw += client.sock.recv(1024)
    assert raw == b'{"return":"OK","message":{"count":1,"ifaces":["NFQ#0"]}}\n'
    client.close()


def test_version_0_1_answers_have_no_newline(served: Served) -> None:
    client = served.client(handshake=False)
    client.sock.send(json.dumps({"version": "0.1"}).encode())
    assert client.sock.recv(1024) == b'{"return":"OK"}'
    client.sock.send(b'{"command": "running-mode"}\n')
    assert client.sock.recv(1024) == b'{"return":"OK","message":"single"}'
    client.close()


@pytest.mark.parametrize("hello", [b'{"version": "9.9"}', b'{"version": 2}', b'[1, 2]',
                                   b'{"versio\n'])
def test_a_bad_handshake_gets_nok_and_the_connection_closes(served: Served,
                                                            hello: bytes) -> None:
    client = served.client(handshake=False)
    answer = client.raw(hello)
    assert answer["return"] == "NOK" and answer["message"]
    assert client.sock.recv(1024) == b""  # closed by the server
    client.close()


def test_bad_json_and_unknown_commands_get_nok_and_the_session_goes_on(
        served: Served) -> None:
    client = served.client()
    answer = client.raw(b'{"command": "version",,}\n')
    assert answer["return"] == "NOK" and answer["message"].startswith("invalid JSON")
    assert client.command("no-such-command") == {"return": "NOK",
                                                 "message": "Unknown command"}
    assert client.raw(b'{"command": 42}\n') == {"return": "NOK",
                                               "message": "command is not a string"}
    assert client.raw(b'{"command": "iface-stat"}\n') == {
        "return": "NOK", "message": "argument is not an object"}
    assert client.command("iface-stat", {"iface": "eth9"}) == {
        "return": "NOK", "message": "Interface not found"}
    assert client.command("iface-stat", {"iface": "NFQ#0"})["message"]["pkts"] == 7
    assert client.command("running-mode")["return"] == "OK"  # still usable
    client.close()


def test_several_commands_in_one_send_are_answered_in_order(served: Served) -> None:
    client = served.client()
    client.sock.send(b'{"command": "running-mode"}\n{"command": "capture-mode"}\n')
    data = b""
    while data.count(b"\n") < 2:
        data += client.sock.recv(1024)
    first, second = data.splitlines()
    assert json.loads(first)["message"] == "single"
    assert json.loads(second)["message"] == "NFQ"
    client.close()


def test_an_endless_message_is_refused_and_closed(served: Served) -> None:
    client = served.client()
    client.sock.sendall(b'{"command": "' + b"x" * (MAX_MESSAGE + 10))
    answer = client.recv()
    assert answer["return"] == "NOK" and "too long" in answer["message"]
    client.close()


def test_a_blocking_reload_waits_while_other_clients_are_served(served: Served) -> None:
    waiting, other = served.client(), served.client()
    waiting.sock.send(b'{"command": "reload-rules"}\n')
    deadline = time.monotonic() + 5
    while not served.target.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert other.command("running-mode")["message"] == "single"
    waiting.sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        waiting.sock.recv(1024)
    served.target.pending[0].complete(False, "rule reload failed, old rules kept: x:1: bad")
    waiting.sock.settimeout(5)
    assert waiting.recv() == {"return": "NOK",
                              "message": "rule reload failed, old rules kept: x:1: bad"}
    waiting.close()
    other.close()


def test_nonblocking_reload_answers_at_once(served: Served) -> None:
    client = served.client()
    assert client.command("ruleset-reload-nonblocking") == {"return": "OK",
                                                            "message": "done"}
    assert len(served.target.pending) == 1
    client.close()


def test_ruleset_and_counter_commands(served: Served) -> None:
    client = served.client()
    assert client.command("ruleset-stats")["message"] == [
        {"id": 0, "rules_loaded": 3, "rules_failed": 1, "rules_skipped": 0}]
    failed = client.command("ruleset-failed-rules")["message"]
    assert len(failed) == 21  # Suricata stops after MAX_FAILED_RULES (20) + 1
    assert client.command("dump-counters")["message"]["decoder"] == {"pkts": 7}
    assert client.command("ruleset-reload-time")["message"][0]["id"] == 0
    client.close()


def test_bypass_commands_and_shutdown(served: Served) -> None:
    client = served.client()
    assert client.command("bypass-list")["message"] == {"count": 1, "flows": [{"flow_id": 5}]}
    assert client.command("bypass-remove", {"flow_id": 6})["return"] == "NOK"
    assert client.command("bypass-remove", {"flow_id": 5})["return"] == "OK"
    assert client.command("shutdown") == {"return": "OK", "message": "Closing Suricata"}
    assert served.target.stopped
    client.close()


def test_conf_get_and_reopen_log_files(served: Served) -> None:
    client = served.client()
    assert client.command("conf-get", {"variable": "a.b"}) == {"return": "OK",
                                                               "message": "yes"}
    assert client.command("conf-get", {"variable": "flag"})["message"] == "yes"
    assert client.command("conf-get", {"variable": "n"})["message"] == "5"
    assert client.command("conf-get", {"variable": "tree"}) == {
        "return": "NOK", "message": "No string value"}
    assert client.command("conf-get", {"variable": "nope"}) == {
        "return": "NOK", "message": "Unable to get value"}
    assert client.command("conf-get", {"variable": 3})["return"] == "NOK"
    assert client.command("reopen-log-files") == {"return": "OK", "message": "done"}
    assert served.target.reopened
    client.close()


def test_a_failing_command_is_nok_not_a_crash(served: Served) -> None:
    def boom() -> list[dict[str, Any]]:
        raise RuntimeError("kaputt")

    served.target.bypassed = boom  # type: ignore[method-assign]
    client = served.client()
    answer = client.command("bypass-list")
    assert answer["return"] == "NOK" and "kaputt" in answer["message"]
    assert client.command("running-mode")["return"] == "OK"
    client.close()


def test_many_clients_beyond_the_cap_are_turned_away(served: Served) -> None:
    clients = [served.client() for _ in range(32)]
    extra = ScClient(served.path, timeout=5)
    answer = extra.recv()
    assert answer["return"] == "NOK" and "too many clients" in answer["message"]
    for c in [*clients, extra]:
        c.close()


def test_socket_path_follows_suricata(tmp_path: Path) -> None:
    assert socket_path(None) == DEFAULT_PATH
    assert socket_path("my.socket") == "/var/run/suricata/my.socket"
    assert socket_path(str(tmp_path / "abs.socket")) == str(tmp_path / "abs.socket")


def test_a_stale_socket_is_replaced_and_a_regular_file_is_not(tmp_path: Path) -> None:
    stale = tmp_path / "stale.socket"
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(str(stale))
    old.close()
    server = CommandServer(str(stale), {})
    server.close()
    assert not stale.exists()  # close() removes the socket file
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(ControlError, match="not a socket"):
        CommandServer(str(regular), {})
    assert regular.read_text() == "keep me"
