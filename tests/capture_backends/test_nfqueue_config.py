"""NfqConfig (suricata.yaml ``nfq:``) and the netlink configuration message; no kernel needed."""

from __future__ import annotations

import socket
import struct

import pytest

from capture_backends.nfqueue import (
    NFQA_CFG_F_FAIL_OPEN,
    NfqConfig,
    NfqConfigError,
    _ack_error,
    build_batch_verdict,
    build_config_message,
)


def test_defaults_match_suricata_accept_mode() -> None:
    config, notes = NfqConfig.from_yaml({}, [0])
    assert config.queues == (0,)
    assert config.mode == "accept"
    assert config.bypass_mask == 0 and not config.fail_open
    assert notes == []


def test_full_section_is_parsed() -> None:
    section = {"mode": "repeat", "repeat-mark": 2, "repeat-mask": "0x2", "bypass-mark": 1,
               "bypass-mask": 1, "fail-open": "yes", "batchcount": 20, "install-rules": True,
               "chains": ["prerouting", "forward"], "queue-maxlen": 512}
    config, notes = NfqConfig.from_yaml(section, [1, 2])
    assert notes == []
    assert (config.mode, config.repeat_mark, config.repeat_mask) == ("repeat", 2, 2)
    assert (config.bypass_mark, config.bypass_mask, config.fail_open) == (1, 1, True)
    assert config.batchcount == 20 and config.install_rules
    assert config.chains == ("PREROUTING", "FORWARD") and config.queue_maxlen == 512
    assert config.queues == (1, 2)


def test_overlapping_masks_in_repeat_mode_are_an_error() -> None:
    # Suricata's commented defaults (1/1 for both) collide in repeat mode.
    section = {"mode": "repeat", "repeat-mark": 1, "repeat-mask": 1, "bypass-mark": 1,
               "bypass-mask": 1}
    with pytest.raises(NfqConfigError) as err:
        NfqConfig.from_yaml(section, [0])
    assert str(err.value) == ("nfq: bypass-mask 0x1 overlaps repeat-mask 0x1 (common bits 0x1)"
                              ": in repeat mode the two marks need different bits")


def test_same_masks_are_fine_in_accept_mode() -> None:
    section = {"mode": "accept", "repeat-mark": 1, "repeat-mask": 1, "bypass-mark": 1,
               "bypass-mask": 1}
    config, _ = NfqConfig.from_yaml(section, [0])
    assert config.bypass_value == 1


