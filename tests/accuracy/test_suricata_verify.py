"""Accuracy against Suricata: at least 90 % of the shared suricata-verify subset passes."""

from __future__ import annotations

import pytest

from tests.accuracy.suricata_verify import SV_DIR, run_all

REQUIRED_PASS_RATE = 0.90


@pytest.mark.slow
def test_suricata_verify_pass_rate() -> None:
    if not (SV_DIR / "index.json").exists():
        pytest.skip(f"suricata-verify corpus not found at {SV_DIR}")
    outcomes = run_all()
    failed = [o for o in outcomes if not o.passed]
    rate = 1 - len(failed) / len(outcomes)
    report = "\n".join(o.describe() for o in failed)
    print(f"suricata-verify: {len(outcomes) - len(failed)}/{len(outcomes)} pass ({rate:.1%})")
    print(report)
    assert rate >= REQUIRED_PASS_RATE, f"pass rate {rate:.1%} < 90 %; failing:\n{report}"
