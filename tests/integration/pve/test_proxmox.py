"""breakglass-pve on what a real Proxmox host has and the first stand-in did
not: config locks, HA-managed VMs, QEMU started with `-id`. Each case runs
the real forced command against real QEMU through the qm stand-in and checks
that the VM is never left worse than it was: no lock cleared that guarded
something, no second QEMU, no other VM's QEMU killed, no HA VM left
requested-stopped."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, VMID, alive, proc_state
from standin import SHIM

LOCKS = ["backup", "clone", "create", "migrate", "rollback", "snapshot", "snapshot-delete", "suspending",
         "suspended"]
UNSAFE = [k for k in LOCKS if k != "backup"]  # backup is safe once its vzdump is gone


def steps(doc):
    return {s["name"]: s for s in doc["steps"]}


def conf_path(lab, vmid=VMID):
    return os.path.join(lab.run, "%d.conf" % vmid)


def set_lock(lab, kind):
    with open(conf_path(lab), "a") as f:
        f.write("lock: %s\n" % kind)


def config_lock(lab):
    with open(conf_path(lab)) as f:
        for line in f:
            if line.startswith("lock:"):
                return line.split(":", 1)[1].strip()
    return None


def freeze(pid):
    """SIGSTOP: QMP stops answering, as with a hung main loop."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.time() + 5
    while proc_state(pid) != "T" and time.time() < deadline:
        time.sleep(0.01)
    assert proc_state(pid) == "T"


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")[:-1]]


