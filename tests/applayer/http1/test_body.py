from __future__ import annotations

from ruleengine.applayer.http1 import HttpConfig, HttpParser
from ruleengine.applayer.http1.body import body_inspect_range, inspect_range

_SIZES = {"body_limit": 100, "min_size": 32, "window": 16}


def test_waits_for_the_minimal_inspect_size() -> None:
    assert inspect_range(seen=10, inspected=0, complete=False, **_SIZES) is None
    assert inspect_range(seen=32, inspected=0, complete=False, **_SIZES) == (0, 32)


def test_complete_or_limit_reached_inspects_at_once() -> None:
    assert inspect_range(seen=10, inspected=0, complete=True, **_SIZES) == (0, 10)
    assert inspect_range(seen=100, inspected=0, complete=False, body_limit=100, min_size=200,
                         window=16) == (0, 100)


def test_no_new_data_nothing_to_inspect() -> None:
    assert inspect_range(seen=40, inspected=40, complete=True, **_SIZES) is None


def test_later_inspections_keep_a_window_of_old_data() -> None:
    # 10 new bytes < window 16: start 6 bytes before the inspected offset
    assert inspect_range(seen=50, inspected=40, complete=False, **_SIZES) == (34, 50)
    # 30 new bytes >= window: a quarter window of old data
    assert inspect_range(seen=70, inspected=40, complete=False, **_SIZES) == (36, 70)
    # until min_size was passed, everything from 0 again
    assert inspect_range(seen=40, inspected=32, complete=False, **_SIZES) == (0, 40)


def test_for_a_transaction() -> None:
    config = HttpConfig(request_body_minimal_inspect_size=8, request_body_inspect_window=4)
    parser = HttpParser(config)
    parser.feed(True, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nabc")
    tx = parser.transactions[0]
    assert body_inspect_range(tx, True, config, 0) is None
    parser.feed(True, b"defghijkl")
    assert body_inspect_range(tx, True, config, 0) == (0, 12)
    assert body_inspect_range(tx, False, config, 0) is None
