"""A frozen QEMU (SIGSTOPped: its main loop cannot answer) costs the
forensics of `forensics` and `cycle` far less than the QMP timeout: the
process is read first (state T is evidence at once) and the sections that
wait run side by side. No evidence is lost: every section is in the
bundle, each with its outcome."""
import json
import os
import signal
import time

from conftest import proc_state

QMP_S = 5  # the default [timeouts] qmp: before, a frozen QEMU cost all of it
SECTIONS = ["process", "query-status", "query-block", "query-blockstats", "query-jobs", "agent-ping",
            "qm-status", "qm-config", "qm-pending", "proxmox", "host", "kernel-log"]


def freeze(lab):
    pid = lab.pid() if lab.qemu_running() else lab.start_vm()
    os.kill(pid, signal.SIGSTOP)
    while proc_state(pid) != "T":
        time.sleep(0.01)
    return pid


def wait_complete(path, timeout=30):
    """summary.json once the bundle's deferred sections have ended into it."""
    end = time.time() + timeout
    while True:
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
        if summary["complete"] or time.time() > end:
            return summary
        time.sleep(0.05)


def test_forensics_of_a_frozen_qemu_does_not_wait_out_qmp(lab):
    lab.write_conf(qmp=QMP_S)
    freeze(lab)
    r, doc = lab.pve_json("forensics", timeout=60)
    assert r.returncode == 0, r
    f = doc["forensics"]
    assert f["verdict"] == "qmp-unresponsive", f
    assert "stopped (state T)" in f["evidence"], f
    summary = wait_complete(f["path"])  # qm status may end after the answer (below)
    sections = {s["name"]: s for s in summary["sections"]}
    assert [s["name"] for s in summary["sections"]] == SECTIONS  # all, in their order
    assert not sections["query-status"]["ok"] and "no greeting" in sections["query-status"]["error"]
    assert sections["query-status"]["elapsed_ms"] < 1000 * QMP_S / 2, sections["query-status"]
    for name in ("query-block", "query-blockstats", "query-jobs", "agent-ping"):
        assert sections[name]["skipped"] and sections[name]["error"], sections[name]
    for name in SECTIONS:
        assert os.path.isfile(os.path.join(f["path"], sections[name]["file"])), name
    # the whole bundle took less than the one QMP wait it used to take
    step = [s for s in doc["steps"] if s["name"] == "forensics"] if doc["steps"] else []
    assert doc["elapsed_ms"] < 1000 * QMP_S, (doc["elapsed_ms"], step)


def test_cycle_of_a_frozen_qemu_kills_before_the_qmp_timeout(lab):
    lab.write_conf(qmp=QMP_S)
    old = freeze(lab)
    r, doc = lab.pve_json("cycle", timeout=120)
    assert r.returncode == 0, (r, doc)
    names = [s["name"] for s in doc["steps"]]
    assert names[:3] == ["lock", "forensics", "clean-stop"], names
    upto_kill = sum(s["elapsed_ms"] for s in doc["steps"][:names.index("kill") + 1])
    assert upto_kill < 1000 * QMP_S, doc["steps"]
    assert lab.qemu_running() and lab.pid() != old


def test_status_of_a_frozen_qemu_does_not_wait_out_qmp(lab):
    lab.write_conf(qmp=QMP_S)
    freeze(lab)
    before = len(lab.invocations())
    r, doc = lab.pve_json("status", timeout=60)
    assert r.returncode == 0, r
    # Proxmox's qm status would wait out its QMP deadline and then say
    # "running" for the live process: that is said at once, without asking
    assert doc["status"] == "running", doc
    qm_status = [s for s in doc["steps"] if s["name"] == "qm-status"][0]
    assert "state T" in qm_status["detail"] and "not asked" in qm_status["detail"], qm_status
    assert not [w for w in lab.invocations()[before:] if w.startswith("status")], lab.invocations()[before:]
    qmp = [s for s in doc["steps"] if s["name"] == "qmp"][0]
    assert not qmp["ok"] and "state T" in qmp["detail"], qmp
    assert qmp["elapsed_ms"] < 1000 * QMP_S / 2, qmp


def test_cycle_right_after_forensics_reuses_its_bundle(lab):
    lab.write_conf(qmp=QMP_S)
    old = freeze(lab)
    r, first = lab.pve_json("forensics", timeout=60)
    assert r.returncode == 0, r
    r, doc = lab.pve_json("cycle", timeout=120)
    assert r.returncode == 0, (r, doc)
    f = doc["forensics"]
    assert f["reused"] is True and f["id"] == first["forensics"]["id"], (f, first["forensics"])
    step = [s for s in doc["steps"] if s["name"] == "forensics"][0]
    assert step["detail"].startswith("reused") and step["elapsed_ms"] < 1000, step
    # the evidence was still taken before the kill, and the kill came at once
    assert [s["name"] for s in doc["steps"]][:4] == ["lock", "forensics", "clean-stop", "kill"], doc["steps"]
    assert lab.qemu_running() and lab.pid() != old
    # a new QEMU process: the next verb takes its own bundle
    r, again = lab.pve_json("stop", timeout=120)
    assert again["forensics"]["reused"] is False and again["forensics"]["id"] != f["id"], again["forensics"]


