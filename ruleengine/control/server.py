"""The unix command socket server: Suricata's protocol (``src/unix-manager.c``).

A client connects and sends ``{"version": "0.2"}`` (``"0.1"`` is accepted too; neither
needs a newline, as suricatasc sends none); the server answers ``{"return": "OK"}``. Then
each command is one JSON object ``{"command": NAME, "arguments": {...}}`` ended by a
newline, answered by ``{"return": "OK"|"NOK", "message": ...}``; version 0.2 answers end
with a newline. Unlike Suricata, which closes the connection on a malformed message, every
bad message is answered NOK with the reason and the connection stays usable; only an
oversized message or a failed handshake closes it (after its NOK).

Non-blocking throughout: ``poll()`` accepts, reads, runs complete commands and writes what
the sockets take, then returns. A command may answer later (``Pending``: a blocking rule
reload): its client waits, everyone else is served, and the packet loop keeps running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTO_V1 = "0.1"
PROTO_V2 = "0.2"
DEFAULT_PATH = "/var/run/suricata/suricata-command.socket"
MAX_CLIENTS = 32
MAX_MESSAGE = 64 * 1024  # bytes buffered per client before a message must be complete
MAX_OUTPUT = 4 * 1024 * 1024  # unsent answer bytes per client before it is dropped


class ControlError(Exception):
    """The socket cannot be created (the message says why)."""


@dataclass
class Reply:
    """A command's answer: ``ok`` gives ``"return"``, ``message`` is any JSON value."""

    ok: bool
    message: Any


class Pending:
    """An answer that comes later: ``reply`` stays None until ``complete()``."""

    def __init__(self) -> None:
        self.reply: Reply | None = None

    def complete(self, ok: bool, message: Any) -> None:
        if self.reply is None:
            self.reply = Reply(ok, message)


Handler = Callable[[dict[str, Any] | None], "Reply | Pending"]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    takes_args: bool = False  # Suricata's UNIX_CMD_TAKE_ARGS: "arguments" must be an object


@dataclass
class _Client:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    version: str | None = None  # None until the handshake
    waiting: Pending | None = None  # a command whose answer is not there yet
    closing: bool = False  # close once outbuf is sent


def socket_path(filename: str | None) -> str:
    """``unix-command.filename``: an absolute path as is, a relative one in Suricata's
    socket directory, none: Suricata's default."""
    if not filename:
        return DEFAULT_PATH
    if os.path.isabs(filename):
        return filename
    return str(Path(DEFAULT_PATH).parent / filename)


