"""File types through libmagic (python-magic over Debian's libmagic1): EVE
``fileinfo.magic`` with ``files: force-magic: yes``, the ``file.magic`` buffer and the
``filemagic`` keyword, the 512-byte threshold of an open file, and no lookup (nothing kept)
unless asked for. Every EVE line is checked against Suricata's schema."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from ruleengine.applayer.files import AppFile, FilePolicy, describe, magic_available
from ruleengine.cli import main as cli_main
from tests.commands.test_explain import write_case
from tests.outputs.eve_schema import validate_line

pytestmark = pytest.mark.skipif(not magic_available(),
                                reason="python-magic / libmagic1 not installed (make setup)")
PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 40


def pdf_response() -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: "
            + str(len(PDF)).encode() + b"\r\n\r\n" + PDF)


def run(tmp: Path, rules: str, files_options: str) -> list[dict[str, Any]]:
    req = b"GET /doc.pdf HTTP/1.1\r\nHost: example.test\r\n\r\n"
    pcap, rule_file = write_case(tmp, rules, [(req, pdf_response())])
    yaml = tmp / "s.yaml"
    yaml.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n      types:\n"
                    f"        - alert\n        - files:{files_options}\n")
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(["run", "-r", str(pcap), "-S", str(rule_file), "-l", str(tmp / "log"),
                         "-c", str(yaml), "--no-progress"]) == 0
    return [validate_line(x) for x in (tmp / "log" / "eve.json").read_text().splitlines()]


def test_describe_is_libmagics_text() -> None:
    assert describe(PDF) == "PDF document, version 1.4"
    assert describe(b"") is None


def test_open_file_is_typed_from_512_bytes_and_only_when_asked() -> None:
    typed = AppFile(b"a.pdf", to_server=False, tx_id=0, policy=FilePolicy(magic=True))
    typed.append(PDF[:100])
    assert typed.magic is None  # open and under FILEMAGIC_MIN_SIZE
    typed.append(PDF[100:])
    assert typed.magic == "PDF document, version 1.4"
    small = AppFile(b"b.pdf", to_server=False, tx_id=0, policy=FilePolicy(magic=True))
    small.append(PDF[:100])
    small.close()
    assert small.magic == "PDF document, version 1.4"  # closed: typed whatever its size
    plain = AppFile(b"c.pdf", to_server=False, tx_id=0)
    plain.append(PDF)
    plain.close()
    assert plain.magic is None


def test_force_magic_adds_fileinfo_magic(tmp_path: Path) -> None:
    events = run(tmp_path, "", "\n            force-magic: yes")
    (info,) = [e["fileinfo"] for e in events if e["event_type"] == "fileinfo"]
    assert info["magic"] == "PDF document, version 1.4"
    assert info["filename"] == "/doc.pdf"


def test_no_magic_by_default(tmp_path: Path) -> None:
    events = run(tmp_path, "", " {}")
    (info,) = [e["fileinfo"] for e in events if e["event_type"] == "fileinfo"]
    assert "magic" not in info


def test_filemagic_and_file_magic_rules_fire(tmp_path: Path) -> None:
    rules = ('alert http any any -> any any (msg:"pdf"; filemagic:"pdf document"; sid:1;)\n'
             'alert http any any -> any any (msg:"pdf2"; file.magic; content:"PDF"; '
             'startswith; sid:2;)\n'
             'alert http any any -> any any (msg:"zip"; filemagic:"Zip archive"; sid:3;)\n')
    events = run(tmp_path, rules, " {}")  # the rules ask for the types: no force-magic
    sids = sorted(e["alert"]["signature_id"] for e in events if e["event_type"] == "alert")
    assert sids == [1, 2]
    (info,) = [e["fileinfo"] for e in events if e["event_type"] == "fileinfo"]
    assert info["magic"] == "PDF document, version 1.4"