def wait_for(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def tool(lab, prog, *args):
    return subprocess.run([os.path.join(lab.root, prog), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})


def calls(lab):
    return [i.split()[0] for i in lab.invocations()]


def qemus_of(lab, vmid):
    """Every live QEMU of this lab (its own kvm) started for vmid (by its -id):
    other tests on the machine run QEMUs of their own."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and alive(int(d)):
            try:
                args = cmdline(int(d))
            except OSError:
                continue
            if args and args[0] == os.path.join(lab.root, "kvm") and "-id" in args and args[args.index("-id") + 1] == str(vmid):
                found.append(int(d))
    return found


def start_lrm(lab, poll="0.2"):
    with open(os.path.join(lab.run, "resources.cfg"), "w") as f:
        f.write("vm: %d\n\tstate started\n" % VMID)
    return subprocess.Popen([os.path.join(lab.root, "ha-manager"), "lrm"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "BG_QM_HA_POLL": poll})


@pytest.fixture
def ha(lab):
    """The VM under the stand-in's HA stack (its LRM in the background)."""
    lrm = start_lrm(lab)
    yield lab
    lrm.kill()
    lrm.wait()


def ha_requested(lab):
    with open(os.path.join(lab.run, "resources.cfg")) as f:
        return [line.split()[1] for line in f if line.split()[:1] == ["state"]][0]


def test_qemu_runs_with_proxmox_command_line(lab):
    pid = lab.start_vm()
    args = cmdline(pid)
    assert args[0] == os.path.join(lab.root, "kvm") and args[1:3] == ["-id", str(VMID)], args
    assert args[args.index("-name") + 1] == "devvm,debug-threads=on"
    assert args[args.index("-pidfile") + 1] == lab.pidfile


@pytest.mark.parametrize("kind", UNSAFE)
def test_cycle_never_clears_an_unsafe_lock(lab, kind):
    pid = lab.start_vm()
    set_lock(lab, kind)
    freeze(pid)  # wedged: the cycle must kill
    r, doc = lab.pve_json("cycle")
    assert r.returncode == 4, r
    assert doc["error"].startswith("config-locked: cycle left the VM stopped"), doc["error"]
    assert "locked (%s)" % kind in doc["error"] and "A human must check" in doc["error"]
    assert doc["lock"]["kind"] == kind and doc["lock"]["clearable"] is False and doc["lock"]["check"]
    assert doc["status"] == "stopped"
    s = steps(doc)
    assert s["kill"]["ok"] and not s["qm-unlock"]["ok"] and "not run" in s["qm-unlock"]["detail"]
    assert s["clean-stop"]["detail"].startswith("skipped: the config lock (%s)" % kind)
    # never worse: the lock is still there, nothing was unlocked or started
    assert config_lock(lab) == kind
    assert not alive(pid) and qemus_of(lab, VMID) == []
    assert "unlock" not in calls(lab) and "start" not in calls(lab)[1:]  # [0] is the lab's own start
    # the lock is evidence in the bundle
    bundle = doc["forensics"]["path"]
    with open(os.path.join(bundle, "proxmox.txt")) as f:
        assert "config lock: %s (" % kind in f.read()
    with open(os.path.join(bundle, "summary.json")) as f:
        assert json.load(f)["config_lock"] == kind
    assert "config lock: %s" % kind in doc["forensics"]["evidence"]


def test_cycle_text_says_lock_meaning_and_check(lab):
    lab.start_vm()
    set_lock(lab, "migrate")
    r = lab.pve("cycle")
    text = r.stdout.decode()
    assert r.returncode == 4
    assert "error: config-locked:" in text and "locked (migrate)" in text
    assert "two QEMUs on one disk" in text and "target node" in text


def test_cycle_with_backup_lock_and_live_vzdump_keeps_lock_and_task(lab):
    pid = lab.start_vm()
    dump = subprocess.Popen([os.path.join(lab.root, "vzdump"), str(VMID)], stdout=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    try:
        upid = dump.stdout.readline().strip()
        assert config_lock(lab) == "backup"
        freeze(pid)
        r, doc = lab.pve_json("cycle")
        assert r.returncode == 4, r
        assert doc["lock"]["kind"] == "backup" and doc["lock"]["vzdump_task"] == upid
        assert "vzdump task alive: " + upid in steps(doc)["qm-unlock"]["detail"]
        assert config_lock(lab) == "backup" and dump.poll() is None  # the backup is not ours to end
        assert doc["status"] == "stopped" and "unlock" not in calls(lab)
    finally:
        dump.kill()
        dump.wait()


def test_cycle_with_backup_lock_of_a_dead_vzdump_clears_it_and_starts(lab):
    pid = lab.start_vm()
    dump = subprocess.Popen([os.path.join(lab.root, "vzdump"), str(VMID)], stdout=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    dump.stdout.readline()
    dump.kill()  # a vzdump that died: its lock stays behind
    dump.wait()
    assert config_lock(lab) == "backup"
    freeze(pid)
    r, doc = lab.pve_json("cycle")
    assert r.returncode == 0, (r, doc)
    assert steps(doc)["qm-unlock"]["ok"] and "no vzdump task" in steps(doc)["qm-unlock"]["detail"]
    assert config_lock(lab) is None
    assert doc["status"] == "running" and lab.qemu_running() and lab.pid() != pid
    assert qemus_of(lab, VMID) == [lab.pid()]


def test_cycle_without_lock_never_runs_unlock(lab):
    lab.start_vm()
    r, doc = lab.pve_json("cycle")
    assert r.returncode == 0, r
    assert "unlock" not in calls(lab) and "qm-unlock" not in steps(doc)
    assert doc["lock"] is None and doc["lock_read"] is True


@pytest.mark.parametrize("kind", LOCKS)
def test_stop_says_plainly_qm_refused_for_the_lock(lab, kind):
    pid = lab.start_vm()
    set_lock(lab, kind)
    r, doc = lab.pve_json("stop")
    assert r.returncode == 4, r
    assert doc["error"].startswith("config-locked: qm stop refused: the VM config is locked (%s)" % kind)
    assert "never overrides a lock" in doc["error"]
    assert lab.pid() == pid and alive(pid) and config_lock(lab) == kind  # untouched
    assert "unlock" not in calls(lab)


def test_reset_and_start_say_plainly_qm_refused_for_the_lock(lab):
    pid = lab.start_vm()
    set_lock(lab, "snapshot")
    r, doc = lab.pve_json("reset")
    assert r.returncode == 4 and doc["error"].startswith("config-locked: qm reset refused"), doc
    assert lab.pid() == pid and alive(pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid))
    r = lab.pve("start")
    assert r.returncode == 4
    assert "error: config-locked: qm start refused: the VM config is locked (snapshot)" in r.stdout.decode()
    assert not lab.qemu_running() and config_lock(lab) == "snapshot"


def test_stale_pidfile_naming_another_vms_qemu_is_never_killed(lab):
    # VM 103's QEMU, started like Proxmox (-id 103), in the same run dir
    with open(conf_path(lab, 103), "w") as f:
        f.write("name: othervm\n")
    r = lab.qm_direct("start", "103")
    assert r.returncode == 0, r
    with open(os.path.join(lab.run, "103.pid")) as f:
        other = int(f.read())
    assert cmdline(other)[1:3] == ["-id", "103"]
    try:
        with open(lab.pidfile, "w") as f:
            f.write("%d\n" % other)  # a stale 102.pid naming 103's QEMU
        for verb in ("stop", "cycle"):
            r, doc = lab.pve_json(verb)
            assert alive(other) and proc_state(other) != "T", (verb, doc)
        kill = steps(doc)["kill"]
        assert not kill["ok"] and "not this VM's QEMU" in kill["detail"] and "-id %d" % VMID in kill["detail"]
        assert r.returncode == 0 and doc["status"] == "running"  # 102 got its own QEMU
        assert lab.pid() != other and qemus_of(lab, 103) == [other]
    finally:
        os.kill(other, signal.SIGKILL)


def test_status_json_reports_lock_ha_and_versions(lab):
    lab.start_vm()
    set_lock(lab, "backup")
    r, doc = lab.pve_json("status")
    assert r.returncode == 0, r
    assert doc["lock"]["kind"] == "backup" and doc["lock"]["clearable"] is True  # no vzdump alive
    assert doc["ha"] == {"managed": False, "state": None}
    assert doc["versions"]["proxmox"].startswith("pve-manager/8.")
    banner = subprocess.run(["/usr/bin/qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    assert doc["versions"]["qemu"] == banner.split("version ")[1].split()[0]  # from QMP query-version
    text = lab.pve("status").stdout.decode().splitlines()
    assert text[0] == "status: running"
    assert any(line.startswith("lock: backup (") for line in text)
    assert "ha: not managed" in text and any(line.startswith("proxmox: pve-manager/8.") for line in text)


def test_ha_start_waits_for_the_ha_stack(ha):
    lab = ha
    with open(os.path.join(lab.run, "resources.cfg"), "w") as f:
        f.write("vm: %d\n\tstate stopped\n" % VMID)
    r, doc = lab.pve_json("start")
    assert r.returncode == 0, (r, doc)
    assert doc["ha"] == {"managed": True, "state": "stopped"}
    assert doc["status"] == "running" and ha_requested(lab) == "started"
    assert steps(doc)["verify"]["elapsed_ms"] >= 300  # it waited for the LRM, not failed at once
    r, doc = lab.pve_json("status")
    assert doc["ha"] == {"managed": True, "state": "started"}


def test_ha_cycle_of_a_frozen_vm_ends_running_once_and_requested_started(ha):
    lab = ha
    assert wait_for(lab.qemu_running)  # the LRM starts it
    first = lab.pid()
    freeze(first)
    r, doc = lab.pve_json("cycle")
    assert r.returncode == 0, (r, doc)
    assert doc["status"] == "running" and not alive(first)
    assert ha_requested(lab) == "started"
    assert doc["ha"] == {"managed": True, "state": "started"}
    with open(os.path.join(doc["forensics"]["path"], "proxmox.txt")) as f:
        assert "HA: managed, state started (from ha-manager status)" in f.read()
    assert wait_for(lambda: len(qemus_of(lab, VMID)) == 1)
    time.sleep(1.5)  # more than the LRM's delay: no second QEMU comes
    assert qemus_of(lab, VMID) == [lab.pid()]


def test_ha_cycle_of_a_healthy_vm_is_never_left_requested_stopped(ha):
    lab = ha
    assert wait_for(lab.qemu_running)
    first = lab.pid()
    r, doc = lab.pve_json("cycle")
    assert r.returncode == 0, (r, doc)
    assert steps(doc)["clean-stop"]["ok"]  # through `qm stop`, which asked HA for stopped
    assert ha_requested(lab) == "started" and lab.pid() != first and lab.qemu_running()


def test_ha_cycle_with_unsafe_lock_leaves_ha_state_as_it_was(ha):
    lab = ha
    assert wait_for(lab.qemu_running)
    pid = lab.pid()
    set_lock(lab, "migrate")
    freeze(pid)
    r, doc = lab.pve_json("cycle")
    assert r.returncode == 4 and doc["error"].startswith("config-locked"), doc
    assert ha_requested(lab) == "started" and config_lock(lab) == "migrate"
    time.sleep(1.5)  # the LRM refuses a locked VM too: it stays stopped
    assert not lab.qemu_running() and qemus_of(lab, VMID) == []


def test_ha_busy_state_is_not_raced(ha):
    lab = ha
    assert wait_for(lab.qemu_running)
    pid = lab.pid()
    with open(os.path.join(lab.run, "resources.cfg"), "w") as f:
        f.write("vm: %d\n\tstate recovery\n" % VMID)
    for verb in ("cycle", "stop", "reset", "start"):
        r, doc = lab.pve_json(verb)
        assert r.returncode == 4 and doc["error"].startswith("ha-busy:"), (verb, doc)
        assert "recovery" in doc["error"]
    assert lab.pid() == pid and alive(pid) and proc_state(pid) != "T"
    assert not set(calls(lab)) & {"stop", "reset", "unlock", "start"}


def test_ha_stop_stays_stopped(ha):
    lab = ha
    assert wait_for(lab.qemu_running)
    r, doc = lab.pve_json("stop")
    assert r.returncode == 0 and doc["status"] == "stopped", doc
    assert ha_requested(lab) == "stopped"
    time.sleep(1.5)
    assert not lab.qemu_running()


def test_shim_is_used(lab):
    assert os.path.isfile(SHIM), "BG_QEMU_ID_SHIM: the qemu-id shim must be built"


def test_ha_cycle_stopped_early_by_a_new_lock_sets_ha_back_to_started(lab):
    """The clean stop asked HA for stopped; a lock appears before the restart
    (a migration begins): the VM stays stopped for a human, but the HA
    requested state goes back to started, as it was (step ha-restore)."""
    lrm = start_lrm(lab, poll="2")  # a slow HA stack: the clean stop takes a while
    try:
        assert wait_for(lab.qemu_running)
        cycle = subprocess.Popen([BIN, "--config", lab.conf, "cycle",
                                  "--json"], stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        assert wait_for(lambda: any(i.startswith("stop %d" % VMID) for i in lab.invocations()), 30)
        set_lock(lab, "migrate")
        out, _ = cycle.communicate(timeout=120)
        doc = json.loads(out)
        assert cycle.returncode == 4 and doc["error"].startswith("config-locked: cycle left the VM stopped"), doc
        # qm stop ran (HA requested stopped), the slow HA stack was then
        # overtaken by the checked kill; the lock stopped the restart
        assert "clean-stop" in steps(doc) and steps(doc)["ha-restore"]["ok"], doc["steps"]
        assert ha_requested(lab) == "started" and config_lock(lab) == "migrate"
        assert "unlock" not in calls(lab)
        time.sleep(2.5)  # the LRM refuses the locked VM: it stays stopped
        assert not lab.qemu_running()
    finally:
        lrm.kill()
        lrm.wait()


def test_ha_start_that_never_comes_is_reported_after_ha_start(lab):
    """No HA stack acts (its LRM is down): `start` waits [proxmox] ha_start,
    then says so plainly; the request stays, as Proxmox leaves it."""
    with open(os.path.join(lab.run, "resources.cfg"), "w") as f:
        f.write("vm: %d\n\tstate stopped\n" % VMID)
    with open(lab.conf) as f:
        conf = f.read()
    with open(lab.conf, "w") as f:
        f.write(conf.replace("ha_start = 20", "ha_start = 5").replace("qm = 10", "qm = 4"))
    t0 = time.time()
    r, doc = lab.pve_json("start")
    took = time.time() - t0
    assert r.returncode == 4 and doc["error"].startswith("ha-start-timeout: the VM is stopped"), doc
    assert "within 5 s" in doc["error"] and took >= 5
    # the wait itself was the whole 5 s (it stopped up to a poll early once)
    assert steps(doc)["verify"]["elapsed_ms"] >= 5000, steps(doc)["verify"]
    assert ha_requested(lab) == "started" and not lab.qemu_running()
