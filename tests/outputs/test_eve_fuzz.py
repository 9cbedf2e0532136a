"""Hostile values in EVE fields still give schema-valid lines."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ruleengine.outputs.eve import EveWriter
from tests.outputs.eve_schema import validate_line
from tests.outputs.test_eve import FakeFlow, FakeRule, FakeTx, packet

field_values = st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=40),
                         st.integers(min_value=-(2**70), max_value=2**70))


@settings(max_examples=150, deadline=None)
@given(host=field_values, url=field_values, ua=field_values, method=field_values,
       status=field_values, length=field_values, msg=st.text(max_size=30),
       metadata=st.lists(st.text(max_size=20), max_size=4),
       ts=st.floats(allow_nan=True, allow_infinity=True))
def test_any_transaction_values_give_valid_lines(host, url, ua, method, status, length, msg,
                                                 metadata, ts):
    tx = FakeTx(hostname=host, url=url, user_agent=ua, method=method, status=status,
                length=length)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eve.json"
        with EveWriter(path) as eve:
            eve.alert(ts=ts, flow=FakeFlow(start_ts=ts), pkt=packet(), rule=FakeRule(
                msg=msg, metadata=metadata), action="allowed", to_server=True, tx=tx,
                app_proto="http", category=msg, severity=3)
            eve.http(ts=ts, flow=FakeFlow(), tx=tx)
        for line in path.read_text(encoding="utf-8").splitlines():
            validate_line(line)
