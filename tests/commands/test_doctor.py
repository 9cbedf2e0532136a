"""``ruleengine doctor`` on this machine, and a wrong iptables order inside a namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ruleengine.cli import main
from ruleengine.commands.doctor import FAIL, PASS, WARN, iptables_order, run_checks
from tests import kernel


def test_real_checks_decide_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    results = run_checks()
    assert {c.status for c in results} <= {PASS, WARN, FAIL}
    assert len({c.name for c in results}) == 11
    code = main(["doctor", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    failed = [c for c in doc["checks"] if c["status"] == FAIL]
    assert code == (1 if failed else 0) and doc["ready"] is (not failed)
    assert all(c["fix"] for c in failed)
    if os.geteuid() == 0:  # root on this kernel: the syscall, sockets and objects are there
        by_name = {c["name"]: c["status"] for c in doc["checks"]}
        assert by_name["bpf syscall"] == PASS and by_name["AF_PACKET fanout"] == PASS


def test_iptables_order_rules() -> None:
    good = ["-P PREROUTING ACCEPT",
            "-A PREROUTING -j CONNMARK --restore-mark --nfmask 0x1 --ctmask 0x1",
            "-A PREROUTING -m mark --mark 0x1/0x1 -j ACCEPT",
            "-A PREROUTING -j NFQUEUE --queue-num 0 --queue-bypass"]
    assert iptables_order(good) == []
    assert "comes before" in iptables_order([good[0], good[3], good[2]])[0]
    assert "restore-mark" in iptables_order([good[0], good[2], good[3]])[0]


@pytest.mark.kernel
def test_wrong_iptables_order_in_a_namespace_fails() -> None:
    kernel.require_netns()
    kernel.require_command("iptables")
    with kernel.netns_pair("bt-doc") as net:
        for rule in (["-A", "PREROUTING", "-j", "NFQUEUE", "--queue-num", "4714",
                      "--queue-bypass"],
                     ["-A", "PREROUTING", "-m", "mark", "--mark", "0x1/0x1", "-j", "ACCEPT"]):
            net.run(net.ns_b, "iptables", "-t", "mangle", *rule)
        env = dict(os.environ, PYTHONPATH=str(kernel.REPO_ROOT))
        out = subprocess.run(["ip", "netns", "exec", net.ns_b, sys.executable, "-m",
                              "ruleengine", "doctor"], capture_output=True, text=True,
                             timeout=60, env=env, cwd=kernel.REPO_ROOT)
    assert out.returncode == 1, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if "iptables order" in x)
    assert line.startswith(f"[{FAIL}]") and "comes before" in line
    assert "fix: put the mark rules first" in out.stdout
