"""Keywords the engine parses structurally but does not evaluate.

A rule using one loads with an "unsupported" warning and the keyword's name in
``Rule.unsupported``; detection counts such rules as skipped. Sticky buffers among
them still switch the active buffer so the following content lands somewhere sane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ruleengine.applayer import registry
from ruleengine.buffers import STICKY_KEYWORDS
from ruleengine.keywords.registry import ArgKind, KeywordSpec, Setup, Stage

if TYPE_CHECKING:
    from ruleengine.rules.builder import RuleBuilder

# Non-HTTP sticky buffers of Suricata 7/8, a row each: the canonical name, then its aliases.
_STICKY_ROWS: tuple[str, ...] = (
    "dns.query dns_query",
    "dns.answer.name",
    "dns.query.name",
    "dns.queries.rrname",
    "dns.answers.rrname",
    "dns.authorities.rrname",
    "dns.additionals.rrname",
    "tls.sni tls_sni",
    "tls.cert_subject tls_cert_subject",
    "tls.cert_issuer tls_cert_issuer",
    "tls.cert_serial tls_cert_serial",
    "tls.cert_fingerprint tls_cert_fingerprint",
    "tls.certs",
    "tls.subjectaltname",
    "tls.alpn",
    "tls.random",
    "tls.random_time",
    "tls.random_bytes",
    "ja3.hash ja3_hash",
    "ja3.string ja3_string",
    "ja3s.hash ja3s_hash",
    "ja3s.string ja3s_string",
    "ja4.hash",
    "ssh.proto ssh_proto",
    "ssh.software ssh_software",
    "ssh.hassh",
    "ssh.hassh.string",
    "ssh.hassh.server",
    "ssh.hassh.server.string",
    "smb.named_pipe",
    "smb.share",
    "smb.ntlmssp_user",
    "smb.ntlmssp_domain",
    "krb5.cname krb5_cname",
    "krb5.sname krb5_sname",
    "sip.method",
    "sip.uri",
    "sip.protocol",
    "sip.stat_code",
    "sip.stat_msg",
    "sip.request_line",
    "sip.response_line",
    "http2.header_name",
    "http2.header",
    "quic.sni",
    "quic.ua",
    "quic.version",
    "quic.cyu.hash",
    "quic.cyu.string",
    "dce_stub_data dcerpc.stub_data",
    "tcp.hdr",
    "udp.hdr",
    "ipv4.hdr",
    "ipv6.hdr",
    "icmpv4.hdr",
    "icmpv6.hdr",
    "mqtt.connect.clientid",
    "mqtt.connect.username",
    "mqtt.connect.password",
    "mqtt.connect.willtopic",
    "mqtt.connect.willmessage",
    "mqtt.publish.topic",
    "mqtt.publish.message",
    "mqtt.subscribe.topic",
    "mqtt.unsubscribe.topic",
    "snmp.community",
    "snmp.usm",
    "rfb.name",
    "file.name",
    "ike.vendor",
    "ike.key_exchange_payload",
    "ike.nonce_payload",
    "ldap.request.dn",
    "ldap.responses.dn",
    "dnp3_data dnp3.data",
    "email.from",
    "email.subject",
    "email.to",
    "email.cc",
    "email.date",
    "email.message_id",
    "email.x_mailer",
    "email.url",
    "ftp.command",
    "ftp.command_data",
)
UNSUPPORTED_STICKY: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (name, tuple(aliases)) for name, *aliases in map(str.split, _STICKY_ROWS))

# Transforms the engine does not implement (the others are ruleengine.keywords.transforms).
TRANSFORMS: tuple[str, ...] = ("luaxform",)

# Other keywords (value optional: parsed structurally only).
UNSUPPORTED_OTHER: tuple[str, ...] = (
    "hostbits",
    "dns.opcode",
    "dns.rrtype",
    "dns.rcode",
    "tls.version",
    "ssl_version",
    "ssl_state",
    "tls.fingerprint",
    "tls.issuerdn",
    "tls.subject",
    "tls.store",
    "tls_cert_notbefore",
    "tls_cert_notafter",
    "tls_cert_expired",
    "tls_cert_valid",
    "tls.cert_chain_len",
    "lua",
    "luajit",
    "dataset",
    "datarep",
    "iprep",
    "geoip",
    "filestore",
    "filemd5",
    "filesha1",
    "filesha256",
    "filesize",
    "dce_iface",
    "dce_opnum",
    "ftpbounce",
    "ftpdata_command",
    "id",
    "fragbits",
    "fragoffset",
    "icmp_id",
    "icmp_seq",
    "tos",
    "ipopts",
    "sameip",
    "rpc",
    "replace",
    "app-layer-event",
    "decode-event",
    "stream-event",
    "engine-event",
    "app-layer-state",
    "tcp.mss",
    "tcp.wscale",
    "l3_proto",
    "ssh.protoversion",
    "ssh.softwareversion",
    "krb5_msg_type",
    "krb5_err_code",
    "krb5.weak_encryption",
    "snmp.version",
    "snmp.pdu_type",
    "rfb.secresult",
    "rfb.sectype",
    "mqtt.type",
    "mqtt.flags",
    "mqtt.qos",
    "mqtt.reason_code",
    "mqtt.connack.session_present",
    "mqtt.connect.flags",
    "mqtt.protocol_version",
    "modbus",
    "dnp3_func",
    "dnp3_ind",
    "dnp3_obj",
    "enip_command",
    "cip_service",
    "nfs_procedure",
    "http2.frametype",
    "http2.errorcode",
    "http2.priority",
    "http2.window",
    "http2.size_update",
    "http2.settings",
    "requires",
    "frame",
    "entropy",
    "flow.age",
    "flow.pkts",
    "flow.bytes",
    "ipv4-csum",
    "tcpv4-csum",
    "tcpv6-csum",
    "udpv4-csum",
    "udpv6-csum",
    "icmpv4-csum",
    "icmpv6-csum",
    "igmp-csum",
    "template",
    "template2",
    "bittorrent-dht.query.info_hash",
)


def _record(b: RuleBuilder, name: str) -> None:
    if name not in b.rule.unsupported:
        b.rule.unsupported.append(name)
    b.warn(
        f"keyword '{name}' is not supported by this engine: the rule loads but is skipped",
        "unsupported-keyword",
        b.option_span,
    )


def _sticky(name: str) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        _record(b, name)
        b.set_sticky(name, supported=False)

    return setup


def _other(name: str) -> Setup:
    def setup(b: RuleBuilder, value: str | None) -> None:
        _record(b, name)
        if name == "filestore":
            b.filestore_span = b.option_span

    return setup


def _implemented() -> frozenset[str]:
    """Names a registered protocol implements (its buffers and keywords): they are not
    unsupported any more."""
    names = set(STICKY_KEYWORDS)
    names.update(registry.tx_keywords())
    names.add("app-layer-event")
    return frozenset(names)


def _specs() -> tuple[KeywordSpec, ...]:
    done = _implemented()
    specs = [
        KeywordSpec(
            name, _sticky(name), aliases=tuple(a for a in aliases if a not in done),
            arg=ArgKind.OPTIONAL, stage=Stage.UNSUPPORTED,
        )
        for name, aliases in UNSUPPORTED_STICKY if name not in done
    ]
    specs += [
        KeywordSpec(name, _other(name), arg=ArgKind.OPTIONAL, stage=Stage.UNSUPPORTED)
        for name in TRANSFORMS if name not in done
    ]
    seen: set[str] = set()
    for name in UNSUPPORTED_OTHER:
        if name not in seen and name not in done:
            seen.add(name)
            specs.append(
                KeywordSpec(name, _other(name), arg=ArgKind.OPTIONAL, stage=Stage.UNSUPPORTED)
            )
    return tuple(specs)


SPECS: tuple[KeywordSpec, ...] = _specs()
