"""Capture a real handshake: openssl s_server <- relay (records both directions) <- s_client."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capture(tmp: Path, cert_pem: Path, key_pem: Path, client_args: list[str],
            server_args: list[str] | None = None) -> tuple[bytes, bytes] | None:
    """Returns (client->server bytes, server->client bytes), or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    sport = _free_port()
    server = subprocess.Popen(
        [openssl, "s_server", "-accept", str(sport), "-cert", str(cert_pem), "-key",
         str(key_pem), "-quiet", *(server_args or [])],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 5
        while time.time() < deadline:  # wait until it listens (the probe is just closed)
            try:
                socket.create_connection(("127.0.0.1", sport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        rport = lsock.getsockname()[1]
        c2s = bytearray()
        s2c = bytearray()

        def pump(src: socket.socket, dst: socket.socket, sink: bytearray) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    sink += data
                    dst.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        def relay() -> None:
            csock, _ = lsock.accept()
            ssock = socket.create_connection(("127.0.0.1", sport))
            t = threading.Thread(target=pump, args=(ssock, csock, s2c))
            t.start()
            pump(csock, ssock, c2s)
            t.join(5)
            csock.close()
            ssock.close()

        rt = threading.Thread(target=relay)
        rt.start()
        subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{rport}", *client_args],
                       input=b"", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=10)
        rt.join(10)
        lsock.close()
        return bytes(c2s), bytes(s2c)
    finally:
        server.kill()
        server.wait()
