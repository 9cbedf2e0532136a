"""The file tracker every protocol shares: counters, states, hashes on demand, and the
EVE fileinfo object."""

from __future__ import annotations

import hashlib

from ruleengine.applayer.files import AppFile, FilePolicy, FileState, fileinfo_object


def test_file_counts_content_and_closes_once() -> None:
    f = AppFile(b"/a.exe", to_server=False, tx_id=3)
    f.append(b"MZ")
    f.append(b"")
    f.append(b"rest")
    assert (f.size, f.state, f.is_open) == (6, FileState.OPENED, True)
    f.close()
    f.append(b"late")  # nothing after the end
    f.close(truncated=True)  # already closed: stays CLOSED
    assert (f.size, f.state) == (6, FileState.CLOSED)


def test_hashes_only_when_asked_and_only_without_gaps() -> None:
    plain = AppFile(b"x", to_server=True, tx_id=0)
    plain.append(b"data")
    assert plain.hexdigest("md5") is None
    policy = FilePolicy(frozenset({"md5", "sha256"}))
    hashed = AppFile(b"x", to_server=True, tx_id=0, policy=policy)
    hashed.append(b"da")
    hashed.append(b"ta")
    assert hashed.hexdigest("md5") == hashlib.md5(b"data").hexdigest()
    assert hashed.hexdigest("sha1") is None  # not asked for
    hashed.gap()
    assert hashed.hexdigest("md5") is None and hashed.gaps


def test_fileinfo_object_follows_suricata_fields() -> None:
    policy = FilePolicy(frozenset({"md5", "sha1", "sha256"}))
    closed = AppFile(b"eicar.txt", to_server=False, tx_id=1, policy=policy)
    closed.append(b"abc")
    closed.close()
    obj = fileinfo_object(closed)
    assert obj == {
        "filename": "eicar.txt", "gaps": False, "state": "CLOSED",
        "md5": hashlib.md5(b"abc").hexdigest(), "sha1": hashlib.sha1(b"abc").hexdigest(),
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "stored": False, "size": 3, "tx_id": 1,
    }
    cut = AppFile(b"big.iso", to_server=False, tx_id=2, policy=policy)
    cut.append(b"abc")
    cut.close(truncated=True)
    obj = fileinfo_object(cut)
    # output-json.c: md5/sha1 only for a CLOSED file, sha256 whenever it was computed
    assert obj["state"] == "TRUNCATED" and "md5" not in obj and "sha1" not in obj
    assert obj["sha256"] == hashlib.sha256(b"abc").hexdigest()


def test_long_and_binary_names_are_bounded_and_logged() -> None:
    f = AppFile(b"\xff" * 10_000, to_server=True, tx_id=0)
    assert len(f.name) == 4096
    assert fileinfo_object(f)["filename"].startswith("\\xff\\xff")  # as Suricata escapes


def test_force_hash_option_forms() -> None:
    assert FilePolicy.from_files_options({"force-hash": ["md5", "SHA256"]}) == (
        FilePolicy(frozenset({"md5", "sha256"})), [])
    assert FilePolicy.from_files_options({"force-hash": "sha1, md5"})[0].hashes == {"sha1", "md5"}
    policy, warnings = FilePolicy.from_files_options({"force-hash": ["md4"]})
    assert policy.hashes == frozenset() and "md4" in warnings[0]
    assert FilePolicy.from_files_options(None) == (FilePolicy(), [])
    assert FilePolicy.from_files_options({"force-magic": "no"}) == (FilePolicy(), [])
