"""breakglass-pve against a real QEMU through the qm stand-in: each verb's
effect is checked on the VM itself (its pidfile, its process, its QMP)."""
import fcntl
import json
import os
import signal
import subprocess
import time

from conftest import BIN, VMID, alive, proc_state


def steps(doc):
    return {s["name"]: s for s in doc["steps"]}


def test_status_of_a_stopped_then_running_vm(lab):
    r = lab.pve("status")
    assert r.returncode == 0, r
    assert r.stdout.decode().splitlines()[0] == "status: stopped"
    pid = lab.start_vm()
    r = lab.pve("status")
    out = r.stdout.decode().splitlines()
    assert r.returncode == 0
    assert out[0] == "status: running"
    assert "pid: %d" % pid in out
    assert any(line.startswith("qmp: answering") for line in out)
    assert any(line.startswith("uptime: ") for line in out)
    r, doc = lab.pve_json("status")
    assert doc["verb"] == "status" and doc["vmid"] == str(VMID) and doc["ok"] is True
    assert doc["status"] == "running" and doc["forensics"] is None


def test_start_stop_reset_cycle_change_the_real_vm(lab):
    r, doc = lab.pve_json("start")
    assert r.returncode == 0, r
    assert doc["ok"] and doc["status"] == "running"
    assert [s["name"] for s in doc["steps"]][:2] == ["lock", "forensics"]  # forensics first
    assert doc["forensics"]["id"].endswith("-start")
    first = lab.pid()
    assert lab.qemu_running()

    r, doc = lab.pve_json("reset")
    assert r.returncode == 0, r
    assert lab.pid() == first and lab.qemu_running()  # warm: the same QEMU
    assert any(line.startswith("reset ") for line in lab.invocations())

    r, doc = lab.pve_json("cycle")
    assert r.returncode == 0, r
    second = lab.pid()
    assert second != first and lab.qemu_running() and not alive(first)
    assert steps(doc)["clean-stop"]["ok"] is True
    assert "kill" not in steps(doc)  # a healthy QEMU stops cleanly

    r, doc = lab.pve_json("stop")
    assert r.returncode == 0, r
    assert doc["status"] == "stopped" and not alive(second)

    r = lab.pve("start")  # text mode: progress lines, then the summary
    text = r.stdout.decode()
    assert r.returncode == 0 and "start: done, status: running" in text
    assert "forensics: ok" in text.splitlines()[1]


def test_forensics_verb_prints_and_stores_a_bundle(lab):
    r, doc = lab.pve_json("forensics")
    assert r.returncode == 0 and doc["forensics"]["verdict"] == "stopped", doc
    lab.start_vm()
    r = lab.pve("forensics")  # text: the bundle as printed
    assert r.returncode == 0, r
    assert "blockstats" in r.stdout.decode()
    r, doc = lab.pve_json("forensics")
    assert r.returncode == 0, r
    f = doc["forensics"]
    # the tiny QEMU has no guest, no vCPU and no agent configured, and its
    # null disk never moves: with no virtio queue to show a request in
    # flight, frozen counters cannot tell a dead block path from a guest
    # that asks nothing, and the rules say so
    assert f["verdict"] == "undetermined", f
    assert f["recommended_verb"] is None, f
    assert "QMP answers: status running" in f["evidence"], f
    assert "no guest agent is configured for this VM" in f["evidence"], f
    assert "frozen between the two samples" in f["evidence"], f
    assert "requests in flight unknown" in f["evidence"], f
    assert f["path"] and os.path.isdir(f["path"]) and f["path"].startswith(lab.state)
    assert os.path.isfile(os.path.join(f["path"], "summary.json"))
    assert lab.qemu_running()  # forensics changes nothing


def test_cycle_of_a_frozen_qemu_kills_it_and_starts_a_new_one(lab):
    old = lab.start_vm()
    os.kill(old, signal.SIGSTOP)  # QMP stops answering, as with a hung main loop
    t0 = time.time()
    r, doc = lab.pve_json("cycle")
    took = time.time() - t0
    assert r.returncode == 0, (r, doc)
    assert took < 3 + 3 + 5, took  # stop + kill + 5 s
    st = steps(doc)
    assert st["clean-stop"]["ok"] is False
    assert st["kill"]["ok"] is True and str(old) in st["kill"]["detail"]
    assert doc["forensics"]["verdict"] == "qmp-unresponsive"
    assert not alive(old)
    new = lab.pid()
    assert new != old and lab.qemu_running()
    assert doc["status"] == "running"


