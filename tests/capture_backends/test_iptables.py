"""NfqRules: the rule set (pure) and install/remove on the real kernel inside a namespace."""

from __future__ import annotations

import subprocess

import pytest

from capture_backends.iptables import IptablesError, NfqRules
from capture_backends.nfqueue import NfqConfig
from tests import kernel


def _bypass_rules(**kw: object) -> NfqRules:
    config = NfqConfig(queues=(5,), bypass_mark=0x10, bypass_mask=0x10, **kw)  # type: ignore[arg-type]
    return NfqRules.from_config(config)


def test_rule_order_and_tags() -> None:
    rules = _bypass_rules()
    assert rules.tag == "ruleengine-5"
    text = rules.script().splitlines()
    v4 = [line for line in text if line.startswith("iptables ")]
    assert v4 == [
        "iptables -t mangle -A PREROUTING -m comment --comment ruleengine-5 -j CONNMARK "
        "--restore-mark --nfmask 0x10 --ctmask 0x10",
        "iptables -t mangle -A PREROUTING -m comment --comment ruleengine-5 -m mark --mark "
        "0x10/0x10 -j ACCEPT",
        "iptables -t mangle -A PREROUTING -m comment --comment ruleengine-5 -j NFQUEUE "
        "--queue-num 5 --queue-bypass",
        "iptables -t mangle -A OUTPUT -m comment --comment ruleengine-5 -m mark --mark "
        "0x40000000/0x40000000 -j ACCEPT",
        "iptables -t mangle -A OUTPUT -m comment --comment ruleengine-5 -j CONNMARK "
        "--restore-mark --nfmask 0x10 --ctmask 0x10",
        "iptables -t mangle -A OUTPUT -m comment --comment ruleengine-5 -m mark --mark "
        "0x10/0x10 -j ACCEPT",
        "iptables -t mangle -A OUTPUT -m comment --comment ruleengine-5 -j NFQUEUE "
        "--queue-num 5 --queue-bypass",
        "iptables -t mangle -A INPUT -m comment --comment ruleengine-5 -m mark --mark "
        "0x10/0x10 -j CONNMARK --save-mark --nfmask 0x10 --ctmask 0x10",
        "iptables -t mangle -A POSTROUTING -m comment --comment ruleengine-5 -m mark --mark "
        "0x10/0x10 -j CONNMARK --save-mark --nfmask 0x10 --ctmask 0x10",
    ]
    assert [line.replace("ip6tables", "iptables", 1) for line in text if
            line.startswith("ip6tables ")] == v4


def test_no_bypass_means_queue_rules_only() -> None:
    rules = NfqRules.from_config(NfqConfig(queues=(0, 1, 2), queue_bypass=False,
                                           inject_mark=0))
    assert rules.tag == "ruleengine-0-2"
    assert rules.rules() == [
        ("PREROUTING", ["-m", "comment", "--comment", "ruleengine-0-2", "-j", "NFQUEUE",
                        "--queue-balance", "0:2"]),
        ("OUTPUT", ["-m", "comment", "--comment", "ruleengine-0-2", "-j", "NFQUEUE",
                    "--queue-balance", "0:2"]),
    ]


def test_repeat_mode_and_inject_mark() -> None:
    config = NfqConfig(queues=(0,), mode="repeat", repeat_mark=2, repeat_mask=2, bypass_mark=1,
                       bypass_mask=1, inject_mark=0x100, chains=("FORWARD", "OUTPUT"))
    rules = NfqRules.from_config(config).rules()
    forward = [args for chain, args in rules if chain == "FORWARD"]
    output = [args for chain, args in rules if chain == "OUTPUT"]
    assert output[0][4:] == ["-m", "mark", "--mark", "0x100/0x100", "-j", "ACCEPT"]
    assert len(output) == len(forward) + 1  # the engine's own packets only leave via OUTPUT
    assert [args[4:] for args in forward] == [
        ["-m", "mark", "--mark", "0x2/0x2", "-j", "ACCEPT"],  # repeated: before the restore
        ["-j", "CONNMARK", "--restore-mark", "--nfmask", "0x1", "--ctmask", "0x1"],
        ["-m", "mark", "--mark", "0x1/0x1", "-j", "ACCEPT"],
        ["-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"],
    ]


def test_variant_selects_binary() -> None:
    rules = NfqRules.from_config(NfqConfig(queues=(0,), iptables="legacy"))
    assert rules.binary("ipv4") == "iptables-legacy"
    assert rules.binary("ipv6") == "ip6tables-legacy"


