"""Every ET Open rule using a transform, xbits, flowint, stream_size, base64_decode/
base64_data, tag or asn1 loads and is evaluated by detection (none skipped)."""

from __future__ import annotations

import re

import pytest

from ruleengine.detect.engine import DetectEngine
from ruleengine.rules.loader import load_rule_files
from tests.shared import SHARED

ET = SHARED / "corpus" / "rules" / "et-open-suricata-5.0.rules"
KEYWORDS = re.compile(
    r"[;(]\s*(dotprefix|to_lowercase|to_uppercase|strip_whitespace|compress_whitespace|"
    r"to_md5|to_sha1|to_sha256|url_decode|xor|pcrexform|header_lowercase|from_base64|"
    r"xbits|flowint|stream_size|base64_decode|base64_data|tag|asn1)\s*[:;]"
)


@pytest.mark.skipif(not ET.is_file(), reason="ET Open rules not present")
def test_et_rules_with_state_keywords_are_evaluated() -> None:
    rs = load_rule_files([ET], use_cache=False)
    mine = [r for r in rs.rules if KEYWORDS.search(r.raw)]
    counts: dict[str, int] = {}
    for r in mine:
        for name in set(KEYWORDS.findall(r.raw)):
            counts[name] = counts.get(name, 0) + 1
    assert counts["dotprefix"] > 400 and counts["xbits"] > 20 and counts["asn1"] >= 4
    assert all(not r.unsupported for r in mine)
    engine = DetectEngine(mine, prefilter=False)
    assert engine.skipped == []
    assert len(engine.rules) == len(mine)