def test_a_pidfile_naming_another_process_is_never_killed(lab):
    lab.start_vm()
    qemu = lab.pid()
    other = subprocess.Popen(["sleep", "300"])
    try:
        os.kill(qemu, signal.SIGSTOP)  # QMP silent: cycle goes straight to the checked kill
        with open(lab.pidfile, "w") as f:
            f.write("%d\n" % other.pid)
        r, doc = lab.pve_json("cycle")
        kill = steps(doc)["kill"]
        assert kill["ok"] is False, doc
        assert "not killed" in kill["detail"] and "not this VM's QEMU" in kill["detail"]
        assert other.poll() is None and alive(other.pid)  # still there, never signalled
        assert proc_state(qemu) == "T"  # and the real QEMU was not touched either
        # Proxmox's view (the pidfile names no QEMU) is "stopped", so a start
        # was tried, and failed: the untouched QEMU still holds its pidfile's
        # lock. The verb says so (exit 4) rather than kill what it cannot vouch for.
        assert r.returncode == 4, doc
        assert doc["ok"] is False and doc["status"] != "running"
        assert "qm start" in doc["error"]
    finally:
        other.kill()
        other.wait()
        os.kill(qemu, signal.SIGKILL)


def test_two_mutating_verbs_at_once_one_is_busy(lab):
    lab.write_conf(qmp=2, lock_wait=0)
    old = lab.start_vm()
    os.kill(old, signal.SIGSTOP)  # the first cycle takes > 2 s of forensics
    env = {"PATH": "/usr/bin:/bin", "SSH_CONNECTION": "127.0.0.9 40000 127.0.0.1 22",
           "SSH_ORIGINAL_COMMAND": "cycle --json"}
    first = subprocess.Popen([BIN, "--config", lab.conf], env=env, stdout=subprocess.PIPE)
    lab.wait_lock_holder("cycle", first.pid)  # then its forensics hold the lock > 2 s
    r = lab.pve("stop", "--json")
    assert r.returncode == 3, r
    doc = json.loads(r.stdout)
    assert doc["error"].startswith("busy: cycle running since 20") and "from 127.0.0.9" in doc["error"]
    assert "busy: cycle running since" in r.stderr.decode()
    assert any("event=busy verb=stop" in line for line in lab.log_lines())
    out, _ = first.communicate(timeout=30)
    assert first.returncode == 0, out
    assert lab.qemu_running() and lab.pid() != old


def test_a_second_verb_waits_for_the_lock_when_allowed_to(lab):
    lab.write_conf(qmp=1, lock_wait=10)
    old = lab.start_vm()
    os.kill(old, signal.SIGSTOP)
    first = subprocess.Popen([BIN, "--config", lab.conf, "cycle"], stdout=subprocess.DEVNULL,
                             env={"PATH": "/usr/bin:/bin"})
    lab.wait_lock_holder("cycle", first.pid)  # then its forensics hold the lock > 1 s
    r, doc = lab.pve_json("stop")
    assert first.wait(timeout=30) == 0
    assert r.returncode == 0, doc
    assert steps(doc)["lock"]["elapsed_ms"] >= 200  # it did wait
    assert doc["status"] == "stopped" and not lab.qemu_running()


def test_sighup_in_the_middle_of_a_cycle_does_not_stop_it(lab):
    old = lab.start_vm()
    os.kill(old, signal.SIGSTOP)
    p = subprocess.Popen([BIN, "--config", lab.conf, "cycle"], stdout=subprocess.PIPE,
                         env={"PATH": "/usr/bin:/bin"})
    lab.wait_lock_holder("cycle", p.pid)  # then inside the forensics (QMP times out after 1 s)
    p.send_signal(signal.SIGHUP)
    p.stdout.close()  # and the client is gone: writes now fail with EPIPE
    assert p.wait(timeout=30) == 0
    assert lab.qemu_running() and lab.pid() != old
    assert any("event=complete verb=cycle" in line and "ok=1" in line for line in lab.log_lines())


