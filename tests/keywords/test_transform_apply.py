"""Transforms: each function on its own (Suricata's documented behaviour) and through the
engine, with and without the prefilter (the MPM must scan the transformed buffer)."""

from __future__ import annotations

import hashlib

import pytest

from ruleengine.detect.engine import DetectEngine
from ruleengine.keywords import psl
from ruleengine.keywords import transform_apply as tf
from ruleengine.rules.errors import RuleError
from ruleengine.rules.model import Transform
from tests.detect.helpers import FakeFlow, FakeTx, pkt, rule, udp


def t(name: str, buf: bytes, **kw: object) -> bytes | None:
    return tf.TRANSFORMS[name](buf, Transform(name, **kw))  # type: ignore[arg-type]


def test_simple_transforms() -> None:
    assert t("dotprefix", b"example.com") == b".example.com"
    assert t("dotprefix", b"") == b""
    assert t("to_lowercase", b"AbC") == b"abc"
    assert t("to_uppercase", b"AbC") == b"ABC"
    assert t("strip_whitespace", b" a \t b\r\n c ") == b"abc"
    assert t("compress_whitespace", b"a  \t b\n\nc") == b"a b\nc"
    assert t("url_decode", b"%41%4a+b%zz%4") == b"AJ b%zz%4"
    assert t("to_md5", b"abc") == hashlib.md5(b"abc").digest()
    assert t("to_sha1", b"abc") == hashlib.sha1(b"abc").digest()
    assert t("to_sha256", b"abc") == hashlib.sha256(b"abc").digest()
    assert t("xor", b"\x00\x01\x02\x03", key=b"\x0f\xf0") == b"\x0f\xf1\x0d\xf3"
    assert t("header_lowercase", b"Host: A.COM\r\nUser-Agent: X\r\n") == \
        b"host: A.COM\r\nuser-agent: X\r\n"
    assert t("strip_pseudo_headers", b":method: GET\r\nhost: a\r\n:path: /\r\nx: 1") == \
        b"host: a\r\nx: 1"


def test_pcrexform_first_capture_or_unchanged() -> None:
    assert t("pcrexform", b"GET /abc?x=1", arg=r"/(\w+)\?") == b"abc"
    assert t("pcrexform", b"nothing here", arg=r"/(\w+)\?") == b"nothing here"


def test_from_base64_modes_and_window() -> None:
    assert t("from_base64", b"aGVsbG8gd29ybGQ=") == b"hello world"
    assert t("from_base64", b"xxaGVsbG8=", offset=2) == b"hello"
    assert t("from_base64", b"aGVsbG8gd29ybGQ=", nbytes=8) == b"hello "
    assert t("from_base64", b"aGVs bG8=", mode="rfc2045") == b"hello"
    assert t("from_base64", b"aGVs bG8=") == b"hel"  # rfc4648 stops at the space
    assert t("from_base64", b"aGVs bG8=", mode="strict") == b"aGVs bG8="  # fails: unchanged


@pytest.mark.skipif(not psl.available(), reason="no Public Suffix List on this machine")
def test_domain_and_tld() -> None:
    assert t("domain", b"www.example.co.uk") == b"example.co.uk"
    assert t("tld", b"www.example.co.uk") == b"co.uk"
    assert t("domain", b"co.uk") == b"co.uk"  # a bare suffix stays as it is


def test_content_incompatible() -> None:
    low = [Transform("to_lowercase")]
    assert tf.content_incompatible(low, b"Abc") == "to_lowercase"
    assert tf.content_incompatible(low, b"abc") is None
    assert tf.content_incompatible([Transform("compress_whitespace")], b"a  b") is not None
    assert tf.content_incompatible([Transform("compress_whitespace")], b"a b") is None


DNS_RULE = ('alert dns any any -> any any (dns.query; dotprefix; content:".example.com"; '
            'endswith; sid:1;)')


@pytest.mark.parametrize("prefilter", [True, False])
@pytest.mark.parametrize(("query", "hit"), [
    (b"example.com", True), (b"www.example.com", True), (b"a.b.example.com", True),
    (b"badexample.com", False), (b"example.com.au", False), (b"example.co", False),
])
def test_dotprefix_dns_query(prefilter: bool, query: bytes, hit: bool) -> None:
    e = DetectEngine([rule(DNS_RULE)], prefilter=prefilter)
    tx = FakeTx(0, request={"dns.query": [b"unrelated.org", query]})
    m = e.inspect(udp(b"q"), FakeFlow(alproto="dns"), True, None, [(tx, True, False)])
    assert [x.rule.sid for x in m] == ([1] if hit else [])
    assert e.errors == 0


def test_transformed_and_plain_lists_of_one_rule() -> None:
    r = rule('alert dns any any -> any any (dns.query; dotprefix; content:".evil.com"; '
             'endswith; dns.query; content:"mail."; startswith; sid:2;)')
    e = DetectEngine([r])
    for q, hit in ((b"mail.evil.com", True), (b"www.evil.com", False),
                   (b"mail.notevil.com", False)):
        tx = FakeTx(0, request={"dns.query": [q]})
        m = e.inspect(udp(b"q"), FakeFlow(alproto="dns"), True, None, [(tx, True, False)])
        assert bool(m) is hit, q


def test_chain_order_matters() -> None:
    # to_sha256 after url_decode hashes the decoded bytes
    digest = hashlib.sha256(b"/a b").hexdigest()
    r = rule('alert http any any -> any any (http.uri; url_decode; to_sha256; '
             f'content:"|{digest}|"; sid:3;)')
    e = DetectEngine([r])
    for uri, hit in ((b"/a%20b", True), (b"/a+b", True), (b"/a%20b2", False)):
        tx = FakeTx(0, request={"http.uri": uri})
        assert bool(e.inspect_tx(pkt(b""), FakeFlow(), True, tx, True, False)) is hit


def test_validation_covers_the_whole_chain() -> None:
    # Suricata's DetectEngineBufferTypeValidateTransform checks every transform of the
    # chain, even one followed by a hash
    with pytest.raises(RuleError, match="to_lowercase"):
        rule('alert http any any -> any any (http.uri; to_lowercase; to_md5; '
             'content:"ABC"; sid:3;)')


def test_unavailable_transform_skips_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psl, "available", lambda: False)
    e = DetectEngine([rule('alert dns any any -> any any (dns.query; domain; '
                           'content:"example.com"; sid:4;)')])
    assert e.rules == [] and "Public Suffix List" in e.skipped[0][1]
