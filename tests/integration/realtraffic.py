"""Real clients and servers between the namespaces of a ``tests.kernel.NetnsPair``, captured
with tcpdump, and an account of that traffic that owes nothing to the engine.

* Certificates (``cryptography``): CAs and leaf certificates with chosen subjects, serials
  and validity, plus the strings Suricata logs for them computed here from the certificate
  itself (``suricata_dn``, ``der_serial`` read from the DER bytes, ``sha1_colon``,
  ``suricata_time``).
* ``Tcpdump``: a capture on one interface of a namespace into a pcap file.
* ``read_pcap`` / ``tcp_conversations`` / ``udp_datagrams``: a small pcap reader and TCP
  reassembly (good enough for handshakes: in-order, de-duplicated by sequence number).
* ``tls_handshake``: the plaintext handshake messages of one TCP conversation, decoded into
  ``Hello`` (version, ciphers, extensions, SNI, ALPN, session id) and the Certificate list;
  ``ja3_string`` / ``ja3s_string`` follow the JA3 definition (GREASE values left out).
* ``dns_messages``: DNS header fields and questions of UDP datagrams / TCP streams.
* Servers and clients: nginx with SNI virtual hosts, ``openssl s_server`` / ``s_client``,
  ``curl``, ``dnsmasq`` and ``dig``; readiness is read from /proc (no packet is sent).
* ``run_engine``: ``ruleengine run -r`` on a capture, returning the EVE events.

Traffic only ever goes to the namespaces' own addresses.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import kernel

REPO = kernel.REPO_ROOT
ENGINE = REPO / ".venv" / "bin" / "ruleengine"

# --------------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------------

# x509-parser's abbreviations (what Suricata prints), for the attributes the tests use
_ABBREV = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
           "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "Email",
           "0.9.2342.19200300.100.1.25": "DC"}


@dataclass(frozen=True)
class Cert:
    """A certificate and its key as PEM files, and the parsed certificate."""

    pem: Path
    key: Path
    der: bytes
    cert: Any  # cryptography.x509.Certificate
    private_key: Any


def _name(attrs: Sequence[tuple[str, str]]) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
            "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
            "Email": NameOID.EMAIL_ADDRESS}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs])


def make_cert(directory: Path, stem: str, subject: Sequence[tuple[str, str]], serial: int,
              not_before: dt.datetime, not_after: dt.datetime, *, issuer: Cert | None = None,
              sans: Sequence[str] = ()) -> Cert:
    """A CA (``issuer`` None: self-signed, CA:true) or a server certificate signed by
    ``issuer``. EC P-256 keys: fast to make."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(subject)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(not_before).not_valid_after(not_after))
    if issuer is None:
        builder = (builder
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, key_cert_sign=True, crl_sign=True,
                       content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, encipher_only=False,
                       decipher_only=False), critical=True))
        signer = key
    else:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.DNSName(s) for s in sans]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False))
        signer = issuer.private_key
    cert = builder.sign(signer, hashes.SHA256())
    pem = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Cert(pem, key_path, cert.public_bytes(serialization.Encoding.DER), cert, key)


def bundle(path: Path, certs: Sequence[Cert]) -> Path:
    path.write_bytes(b"".join(c.pem.read_bytes() for c in certs))
    return path


def suricata_dn(name: Any) -> str:
    """Suricata's subject / issuer string: RDNs in certificate order, ``ABBREV=value``,
    joined by ``", "`` (several attributes of one RDN by ``" + "``)."""
    return ", ".join(" + ".join(f"{_ABBREV[a.oid.dotted_string]}={a.value}" for a in rdn)
                     for rdn in name.rdns)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def der_serial(der: bytes) -> str:
    """The serialNumber INTEGER's content bytes as Suricata prints them (``00:E1:..``), read
    straight from the certificate's DER (Certificate -> TBSCertificate -> [0] version ->
    serialNumber)."""
    _, cert_start, _ = _tlv(der, 0)
    _, tbs_start, _ = _tlv(der, cert_start)
    tag, start, end = _tlv(der, tbs_start)
    if tag == 0xA0:  # explicit version
        tag, start, end = _tlv(der, end)
    assert tag == 0x02, f"serialNumber is not an INTEGER (tag {tag:#x})"
    return ":".join(f"{b:02X}" for b in der[start:end])


def sha1_colon(der: bytes) -> str:
    return ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())


