"""The FTP parser: transactions, replies, data ports, bounded lines, hostile input."""

from __future__ import annotations

import random

import pytest

from ruleengine.applayer.ftp import FtpParser, parse_config
from ruleengine.applayer.ftp.parser import (
    active_eprt,
    active_port,
    epsv_port,
    find_command,
    pasv_port,
)

GREETING = b"220-Welcome to the test server\r\n220 ready\r\n"
CLIENT = (b"USER anonymous\r\nPASS guest@\r\nSYST\r\nPORT 10,0,0,1,156,64\r\nLIST\r\n"
          b"PASV\r\nRETR file.txt\r\nQUIT\r\n")
SERVER_REPLIES = (b"331 Please specify the password.\r\n", b"230 Login successful.\r\n",
                  b"215 UNIX Type: L8\r\n", b"200 PORT command successful.\r\n",
                  b"150 Here comes the directory listing.\r\n226 Directory send OK.\r\n",
                  b"227 Entering Passive Mode (10,0,0,2,212,49).\r\n",
                  b"150 Opening BINARY mode data connection.\r\n226 Transfer complete.\r\n",
                  b"221 Goodbye.\r\n")


def conversation(p: FtpParser) -> FtpParser:
    """Greeting, then each command followed by its reply(ies)."""
    p.feed(False, GREETING)
    for command, reply in zip(CLIENT.split(b"\r\n")[:-1], SERVER_REPLIES, strict=True):
        p.feed(True, command + b"\r\n")
        p.feed(False, reply)
    return p


def summary(p: FtpParser) -> list[tuple]:
    return [(t.command, t.request, [r.line for r in t.replies], t.done, t.dyn_port, t.active)
            for t in p.transactions]


def test_one_transaction_per_command() -> None:
    p = conversation(FtpParser())
    s = summary(p)
    assert [t[0] for t in s] == [None, "USER", "PASS", "SYST", "PORT", "LIST", "PASV", "RETR",
                                 "QUIT"]
    assert s[0][2] == [b"220-Welcome to the test server", b"220 ready"]  # multi-line greeting
    assert s[1][1] == b"USER anonymous" and s[1][2] == [b"331 Please specify the password."]
    assert s[4][4:] == (40000, True)  # PORT 156*256+64, active
    assert s[5][2] == [b"150 Here comes the directory listing.", b"226 Directory send OK."]
    assert s[6][4:] == (212 * 256 + 49, False)  # PASV, passive
    assert all(t[3] for t in s)


def test_split_at_every_byte_of_both_directions() -> None:
    ref = summary(conversation(FtpParser()))
    for cut in range(len(CLIENT) + 1):
        p = FtpParser()
        p.feed(False, GREETING[: cut % len(GREETING)])
        p.feed(False, GREETING[cut % len(GREETING):])
        # replies only after their command, as a server sends them: the client bytes of
        # the command are split at the cut
        pos = 0
        for command, reply in zip(CLIENT.split(b"\r\n")[:-1], SERVER_REPLIES, strict=True):
            line = command + b"\r\n"
            start, end = pos, pos + len(line)
            if start <= cut < end:
                p.feed(True, line[: cut - start])
                p.feed(True, line[cut - start :])
            else:
                p.feed(True, line)
            mid = len(reply) // 2 if cut % 2 else 1
            p.feed(False, reply[:mid])
            p.feed(False, reply[mid:])
            pos = end
        assert summary(p) == ref, cut


def test_byte_by_byte() -> None:
    p = FtpParser()
    for i in range(len(GREETING)):
        p.feed(False, GREETING[i : i + 1])
    for i in range(len(b"USER a\r\n")):
        p.feed(True, b"USER a\r\n"[i : i + 1])
    for i in range(len(b"331 x\r\n")):
        p.feed(False, b"331 x\r\n"[i : i + 1])
    assert summary(p) == [(None, b"", [b"220-Welcome to the test server", b"220 ready"], True,
                           0, False), ("USER", b"USER a", [b"331 x"], True, 0, False)]


def test_multiline_reply_stays_open_until_its_last_line() -> None:
    p = FtpParser()
    p.feed(True, b"USER u\r\n")
    p.feed(False, b"230-Welcome\r\n")
    assert not p.transactions[0].done
    p.feed(False, b" some text\r\n230-more\r\n")
    assert not p.transactions[0].done
    p.feed(False, b"230 Login successful.\r\n")
    tx = p.transactions[0]
    assert tx.done and len(tx.replies) == 4 and len(p.transactions) == 1