def test_a_bundle_of_another_process_is_not_reused(lab):
    lab.write_conf(qmp=QMP_S)
    lab.start_vm()
    r, first = lab.pve_json("forensics", timeout=60)
    assert r.returncode == 0, r
    freeze(lab)  # same process, another state: its QMP answered then, not now
    r, doc = lab.pve_json("cycle", timeout=120)
    assert doc["forensics"]["reused"] is False, doc["forensics"]
    assert doc["forensics"]["verdict"] == "qmp-unresponsive", doc["forensics"]


def test_cycle_of_a_frozen_qemu_does_not_wait_for_qm_status(tmp_path):
    """Proxmox's `qm status` waits out its own QMP deadline (3 s; 5 s here)
    on a frozen QEMU, whatever its form (tests/lab/qm-standin). It must not
    gate the kill: the verdict is drawn without it, the kill ends its wait,
    and it is in the bundle before the new QEMU starts."""
    from conftest import Lab, VMID
    from standin import make_qm
    status_s = 5
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "run"), exist_ok=True)
    lab = Lab(root, make_qm(root, os.path.join(root, "run"), VMID, status_timeout=status_s), qmp=QMP_S)
    try:
        old = freeze(lab)
        r, doc = lab.pve_json("cycle", timeout=120)
        assert r.returncode == 0, (r, doc)
        steps = {s["name"]: s for s in doc["steps"]}
        names = [s["name"] for s in doc["steps"]]
        # the status step of a frozen QEMU does not wait on QMP: the whole
        # forensics took well under qm status's own wait
        assert steps["forensics"]["elapsed_ms"] < 1000 * status_s * 0.8, steps["forensics"]
        assert names.index("kill") < names.index("forensics-end") < names.index("qm-start"), names
        assert steps["forensics-end"]["elapsed_ms"] < 1000 * status_s * 0.8, steps["forensics-end"]
        assert lab.qemu_running() and lab.pid() != old
        summary = json.load(open(os.path.join(doc["forensics"]["path"], "summary.json")))
        sections = {s["name"]: s for s in summary["sections"]}
        assert [s["name"] for s in summary["sections"]] == SECTIONS  # none lost
        assert sections["qm-status"]["ok"] and sections["qm-status"].get("deferred") is True, sections["qm-status"]
        with open(os.path.join(doc["forensics"]["path"], "qm-status.txt")) as f:
            assert "status: " in f.read()
    finally:
        lab.cleanup()


def test_forensics_answers_before_qm_status_and_completes_after(tmp_path):
    """The forensics verb of a frozen QEMU answers with its verdict and lets
    go of the client (the run returns: its pipes are closed) while `qm
    status` still waits out its QMP deadline (5 s here, 3 s on Proxmox);
    the bundle is completed after, under the VM lock, so a cycle asked
    meanwhile waits for it and then reuses it."""
    from conftest import Lab, VMID
    from standin import make_qm
    status_s = 5
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "run"), exist_ok=True)
    # lock_wait (1 s) shorter than qm status's wait: the cycle below still
    # waits for the completing forensics rather than report busy
    lab = Lab(root, make_qm(root, os.path.join(root, "run"), VMID, status_timeout=status_s), qmp=QMP_S,
              lock_wait=1)
    try:
        freeze(lab)
        t0 = time.monotonic()
        r, doc = lab.pve_json("forensics", timeout=60)
        answered_s = time.monotonic() - t0
        assert r.returncode == 0, r
        f = doc["forensics"]
        assert f["verdict"] == "qmp-unresponsive", f
        assert answered_s < status_s * 0.8, answered_s
        assert f["complete"] is False, f
        step = [s for s in doc["steps"] if s["name"] == "forensics"][0]
        assert "ends into the bundle later" in step["detail"], step
        with open(os.path.join(f["path"], "summary.json")) as fh:
            first = json.load(fh)
        assert first["complete"] is False and "qm-status" not in [s["name"] for s in first["sections"]], first
        # a cycle now waits for the VM lock until the bundle is complete
        r, cyc = lab.pve_json("cycle", timeout=120)
        assert r.returncode == 0, (r, cyc)
        with open(os.path.join(f["path"], "summary.json")) as fh:
            summary = json.load(fh)
        assert summary["complete"] is True, summary
        assert [s["name"] for s in summary["sections"]] == SECTIONS  # none lost
        sections = {s["name"]: s for s in summary["sections"]}
        assert sections["qm-status"].get("deferred") is True, sections["qm-status"]
        with open(os.path.join(f["path"], "qm-status.txt")) as fh:
            assert "status: running" in fh.read()
        lock = [s for s in cyc["steps"] if s["name"] == "lock"][0]
        assert lock["ok"] and lock["elapsed_ms"] > 500, lock  # it waited for the completion
        assert cyc["forensics"]["reused"] is True and cyc["forensics"]["id"] == f["id"], cyc["forensics"]
        with open(lab.log) as fh:
            log = fh.read()
        assert log.index("event=forensics-end verb=forensics") < log.index("step=lock ok=1"), log
    finally:
        lab.cleanup()
