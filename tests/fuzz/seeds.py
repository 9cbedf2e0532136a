"""Seed inputs for the fuzz targets, from real captures and rule files.

Sources: the pcaps of ``tests/data/pcaps`` and ``examples/pcaps``, the shared corpus
(``../shared/corpus``: suricata-verify pcaps and rule sets; ``FUZZ_CORPUS`` overrides the
path) and the reproducers in ``tests/fuzz/crashes/``. Families:

* ``pcap``: whole capture files (small ones, so a case stays fast);
* ``frames``: single frames, prefixed by their link type's index in ``targets.LINKTYPES``;
* ``tcp``: TCP conversations as ``targets.packet_script`` records;
* ``applayer:<proto>``: each flow's payloads as ``targets.chunk_script`` chunks, the flow
  given to a protocol by its default ports (and hand-written messages for every protocol);
* ``rules``: groups of rule lines.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.fuzz import targets as T

ROOT = Path(__file__).resolve().parents[2]
MAX_PCAP = 64 * 1024  # bigger files make slow cases; their frames still seed the others


def corpus_dir() -> Path | None:
    env = os.environ.get("FUZZ_CORPUS")
    for candidate in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "corpus",
                                                     Path("/work/shared/corpus")]:
        if candidate.is_dir():
            return candidate
    return None


def pcap_files(limit: int | None = None) -> list[Path]:
    found = sorted((ROOT / "tests" / "data" / "pcaps").glob("*.pcap*"))
    found += sorted((ROOT / "examples" / "pcaps").glob("*.pcap*"))
    corpus = corpus_dir()
    if corpus is not None:
        shared = sorted({p.resolve() for p in corpus.rglob("*.pcap*") if p.is_file()})
        found += shared
    return found[:limit] if limit else found


_HANDWRITTEN: dict[str, list[list[tuple[bool, bytes]]]] = {
    "http": [[(True, b"GET /index.html?a=1 HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n"
                     b"Content-Length: 4\r\n\r\nabcd"),
              (False, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")],
             [(True, b"POST /u HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                     b"Content-Length: 60\r\n\r\n--B\r\nContent-Disposition: form-data; "
                     b"name=f; filename=a.txt\r\n\r\nxx\r\n--B--\r\n"),
              (False, b"HTTP/1.0 101 Switching\r\nUpgrade: h2c\r\n\r\n")]],
    "ftp": [[(False, b"220 ready\r\n"), (True, b"USER a\r\nPASS b\r\nPASV\r\n"),
             (False, b"331 ok\r\n230 in\r\n227 Entering Passive Mode (1,2,3,4,5,6)\r\n"),
             (True, b"PORT 10,0,0,1,7,8\r\nRETR f\r\nEPRT |1|10.0.0.1|2000|\r\n"),
             (False, b"150 ok\r\n226-multi\r\n226 done\r\n229 (|||2001|)\r\n")]],
    "smtp": [[(False, b"220 mx ESMTP\r\n"), (True, b"EHLO a\r\n"),
              (False, b"250-mx\r\n250 PIPELINING\r\n"),
              (True, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
              (False, b"250 ok\r\n250 ok\r\n354 go\r\n"),
              (True, b"Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
                     b"boundary=X\r\n\r\n--X\r\nContent-Transfer-Encoding: base64\r\n"
                     b"Content-Disposition: attachment; filename=a.bin\r\n\r\naGVsbG8=\r\n"
                     b"--X--\r\n.\r\nQUIT\r\n"),
              (False, b"250 queued\r\n221 bye\r\n")]],
    "ssh": [[(True, b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"), (False, b"SSH-2.0-srv_1.0\r\n"),
             (True, bytes.fromhex("0000001c0a14") + bytes(16) + b"\x00\x00\x00\x00" + bytes(6)),
             (False, bytes.fromhex("0000000c0a15") + bytes(10))]],
    "tls": [[(True, bytes.fromhex(
        "16030100a5010000a10303" + "00" * 32 + "00" + "0004c02fc030" + "0100"
        + "0074" + "0000000e000c0000096c6f63616c686f7374" + "000b000403000102"
        + "000a000c000a001d0017001e00190018" + "002b0003020304" + "000d0004000204031"
        + "0" + "0010000b000908687474702f312e31" + "0000" * 10)),
             (False, bytes.fromhex("160303003102000030030300" + "11" * 31 + "00c02f00"
                                   + "0008002b00020304" + "0000" * 4)),
             (False, bytes.fromhex("1403030001011703030010") + bytes(16))]],
    "dns": [[(True, bytes.fromhex("1234010000010000000000000377777706676f6f676c6503636f6d"
                                  "0000010001")),
             (False, bytes.fromhex("1234818000010001000000000377777706676f6f676c6503636f6d"
                                   "0000010001c00c000100010000012c00040a000001"))]],
}


def _frames(limit: int) -> Iterator[tuple[int, bytes, float]]:
    from capture_backends.pcap_file import PcapError, PcapFileBackend

    for path in pcap_files():
        try:
            backend = PcapFileBackend(path)
        except PcapError:
            continue
        with backend:
            if backend.linktype not in T.LINKTYPES:
                continue
            for n, (ts, frame, _id) in enumerate(backend.packets()):
                if n >= limit:
                    break
                yield backend.linktype, bytes(frame), ts


def _flows(frames_per_file: int) -> dict[tuple[bytes, ...], list[tuple[bool, object]]]:
    """Decoded TCP/UDP packets grouped by flow, in capture order, client first."""
    from ruleengine.decode.decoder import Decoder

    flows: dict[tuple[bytes, ...], list[tuple[bool, object]]] = {}
    decoders: dict[int, Decoder] = {}
    for linktype, frame, ts in _frames(frames_per_file):
        dec = decoders.setdefault(linktype, Decoder(linktype))
        pkt = dec.decode(ts, frame)
        if pkt is None or pkt.proto not in (6, 17) or not pkt.src:
            continue
        a = (pkt.src, pkt.sport.to_bytes(2, "big"))
        b = (pkt.dst, pkt.dport.to_bytes(2, "big"))
        key = (bytes([pkt.proto]), *min(a, b), *max(a, b))
        if key not in flows:
            flows[key] = []
            client = a
        else:
            first = flows[key][0][1] if flows[key] else None
            client = (first.src, first.sport.to_bytes(2, "big")) if first else a  # type: ignore[attr-defined]
        flows[key].append((a == client, pkt))
    return flows


def _port_protocols() -> dict[tuple[int, int], str]:
    from ruleengine.applayer import registry

    table = {}
    for spec in registry.protocols():
        for ipproto, ports in spec.default_ports.items():
            for port in ports:
                table[(ipproto, port)] = spec.name
    return table


@cache
def seeds(family: str, limit: int = 400) -> tuple[bytes, ...]:
    """Seed inputs of one family (deterministic, at most ``limit``)."""
    out: list[bytes] = []
    pinned: list[bytes] = []  # kept whatever the sampling
    if family == "pcap":
        out = [p.read_bytes() for p in pcap_files() if p.stat().st_size <= MAX_PCAP]
    elif family == "frames":
        out = [bytes([T.LINKTYPES.index(lt)]) + f for lt, f, _ in _frames(20)]
        # the captures hold no tunnels: hand-built frames of every encapsulation
        pinned = [bytes([T.LINKTYPES.index(lt)]) + f for lt, f in _tunnel_frames()]
    elif family == "tcp":
        out = _tcp_seeds()
    elif family.startswith("applayer:"):
        out = _applayer_seeds(family.split(":", 1)[1])
    elif family == "rules":
        out = _rule_seeds()
    out = list(dict.fromkeys(out))
    room = max(0, limit - len(pinned))
    if len(out) > room:
        out = random.Random(family).sample(out, room)
    return tuple(dict.fromkeys(pinned + out))


def _tunnel_frames() -> list[tuple[int, bytes]]:
    from tests.decode.frames import tunnel_frames

    return tunnel_frames()


def _tcp_seeds() -> list[bytes]:
    out = []
    for key, packets in _flows(200).items():
        if key[0] != b"\x06":
            continue
        script = []
        isn: dict[bool, int] = {}
        for to_server, pkt in packets[:40]:
            seq, ack, flags = pkt.seq, pkt.ack, pkt.tcp_flags  # type: ignore[attr-defined]
            isn.setdefault(to_server, seq - 1000 if flags & 0x02 else seq - 1001)
            letters = "".join(c for c, bit in T._TCP_BITS.items() if flags & bit and c != "U")
            letters = letters if letters in T._FLAGS else ("PA" if pkt.payload else "A")  # type: ignore[attr-defined]
            rel_seq = ((seq - isn[to_server]) % 2**32) - 1000
            rel_ack = ((ack - isn.get(not to_server, ack - 1001)) % 2**32) - 1000
            if not (-32768 <= rel_seq < 32768 and -32768 <= rel_ack < 32768):
                break
            script.append((to_server, letters, rel_seq, rel_ack, pkt.payload[:255]))  # type: ignore[attr-defined]
        if script:
            out.append(b"\x00" + T.encode_script(script))
    # a plain conversation, whatever the corpus holds
    out.append(b"\x00" + T.encode_script([
        (True, "S", 0, 0, b""), (False, "SA", 0, 1, b""), (True, "A", 1, 1, b""),
        (True, "PA", 1, 1, b"GET / HTTP/1.1\r\n\r\n"), (False, "PA", 1, 19, b"HTTP/1.1 200 OK"),
        (True, "FA", 19, 16, b""), (False, "FA", 16, 20, b""), (True, "A", 20, 17, b"")]))
    return out


def _applayer_seeds(proto: str) -> list[bytes]:
    out = [T.encode_chunks(chunks) for chunks in _HANDWRITTEN.get(proto, [])]
    ports = _port_protocols()
    for key, packets in _flows(200).items():
        ipproto = key[0][0]
        sport, dport = int.from_bytes(key[2], "big"), int.from_bytes(key[4], "big")
        chunks = [(d, bytes(p.payload)) for d, p in packets if p.payload]  # type: ignore[attr-defined]
        by_port = proto in (ports.get((ipproto, sport)), ports.get((ipproto, dport)))
        if chunks and (by_port or _probes_as(proto, ipproto, chunks)):
            out.append(T.encode_chunks(chunks[:30]))
    return out


def _probes_as(proto: str, ipproto: int, chunks: list[tuple[bool, bytes]]) -> bool:
    from ruleengine.applayer import registry

    spec = registry.by_name()[proto]
    probe = spec.probes.get(ipproto, spec.probe)
    if probe is None or ipproto not in spec.ipprotos:
        return False
    for to_server in (True, False):
        first = next((c for d, c in chunks if d == to_server), b"")
        if first and probe(first[: spec.probe_depth], to_server) == "match":
            return True
    return False


def _rule_seeds() -> list[bytes]:
    lines: list[str] = []
    sources = sorted((ROOT / "examples" / "rules").glob("*.rules"))
    corpus = corpus_dir()
    if corpus is not None:
        sources += sorted((corpus / "rules").glob("*.rules"))
    for path in sources:
        lines += [ln for ln in path.read_text(errors="replace").splitlines()
                  if ln.strip() and not ln.startswith("#")]
    rng = random.Random(1)
    picked = rng.sample(lines, min(len(lines), 600))
    out = [line.encode() for line in picked[:400]]
    out += ["\n".join(picked[i : i + 4]).encode() for i in range(400, len(picked), 4)]
    return out


def crash_inputs(target: str | None = None) -> list[Path]:
    """Reproducers: ``tests/fuzz/crashes/<target>-<hash>``."""
    directory = T.crash_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith((".", "README"))
                  and (target is None or p.name.rsplit("-", 1)[0] == target))
