"""Shared fixtures for breakglass-pve against real peers: a real QEMU driven
through the qm stand-in, a real sshd (tests/lab/sshd-fixture)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

SRC = os.environ.get("BG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
sys.path.insert(0, os.path.join(SRC, "tests", "lab"))
import bglab  # noqa: E402  (the lab's helpers: pve.conf, the qm stand-in)

BIN = os.environ.get("BG_PVE_BIN") or os.path.join(os.environ.get("BG_BINARY_DIR", ""), "apps/pve/breakglass-pve")
VMID = 102


def proc_state(pid):
    """The state letter of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def is_qemu(pid):
    try:
        return "qemu-system" in os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False


class Lab:
    """One VM's world: run_dir, state_dir, lock_dir, log, pve.conf, qm."""

    def __init__(self, root, qm, **timeouts):
        self.root = root
        self.run = os.path.join(root, "run")
        self.state = os.path.join(root, "state")
        self.lock = os.path.join(root, "lock")
        self.log = os.path.join(root, "breakglass-pve.log")
        for d in (self.run, self.state, self.lock):
            os.makedirs(d, exist_ok=True)
        self.qm = qm
        self.record = os.path.join(self.run, "qm.log")
        self.conf = os.path.join(root, "pve.conf")
        self.write_conf(**timeouts)

    def write_conf(self, log=None, qm_path=None, **timeouts):
        t = {"qm": 10, "stop": 3, "kill": 3, "qmp": 1, "lock_wait": 1}
        t.update(timeouts)
        # Proxmox's own tools: the stand-in under their names (standin.py)
        proxmox = {"ha_manager": os.path.join(self.root, "ha-manager"),
                   "ha_resources": os.path.join(self.run, "resources.cfg"),
                   "tasks_active": os.path.join(self.run, "tasks-active"),
                   "pveversion": os.path.join(self.root, "pveversion"), "ha_start": 20}
        bglab.write_pve_conf(self.conf, vmid=VMID, qm=qm_path or self.qm, run_dir=self.run, log=log or self.log,
                             state_dir=self.state, lock_dir=self.lock, timeouts=t,
                             forensics={"blockstats_interval_ms": 100, "keep": 5}, proxmox=proxmox)

    @property
    def pidfile(self):
        return os.path.join(self.run, "%d.pid" % VMID)

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def qemu_running(self):
        p = self.pid()
        return p is not None and alive(p) and is_qemu(p)

    def invocations(self):
        return bglab.invocations(self.record)

    def log_lines(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("ascii").splitlines()
        except FileNotFoundError:
            return []

    def wait_lock_holder(self, verb, pid, timeout=20):
        """Wait until breakglass-pve `pid` holds the VM lock for `verb`: the
        holder writes "VERB SINCE CLIENT PID" into the lock file once it has
        the flock. A fixed sleep after starting it is not enough: under a
        loaded CI machine the process may not have got there yet."""
        path = os.path.join(self.lock, "breakglass-pve-%d.lock" % VMID)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with open(path) as f:
                    words = f.read().split()
                if len(words) == 4 and words[0] == verb and words[3] == str(pid):
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        raise AssertionError("breakglass-pve %d did not take the VM lock for %s in %d s" % (pid, verb, timeout))

    def pve(self, *words, ssh=None, timeout=60, **kw):
        """Run breakglass-pve; ssh=(client_ip, original_command or None)."""
        env = {"PATH": "/usr/bin:/bin"}
        if ssh:
            env["SSH_CONNECTION"] = "%s 40000 127.0.0.1 22" % ssh[0]
            if ssh[1] is not None:
                env["SSH_ORIGINAL_COMMAND"] = ssh[1]
        return subprocess.run([BIN, "--config", self.conf, *words], env=env, capture_output=True,
                              timeout=timeout, **kw)

    def pve_json(self, verb, **kw):
        r = self.pve(verb, "--json", **kw)
        doc = json.loads(r.stdout.decode())
        return r, doc

    def qm_direct(self, *args):
        return subprocess.run([self.qm, *args], capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})

    def start_vm(self):
        r = self.qm_direct("start", str(VMID))
        assert r.returncode == 0, r
        deadline = time.time() + 10
        while not self.qemu_running() and time.time() < deadline:
            time.sleep(0.05)
        assert self.qemu_running()
        return self.pid()

    def cleanup(self):
        p = self.pid()
        if p and alive(p) and is_qemu(p):
            os.kill(p, signal.SIGCONT)
            os.kill(p, signal.SIGKILL)


@pytest.fixture
def lab(tmp_path):
    from standin import make_qm
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "run"), exist_ok=True)
    lab = Lab(root, make_qm(root, os.path.join(root, "run"), VMID))
    yield lab
    lab.cleanup()
