"""A small unix-socket client for the tests that talks exactly as Suricata's ``suricatasc``
does on the wire (python/suricata/sc/suricatasc.py): the version message is sent WITHOUT a
newline, each command is ``json.dumps(...) + "\\n"``, an answer is read in 1024-byte
pieces until the data ends with a newline, and ``command-list`` is sent right after the
handshake. Written independently of ``ruleengine.control.client`` so that the server is
checked against a second implementation of the protocol."""

from __future__ import annotations

import json
import socket
from typing import Any


class ScClient:
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.commands: list[str] = []

    def handshake(self, version: str = "0.2") -> dict[str, Any]:
        self.sock.send(json.dumps({"version": version}).encode("iso-8859-1"))
        answer = self.recv()
        if answer.get("return") == "OK":
            listed = self.command("command-list")
            if listed.get("return") == "OK":
                self.commands = listed["message"]["commands"]
        return answer

    def recv(self) -> dict[str, Any]:
        data = ""
        while True:
            received = self.sock.recv(1024).decode("iso-8859-1")
            if not received:
                raise ConnectionError(f"server closed the connection (got {data!r})")
            data += received
            if data.endswith("\n"):
                return json.loads(data)  # type: ignore[no-any-return]

    def command(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"command": name}
        if arguments:
            message["arguments"] = arguments
        self.sock.send((json.dumps(message) + "\n").encode("iso-8859-1"))
        return self.recv()

    def raw(self, data: bytes) -> dict[str, Any]:
        self.sock.send(data)
        return self.recv()

    def close(self) -> None:
        self.sock.close()