def test_preliminary_reply_keeps_the_transaction_open() -> None:
    p = FtpParser()
    p.feed(True, b"RETR x\r\n")
    p.feed(False, b"150 Opening\r\n")
    assert not p.transactions[0].done
    p.feed(False, b"226 Done\r\n")
    assert p.transactions[0].done


def test_pipelined_commands_get_their_replies_in_order() -> None:
    p = FtpParser()
    p.feed(True, b"USER a\r\nPASS b\r\nPWD\r\n")
    p.feed(False, b"331 ok\r\n230 in\r\n257 \"/\"\r\n")
    assert [(t.command, [r.line for r in t.replies]) for t in p.transactions] == [
        ("USER", [b"331 ok"]), ("PASS", [b"230 in"]), ("PWD", [b'257 "/"'])]


def test_unknown_commands_open_no_transaction() -> None:
    p = FtpParser()
    p.feed(True, b"FEAT\r\nXYZZY\r\n")
    assert p.transactions == []
    p.feed(False, b"211 no features\r\n")  # a reply without an open command: its own tx
    (tx,) = p.transactions
    assert tx.command is None and tx.done


def test_command_search_is_suricatas_mpm() -> None:
    assert find_command(b"user anonymous") == "USER"
    assert find_command(b"AUTH TLS") == "AUTH TLS"
    assert find_command(b"AUTH SSL") is None
    assert find_command(b"XUSER x") == "USER"  # anywhere in the line, as the MPM
    assert find_command(b"STOU PASS") == "STOU"  # the match that ends first
    assert find_command(b"FEAT") is None


@pytest.mark.parametrize(("line", "port"), [
    (b"PORT 192,168,0,13,234,10", 59914),
    (b"PORT 192,168,1,1,0,80", 80),
    (b"PORT  1,2,3,4,5,6", 1286),
    (b"PORT 1,2,3,4,256,6", 0),
    (b"PORT 1,2,3,4", 0),
    (b"port 1,2,3,4,5,6", 0),  # the port parser is case sensitive
])
def test_active_port(line: bytes, port: int) -> None:
    assert active_port(line) == port


def test_passive_and_extended_ports() -> None:
    assert pasv_port(b"227 Entering Passive Mode (212,27,32,66,221,243).") == 56819
    assert pasv_port(b"227 Entering Passive Mode (212,27,32,66,257,243).") == 0
    assert pasv_port(b"227 Entering Passive Mode (212,27,32,66,255,65535).") == 0
    assert pasv_port(b"227 no parenthesis") == 0
    assert epsv_port(b"229 Entering Extended Passive Mode (|||48758|).") == 48758
    assert epsv_port(b"229 Entering Extended Passive Mode (|||99999|).") == 0
    assert active_eprt(b"EPRT |2|2a01:e34:ee97:b130:8c3e:45ea:5ac6:e301|41813|") == 41813
    assert active_eprt(b"EPRT |1|1.2.3.4|") == 0


def test_eprt_and_epsv_transactions() -> None:
    p = FtpParser()
    p.feed(True, b"EPRT |2|::1|5282|\r\nEPSV\r\n")
    p.feed(False, b"200 EPRT ok\r\n229 Entering Extended Passive Mode (|||6446|)\r\n")
    eprt, epsv = p.transactions
    assert (eprt.dyn_port, eprt.active) == (5282, True)
    assert (epsv.dyn_port, epsv.active) == (6446, False)


def test_port_without_a_port_drops_its_reply_as_suricata() -> None:
    p = FtpParser()
    p.feed(True, b"PORT garbage\r\n")
    p.feed(False, b"500 Illegal PORT command.\r\n")
    (tx,) = p.transactions
    assert tx.done and tx.replies == [] and tx.dyn_port == 0


def test_auth_tls_accepted_stops_the_parser() -> None:
    p = FtpParser()
    p.feed(True, b"AUTH TLS\r\n")
    p.feed(False, b"234 Proceed with negotiation.\r\n")
    assert p.tls_upgraded
    p.feed(True, b"\x16\x03\x01\x02\x00USER x\r\n")
    assert [t.command for t in p.transactions] == ["AUTH TLS"]


