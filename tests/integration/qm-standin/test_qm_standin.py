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
VMID = 100


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
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
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