def suricata_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------------------------
# readiness (from /proc: sends no packet) and processes
# --------------------------------------------------------------------------------------------


def listening(net: kernel.NetnsPair, ns: str, port: int, *, udp: bool = False) -> bool:
    """Something in ``ns`` listens on TCP ``port`` (or has a UDP socket bound to it)."""
    files = ("/proc/net/udp", "/proc/net/udp6") if udp else ("/proc/net/tcp", "/proc/net/tcp6")
    out = net.run(ns, "cat", *files, check=False).stdout
    state = "07" if udp else "0A"
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == state and ":" in fields[1]:
            with contextlib.suppress(ValueError):
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def wait_listening(net: kernel.NetnsPair, ns: str, port: int, proc: subprocess.Popen[bytes],
                   what: str, log: Path, *, udp: bool = False, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {tail(log)}")
        if listening(net, ns, port, udp=udp):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on port {port} after {timeout}s: {tail(log)}")


def start_nginx(net: kernel.NetnsPair, ns: str, work: Path, conf_text: str,
                port: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground in ``ns`` with ``conf_text`` as ``work``/nginx.conf (its
    errors to ``work``/error.log), once it listens on ``port``."""
    conf = work / "nginx.conf"
    conf.write_text(conf_text)
    log = work / "error.log"
    proc = net.popen(ns, "nginx", "-p", str(work), "-c", str(conf), "-e", str(log),
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    wait_listening(net, ns, port, proc, "nginx", log)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --------------------------------------------------------------------------------------------
# capture
# --------------------------------------------------------------------------------------------

_SIOCETHTOOL, _ETHTOOL_STXCSUM = 0x8946, 0x17


def tx_checksums_in_software(net: kernel.NetnsPair) -> None:
    """Transmit checksum offload off on both veth ends: a tap then records the checksums a
    real wire would carry (with offload, locally sent segments are captured before the
    checksum is filled in, and the engine, as Suricata, rightly ignores them)."""
    for ns, ifname in ((net.ns_a, net.if_a), (net.ns_b, net.if_b)):
        with net.entered(ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            value = (ctypes.c_uint32 * 2)(_ETHTOOL_STXCSUM, 0)
            ifreq = struct.pack("16sP16x", ifname.encode(), ctypes.addressof(value))
            fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifreq)
        finally:
            s.close()



class Tcpdump:
    """``tcpdump`` on ``ifname`` in ``ns`` writing every frame to ``pcap`` (snaplen 0,
    packet-buffered). ``close()`` stops it (SIGINT: the file is flushed) and returns the
    number of packets it reported captured."""

    def __init__(self, net: kernel.NetnsPair, ns: str, ifname: str, pcap: Path,
                 bpf: Sequence[str] = ()) -> None:
        kernel.require_command("tcpdump")
        self.pcap = pcap
        self.log = pcap.with_suffix(".tcpdump.log")
        # -Z root: Debian's tcpdump otherwise drops to the tcpdump user, who may not write
        # in the test's temporary directory
        self.proc = net.popen(ns, "tcpdump", "-i", ifname, "-n", "-s", "0", "-U",
                              "--immediate-mode", "-Z", "root", "-w", str(pcap), *bpf,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(self.log, "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while "listening on" not in tail(self.log):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {tail(self.log)}")
            time.sleep(0.02)

    def close(self) -> int:
        time.sleep(0.2)  # the last frames of the last exchange reach the tap
        stop(self.proc, signal.SIGINT)
        for line in tail(self.log).splitlines():
            if "packets captured" in line:
                return int(line.split()[0])
        return -1


# --------------------------------------------------------------------------------------------
# pcap reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    ts: float
    src: str
    dst: str
    proto: int  # 6 TCP, 17 UDP
    sport: int
    dport: int
    payload: bytes
    seq: int = 0
    tcp_flags: int = 0


def _addr(raw: bytes) -> str:
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    import ipaddress

    return str(ipaddress.IPv6Address(raw))


def read_pcap(path: Path) -> list[Packet]:
    """TCP and UDP packets of a classic pcap file (Ethernet or Linux cooked link types,
    IPv4 / IPv6 without extension headers, VLAN tags skipped)."""
    data = path.read_bytes()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}[magic]
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos = 24
    out: list[Packet] = []
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:
            ethertype, off = struct.unpack("!H", frame[12:14])[0], 14
            while ethertype in (0x8100, 0x88A8):
                ethertype, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
        elif linktype == 113:
            ethertype, off = struct.unpack("!H", frame[14:16])[0], 16
        else:
            raise ValueError(f"link type {linktype} not handled")
        pkt = _ip_packet(ts, ethertype, frame[off:])
        if pkt is not None:
            out.append(pkt)
    return out


def _ip_packet(ts: float, ethertype: int, ip: bytes) -> Packet | None:
    if ethertype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        l4 = ip[ihl:total]
    elif ethertype == 0x86DD:
        plen = struct.unpack("!H", ip[4:6])[0]
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        l4 = ip[40:40 + plen]
    else:
        return None
    if proto == 6:
        sport, dport, seq = struct.unpack("!HHI", l4[:8])
        doff = (l4[12] >> 4) * 4
        return Packet(ts, _addr(src), _addr(dst), 6, sport, dport, bytes(l4[doff:]), seq,
                      l4[13])
    if proto == 17:
        sport, dport = struct.unpack("!HH", l4[:4])
        return Packet(ts, _addr(src), _addr(dst), 17, sport, dport, bytes(l4[8:]))
    return None


@dataclass
class Conversation:
    """One TCP connection: the client's and the server's bytes, each in sequence order."""

    client: tuple[str, int]
    server: tuple[str, int]
    first_ts: float
    to_server: bytes = b""
    to_client: bytes = b""


def _reassemble(segments: list[tuple[int, bytes]], isn: int) -> bytes:
    out = bytearray()
    next_seq = (isn + 1) & 0xFFFFFFFF
    for seq, data in sorted(segments, key=lambda s: (s[0] - next_seq) & 0xFFFFFFFF):
        rel = (seq - next_seq) & 0xFFFFFFFF
        if rel > 0x7FFFFFFF:  # starts before what we have: keep the new tail only
            overlap = (next_seq - seq) & 0xFFFFFFFF
            data = data[overlap:] if overlap < len(data) else b""
            rel = 0
        if rel > 0:
            break  # a hole: what follows cannot be trusted
        out += data
        next_seq = (next_seq + len(data)) & 0xFFFFFFFF
    return bytes(out)


def tcp_conversations(packets: Sequence[Packet]) -> list[Conversation]:
    """Every TCP connection that starts with a SYN in the capture, in order of that SYN."""
    syns: dict[tuple[str, int, str, int], tuple[float, int]] = {}
    synacks: dict[tuple[str, int, str, int], int] = {}
    segs: dict[tuple[str, int, str, int], list[tuple[int, bytes]]] = {}
    for p in packets:
        if p.proto != 6:
            continue
        key = (p.src, p.sport, p.dst, p.dport)
        if p.tcp_flags & 0x12 == 0x02 and key not in syns:
            syns[key] = (p.ts, p.seq)
        elif p.tcp_flags & 0x12 == 0x12 and key not in synacks:
            synacks[key] = p.seq
        if p.payload:
            segs.setdefault(key, []).append((p.seq, p.payload))
    out = []
    for (csrc, cport, ssrc, sport), (ts, isn) in sorted(syns.items(), key=lambda i: i[1][0]):
        conv = Conversation((csrc, cport), (ssrc, sport), ts)
        conv.to_server = _reassemble(segs.get((csrc, cport, ssrc, sport), []), isn)
        server_isn = synacks.get((ssrc, sport, csrc, cport))
        if server_isn is not None:
            conv.to_client = _reassemble(segs.get((ssrc, sport, csrc, cport), []), server_isn)
        out.append(conv)
    return out


# --------------------------------------------------------------------------------------------
# TLS handshake decoding (what the tests expect the engine to find)
# --------------------------------------------------------------------------------------------

GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))
EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_ALPN = 0, 10, 11, 16
EXT_SIG_ALGS, EXT_SESSION_TICKET, EXT_SUPPORTED_VERSIONS = 13, 35, 43


@dataclass
class Hello:
    """A ClientHello or ServerHello as sent."""

    legacy_version: int
    session_id: bytes
    ciphers: list[int]  # the ServerHello's one cipher for a server
    extensions: list[tuple[int, bytes]] = field(default_factory=list)

    def ext(self, etype: int) -> bytes | None:
        for t, data in self.extensions:
            if t == etype:
                return data
        return None

    @property
    def sni(self) -> str | None:
        data = self.ext(EXT_SNI)
        if not data:
            return None
        # server_name_list length, name_type, host_name length, host_name
        (length,) = struct.unpack("!H", data[3:5])
        return data[5:5 + length].decode()

    @property
    def alpns(self) -> list[str]:
        data = self.ext(EXT_ALPN)
        out: list[str] = []
        if data:
            pos = 2
            while pos < len(data):
                n = data[pos]
                out.append(data[pos + 1:pos + 1 + n].decode())
                pos += 1 + n
        return out

    def _u16_list(self, etype: int, prefix: int) -> list[int]:
        data = self.ext(etype)
        if not data:
            return []
        body = data[prefix:]
        return [struct.unpack("!H", body[i:i + 2])[0] for i in range(0, len(body) - 1, 2)]

    @property
    def groups(self) -> list[int]:
        return self._u16_list(EXT_GROUPS, 2)

    @property
    def point_formats(self) -> list[int]:
        data = self.ext(EXT_POINT_FORMATS)
        return list(data[1:1 + data[0]]) if data else []

    @property
    def selected_version(self) -> int:
        """A ServerHello's negotiated version (supported_versions wins)."""
        data = self.ext(EXT_SUPPORTED_VERSIONS)
        if data is not None and len(data) == 2:
            return int(struct.unpack("!H", data)[0])
        return self.legacy_version


@dataclass
class Handshake:
    client_hello: Hello | None = None
    server_hello: Hello | None = None
    certificates: list[bytes] = field(default_factory=list)  # DER, the server's chain


def _handshake_messages(stream: bytes) -> list[tuple[int, bytes]]:
    """Handshake messages of the plaintext records at the start of one direction (stops at
    the first ChangeCipherSpec / application data / alert record)."""
    buf = bytearray()
    pos = 0
    while pos + 5 <= len(stream):
        ctype, _ver, length = struct.unpack("!BHH", stream[pos:pos + 5])
        if ctype != 22:
            break
        buf += stream[pos + 5:pos + 5 + length]
        pos += 5 + length
    out = []
    i = 0
    while i + 4 <= len(buf):
        mtype = buf[i]
        mlen = int.from_bytes(buf[i + 1:i + 4], "big")
        out.append((mtype, bytes(buf[i + 4:i + 4 + mlen])))
        i += 4 + mlen
    return out


def _hello(body: bytes, client: bool) -> Hello:
    version = struct.unpack("!H", body[:2])[0]
    pos = 34
    sid = body[pos + 1:pos + 1 + body[pos]]
    pos += 1 + body[pos]
    if client:
        (n,) = struct.unpack("!H", body[pos:pos + 2])
        ciphers = [struct.unpack("!H", body[pos + 2 + i:pos + 4 + i])[0] for i in range(0, n, 2)]
        pos += 2 + n
        pos += 1 + body[pos]  # compression methods
    else:
        ciphers = [struct.unpack("!H", body[pos:pos + 2])[0]]
        pos += 3  # cipher, compression method
    hello = Hello(version, sid, ciphers)
    if pos + 2 <= len(body):
        (total,) = struct.unpack("!H", body[pos:pos + 2])
        pos += 2
        end = pos + total
        while pos + 4 <= end:
            etype, elen = struct.unpack("!HH", body[pos:pos + 4])
            hello.extensions.append((etype, body[pos + 4:pos + 4 + elen]))
            pos += 4 + elen
    return hello


def tls_handshake(conv: Conversation) -> Handshake:
    hs = Handshake()
    for mtype, body in _handshake_messages(conv.to_server):
        if mtype == 1 and hs.client_hello is None:
            hs.client_hello = _hello(body, True)
    for mtype, body in _handshake_messages(conv.to_client):
        if mtype == 2 and hs.server_hello is None:
            hs.server_hello = _hello(body, False)
        elif mtype == 11 and not hs.certificates:
            pos = 3
            while pos + 3 <= len(body):
                n = int.from_bytes(body[pos:pos + 3], "big")
                hs.certificates.append(body[pos + 3:pos + 3 + n])
                pos += 3 + n
    return hs


def _dashed(values: Sequence[int]) -> str:
    return "-".join(str(v) for v in values if v not in GREASE)


def ja3_string(hello: Hello) -> str:
    """SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats."""
    return ",".join([str(hello.legacy_version), _dashed(hello.ciphers),
                     _dashed([t for t, _ in hello.extensions]), _dashed(hello.groups),
                     _dashed(hello.point_formats)])


def ja3s_string(hello: Hello) -> str:
    """SSLVersion,Cipher,Extensions."""
    return ",".join([str(hello.legacy_version), _dashed(hello.ciphers),
                     _dashed([t for t, _ in hello.extensions])])


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "0" * 12


def ja4(hello: Hello) -> str:
    """FoxIO's JA4 of a ClientHello over TCP (technical_details/JA4.md)."""
    versions = [v for v in hello._u16_list(EXT_SUPPORTED_VERSIONS, 1) if v not in GREASE]
    version = _JA4_VERSIONS.get(max(versions) if versions else hello.legacy_version, "00")
    ciphers = [c for c in hello.ciphers if c not in GREASE]
    exts = [t for t, _ in hello.extensions if t not in GREASE]
    alpns = hello.alpns
    if alpns and alpns[0]:
        first = alpns[0]
        assert first[0].isalnum() and first[-1].isalnum(), first  # the simple case only
        alpn = first[0] + first[-1]
    else:
        alpn = "00"
    part_a = (f"t{version}{'d' if hello.ext(EXT_SNI) is not None else 'i'}"
              f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn}")
    part_b = _sha12(",".join(f"{c:04x}" for c in sorted(ciphers)))
    ext_list = ",".join(f"{t:04x}" for t in sorted(exts) if t not in (EXT_SNI, EXT_ALPN))
    sigalgs = ",".join(f"{a:04x}" for a in hello._u16_list(EXT_SIG_ALGS, 2))
    part_c = _sha12(f"{ext_list}_{sigalgs}" if sigalgs else ext_list)
    return f"{part_a}_{part_b}_{part_c}"


# --------------------------------------------------------------------------------------------
# DNS decoding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsMessage:
    transport: str  # "UDP" / "TCP"
    client_port: int
    to_server: bool
    id: int
    flags: int
    questions: tuple[tuple[str, int], ...]  # (name, qtype)


def _dns_name(msg: bytes, pos: int) -> tuple[str, int]:
    labels: list[str] = []
    end = -1
    for _ in range(128):
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if end < 0:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n == 0:
            pos += 1
            break
        labels.append(msg[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    return ".".join(labels), (end if end >= 0 else pos)


def _dns_message(msg: bytes, transport: str, client_port: int, to_server: bool) -> DnsMessage:
    ident, flags, qd = struct.unpack("!HHH", msg[:6])
    pos = 12
    questions = []
    for _ in range(qd):
        name, pos = _dns_name(msg, pos)
        (qtype,) = struct.unpack("!H", msg[pos:pos + 2])
        pos += 4
        questions.append((name, qtype))
    return DnsMessage(transport, client_port, to_server, ident, flags, tuple(questions))


def dns_messages(packets: Sequence[Packet], port: int = 53) -> list[DnsMessage]:
    """Every DNS message to or from ``port``: UDP datagrams in capture order, then the
    messages of each TCP connection (2-byte length prefixes) in order."""
    out = []
    for p in packets:
        if p.proto == 17 and port in (p.sport, p.dport) and len(p.payload) >= 12:
            to_server = p.dport == port
            out.append(_dns_message(p.payload, "UDP", p.sport if to_server else p.dport,
                                    to_server))
    for conv in tcp_conversations(packets):
        if conv.server[1] != port:
            continue
        for to_server, stream in ((True, conv.to_server), (False, conv.to_client)):
            pos = 0
            while pos + 2 <= len(stream):
                (n,) = struct.unpack("!H", stream[pos:pos + 2])
                out.append(_dns_message(stream[pos + 2:pos + 2 + n], "TCP", conv.client[1],
                                        to_server))
                pos += 2 + n
    return out


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vhost:
    name: str
    cert: Cert


class Nginx:
    """nginx (one process) in ``ns`` with one TLS listener on ``(host, port)`` and a server
    block per ``Vhost`` (SNI picks the certificate; the first one is the default). HTTP/2 is
    offered by ALPN when the build has the module (``self.http2``)."""

    def __init__(self, net: kernel.NetnsPair, ns: str, host: str, port: int,
                 vhosts: Sequence[Vhost], workdir: Path, *,
                 protocols: str = "TLSv1.2 TLSv1.3") -> None:
        kernel.require_command("nginx")
        workdir.mkdir(parents=True, exist_ok=True)
        build = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
        self.http2 = "--with-http_v2_module" in build
        (workdir / "www").mkdir(exist_ok=True)
        (workdir / "www" / "index.html").write_text("hello from nginx\n")
        temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        listen = f"{host}:{port} ssl" + (" http2" if self.http2 else "")
        servers = "\n".join(f"""
    server {{
        listen {listen}{" default_server" if i == 0 else ""};
        server_name {v.name};
        ssl_certificate {v.cert.pem};
        ssl_certificate_key {v.cert.key};
        ssl_protocols {protocols};
        root {workdir}/www;
        location / {{ }}
    }}""" for i, v in enumerate(vhosts))
        self.log = workdir / "error.log"
        conf = workdir / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {self.log} notice;
events {{ worker_connections 64; }}
http {{
    access_log {workdir}/access.log;
{temp}
    keepalive_timeout 5;
{servers}
}}
""")
        self.proc = net.popen(ns, "nginx", "-p", str(workdir), "-c", str(conf), "-e",
                              str(self.log), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))  # noqa: SIM115
        wait_listening(net, ns, port, self.proc, "nginx", self.log)

    def close(self) -> None:
        stop(self.proc, signal.SIGQUIT)


class OpensslServer:
    """``openssl s_server`` in ``ns`` on ``(host, port)`` with one certificate; ``args``
    picks versions etc. It answers one connection after another."""

    def __init__(self, net: kernel.NetnsPair, ns: str, host: str, port: int, cert: Cert,
                 workdir: Path, args: Sequence[str] = ()) -> None:
        kernel.require_command("openssl")
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"s_server-{port}.log"
        # stdin stays open (a pipe nobody writes): s_server reads commands from it
        self.proc = net.popen(ns, "openssl", "s_server", "-accept", f"{host}:{port}",
                              "-cert", str(cert.pem), "-key", str(cert.key), "-quiet", *args,
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=open(self.log, "ab"))  # noqa: SIM115
        wait_listening(net, ns, port, self.proc, "openssl s_server", self.log)

    def close(self) -> None:
        stop(self.proc)


@dataclass(frozen=True)
class DnsZone:
    """What dnsmasq is told to answer (``--host-record`` etc.)."""

    hosts: tuple[tuple[str, str, str], ...]  # (name, IPv4, IPv6)
    cnames: tuple[tuple[str, str], ...]  # (alias, target)
    mx: tuple[tuple[str, str, int], ...]  # (domain, exchange, preference)
    txt: tuple[tuple[str, tuple[str, ...]], ...]  # (name, strings)
    wildcard: tuple[tuple[str, str], ...]  # (domain, IPv4): every name under it
    local_domain: str  # names under it that are not listed are NXDOMAIN
    ttl: int


class Dnsmasq:
    """dnsmasq in ``ns`` answering ``zone`` on ``(host, 53)`` over UDP and TCP, from its own
    data only (no upstream, no /etc/hosts, no config file)."""

    def __init__(self, net: kernel.NetnsPair, ns: str, host: str, zone: DnsZone,
                 workdir: Path, port: int = 53) -> None:
        kernel.require_command("dnsmasq")
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "dnsmasq.log"
        args = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", "--bind-interfaces", f"--listen-address={host}",
                f"--port={port}", "--user=root", "--group=root",
                f"--pid-file={workdir}/dnsmasq.pid", f"--local-ttl={zone.ttl}",
                f"--local=/{zone.local_domain}/", "--log-queries",
                f"--log-facility={self.log}"]
        args += [f"--host-record={n},{v4},{v6}" for n, v4, v6 in zone.hosts]
        args += [f"--cname={alias},{target}" for alias, target in zone.cnames]
        args += [f"--mx-host={d},{x},{pref}" for d, x, pref in zone.mx]
        args += [f"--txt-record={n}," + ",".join(strings)
                 for n, strings in zone.txt]
        args += [f"--address=/{d}/{v4}" for d, v4 in zone.wildcard]
        self.proc = net.popen(ns, *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(workdir / "dnsmasq.stderr", "wb"))  # noqa: SIM115
        wait_listening(net, ns, port, self.proc, "dnsmasq", workdir / "dnsmasq.stderr",
                       udp=True)
        wait_listening(net, ns, port, self.proc, "dnsmasq", workdir / "dnsmasq.stderr")

    def close(self) -> None:
        stop(self.proc)


# --------------------------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------------------------


def _client_env() -> dict[str, str]:
    env = dict(os.environ, LC_ALL="C")
    env.pop("SSLKEYLOGFILE", None)
    return env


def run_client(net: kernel.NetnsPair, ns: str, cmd: Sequence[str], timeout: float = 20,
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          timeout=timeout, env=_client_env(), stdin=subprocess.DEVNULL)


def curl(net: kernel.NetnsPair, ns: str, *, url_host: str, address: str, port: int,
         cafile: Path, tls: str, http: str, local_port: int) -> subprocess.CompletedProcess[str]:
    """One HTTPS GET of ``/`` (TLS version exactly ``tls``, ``http`` "1.1" or "2"), the name
    resolved to ``address`` with ``--resolve``, from source port ``local_port``."""
    kernel.require_command("curl")
    cmd = ["curl", "-sS", "-v", f"--http{http}", "--cacert", str(cafile),
           "--resolve", f"{url_host}:{port}:{address}", f"--tlsv{tls}", "--tls-max", tls,
           "--no-keepalive", "--max-time", "10", "--local-port", str(local_port),
           "-o", "/dev/null", "-w", "%{http_code} %{http_version}\n",
           f"https://{url_host}:{port}/"]
    return run_client(net, ns, cmd)


def s_client(net: kernel.NetnsPair, ns: str, *, address: str, port: int, bind: str,
             local_port: int, servername: str, args: Sequence[str] = (),
             ) -> subprocess.CompletedProcess[str]:
    """``openssl s_client``: one handshake from ``bind:local_port``, then EOF on stdin ends
    the connection (close_notify)."""
    kernel.require_command("openssl")
    cmd = ["openssl", "s_client", "-connect", f"{address}:{port}", "-bind",
           f"{bind}:{local_port}", "-servername", servername, *args]
    return run_client(net, ns, cmd)


def dig(net: kernel.NetnsPair, ns: str, server: str, queries: Sequence[tuple[str, str]],
        *, tcp: bool = False, keepopen: bool = False) -> subprocess.CompletedProcess[str]:
    """``dig`` for each (name, type) in one command (with ``keepopen`` the TCP connection is
    kept between the queries)."""
    kernel.require_command("dig")
    cmd = ["dig", f"@{server}", "-p", "53", "+tries=1", "+time=3", "+tcp" if tcp else "+notcp"]
    if keepopen:
        cmd.append("+keepopen")
    for name, qtype in queries:
        cmd += [name, qtype]
    return run_client(net, ns, cmd)


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------

EVE_CONFIG = """%YAML 1.1
---
app-layer:
  protocols:
    tls:
      ja3-fingerprints: yes
      ja4-fingerprints: yes
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
        - tls:
            extended: yes
        - dns
        - flow
"""


@dataclass
class EngineRun:
    events: list[dict[str, Any]]
    lines: list[str]
    stderr: str

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event_type") == event_type]


def run_engine(pcap: Path, rules: str, logdir: Path, *, config: str = EVE_CONFIG,
               extra: Sequence[str] = ()) -> EngineRun:
    """``ruleengine run -r pcap`` with ``rules`` (text) and ``config`` (suricata.yaml text)."""
    logdir.mkdir(parents=True, exist_ok=True)
    rule_file = logdir / "test.rules"
    rule_file.write_text(rules)
    yaml_file = logdir / "suricata.yaml"
    yaml_file.write_text(config)
    proc = subprocess.run([str(ENGINE), "run", "-r", str(pcap), "-S", str(rule_file), "-l",
                           str(logdir), "-c", str(yaml_file), "--no-progress", *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    eve = logdir / "eve.json"
    lines = eve.read_text().splitlines() if eve.exists() else []
    return EngineRun([json.loads(line) for line in lines], lines, proc.stderr)


def rule_runs(text: str) -> bool:
    """``text`` (one rule) loads and detection would run it (not skipped)."""
    from ruleengine.detect.engine import DetectEngine
    from ruleengine.rules.loader import load_rule_text

    ruleset = load_rule_text(text)
    if ruleset.loaded != 1 or ruleset.failed or ruleset.skipped:
        return False
    return not DetectEngine(ruleset.rules).skipped


@contextlib.contextmanager
def capture(net: kernel.NetnsPair, ns: str, ifname: str, pcap: Path) -> Iterator[Tcpdump]:
    dump = Tcpdump(net, ns, ifname, pcap)
    try:
        yield dump
    finally:
        dump.close()