# -- hostile input ----------------------------------------------------------------------------
def test_long_command_is_truncated_with_an_event() -> None:
    p = FtpParser(parse_config({"max-line-length": 64})[0])
    p.feed(True, b"USER " + b"A" * 500 + b"\r\nPASS x\r\n")
    user, pw = p.transactions
    assert len(user.request) == 64 and user.request_truncated
    assert user.events == ["request_command_too_long"]
    assert pw.request == b"PASS x" and not pw.request_truncated


def test_one_mib_line_without_end_is_bounded() -> None:
    p = FtpParser()
    p.feed(True, b"STOR ")
    for _ in range(1024):
        p.feed(True, b"B" * 1024)
        assert len(p._lines[True].buf) <= 4096
    (tx,) = p.transactions
    assert tx.request_truncated and len(tx.request) == 4096
    p.feed(True, b"BBB\r\nNOOP\r\n")  # the end of the long line, then a normal command
    assert [t.command for t in p.transactions] == ["STOR", "NOOP"]


def test_ten_thousand_line_reply_is_bounded() -> None:
    p = FtpParser(parse_config({"max-reply-lines": 100})[0])
    p.feed(True, b"HELP\r\n")
    body = b"".join(b"214-line %d\r\n" % i for i in range(10000)) + b"214 end\r\n"
    for i in range(0, len(body), 1460):
        p.feed(False, body[i : i + 1460])
    (tx,) = p.transactions
    assert tx.done and len(tx.replies) == 100 and tx.replies_dropped == 9901


def test_long_reply_line_event() -> None:
    p = FtpParser(parse_config({"max-line-length": 32})[0])
    p.feed(True, b"SYST\r\n")
    p.feed(False, b"215 " + b"x" * 100 + b"\r\n")
    (tx,) = p.transactions
    assert tx.events == ["response_command_too_long"] and tx.replies[0].truncated


def test_max_tx_bounds_open_transactions() -> None:
    p = FtpParser(parse_config({"max-tx": 10})[0])
    p.feed(True, b"NOOP\r\n" * 50)
    assert len(p.transactions) == 11 and p.commands_dropped == 39
    # each refused command closed the oldest open transaction with the event
    assert [t.events for t in p.transactions[:3]] == [["too_many_transactions"]] * 3
    assert all(t.done for t in p.transactions)


def test_retr_stor_events() -> None:
    p = FtpParser()
    p.feed(True, b"RETR\r\nSTOR file\r\nPASV\r\n")
    p.feed(False, b"550 no\r\n550 no\r\n227 Entering Passive Mode (1,2,3,4,5,6)\r\n")
    p.feed(True, b"RETR file\r\n")
    assert [t.events for t in p.transactions] == [["file_without_name"], ["file_before_port"],
                                                  [], []]


def test_random_input_never_raises() -> None:
    rng = random.Random(3)
    alphabet = b"USERPASPORT 0123456789,|()\r\n-227 229 150 \x00\xff"
    for _ in range(300):
        p = FtpParser(parse_config({"max-line-length": 40, "max-tx": 8})[0])
        for _ in range(rng.randrange(1, 30)):
            n = rng.randrange(0, 80)
            p.feed(rng.random() < 0.5, bytes(rng.choice(alphabet) for _ in range(n)))
        p.close()
        assert p.internal_errors == 0
        assert all(len(t.request) <= 40 for t in p.transactions)


def test_close_completes_open_transactions() -> None:
    p = FtpParser()
    p.feed(True, b"USER a\r\n")
    (tx,) = p.transactions
    assert not tx.response_complete
    p.close(True)
    assert not tx.response_complete  # the server may still answer
    p.close()
    assert tx.response_complete and not tx.done


def test_negotiated_ports_are_announced_as_ftp_data() -> None:
    p = FtpParser()
    p.feed(True, b"PASV\r\n")
    p.feed(False, b"227 Entering Passive Mode (10,0,0,2,19,137).\r\n")
    p.feed(True, b"PORT 10,0,0,1,4,1\r\n")
    p.feed(False, b"200 ok\r\n")
    p.feed(True, b"PORT junk\r\n")
    p.feed(False, b"500 bad\r\n")
    assert p.expectations == [(19 * 256 + 137, "ftp-data"), (1025, "ftp-data")]
