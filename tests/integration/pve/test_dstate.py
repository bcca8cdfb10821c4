"""A QEMU that SIGKILL cannot end (state D), made real with the cgroup v1
freezer (freezer.py): cycle and stop must say so, with the kernel stack, and
must not start the VM (docs/forced-command.md, exit 4); forensics must call it
qemu-uninterruptible (docs/forensics.md)."""
import os
import time

import pytest

import freezer
from conftest import VMID, alive, proc_state


@pytest.fixture(scope="module", autouse=True)
def freezer_available():
    why = freezer.unavailable()
    if why:
        pytest.exit("test_dstate: %s" % why, returncode=77)
    freezer.sweep_leftovers()


@pytest.fixture
def frozen_vm(lab):
    """The lab's VM started through the stand-in, its QEMU frozen in state D.
    Teardown thaws (always), so the SIGKILLs sent meanwhile land, and checks
    that nothing is left: no process in the cgroup, no cgroup, no QEMU."""
    pid = lab.start_vm()
    cg = freezer.Freezer()
    try:
        cg.freeze(pid)
        yield pid, cg
    finally:
        cg.release()
        deadline = time.time() + 5
        while alive(pid) and time.time() < deadline:
            time.sleep(0.02)
        lab.cleanup()
    assert not os.path.isdir(cg.path)
    assert not alive(pid), "QEMU %d still there after the thaw" % pid


def steps(doc):
    return {s["name"]: s for s in doc["steps"]}


def starts(lab):
    return [w for w in lab.invocations() if w.split()[0] == "start"]


def assert_stack_reported(text, pid):
    """A kernel stack in /proc/PID/stack form ([<0>] symbol+0x…/0x…), of pid."""
    assert "pid %d" % pid in text, text
    assert "kernel stack" in text, text
    assert "[<0>] " in text and "+0x" in text, text


def test_frozen_qemu_state_d_is_real(frozen_vm):
    pid, cg = frozen_vm
    assert proc_state(pid) == "D"
    with open("/proc/%d/status" % pid) as f:
        assert "State:\tD (disk sleep)" in f.read()


def test_forensics_calls_it_qemu_uninterruptible(lab, frozen_vm):
    pid, _ = frozen_vm
    r, doc = lab.pve_json("forensics")
    assert r.returncode == 0, (r, doc)
    f = doc["forensics"]
    assert f["verdict"] == "qemu-uninterruptible", f
    assert "state D" in f["evidence"], f
    with open(os.path.join(f["path"], "process.txt")) as fp:
        process = fp.read()
    assert "state D" in process and "[<0>] " in process  # the stacks are in the stored bundle
    assert proc_state(pid) == "D"  # forensics changes nothing
    assert starts(lab) == ["start %d" % VMID]  # only the fixture's


def test_cycle_reports_state_d_with_its_stack_and_does_not_start(lab, frozen_vm):
    pid, cg = frozen_vm
    before = starts(lab)
    t0 = time.time()
    r, doc = lab.pve_json("cycle")
    took = time.time() - t0
    assert r.returncode == 4, (r, doc)
    assert took < 3 + 3 + 5, took  # [timeouts] stop + kill + a few seconds
    assert doc["ok"] is False
    assert doc["forensics"]["verdict"] == "qemu-uninterruptible", doc
    st = steps(doc)
    assert st["kill"]["ok"] is True and "SIGKILL sent to QEMU pid %d" % pid in st["kill"]["detail"]
    assert st["kill-wait"]["ok"] is False
    assert "state D" in st["kill-wait"]["detail"]
    assert_stack_reported(st["kill-wait"]["detail"], pid)
    assert doc["error"].startswith("qemu-uninterruptible: QEMU pid %d" % pid), doc["error"]
    assert "qm-start" not in st and "qm-unlock" not in st
    # the process really got SIGKILL and really is still there, in D
    assert proc_state(pid) == "D" and pid in cg.pids()
    with open("/proc/%d/status" % pid) as f:
        pending = [ln for ln in f.read().splitlines() if ln.startswith("ShdPnd:")][0]
    assert int(pending.split()[1], 16) & (1 << (9 - 1)), pending  # SIGKILL pending, undelivered
    assert starts(lab) == before  # qm start never ran: the stand-in's record
    assert lab.pid() == pid
    # the text form says it too, with the stack; stderr carries the error
    r = lab.pve("cycle")
    assert r.returncode == 4, r
    text = r.stdout.decode()
    assert "did not die on SIGKILL (state D)" in text
    assert_stack_reported(text, pid)
    assert "qemu-uninterruptible" in r.stderr.decode()
    assert starts(lab) == before
    log = "\n".join(lab.log_lines())
    assert "event=complete verb=cycle" in log and "exit=4" in log and "verdict=qemu-uninterruptible" in log


def test_stop_of_a_state_d_qemu_reports_it_and_fails(lab, frozen_vm):
    pid, _ = frozen_vm
    lab.write_conf(qm=3)  # bounds the verify after qm stop
    t0 = time.time()
    r, doc = lab.pve_json("stop")
    took = time.time() - t0
    assert r.returncode == 4, (r, doc)
    assert took < 3 + 3 + 3 + 5, took
    assert doc["ok"] is False and doc["status"] == "running"
    assert doc["forensics"]["verdict"] == "qemu-uninterruptible"
    assert any(w.startswith("stop %d" % VMID) for w in lab.invocations())  # qm stop did run
    assert doc["error"].startswith("qemu-uninterruptible: QEMU pid %d" % pid), doc["error"]
    st = steps(doc)
    assert st["verify"]["ok"] is False and st["qemu-state"]["ok"] is False
    assert "state D after qm stop" in st["qemu-state"]["detail"]
    assert_stack_reported(st["qemu-state"]["detail"], pid)
    assert proc_state(pid) == "D"
