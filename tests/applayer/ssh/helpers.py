"""SSH test traffic built by hand (RFC 4253 binary packets), independent of the parser."""

from __future__ import annotations

import hashlib
import os
import struct

CLIENT_LISTS = (
    b"curve25519-sha256,ecdh-sha2-nistp256,ext-info-c",  # kex
    b"ssh-ed25519,rsa-sha2-512",  # host key
    b"chacha20-poly1305@openssh.com,aes128-ctr",  # enc c2s
    b"aes256-ctr",  # enc s2c
    b"hmac-sha2-256,hmac-sha1",  # mac c2s
    b"hmac-sha2-512",  # mac s2c
    b"none,zlib@openssh.com",  # cmp c2s
    b"none",  # cmp s2c
    b"",  # lang c2s
    b"",  # lang s2c
)
SERVER_LISTS = (
    b"curve25519-sha256,kex-strict-s-v00@openssh.com",
    b"ssh-ed25519",
    b"aes128-gcm@openssh.com",
    b"chacha20-poly1305@openssh.com",
    b"umac-64-etm@openssh.com",
    b"hmac-sha2-256-etm@openssh.com",
    b"none",
    b"zlib",
    b"",
    b"",
)


def packet(code: int, payload: bytes = b"", padding: int = 4) -> bytes:
    """One cleartext binary packet: length, padding length, msg code, payload, padding."""
    body = bytes([code]) + payload + b"\x00" * padding
    return struct.pack(">IB", len(body) + 1, padding) + body


def kexinit_payload(lists: tuple[bytes, ...], cookie: bytes | None = None) -> bytes:
    out = cookie if cookie is not None else os.urandom(16)
    for item in lists:
        out += struct.pack(">I", len(item)) + item
    return out + b"\x00" + b"\x00\x00\x00\x00"


def kexinit(lists: tuple[bytes, ...]) -> bytes:
    return packet(20, kexinit_payload(lists))


NEWKEYS = packet(21)


def expected_hassh(lists: tuple[bytes, ...], client: bool) -> tuple[str, str]:
    """hassh (client: kex;enc c2s;mac c2s;cmp c2s) / hassh.server (s2c lists), computed here."""
    idx = (0, 2, 4, 6) if client else (0, 3, 5, 7)
    text = ";".join(lists[i].decode() for i in idx)
    return text, hashlib.md5(text.encode()).hexdigest()


def client_stream(banner: bytes = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
                  encrypted: bytes = b"") -> bytes:
    return banner + kexinit(CLIENT_LISTS) + packet(30, b"\x00" * 36) + NEWKEYS + encrypted


def server_stream(banner: bytes = b"SSH-2.0-OpenSSH_8.4\r\n", encrypted: bytes = b"") -> bytes:
    return banner + kexinit(SERVER_LISTS) + packet(31, b"\x11" * 300) + NEWKEYS + encrypted