def test_failed_command_reports_it_and_rolls_back() -> None:
    calls: list[list[str]] = []

    inputs: list[str] = []

    def runner(cmd: object, stdin: str | None) -> subprocess.CompletedProcess[str]:
        argv = list(cmd)  # type: ignore[call-overload]
        calls.append(argv)
        if "-S" in argv:
            return subprocess.CompletedProcess(argv, 0, "-P INPUT ACCEPT\n", "")
        if argv[0] == "ip6tables-restore":
            return subprocess.CompletedProcess(argv, 1, "", "ip6tables-restore: line 2 failed")
        inputs.append(stdin or "")
        return subprocess.CompletedProcess(argv, 0, "", "")

    kernel.require_command("iptables-restore", "ip6tables-restore")
    with pytest.raises(IptablesError, match="line 2 failed"):
        _bypass_rules().install(runner)
    # the cleanup pass after the failure listed the chains again
    assert sum(1 for c in calls if "-S" in c) == 4
    # one transaction for all of the IPv4 rules
    assert inputs[0].startswith("*mangle\n-I PREROUTING 1 -m comment --comment ruleengine-5")
    assert inputs[0].endswith("COMMIT\n") and inputs[0].count("\n-I ") == 9


# --------------------------------------------------------------------------------------------
# real kernel
# --------------------------------------------------------------------------------------------


def _listing(net: kernel.NetnsPair, binary: str) -> str:
    return net.run(net.ns_b, binary, "-t", "mangle", "-S").stdout


@pytest.mark.kernel
def test_install_is_idempotent_and_remove_is_exact() -> None:
    kernel.require_root()
    kernel.require_command("iptables", "ip6tables")
    with kernel.netns_pair("ipt") as net:
        # a rule of the user's own that must survive
        net.run(net.ns_b, "iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "udp",
                "--dport", "9", "-j", "ACCEPT")
        rules = _bypass_rules()
        with net.entered(net.ns_b):
            rules.install()
            rules.install()  # second start: leftovers are replaced, not duplicated
            assert len(rules.installed()) == 2 * 9
        v4 = _listing(net, "iptables")
        assert v4.count("ruleengine-5") == 9
        assert _listing(net, "ip6tables").count("ruleengine-5") == 9
        # ours are inserted before the user's rule
        lines = [ln for ln in v4.splitlines() if ln.startswith("-A PREROUTING")]
        assert "NFQUEUE" in lines[2] and "--dport 9" in lines[3]
        with net.entered(net.ns_b):
            assert rules.remove() == 18
            assert rules.remove() == 0
        v4 = _listing(net, "iptables")
        assert "ruleengine" not in v4 and "--dport 9 -j ACCEPT" in v4
        assert "ruleengine" not in _listing(net, "ip6tables")


@pytest.mark.kernel
def test_leftovers_of_a_crashed_run_are_removed() -> None:
    kernel.require_root()
    kernel.require_command("iptables", "ip6tables")
    with kernel.netns_pair("ipt") as net:
        # "crash": a process installs rules for queues 4-6 and dies without removing them
        code = ("from capture_backends.iptables import NfqRules\n"
                "NfqRules(queues=(4, 5, 6), bypass_mark=1, bypass_mask=1).install()\n"
                "import os; os._exit(9)\n")
        proc = net.python(net.ns_b, code, check=False)
        assert proc.returncode == 9, proc.stderr
        assert _listing(net, "iptables").count("ruleengine-4-6") == 8
        other = NfqRules(queues=(7,))  # another engine's queue is left alone
        with net.entered(net.ns_b):
            other.install()
            rules = _bypass_rules()  # queue 5 is inside the crashed run's 4-6
            rules.install()
        v4 = _listing(net, "iptables")
        assert "ruleengine-4-6" not in v4 and "ruleengine-7" in v4
        assert v4.count("ruleengine-5") == 9
        with net.entered(net.ns_b):
            rules.remove()
            other.remove()
        assert "ruleengine" not in _listing(net, "iptables")


def test_cli_prints_the_rules_and_reports_bad_masks(capsys: pytest.CaptureFixture[str]) -> None:
    from capture_backends.iptables import main

    assert main(["-q", "0", "--bypass-mark", "1", "--bypass-mask", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 18 and out[2].endswith("-j NFQUEUE --queue-num 0 --queue-bypass")
    assert main(["-q", "0", "--mode", "repeat", "--bypass-mark", "1", "--bypass-mask", "1"]) == 2
    assert "overlaps repeat-mask" in capsys.readouterr().err


@pytest.mark.kernel
def test_legacy_flavour_installs_with_the_legacy_binaries() -> None:
    kernel.require_root()
    kernel.require_command("iptables-legacy", "ip6tables-legacy")
    with kernel.netns_pair("ipt") as net:  # a fresh namespace: no nft rules to mix with
        rules = NfqRules.from_config(NfqConfig(queues=(3,), bypass_mark=1, bypass_mask=1,
                                               iptables="legacy"))
        with net.entered(net.ns_b):
            rules.install()
        listing = net.run(net.ns_b, "iptables-legacy", "-t", "mangle", "-S").stdout
        assert listing.count("ruleengine-3") == 9
        assert "ruleengine" not in net.run(net.ns_b, "iptables-nft", "-t", "mangle", "-S").stdout
        with net.entered(net.ns_b):
            assert rules.remove() == 18
        assert "ruleengine" not in net.run(net.ns_b, "ip6tables-legacy", "-t", "mangle",
                                           "-S").stdout
