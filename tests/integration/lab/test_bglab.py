"""tests/lab/bglab.py, the lab's helpers shared by scripts/lab and the
Python tests: the pve.conf it writes is one breakglass-pve accepts (checked
by the real program when it is built), values that would inject a line are
refused, the stand-in is installed with its settings, and KEY=VALUE output
is read as data, never as shell code."""
import os
import socket
import stat
import subprocess
import sys

import pytest

SRC = os.environ.get("BG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
sys.path.insert(0, os.path.join(SRC, "tests", "lab"))
import bglab  # noqa: E402

PVE = os.environ.get("BG_PVE_BIN", "")


def conf_kw(tmp_path, **extra):
    kw = dict(vmid=102, qm="/usr/sbin/qm", run_dir=str(tmp_path / "run"), log=str(tmp_path / "pve.log"),
              state_dir=str(tmp_path / "state"), lock_dir=str(tmp_path / "lock"))
    kw.update(extra)
    return kw


def test_pve_conf_sections_in_order(tmp_path):
    text = bglab.pve_conf_text(**conf_kw(tmp_path, timeouts={"qm": 30, "stop": 20}, forensics={"gdb": True},
                                         verbs=["status", "forensics"], comment="the lab"))
    lines = text.splitlines()
    assert lines[0] == "# the lab"
    assert [ln for ln in lines if ln.startswith("[")] == ["[vm]", "[paths]", "[timeouts]", "[forensics]", "[verbs]"]
    assert "vmid = 102" in lines and "stop = 20" in lines and "gdb = true" in lines
    assert "allow = status forensics" in lines


def test_pve_conf_refuses_line_injection(tmp_path):
    with pytest.raises(ValueError):
        bglab.pve_conf_text(**conf_kw(tmp_path, qm="/usr/sbin/qm\n[verbs]\nallow = destroy"))
    with pytest.raises(ValueError):
        bglab.pve_conf_text(**conf_kw(tmp_path, timeouts={"qm = 1\nstop": 2}))


def test_written_pve_conf_is_accepted_by_breakglass_pve(tmp_path):
    if not os.access(PVE, os.X_OK):
        pytest.skip("breakglass-pve not built")
    for d in ("run", "state", "lock"):
        (tmp_path / d).mkdir()
    path = bglab.write_pve_conf(str(tmp_path / "pve.conf"),
                                **conf_kw(tmp_path, qm="/bin/false", timeouts={"qm": 5, "lock_wait": 1},
                                          forensics={"keep": 3}))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    # a rejected request parses the config first and runs nothing: exit 2, not 1 (config error)
    r = subprocess.run([PVE, "--config", path, "destroy"], capture_output=True, env={"PATH": "/usr/bin:/bin"},
                       timeout=30)
    assert r.returncode == 2, r
    bad = tmp_path / "bad.conf"
    bad.write_text(bglab.pve_conf_text(**conf_kw(tmp_path, timeouts={"nonsense": 1})))
    r = subprocess.run([PVE, "--config", str(bad), "status"], capture_output=True, env={"PATH": "/usr/bin:/bin"},
                       timeout=30)
    assert r.returncode == 1 and b"nonsense" in r.stderr, r


def test_install_qm(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    qm = bglab.install_qm(str(tmp_path / "qm"), str(run), status_timeout=0.5, conf_dir="/x")
    assert os.readlink(qm) == bglab.STANDIN
    env = (tmp_path / "qm.env").read_text().splitlines()
    assert env == ["BG_QM_RUN_DIR=%s" % run, "BG_QM_RECORD=%s" % (run / "qm.log"), "BG_QM_STATUS_TIMEOUT=0.5",
                   "BG_QM_CONF_DIR=/x"]
    bglab.install_qm(qm, str(run))  # again: replaces, does not fail on the existing link
    assert os.readlink(qm) == bglab.STANDIN


def test_invocations(tmp_path):
    rec = tmp_path / "qm.log"
    with pytest.raises(AssertionError):  # a missing record is no "no qm ran"
        bglab.invocations(str(rec))
    rec.write_text("")
    assert bglab.invocations(str(rec)) == []
    rec.write_text('{"argv": ["start", "102"]}\n\n{"argv": ["stop", "102", "--timeout", "3"]}\n')
    assert bglab.invocations(str(rec)) == ["start 102", "stop 102 --timeout 3"]


def test_read_assignments_is_data_not_code():
    vals = bglab.read_assignments("# made by x\nGUEST_A=$(touch /tmp/pwned)\n\nGUEST_B=a b=c\n", r"GUEST_[A-Z_]+")
    assert vals == {"GUEST_A": "$(touch /tmp/pwned)", "GUEST_B": "a b=c"}
    for text in ("PATH=/tmp\n", "GUEST_A=1\nnot an assignment\n", "GUEST_A=a\x1bb\n", "export GUEST_A=1\n"):
        with pytest.raises(ValueError):
            bglab.read_assignments(text, r"GUEST_[A-Z_]+")


def test_command_line_take_pattern():
    """scripts/lab's `take` reads through `bglab.py assignments`: a name the
    pattern does not allow fails the command, and nothing is printed."""
    tool = os.path.join(SRC, "tests", "lab", "bglab.py")
    ok = subprocess.run([sys.executable, tool, "assignments", "SSHD_[A-Z_]+"], input="SSHD_PORT=2222\n",
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == "SSHD_PORT=2222\n"
    bad = subprocess.run([sys.executable, tool, "assignments", "SSHD_[A-Z_]+"],
                         input="SSHD_PORT=2222\nLD_PRELOAD=/tmp/x.so\n", capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == "" and "LD_PRELOAD" in bad.stderr


def test_ports():
    port = bglab.free_port()
    assert not bglab.port_in_use("127.0.0.1:%d" % port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert bglab.port_in_use("127.0.0.1:%d" % s.getsockname()[1])