def test_a_hanging_qm_is_killed_at_its_deadline(lab, tmp_path):
    marker = tmp_path / "hung.pid"
    hang = tmp_path / "qm-hang"
    hang.write_text("#!/bin/sh\necho $$ > %s\nsleep 300 &\necho $! >> %s\nwait\n" % (marker, marker))
    hang.chmod(0o755)
    lab.write_conf(qm_path=str(hang), qm=1)
    t0 = time.time()
    r, doc = lab.pve_json("status")
    assert time.time() - t0 < 5
    assert r.returncode == 4, r
    assert "did not finish in 1000 ms" in doc["error"]
    pids = [int(x) for x in marker.read_text().split()]
    time.sleep(0.2)
    assert pids and not any(alive(p) for p in pids)  # the whole group went
    # a mutating verb: every qm call is cut at 1 s, the verb fails, the lock is free after
    marker.unlink()
    t0 = time.time()
    r, doc = lab.pve_json("start")
    assert r.returncode == 4, doc
    assert time.time() - t0 < 15
    assert steps(doc)["qm-start"]["ok"] is False and "did not finish" in steps(doc)["qm-start"]["detail"]
    pids = [int(x) for x in marker.read_text().split()]
    time.sleep(0.2)
    assert not any(alive(p) for p in pids)
    with open(os.path.join(lab.lock, "breakglass-pve-%d.lock" % VMID)) as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if anything still held it


def test_an_unwritable_log_does_not_stop_a_verb(lab):
    lab.write_conf(log="/proc/breakglass-pve-cannot-write-here.log")
    r = lab.pve("start")
    assert r.returncode == 0, r
    assert lab.qemu_running()
    r = lab.pve("status")
    assert r.returncode == 0 and r.stdout.startswith(b"status: running")


HOSTILE = ["status;reboot", "status 103", "", "STATUS", " status", "status ", "status\t--json", "status\n",
           "$(reboot)", "cycle --json 102", "--json cycle", "st\u0430tus", "status  --json", "rm -rf /",
           "status" * 11]


def test_rejected_requests_run_nothing(lab):
    before = lab.invocations()
    for i, bad in enumerate(HOSTILE):
        for how in ("argv", "ssh"):
            if how == "argv":
                r = lab.pve(*([bad] if bad else []))
            else:
                r = lab.pve(ssh=("127.0.0.2", bad))
            assert r.returncode == 2, (bad, how, r)
            err = r.stderr.decode().splitlines()
            assert len(err) == 1 and "status forensics reset stop start cycle" in err[0], err
            assert r.stdout == b""
    # SSH_ORIGINAL_COMMAND unset under sshd counts as empty
    r = lab.pve("status", ssh=("127.0.0.2", None))
    assert r.returncode == 2
    assert lab.invocations() == before  # no qm ran
    # no file but the log, and the rate limit's bucket of rejected lines
    assert os.listdir(lab.state) == [] and os.listdir(lab.lock) == ["breakglass-pve-rejected.bucket"]
    lines = lab.log_lines()
    assert len(lines) == 2 * len(HOSTILE) + 1
    assert all(" event=rejected verb=- " in line for line in lines)
    assert any('from=127.0.0.2 len=7 input="status\\n"' in line for line in lines)
    assert any('input="st\\xd0\\xb0tus"' in line for line in lines)
    assert all(line.isprintable() for line in lines)


def test_no_configuration_comes_from_the_environment(lab):
    env = {"PATH": "/usr/bin:/bin", "BREAKGLASS_VM_VMID": "103", "BREAKGLASS_PATHS_QM": "/bin/false"}
    r = subprocess.run([BIN, "--config", lab.conf, "status", "--json"], env=env, capture_output=True)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["vmid"] == str(VMID)
    calls = [i.split() for i in lab.invocations()]
    assert ["status", str(VMID)] in [c[:2] for c in calls]  # qm ran, for the config's VMID only
    assert all(c[1] == str(VMID) for c in calls), calls


def test_a_bad_config_is_exit_1_naming_the_key(lab, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[vm]\nvmid = 102\n[verbs]\nallow = status destroy\n")
    r = subprocess.run([BIN, "--config", str(bad), "status"], capture_output=True, env={})
    assert r.returncode == 1 and b"destroy" in r.stderr
    r = subprocess.run([BIN, "--config", str(tmp_path / "missing.conf"), "status"], capture_output=True, env={})
    assert r.returncode == 1