class CommandServer:
    """Listens on ``path`` (a stale socket file there is replaced, any other file is
    refused); ``commands`` by name."""

    def __init__(self, path: str, commands: dict[str, Command],
                 log: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.commands = commands
        self._log = log or (lambda msg: print(f"unix-socket: {msg}", file=sys.stderr))
        self._clients: dict[int, _Client] = {}
        self._listener = self._listen(path)

    # --- setup ---------------------------------------------------------------------

    @staticmethod
    def _listen(path: str) -> socket.socket:
        directory = os.path.dirname(path) or "."
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        except OSError as exc:
            raise ControlError(f"cannot create socket directory {directory}: "
                               f"{exc.strerror}") from None
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise ControlError(f"cannot use {path}: {exc.strerror}") from None
        if mode is not None:
            if not stat.S_ISSOCK(mode):
                raise ControlError(f"{path} exists and is not a socket: not replacing it")
            with contextlib.suppress(OSError):
                os.unlink(path)  # Suricata removes the old socket file too
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o660)
            sock.listen(8)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot listen on {path}: {exc.strerror or exc}") from None
        sock.setblocking(False)
        return sock

    def fileno(self) -> int:
        return self._listener.fileno()

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client)
        self._listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    # --- the loop --------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> None:
        """Serve whatever is ready now (waits at most ``timeout`` seconds for it)."""
        readers = [self._listener, *(c.sock for c in self._clients.values())]
        writers = [c.sock for c in self._clients.values() if c.outbuf]
        try:
            readable, writable, _ = select.select(readers, writers, [], timeout)
        except (OSError, ValueError):  # a signal, or a socket closed under us
            readable, writable = [], []
        if self._listener in readable:
            self._accept()
        for sock in readable:
            client = self._clients.get(id(sock))
            if client is not None and sock is not self._listener:
                self._read(client)
        for client in list(self._clients.values()):
            self._resume(client)
        for sock in writable:
            client = self._clients.get(id(sock))
            if client is not None:
                self._flush(client)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        client = _Client(sock)
        self._clients[id(sock)] = client
        if len(self._clients) > MAX_CLIENTS:
            self._answer(client, Reply(False, f"too many clients (at most {MAX_CLIENTS})"))
            client.closing = True
            self._flush(client)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.inbuf += data
        self._process(client)
        if len(client.inbuf) > MAX_MESSAGE and client.waiting is None:
            client.inbuf.clear()
            self._answer(client, Reply(False, f"message too long (more than {MAX_MESSAGE} "
                                              "bytes without a complete command)"))
            client.closing = True
        self._flush(client)

    def _process(self, client: _Client) -> None:
        """Run every complete message in the buffer, in order; stop at one that answers
        later (the next ones wait for it, so answers keep the order of the commands)."""
        while client.waiting is None and not client.closing:
            message = _take_message(client.inbuf)
            if message is None:
                return
            if client.version is None:
                self._handshake(client, message)
            else:
                self._execute(client, message)

    def _resume(self, client: _Client) -> None:
        pending = client.waiting
        if pending is not None and pending.reply is not None:
            client.waiting = None
            self._answer(client, pending.reply)
            self._process(client)
            self._flush(client)

    # --- protocol ----------------------------------------------------------------------

    def _handshake(self, client: _Client, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError as exc:
            return self._refuse(client, f"invalid JSON in version message: {exc}")
        version = msg.get("version") if isinstance(msg, dict) else None
        if not isinstance(version, str):
            return self._refuse(client, "version is not a string")
        if version not in (PROTO_V1, PROTO_V2):
            return self._refuse(client, f'invalid client version: "{version}" '
                                        f"(supported: {PROTO_V2}, {PROTO_V1})")
        client.version = version
        self._answer(client, Reply(True, None))
        return None

    def _refuse(self, client: _Client, reason: str) -> None:
        self._log(reason)
        client.version = PROTO_V2  # the answer is newline-terminated
        self._answer(client, Reply(False, reason))
        client.closing = True

    def _execute(self, client: _Client, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError as exc:
            self._answer(client, Reply(False, f"invalid JSON: {exc}"))
            return
        name = msg.get("command") if isinstance(msg, dict) else None
        if not isinstance(name, str):
            self._answer(client, Reply(False, "command is not a string"))
            return
        command = self.commands.get(name)
        if command is None:
            self._answer(client, Reply(False, "Unknown command"))
            return
        args = msg.get("arguments")
        if command.takes_args and not isinstance(args, dict):
            self._answer(client, Reply(False, "argument is not an object"))
            return
        try:
            result = command.handler(args if isinstance(args, dict) else None)
        except Exception as exc:  # a command must never take the engine down
            self._log(f"command {name} failed: {type(exc).__name__}: {exc}")
            result = Reply(False, f"internal error: {type(exc).__name__}: {exc}")
        if isinstance(result, Pending):
            if result.reply is None:
                client.waiting = result
                return
            result = result.reply
        self._answer(client, result)

    def _answer(self, client: _Client, reply: Reply) -> None:
        body: dict[str, Any] = {"return": "OK" if reply.ok else "NOK"}
        if reply.message is not None:
            body["message"] = reply.message
        try:
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=True, default=str)
        except ValueError as exc:  # e.g. a circular value: still an answer
            text = json.dumps({"return": "NOK", "message": f"cannot encode answer: {exc}"})
        if client.version != PROTO_V1:
            text += "\n"
        if len(client.outbuf) + len(text) > MAX_OUTPUT:
            self._log("client does not read its answers: disconnecting it")
            self._drop(client)
            return
        client.outbuf += text.encode()

    # --- output ----------------------------------------------------------------------------

    def _flush(self, client: _Client) -> None:
        if id(client.sock) not in self._clients:
            return
        while client.outbuf:
            try:
                sent = client.sock.send(client.outbuf)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    self._log(f"send failed: {exc.strerror}")
                self._drop(client)
                return
            del client.outbuf[:sent]
        if client.closing:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._clients.pop(id(client.sock), None)
        with contextlib.suppress(OSError):
            client.sock.close()


def _take_message(buf: bytearray) -> bytes | None:
    """The first complete message in ``buf`` (removed from it), else None. A message is a
    line; text without a newline counts once it parses as a whole JSON value (the version
    message, and clients that send no newline, as Suricata's single recv() takes them)."""
    while True:
        newline = buf.find(b"\n")
        if newline >= 0:
            line = bytes(buf[:newline])
            del buf[:newline + 1]
            if line.strip():
                return line
            continue
        text = bytes(buf)
        if not text.strip():
            buf.clear()
            return None
        try:
            json.loads(text)
        except ValueError:
            return None
        buf.clear()
        return text
