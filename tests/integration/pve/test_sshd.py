"""breakglass-pve as the forced command of a real OpenSSH sshd
(tests/lab/sshd-fixture), reached by a real `ssh` client: the key works
from 127.0.0.2 only, and hostile requests run nothing."""
import json
import os
import subprocess

import pytest

from conftest import BIN, SRC, VMID

FIXTURE = os.path.join(SRC, "tests/lab/sshd-fixture")


@pytest.fixture
def sshd(lab, tmp_path):
    d = str(tmp_path / "sshd")
    out = subprocess.run([FIXTURE, "start", d, "--user", "root"], capture_output=True, text=True, timeout=60)
    if out.returncode == 77:
        pytest.exit("sshd-fixture cannot run: " + out.stderr, returncode=77)
    assert out.returncode == 0, out.stderr
    env = dict(line.split("=", 1) for line in out.stdout.split() if "=" in line)
    with open(os.path.join(d, "id_ed25519.pub")) as f:
        pub = f.read().strip()
    with open(env["SSHD_AUTHORIZED_KEYS"], "w") as f:
        f.write('command="%s --config %s",restrict,from="127.0.0.2" %s\n' % (BIN, lab.conf, pub))
    yield env
    subprocess.run([FIXTURE, "stop", d], timeout=30)


def ssh(env, *words, source="127.0.0.2"):
    cmd = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
           "-i", env["SSHD_CLIENT_KEY"], "-p", env["SSHD_PORT"], "-b", source, "--", "root@127.0.0.1", *words]
    return subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def test_verbs_work_through_sshd_from_the_allowed_address(lab, sshd):
    r = ssh(sshd, "status")
    assert r.returncode == 0, r
    assert r.stdout.decode().splitlines()[0] == "status: stopped"
    r = ssh(sshd, "start", "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["status"] == "running" and doc["vmid"] == str(VMID)
    assert lab.qemu_running()
    old = lab.pid()
    r = ssh(sshd, "cycle --json")
    assert r.returncode == 0, r
    assert lab.qemu_running() and lab.pid() != old
    assert any("event=complete verb=cycle from=127.0.0.2 ok=1" in line for line in lab.log_lines())


def test_the_key_is_refused_from_another_address(lab, sshd):
    r = ssh(sshd, "status", source="127.0.0.1")
    assert r.returncode == 255, r
    assert b"Permission denied" in r.stderr
    assert lab.invocations() == [] and lab.log_lines() == []


HOSTILE = [["status;reboot"], ["status", "103"], ["STATUS"], ["status", "&&", "reboot"], ["$(reboot)"],
           ["status\n"], ["status\t--json"], ["cycle", "--json", "102"], ["--json", "cycle"], ["status\u00a0"]]


def test_hostile_requests_from_a_real_client_run_nothing(lab, sshd):
    for words in HOSTILE + [[]]:
        r = ssh(sshd, *words)
        assert r.returncode == 2, (words, r)
        assert b"allowed" in r.stderr and r.stdout == b""
    assert lab.invocations() == []  # the stand-in's record: no qm ran
    # no file but the log, and the rate limit's bucket of rejected lines
    assert os.listdir(lab.state) == [] and os.listdir(lab.lock) == ["breakglass-pve-rejected.bucket"]
    lines = lab.log_lines()
    assert len(lines) == len(HOSTILE) + 1
    assert all("event=rejected verb=- from=127.0.0.2 " in line for line in lines)
    assert any('input="status;reboot"' in line for line in lines)
    assert any('input="status\\n"' in line for line in lines)
