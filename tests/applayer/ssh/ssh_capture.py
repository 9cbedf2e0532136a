"""Capture a real OpenSSH exchange on loopback: sshd <- relay (records both directions) <- ssh.

sshd listens on 127.0.0.1 (a free high port) with a host key made for the run; the client
connects through a relay that keeps every byte of each direction. The client has no key and
BatchMode, so the session ends at authentication, well after both NEWKEYS. Run as root, sshd
is started as ``nobody`` (sshd as root insists on /run/sshd for privilege separation; the
test does not touch the system). ``ssh -vvv`` prints both KEXINIT proposals: the test reads
the algorithm lists from there, independently of the parser under test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class Capture:
    c2s: bytes
    s2c: bytes
    client_log: str  # ssh -vvv stderr


def available() -> bool:
    return (Path(SSHD).is_file() and shutil.which("ssh") is not None
            and shutil.which("ssh-keygen") is not None
            and (os.geteuid() != 0 or shutil.which("setpriv") is not None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, seconds: float = 5.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _pump(src: socket.socket, dst: socket.socket, sink: bytearray) -> None:
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


def capture(client_args: tuple[str, ...] = ()) -> Capture | None:
    """One ssh -> sshd exchange through the relay; None when sshd cannot be started."""
    if not available():
        return None
    work = Path(tempfile.mkdtemp(prefix="ssh-capture-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        work.chmod(0o755)  # readable by nobody
        key = work / "hostkey"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sport = _free_port()
        config = work / "sshd_config"
        config.write_text(f"Port {sport}\nListenAddress 127.0.0.1\nHostKey {key}\n"
                          "PidFile none\nUsePAM no\nStrictModes no\n")
        cmd = [SSHD, "-D", "-e", "-f", str(config)]
        if os.geteuid() == 0:
            os.chown(key, 65534, 65534)
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_listening(sport):
            return None
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        rport = lsock.getsockname()[1]
        c2s = bytearray()
        s2c = bytearray()

        def relay() -> None:
            csock, _ = lsock.accept()
            ssock = socket.create_connection(("127.0.0.1", sport))
            t = threading.Thread(target=_pump, args=(ssock, csock, s2c))
            t.start()
            _pump(csock, ssock, c2s)
            t.join(5)
            csock.close()
            ssock.close()

        rt = threading.Thread(target=relay)
        rt.start()
        done = subprocess.run(
            ["ssh", "-vvv", "-F", "/dev/null", "-p", str(rport), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=5", *client_args, "nobody@127.0.0.1", "true"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            timeout=20)
        rt.join(10)
        lsock.close()
        return Capture(bytes(c2s), bytes(s2c), done.stderr.decode(errors="replace"))
    finally:
        if server is not None:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


def proposals(client_log: str) -> dict[str, dict[str, str]]:
    """The ``debug2: local client KEXINIT proposal`` / ``peer server KEXINIT proposal`` blocks
    of ``ssh -vvv``: {"client": {"KEX algorithms": ..., "ciphers ctos": ...}, "server": ...}."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in client_log.splitlines():
        if not line.startswith("debug2: "):
            current = None  # a proposal is a run of debug2 lines
            continue
        text = line.removeprefix("debug2: ").strip()
        if text == "local client KEXINIT proposal":
            current = out.setdefault("client", {})
        elif text == "peer server KEXINIT proposal":
            current = out.setdefault("server", {})
        elif current is not None and ": " in text:
            name, _, value = text.partition(": ")
            current.setdefault(name, value)
        elif current is not None and text.endswith(":"):
            current.setdefault(text[:-1], "")
    return out
