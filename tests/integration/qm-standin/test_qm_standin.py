"""The qm stand-in drives real QEMU processes the way Proxmox's qm does."""

import fcntl
import json
import os
import signal
import subprocess
import time

import pytest

SOURCE = os.environ.get("BG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STANDIN = os.path.join(SOURCE, "tests", "lab", "qm-standin")
SHIM = os.environ.get("BG_QEMU_ID_SHIM", "")
VMID = 100
LOCKS = ["backup", "clone", "create", "migrate", "rollback", "snapshot", "snapshot-delete", "suspending",
         "suspended"]


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except FileNotFoundError:
        return None
    return s[s.rindex(")") + 2]


def alive(pid):
    st = proc_state(pid)
    return st is not None and st not in "ZX"


@pytest.fixture
def vm(tmp_path):
    if not os.access("/usr/bin/qemu-system-x86_64", os.X_OK):
        pytest.fail("qemu-system-x86_64 missing: run scripts/bootstrap")
    if not os.path.isfile(SHIM):
        pytest.fail("BG_QEMU_ID_SHIM must name the built qemu-id-shim (ctest sets it)")
    # QEMU reached as `kvm`, as Proxmox does
    os.symlink("/usr/bin/qemu-system-x86_64", tmp_path / "kvm")
    for prog in ("ha-manager", "vzdump", "pveversion"):
        os.symlink(STANDIN, tmp_path / prog)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "BG_QM_QEMU": str(tmp_path / "kvm"),
        "BG_QM_ID_SHIM": SHIM,
        "BG_QM_HA_START_DELAY": "0.5",
        "BG_QM_RUN_DIR": str(tmp_path),
        "BG_QM_RECORD": str(tmp_path / "record.jsonl"),
        "BG_QM_QMP_TIMEOUT": "1",
        "BG_QM_STATUS_TIMEOUT": "0.5",
        "BG_QM_LOCK_TIMEOUT": "0.5",
        "BG_QM_TERM_WAIT": "0.5",
        "BG_QM_AGENT_TIMEOUT": "0.5",
    }
    (tmp_path / ("%d.conf" % VMID)).write_text("name: devvm\nmemory: 256\n")

    class VM:
        dir = tmp_path

        def qm(self, *args, stdin=None):
            return subprocess.run([STANDIN, *args], env=env, input=stdin, capture_output=True, text=True,
                                  timeout=60)

        def tool(self, prog, *args, **kw):
            return subprocess.run([str(tmp_path / prog), *args], env=env, capture_output=True, text=True,
                                  timeout=60, **kw)

        def popen(self, prog, *args):
            return subprocess.Popen([str(tmp_path / prog), *args], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        def qm_with(self, settings, *args):
            """qm ARGS with some settings changed, started (a Popen)."""
            return subprocess.Popen([STANDIN, *args], env=dict(env, **settings), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        def pid(self):
            with open(tmp_path / ("%d.pid" % VMID)) as f:
                return int(f.read())

        def record(self):
            try:
                with open(tmp_path / "record.jsonl") as f:
                    return [json.loads(line)["argv"] for line in f]
            except FileNotFoundError:
                return []

    v = VM()
    yield v
    try:
        pid = v.pid()
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass


def test_start_status_stop(vm):
    assert vm.qm("status", "100").stdout == "status: stopped\n"
    r = vm.qm("start", "100")
    assert r.returncode == 0, r.stderr
    pid = vm.pid()
    assert alive(pid)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        cmdline = f.read().split(b"\0")
    assert b"-pidfile" in cmdline and b"tcg" in cmdline
    assert vm.qm("status", "100").stdout == "status: running\n"
    verbose = vm.qm("status", "100", "--verbose").stdout
    assert "pid: %d\n" % pid in verbose and "qmpstatus: running\n" in verbose
    assert "drive-scsi0:" in verbose and verbose.endswith("status: running\n")
    for sock in ("100.qmp", "100.qga"):
        assert (vm.dir / sock).exists()

    r = vm.qm("start", "100")
    assert r.returncode == 255 and "VM 100 already running" in r.stderr
    assert vm.pid() == pid

    t0 = time.monotonic()
    r = vm.qm("stop", "100", "--timeout", "5")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 4
    assert "SIGTERM" not in r.stderr  # QMP quit was enough
    assert not alive(pid)
    assert vm.qm("status", "100").stdout == "status: stopped\n"
    assert vm.qm("stop", "100").returncode == 0  # nothing to stop
    assert vm.record() == [["status", "100"], ["start", "100"], ["status", "100"], ["status", "100", "--verbose"],
                           ["start", "100"], ["stop", "100", "--timeout", "5"], ["status", "100"], ["stop", "100"]]


def test_paused_and_reset(vm):
    assert vm.qm("start", "100").returncode == 0
    r = vm.qm("monitor", "100", stdin="stop\ninfo status\n")
    assert "Entering QEMU Monitor for VM 100" in r.stdout and "VM status: paused" in r.stdout
    assert vm.qm("status", "100").stdout == "status: paused\n"
    r = vm.qm("monitor", "100", stdin="cont\n")
    assert vm.qm("status", "100").stdout == "status: running\n"
    # a reset really reaches QEMU: a paused VM that is reset comes back in
    # "prelaunch" (QEMU's runstate after a system reset of a stopped VM)
    r = vm.qm("monitor", "100", stdin="stop\n")
    assert vm.qm("status", "100").stdout == "status: paused\n"
    r = vm.qm("reset", "100")
    assert r.returncode == 0, r.stderr
    r = vm.qm("monitor", "100", stdin="info status\n")
    assert "VM status: paused (prelaunch)" in r.stdout, r.stdout
    r = vm.qm("monitor", "100", stdin="info name\nquit\ninfo status\n")
    assert "devvm" in r.stdout and "VM status" not in r.stdout


def test_hung_qemu_stop_takes_the_kill_path(vm):
    assert vm.qm("start", "100").returncode == 0
    pid = vm.pid()
    os.kill(pid, signal.SIGSTOP)
    for _ in range(100):  # the stop is asynchronous
        if proc_state(pid) == "T":
            break
        time.sleep(0.01)
    assert proc_state(pid) == "T"
    # status still says running (the pid is alive); reset needs QMP and fails
    assert vm.qm("status", "100").stdout == "status: running\n"
    r = vm.qm("reset", "100")
    assert r.returncode == 255 and "qmp command 'system_reset' failed - got timeout" in r.stderr
    r = vm.qm("start", "100")
    assert r.returncode == 255 and "already running" in r.stderr
    t0 = time.monotonic()
    r = vm.qm("stop", "100", "--timeout", "5")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "qmp command 'quit' failed - got timeout" in r.stderr
    assert "VM quit/powerdown failed - terminating now with SIGTERM" in r.stderr
    assert "VM still running - terminating now with SIGKILL" in r.stderr
    assert not alive(pid)
    assert took < 5
    # the stale pidfile stays, as after a real kill; start replaces it
    assert vm.pid() == pid
    assert vm.qm("status", "100").stdout == "status: stopped\n"
    assert vm.qm("start", "100").returncode == 0
    assert vm.pid() != pid


def test_status_waits_on_qmp_as_proxmox_does(vm):
    """qemu-server's `qm status`, plain and --verbose alike, asks QMP
    (vmstatus($vmid, 1)) under one 3 s deadline and, when nothing answers,
    falls back to the pid's "running", silently; a QEMU killed meanwhile
    closes the socket and the fallback comes at once."""
    assert vm.qm("start", "100").returncode == 0
    pid = vm.pid()
    os.kill(pid, signal.SIGSTOP)
    while proc_state(pid) != "T":
        time.sleep(0.01)
    for form in ((), ("--verbose",)):
        t0 = time.monotonic()
        p = vm.qm_with({"BG_QM_STATUS_TIMEOUT": "1.5"}, "status", "100", *form)
        out, err = p.communicate(timeout=30)
        took = time.monotonic() - t0
        assert p.returncode == 0 and err == "", (form, err)
        assert took >= 1.5, (form, took)  # the whole QMP deadline, whatever the form
        assert out.endswith("status: running\n"), (form, out)
    assert "qmpstatus: running\n" in out and "pid: %d\n" % pid in out  # --verbose: the fallback
    # a status that waits on QMP (30 s here) ends soon after its QEMU is
    # killed, not at its deadline: a verb may kill while it waits
    p = vm.qm_with({"BG_QM_STATUS_TIMEOUT": "30"}, "status", "100")
    time.sleep(1.0)
    assert p.poll() is None, p.communicate()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    out, err = p.communicate(timeout=30)
    assert time.monotonic() - t0 < 10, "qm status kept waiting after its QEMU was killed"
    assert out == "status: running\n" and err == "", (out, err)


def test_config_lock_file_held(vm):
    assert vm.qm("start", "100").returncode == 0
    pid = vm.pid()
    with open(vm.dir / "lock-100.conf", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a hung `qm shutdown` holds it
        r = vm.qm("stop", "100")
        assert r.returncode == 255
        assert "can't lock file '%s' - got timeout" % (vm.dir / "lock-100.conf") in r.stderr
        assert alive(pid)
    assert vm.qm("stop", "100").returncode == 0
    assert not alive(pid)


def test_config_lock_field_and_unlock(vm):
    conf = vm.dir / "100.conf"
    conf.write_text("name: devvm\nlock: backup\n[PENDING]\nmemory: 512\ndelete: name\n")
    r = vm.qm("start", "100")
    assert r.returncode == 255 and "VM is locked (backup)" in r.stderr
    assert vm.qm("pending", "100").stdout == "cur lock: backup\nnew memory: 512\ndel name: devvm\n"
    assert vm.qm("unlock", "100").returncode == 0
    assert vm.qm("config", "100").stdout == "name: devvm\n"
    assert "[PENDING]" in conf.read_text()
    assert vm.qm("start", "100").returncode == 0


def test_stale_pidfile_names_another_process(vm):
    sleeper = subprocess.Popen(["/bin/sleep", "60"])
    try:
        (vm.dir / "100.pid").write_text("%d\n" % sleeper.pid)
        assert vm.qm("status", "100").stdout == "status: stopped\n"
        assert vm.qm("stop", "100").returncode == 0
        assert sleeper.poll() is None  # never signalled
        assert vm.qm("start", "100").returncode == 0
        assert vm.pid() != sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


def test_agent_and_errors(vm):
    r = vm.qm("agent", "100", "ping")
    assert r.returncode == 255 and "VM 100 is not running" in r.stderr
    assert vm.qm("start", "100").returncode == 0
    r = vm.qm("agent", "100", "ping")
    assert r.returncode == 255 and "No QEMU guest agent configured" in r.stderr
    with open(vm.dir / "100.conf", "a") as f:
        f.write("agent: 1\n")
    t0 = time.monotonic()
    r = vm.qm("guest", "cmd", "100", "ping")
    assert r.returncode == 255 and "qmp command 'guest-ping' failed - got timeout" in r.stderr
    assert time.monotonic() - t0 < 3
    r = vm.qm("status", "101")
    assert r.returncode == 255 and "101.conf' does not exist" in r.stderr
    r = vm.qm("frobnicate", "100")
    assert r.returncode == 255 and "unknown command" in r.stderr


def test_settings_from_env_file_with_clean_environment(vm, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(STANDIN, bindir / "qm")
    (bindir / "qm.env").write_text("# lab settings\nBG_QM_RUN_DIR=%s\nBG_QM_RECORD=%s\n" %
                                   (tmp_path, tmp_path / "env-record.jsonl"))
    r = subprocess.run([str(bindir / "qm"), "status", "100"], env={"PATH": "/usr/bin:/bin", "LANG": "C"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "status: stopped\n"
    with open(tmp_path / "env-record.jsonl") as f:
        rec = json.loads(f.readline())
    assert rec["argv"] == ["status", "100"] and rec["time"].endswith("Z")


def test_hung_shutdown_holds_the_lock(vm):
    assert vm.qm("start", "100").returncode == 0
    pid = vm.pid()
    # -machine none has no ACPI: the powerdown request goes nowhere and
    # shutdown waits out its timeout holding the config lock.
    env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin", BG_QM_RUN_DIR=str(vm.dir),
               BG_QM_LOCK_TIMEOUT="0.5")
    shutdown = subprocess.Popen([STANDIN, "shutdown", "100", "--timeout", "3"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.8)
        r = vm.qm("stop", "100")
        assert r.returncode == 255 and "can't lock file" in r.stderr and "got timeout" in r.stderr
        assert alive(pid)
    finally:
        out, err = shutdown.communicate(timeout=30)
    assert shutdown.returncode == 255 and "VM quit/powerdown failed - got timeout" in err
    assert alive(pid)
    assert vm.qm("stop", "100").returncode == 0
    assert not alive(pid)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")[:-1]]


def wait_for(pred, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_qemu_is_started_the_way_proxmox_starts_it(vm):
    assert vm.qm("start", "100").returncode == 0
    pid = vm.pid()
    args = cmdline(pid)
    # /usr/bin/kvm -id <vmid> -name <name>,debug-threads=on … -pidfile <run>/<vmid>.pid
    assert args[0] == str(vm.dir / "kvm") and args[1:3] == ["-id", "100"], args
    assert args[args.index("-name") + 1] == "devvm,debug-threads=on"
    assert "socket,id=qmp,path=%s,server=on,wait=off" % (vm.dir / "100.qmp") in args
    assert args[args.index("-pidfile") + 1] == str(vm.dir / "100.pid")
    assert os.readlink("/proc/%d/exe" % pid) == "/usr/bin/qemu-system-x86_64"
    # the shim hid -id from QEMU's parser only: QMP answers, QEMU runs
    assert "qmpstatus: running" in vm.qm("status", "100", "--verbose").stdout


@pytest.mark.parametrize("kind", LOCKS)
def test_every_lock_kind_refuses_verbs_until_skiplock_or_unlock(vm, kind):
    assert vm.qm("start", "100").returncode == 0
    pid = vm.pid()
    with open(vm.dir / "100.conf", "a") as f:
        f.write("lock: %s\n" % kind)
    for verb in ("stop", "reset", "shutdown", "start"):
        r = vm.qm(verb, "100")
        assert r.returncode == 255 and "VM is locked (%s)" % kind in r.stderr, (verb, r.stderr)
    assert alive(pid)
    verbose = vm.qm("status", "100", "--verbose").stdout
    assert "lock: %s\n" % kind in verbose and "ha:\n\tmanaged: 0\n" in verbose
    assert vm.qm("reset", "100", "--skiplock").returncode == 0
    assert vm.qm("stop", "100", "--skiplock", "--timeout", "5").returncode == 0
    assert not alive(pid)
    assert "lock: %s" % kind in vm.qm("config", "100").stdout  # --skiplock leaves it
    assert vm.qm("unlock", "100").returncode == 0
    assert "lock:" not in vm.qm("config", "100").stdout
    assert vm.qm("start", "100").returncode == 0


def test_ha_start_is_a_request_and_the_lrm_restarts_a_killed_vm(vm):
    (vm.dir / "resources.cfg").write_text("vm: 100\n\tstate stopped\n\tmax_restart 1\n")
    lrm = vm.popen("ha-manager", "lrm")
    try:
        assert "service vm:100 (" in vm.tool("ha-manager", "status").stdout
        assert "stopped)" in vm.tool("ha-manager", "status").stdout
        r = vm.qm("start", "100")
        assert r.returncode == 0 and r.stdout == "Requesting HA start for VM 100\n"
        assert not os.path.exists(vm.dir / "100.pid")  # returned before the VM runs
        assert "\tstate started\n" in (vm.dir / "resources.cfg").read_text()
        assert wait_for(lambda: vm.qm("status", "100").stdout == "status: running\n")
        verbose = vm.qm("status", "100", "--verbose").stdout
        assert "ha:\n\tmanaged: 1\n\tstate: started\n" in verbose
        first = vm.pid()
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: vm.qm("status", "100").stdout == "status: stopped\n")
        # the HA stack restarts it on its own
        assert wait_for(lambda: vm.qm("status", "100").stdout == "status: running\n")
        assert vm.pid() != first
        r = vm.qm("stop", "100")
        assert r.returncode == 0 and r.stdout == "Requesting HA stop for VM 100\n"
        assert wait_for(lambda: vm.qm("status", "100").stdout == "status: stopped\n")
        time.sleep(1.5)  # more than the start delay: it stays stopped
        assert vm.qm("status", "100").stdout == "status: stopped\n"
        assert "stopped)" in vm.tool("ha-manager", "status").stdout
        # a locked VM is not started by the LRM
        with open(vm.dir / "100.conf", "a") as f:
            f.write("lock: migrate\n")
        assert vm.tool("ha-manager", "set", "vm:100", "--state", "started").returncode == 0
        time.sleep(1.5)
        assert vm.qm("status", "100").stdout == "status: stopped\n"
        assert "starting)" in vm.tool("ha-manager", "status").stdout
    finally:
        lrm.kill()
        lrm.wait()


def test_vzdump_task_alive_then_ended_or_killed(vm):
    tasks = vm.dir / "tasks-active"
    dump = vm.popen("vzdump", "100")
    upid = dump.stdout.readline().strip()
    try:
        fields = upid.split(":")
        assert fields[0] == "UPID" and int(fields[2], 16) == dump.pid and fields[5:7] == ["vzdump", "100"]
        with open("/proc/%d/stat" % dump.pid) as f:
            assert int(fields[3], 16) == int(f.read().rsplit(")", 1)[1].split()[19])
        assert "lock: backup" in vm.qm("config", "100").stdout
        assert tasks.read_text() == upid + " 1\n"
        dump.terminate()
        assert dump.wait(timeout=30) == 0
        assert "lock:" not in vm.qm("config", "100").stdout
        line = tasks.read_text().strip()
        assert line.startswith(upid + " 1 ") and line.endswith(" OK")
    finally:
        dump.kill()
        dump.wait()
    dump = vm.popen("vzdump", "100")
    upid = dump.stdout.readline().strip()
    dump.kill()
    dump.wait()
    assert "lock: backup" in vm.qm("config", "100").stdout  # a stale lock, its task dead
    assert (upid + " 1\n") in tasks.read_text() and not alive(dump.pid)
    r = vm.tool("vzdump", "100")
    assert r.returncode == 255 and "VM is locked (backup)" in r.stderr


def test_pveversion(vm):
    r = vm.tool("pveversion")
    assert r.returncode == 0 and r.stdout.startswith("pve-manager/8.") and "running kernel" in r.stdout
