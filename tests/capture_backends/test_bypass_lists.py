"""Bypass list parser, matcher, counters and change watcher (no kernel needed)."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from capture_backends.bypass_lists import BypassLists, ListWatcher, parse_file, parse_lines


def _ipv4(src: str, dst: str, proto: int = 6, sport: int = 1234, dport: int = 80) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + struct.pack("!HH", sport, dport) + bytes(16)


def _ipv6(src: str, dst: str, proto: int = 17, sport: int = 5000, dport: int = 53) -> bytes:
    header = struct.pack("!IHBB16s16s", 6 << 28, 8, proto, 64,
                         socket.inet_pton(socket.AF_INET6, src),
                         socket.inet_pton(socket.AF_INET6, dst))
    return header + struct.pack("!HHHH", sport, dport, 8, 0)


def test_parser_kinds_comments_and_bad_lines() -> None:
    entries, errors = parse_lines([
        "# a comment", "", "10.1.2.3/16  # host bits ignored", "2001:db8::/32",
        "192.0.2.7", "port 443", "PORT 8000-8100", "sni *.WindowsUpdate.com.",
        "sni example.org", "port 0", "port 9-3", "port x", "300.1.1.1", "sni *",
        "10.0.0.0/8 extra", "sni a..b",
    ], "list.txt")
    assert [(e.line, e.kind, e.value) for e in entries] == [
        (3, "cidr", "10.1.0.0/16"), (4, "cidr", "2001:db8::/32"), (5, "cidr", "192.0.2.7/32"),
        (6, "port", "443"), (7, "port", "8000-8100"), (8, "sni", "*.windowsupdate.com"),
        (9, "sni", "example.org")]
    assert entries[0].label == "list.txt:3"
    assert [e.split(":")[1] for e in errors] == ["10", "11", "12", "13", "14", "15", "16"]
    assert errors[0] == "list.txt:10: port '0' out of range 1-65535"
    assert "reversed" in errors[1] and "not an IP address" in errors[3]


def test_unreadable_file_is_one_error(tmp_path: Path) -> None:
    entries, errors = parse_file(tmp_path / "missing.list")
    assert entries == [] and len(errors) == 1 and "cannot read bypass list" in errors[0]


def test_matcher_longest_prefix_ports_and_sni(tmp_path: Path) -> None:
    path = tmp_path / "a.list"
    path.write_text("10.0.0.0/8\n10.1.0.0/16\nport 8000-8002\n2001:db8::/32\n"
                    "sni *.windowsupdate.com\nsni exact.example\n")
    lists = BypassLists()
    assert lists.reload((str(path),)) == []
    wide, narrow, ports, v6, sni_suffix, sni_exact = lists.entries
    assert lists.match_packet(_ipv4("10.1.9.9", "192.0.2.1")) == narrow
    assert lists.match_packet(_ipv4("192.0.2.1", "10.200.0.1")) == wide
    assert lists.match_packet(_ipv4("192.0.2.1", "192.0.2.2", dport=8001)) == ports
    assert lists.match_packet(_ipv4("192.0.2.1", "192.0.2.2", sport=8002)) == ports
    assert lists.match_packet(_ipv4("192.0.2.1", "192.0.2.2", dport=8003)) is None
    # ICMP carries no ports: bytes that look like port 8000 do not match
    assert lists.match_packet(_ipv4("192.0.2.1", "192.0.2.2", proto=1, dport=8000)) is None
    assert lists.match_packet(_ipv6("2001:db8::1", "2001:db9::1")) == v6
    assert lists.match_packet(_ipv6("2001:db9::1", "2001:db9::2", dport=8000)) == ports
    assert lists.match_packet(b"\x45" + bytes(10)) is None
    assert lists.match_sni("Download.WindowsUpdate.com") == sni_suffix
    assert lists.match_sni("a.b.windowsupdate.com.") == sni_suffix
    assert lists.match_sni("windowsupdate.com") is None
    assert lists.match_sni("evilwindowsupdate.com") is None
    assert lists.match_sni("exact.example") == sni_exact
    assert lists.match_sni("sub.exact.example") is None


def test_reload_keeps_counters_of_kept_entries_and_drops_removed(tmp_path: Path) -> None:
    path = tmp_path / "l.list"
    path.write_text("10.0.0.0/8\nport 443\n")
    lists = BypassLists()
    lists.reload((str(path),))
    cidr, port = lists.entries
    lists.count(cidr, 3, 300)
    lists.count(port, 1, 60)
    gen = lists.generation
    assert lists.stats() == {"bypass_list.l.list:1.pkts": 3, "bypass_list.l.list:1.bytes": 300,
                             "bypass_list.l.list:2.pkts": 1, "bypass_list.l.list:2.bytes": 60}
    path.write_text("10.0.0.0/8\nbad line here\n")
    errors = lists.reload()
    assert errors == ["l.list:2: unknown entry 'bad line here' (an address/CIDR, "
                      "'port N[-M]' or 'sni PATTERN')"]
    assert lists.generation == gen + 1
    assert lists.stats() == {"bypass_list.l.list:1.pkts": 3, "bypass_list.l.list:1.bytes": 300}
    assert lists.match_packet(_ipv4("192.0.2.1", "192.0.2.2", dport=443)) is None
    lists.reload()  # unchanged file: same entries, same generation
    assert lists.generation == gen + 1


def test_watcher_sees_writes_and_replacement(tmp_path: Path) -> None:
    path = tmp_path / "w.list"
    other = tmp_path / "other.txt"
    path.write_text("10.0.0.0/8\n")
    watcher = ListWatcher((str(path),))
    try:
        assert watcher.mode == "inotify"
        assert not watcher.changed()
        other.write_text("x")  # another file of the directory: not a change
        assert not watcher.changed()
        path.write_text("10.0.0.0/8\nport 1\n")
        assert watcher.changed()
        assert not watcher.changed()
        tmp = tmp_path / "w.list.tmp"  # an editor's save: write elsewhere, rename over
        tmp.write_text("port 2\n")
        os.replace(tmp, path)
        assert watcher.changed()
    finally:
        watcher.close()


def test_watcher_mtime_fallback(tmp_path: Path) -> None:
    path = tmp_path / "m.list"
    path.write_text("port 1\n")
    watcher = ListWatcher((str(path),))
    watcher.close()  # no inotify fd: compares stat() results
    watcher._stamps = watcher._stat_all()
    assert not watcher.changed()
    path.write_text("port 1\nport 2\n")
    assert watcher.changed()
    path.unlink()
    assert watcher.changed()