@pytest.mark.parametrize(("section", "message"), [
    ({"bypass-mark": 0, "bypass-mask": 1}, "bypass-mark 0x0 has no bit inside bypass-mask 0x1"),
    ({"mode": "repeat", "repeat-mark": 4, "repeat-mask": 2}, "repeat-mark 0x4 has no bit"),
    ({"mode": "route"}, "route mode is not supported"),
    ({"mode": "sideways"}, "mode 'sideways' is not one of accept, repeat"),
    ({"bypass-mask": "lots"}, "bypass-mask must be an integer"),
    ({"bypass-mask": 1 << 32}, "does not fit in 32 bits"),
    ({"fail-open": "maybe"}, "fail-open must be yes or no"),
    ({"chains": ["INPUT"]}, "chain 'INPUT' is not one of"),
    ({"bypass-mark": 1, "bypass-mask": 1, "inject-mark": 1}, "inject-mark 0x1 overlaps"),
])
def test_bad_values_have_clear_messages(section: dict[str, object], message: str) -> None:
    with pytest.raises(NfqConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        NfqConfig.from_yaml(section, [0])


def test_bad_queue_lists() -> None:
    with pytest.raises(NfqConfigError, match="no queue given"):
        NfqConfig.from_yaml({}, [])
    with pytest.raises(NfqConfigError, match="outside 0-65535"):
        NfqConfig.from_yaml({}, [70000])
    with pytest.raises(NfqConfigError, match="queue given twice"):
        NfqConfig.from_yaml({}, [1, 1])
    with pytest.raises(NfqConfigError, match="not contiguous"):
        NfqConfig.from_yaml({"install-rules": True}, [1, 3])
    config, _ = NfqConfig.from_yaml({"install-rules": True}, [2, 3])
    assert config.queues == (2, 3)


def test_warnings_for_unknown_and_ignored_keys() -> None:
    section = {"mode": "accept", "colour": "blue", "route-queue": 3, "batchcount": 999,
               "bypass-mark": 3, "bypass-mask": 1}
    config, notes = NfqConfig.from_yaml(section, [0])
    assert config.batchcount == 255
    assert "nfq: unknown key 'colour' ignored" in notes
    assert "nfq: route-queue ignored (route mode is not supported)" in notes
    assert "nfq: batchcount cannot exceed 255, using 255" in notes
    assert "nfq: bypass-mark bits 0x2 are outside bypass-mask 0x1 and are ignored" in notes


def test_with_install_rules_keeps_the_rest() -> None:
    config, _ = NfqConfig.from_yaml({"bypass-mark": 1, "bypass-mask": 1}, [4])
    installed = config.with_install_rules(True)
    assert installed.install_rules and installed.bypass_mask == 1 and installed.queues == (4,)


def test_config_message_layout() -> None:
    msg = build_config_message(7, 42, maxlen=1024, fail_open=True)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) and length % 4 == 0
    assert kind == (3 << 8) | 2  # NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG
    assert flags == 0x5 and seq == 42 and pid == 0  # REQUEST | ACK
    family, version, res_id = struct.unpack_from("!BBH", msg, 16)
    assert (family, version, res_id) == (socket.AF_UNSPEC, 0, 7)
    attrs = {}
    off = 20
    while off < len(msg):
        alen, atype = struct.unpack_from("=HH", msg, off)
        attrs[atype] = msg[off + 4:off + alen]
        off += (alen + 3) & ~3
    assert attrs[2] == struct.pack("!IB", 0xFFFF, 2)  # PARAMS: copy range, COPY_PACKET
    assert attrs[3] == struct.pack("!I", 1024)  # QUEUE_MAXLEN
    assert attrs[4] == struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)  # MASK
    assert attrs[5] == struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)  # FLAGS
    cleared = build_config_message(7, 43, fail_open=False)
    assert cleared.endswith(struct.pack("=HH", 8, 5) + struct.pack("!I", 0))


def test_ack_parsing() -> None:
    ack = struct.pack("=IHHII", 36, 2, 0, 9, 0) + struct.pack("=i", -95) + b"\0" * 16
    assert _ack_error(ack, 9) == 95
    assert _ack_error(ack, 10) is None
    ok = struct.pack("=IHHII", 36, 2, 0, 9, 0) + struct.pack("=i", 0) + b"\0" * 16
    assert _ack_error(ok, 9) == 0
    assert _ack_error(b"\x01\x02", 9) is None



def test_inject_mark_picks_a_free_bit_or_follows_the_config() -> None:
    assert NfqConfig(queues=(0,)).inject_value == 0x40000000
    taken = NfqConfig(queues=(0,), bypass_mark=0x40000000, bypass_mask=0x40000000)
    assert taken.inject_value == 0x80000000
    assert NfqConfig.from_yaml({"inject-mark": "no"}, [0])[0].inject_value == 0
    assert NfqConfig.from_yaml({"inject-mark": "0x8"}, [0])[0].inject_value == 8
    assert NfqConfig.from_yaml({"inject-mark": "auto"}, [0])[0].inject_mark is None


def test_batch_verdict_message_layout() -> None:
    msg = build_batch_verdict(3, 0x01020304, 1)
    length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", msg)
    assert (length, kind, flags) == (len(msg), (3 << 8) | 3, 1)  # VERDICT_BATCH, REQUEST
    assert struct.unpack_from("!BBH", msg, 16) == (socket.AF_UNSPEC, 0, 3)
    assert msg[20:] == struct.pack("=HH", 12, 2) + struct.pack("!II", 1, 0x01020304)
