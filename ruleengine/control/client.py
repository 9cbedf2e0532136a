"""The client side of the unix command socket, speaking as Suricata's ``suricatasc``: the
version message without a newline, commands ended by one, answers read up to their
newline; after connecting, ``command-list`` tells which commands the server has."""

from __future__ import annotations

import json
import socket
from typing import Any

from ruleengine.control.server import PROTO_V2

RECV_SIZE = 4096
MAX_ANSWER = 64 * 1024 * 1024

# Commands whose words after the name are arguments (suricatasc's specs.py, and ours)
ARGUMENTS: dict[str, list[tuple[str, type]]] = {
    "iface-stat": [("iface", str)],
    "bypass-remove": [("flow_id", int)],
    "conf-get": [("variable", str)],
}


class ClientError(Exception):
    """The socket or the server failed (the message says how)."""


class CommandClient:
    def __init__(self, path: str, timeout: float = 600.0) -> None:
        self.path = path
        self.timeout = timeout
        self.commands: list[str] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise ClientError(f"cannot connect to {self.path}: {exc.strerror or exc}") from None
        self._sock = sock
        self._sock.sendall(json.dumps({"version": PROTO_V2}).encode())
        answer = self._receive()
        if answer.get("return") != "OK":
            raise ClientError(f"server refused the connection: {answer.get('message')}")
        listed = self.send("command-list")
        if listed.get("return") == "OK":
            self.commands = list(listed["message"]["commands"])

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._sock is None:
            raise ClientError("not connected")
        message: dict[str, Any] = {"command": command}
        if arguments:
            message["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise ClientError(f"send failed: {exc.strerror or exc}") from None
        return self._receive()

    def _receive(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            try:
                data = self._sock.recv(RECV_SIZE)
            except OSError as exc:
                raise ClientError(f"no answer: {exc.strerror or exc}") from None
            if not data:
                raise ClientError("the server closed the connection")
            self._buf += data
            if len(self._buf) > MAX_ANSWER:
                raise ClientError("answer too long")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError as exc:
            raise ClientError(f"answer is not JSON: {exc}") from None
        if not isinstance(answer, dict):
            raise ClientError("answer is not a JSON object")
        return answer

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def parse_command(line: str) -> tuple[str, dict[str, Any] | None]:
    """``"iface-stat eth0"`` -> ``("iface-stat", {"iface": "eth0"})``; raises ValueError
    when an argument is missing or of the wrong type."""
    words = line.split()
    if not words:
        raise ValueError("empty command")
    name, rest = words[0], words[1:]
    spec = ARGUMENTS.get(name)
    if spec is None:
        return name, None
    if len(rest) < len(spec):
        raise ValueError(f"{name}: missing arguments: expected {len(spec)}")
    args: dict[str, Any] = {}
    for (key, kind), word in zip(spec, rest, strict=False):
        try:
            args[key] = kind(word)
        except ValueError:
            raise ValueError(f"{name}: {key} must be {kind.__name__}, not {word!r}") from None
    return name, args
