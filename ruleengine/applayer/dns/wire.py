"""DNS messages on the wire (Suricata's ``rust/src/dns/parser.rs``): header, the four
sections, name decompression with Suricata's limits, and rdata of the types Suricata
decodes (A, AAAA, CNAME, PTR, MX, NS, TXT, NULL, SOA, SRV, SSHFP, OPT; others raw).

Parsing follows Suricata's rules: the question and answer sections must parse (else the
message is malformed); a failure in the authority section sets ``invalid_authorities`` and
skips the additionals, a failure there sets ``invalid_additionals``. A name stops after 255
labels/pointers (``too_many_labels``), is cut at 1025 bytes (``name_too_long``), and a
pointer to itself is an ``infinite_loop``. Running out of bytes is :class:`Incomplete`
(the probe's "need more"), anything else :class:`Malformed`.

Beyond Suricata, for bounded work in Python: every message has a budget of label/pointer
steps (:data:`STEP_BUDGET`; only pointer amplification can reach it, which no real
message does) and each section stores at most ``max_records`` entries (the rest are
parsed to find where the next section starts, and ``records_capped`` is set).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

HEADER_SIZE = 12
MAX_NAME_LEN = 1025
MAX_LABELS = 255
STEP_BUDGET = 1 << 18
DEFAULT_MAX_RECORDS = 4096

# Record types (DNSRecordType) and rcodes (DNSRcode) as Suricata names them.
RRTYPES: dict[int, str] = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT",
    17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAPPTR",
    24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT",
    33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME",
    41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC",
    48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 55: "HIP",
    59: "CDS", 60: "CDNSKEY", 65: "HTTPS", 99: "SPF", 249: "TKEY", 250: "TSIG",
    254: "MAILA", 255: "ANY", 256: "URI",
}
RRTYPE_BY_NAME: dict[str, int] = {v.lower(): k for k, v in RRTYPES.items()}
RCODES: dict[int, str] = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADVERS",
    17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG", 22: "BADTRUNC",
}
RCODE_BY_NAME: dict[str, int] = {v.lower(): k for k, v in RCODES.items()}

T_A, T_NS, T_CNAME, T_SOA, T_NULL, T_PTR, T_MX, T_TXT = 1, 2, 5, 6, 10, 12, 15, 16
T_AAAA, T_SRV, T_OPT, T_SSHFP = 28, 33, 41, 44


class Incomplete(Exception):
    """The message ended before a field did."""


class Malformed(Exception):
    """A field that cannot be what it claims (bad label type, pointer past the end)."""


@dataclass(slots=True)
class NameFlags:
    infinite_loop: bool = False
    truncated: bool = False
    label_limit: bool = False

    def merge(self, other: NameFlags) -> None:
        self.infinite_loop |= other.infinite_loop
        self.truncated |= other.truncated
        self.label_limit |= other.label_limit


@dataclass(slots=True, frozen=True)
class DnsName:
    value: bytes
    truncated: bool = False


@dataclass(slots=True, frozen=True)
class Header:
    id: int
    flags: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def z(self) -> bool:
        return bool(self.flags & 0x0040)


@dataclass(slots=True, frozen=True)
class Query:
    name: DnsName
    rrtype: int
    rrclass: int


@dataclass(slots=True, frozen=True)
class Soa:
    mname: DnsName
    rname: DnsName
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(slots=True, frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: DnsName


@dataclass(slots=True, frozen=True)
class Sshfp:
    algo: int
    fp_type: int
    fingerprint: bytes


@dataclass(slots=True, frozen=True)
class Record:
    """One resource record. ``data`` by type: A/AAAA/NULL/unknown ``bytes``; CNAME, PTR,
    MX, NS :class:`DnsName`; TXT ``list[bytes]``; SOA :class:`Soa`; SRV :class:`Srv`;
    SSHFP :class:`Sshfp`; OPT ``list[tuple[int, bytes]]`` (code, data)."""

    name: DnsName
    rrtype: int
    rrclass: int
    ttl: int
    data: Any


@dataclass(slots=True)
class Message:
    header: Header
    queries: list[Query] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)
    invalid_authorities: bool = False
    invalid_additionals: bool = False
    records_capped: bool = False
    name_flags: NameFlags = field(default_factory=NameFlags)


def parse_header(data: bytes) -> Header:
    if len(data) < HEADER_SIZE:
        raise Incomplete
    return Header(*struct.unpack_from("!6H", data, 0))


def header_valid(header: Header, rlen: int) -> bool:
    """``probe_header_validity``: plausible record counts for the message length."""
    records = header.qdcount + header.ancount + header.nscount + header.arcount
    if 2 * records > rlen:
        return False
    if records == 0 and rlen > HEADER_SIZE:
        return False
    return not (not header.is_response and header.qdcount == 0)


class _Reader:
    """Parsing state of one message: the message bytes and the step budget."""

    __slots__ = ("flags", "max_records", "msg", "steps")

    def __init__(self, msg: bytes, max_records: int) -> None:
        self.msg = msg
        self.steps = 0
        self.flags = NameFlags()
        self.max_records = max_records

    # -- names ----------------------------------------------------------------------
    def name(self, pos: int, end: int) -> tuple[DnsName, int]:
        """A (possibly compressed) name at ``pos``, not reading past ``end`` until a
        pointer is followed. Returns the name and the offset after it."""
        msg = self.msg
        start = pos
        pivot = -1  # offset after the first pointer followed
        parts: list[bytes] = []
        length = 0  # of b".".join(parts)
        count = 0
        flags = NameFlags()
        while pos < end:
            ln = msg[pos]
            if ln == 0:
                pos += 1
                break
            kind = ln & 0xC0
            if kind == 0:
                if pos + 1 + ln > end:
                    raise Incomplete
                if not flags.truncated:
                    parts.append(msg[pos + 1:pos + 1 + ln])
                    length += ln + (1 if len(parts) > 1 else 0)
                pos += 1 + ln
            elif kind == 0xC0:
                if pos + 2 > end:
                    raise Incomplete
                offset = ((ln & 0x3F) << 8) | msg[pos + 1]
                if offset > len(msg):
                    raise Malformed
                if offset == pos and end == len(msg):
                    flags.infinite_loop = True
                    if pivot >= 0:
                        break
                    self.flags.merge(flags)
                    raise Malformed
                if pivot < 0:
                    pivot = pos + 2
                pos, end = offset, len(msg)
            else:
                raise Malformed
            count += 1
            self.steps += 1
            if self.steps > STEP_BUDGET:
                raise Malformed
            if count > MAX_LABELS:
                flags.label_limit = True
                if pivot >= 0:
                    flags.truncated = True
                    break
                self.flags.merge(flags)
                raise Malformed
            if length > MAX_NAME_LEN:
                flags.truncated = True
                if pivot >= 0:
                    break
        self.flags.merge(flags)
        value = b".".join(parts)
        if len(value) > MAX_NAME_LEN:
            value = value[:MAX_NAME_LEN]
        del start
        return DnsName(value, flags.truncated), (pivot if pivot >= 0 else pos)

    # -- sections -------------------------------------------------------------------
    def u16(self, pos: int) -> int:
        if pos + 2 > len(self.msg):
            raise Incomplete
        return int.from_bytes(self.msg[pos:pos + 2], "big")

    def queries(self, pos: int, count: int, out: list[Query]) -> tuple[int, bool]:
        capped = False
        msg = self.msg
        for _ in range(count):
            name, pos = self.name(pos, len(msg))
            if pos + 4 > len(msg):
                raise Incomplete
            rrtype, rrclass = struct.unpack_from("!HH", msg, pos)
            pos += 4
            if len(out) < self.max_records:
                out.append(Query(name, rrtype, rrclass))
            else:
                capped = True
        return pos, capped

    def records(self, pos: int, count: int, out: list[Record]) -> tuple[int, bool]:
        capped = False
        msg = self.msg
        for _ in range(count):
            name, pos = self.name(pos, len(msg))
            if pos + 10 > len(msg):
                raise Incomplete
            rrtype, rrclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
            pos += 10
            if pos + rdlen > len(msg):
                raise Incomplete
            data = self.rdata(rrtype, pos, pos + rdlen)
            pos += rdlen
            if len(out) < self.max_records:
                out.append(Record(name, rrtype, rrclass, ttl, data))
            else:
                capped = True
        return pos, capped

    def rdata(self, rrtype: int, pos: int, end: int) -> Any:
        msg = self.msg
        if rrtype in (T_CNAME, T_PTR, T_NS):
            return self.name(pos, end)[0]
        if rrtype == T_MX:
            if pos + 2 > end:
                raise Incomplete
            return self.name(pos + 2, end)[0]
        if rrtype == T_SOA:
            mname, pos = self.name(pos, end)
            rname, pos = self.name(pos, end)
            if pos + 20 > end:
                raise Incomplete
            return Soa(mname, rname, *struct.unpack_from("!5I", msg, pos))
        if rrtype == T_SRV:
            if pos + 6 > end:
                raise Incomplete
            priority, weight, port = struct.unpack_from("!3H", msg, pos)
            return Srv(priority, weight, port, self.name(pos + 6, end)[0])
        if rrtype == T_TXT:
            strings: list[bytes] = []
            while pos < end:
                ln = msg[pos]
                if pos + 1 + ln > end:
                    raise Incomplete
                strings.append(msg[pos + 1:pos + 1 + ln])
                pos += 1 + ln
            return strings
        if rrtype == T_SSHFP:
            if pos + 2 > end:
                raise Incomplete
            return Sshfp(msg[pos], msg[pos + 1], msg[pos + 2:end])
        if rrtype == T_OPT:
            options: list[tuple[int, bytes]] = []
            while pos < end:
                if pos + 4 > end:
                    raise Incomplete
                code, ln = struct.unpack_from("!HH", msg, pos)
                if pos + 4 + ln > end:
                    raise Incomplete
                options.append((code, msg[pos + 4:pos + 4 + ln]))
                pos += 4 + ln
            return options
        return msg[pos:end]


def parse_body(msg: bytes, header: Header, max_records: int = DEFAULT_MAX_RECORDS) -> Message:
    """``dns_parse_body``: the sections after the header. Raises :class:`Incomplete` or
    :class:`Malformed` when the questions or answers do not parse."""
    reader = _Reader(msg, max(1, max_records))
    out = Message(header, name_flags=reader.flags)
    pos, c1 = reader.queries(HEADER_SIZE, header.qdcount, out.queries)
    pos, c2 = reader.records(pos, header.ancount, out.answers)
    capped = c1 or c2
    try:
        pos, c3 = reader.records(pos, header.nscount, out.authorities)
        capped |= c3
    except (Incomplete, Malformed):
        out.invalid_authorities = True
        out.authorities = []
    if not out.invalid_authorities:
        try:
            pos, c4 = reader.records(pos, header.arcount, out.additionals)
            capped |= c4
        except (Incomplete, Malformed):
            out.invalid_additionals = True
            out.additionals = []
    out.records_capped = capped
    return out


def parse_message(msg: bytes, max_records: int = DEFAULT_MAX_RECORDS) -> Message:
    return parse_body(msg, parse_header(msg), max_records)


# ---------------------------------------------------------------------------- probing
def probe_message(data: bytes, dlen: int) -> tuple[bool, bool, bool]:
    """Suricata's ``probe``: (is_dns, is_request, incomplete) for a message that should be
    ``dlen`` bytes long, of which ``data`` is what was seen."""
    data = data[:dlen]
    if len(data) < dlen:
        try:
            header = parse_header(data)
        except Incomplete:
            return False, False, False
        ok = header_valid(header, dlen)
        return ok, ok and not header.is_response, False
    try:
        header = parse_header(data)
    except Incomplete:
        return False, False, False
    try:
        parse_body(data, header, 64)
    except Incomplete:
        return False, False, True
    except Malformed:
        return False, False, False
    ok = header_valid(header, dlen)
    return ok, ok and not header.is_response, False


def probe_tcp(data: bytes) -> tuple[bool, bool, bool]:
    """``probe_tcp``: a 2-byte length, then the message."""
    if len(data) < 2:
        return False, False, True
    return probe_message(data[2:], int.from_bytes(data[:2], "big"))


def probe_udp(data: bytes) -> tuple[bool, bool, bool]:
    """``probe_udp``: the datagram is the message."""
    if len(data) < HEADER_SIZE:
        return False, False, False
    return probe_message(data, len(data))
