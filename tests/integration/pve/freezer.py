"""A real state D on demand: the cgroup v1 freezer. A task in a FROZEN
freezer cgroup shows `State: D (disk sleep)` and outlives SIGKILL until the
cgroup is THAWED, exactly as a QEMU stuck on dead storage does, but it can be
undone. Frozen processes must never outlive a test run: every cgroup is
named bg-dstate-<pid of its creator>-<random>, thawed and removed by the
test's teardown, by a detached watchdog if the test process dies first
(ctest's timeout kills the whole tree, teardown included), and by the next
run when both of those were killed (creator gone).

The hierarchy is the one with-freezer names in $BG_FREEZER_ROOT: the host's
own v1 freezer where one is mounted, else one it mounted in a private mount
namespace (a cgroup v2-only host)."""
import os
import re
import signal
import subprocess
import time
import uuid

ROOT = os.environ.get("BG_FREEZER_ROOT", "/sys/fs/cgroup/freezer")
PREFIX = "bg-dstate-"


def unavailable():
    """Why a freezer cgroup cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root to create freezer cgroups"
    if not os.path.isfile(os.path.join(ROOT, "cgroup.procs")):
        return "no cgroup v1 freezer hierarchy at %s (run the test through with-freezer)" % ROOT
    probe = os.path.join(ROOT, PREFIX + "probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
    except OSError as e:
        return "cannot create a freezer cgroup in %s: %s" % (ROOT, e)
    try:
        if not os.path.isfile(os.path.join(probe, "freezer.state")):
            return "%s has no freezer.state: not a freezer hierarchy" % ROOT
    finally:
        os.rmdir(probe)
    return None


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _pids(cg):
    try:
        with open(os.path.join(cg, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def release(cg, timeout=5.0):
    """Kill what is in cgroup cg, thaw it so the kills land, remove it.
    Everything in one of our cgroups was put there by a test (a QEMU and its
    threads), so everything in it goes."""
    if not os.path.isdir(cg):
        return
    for pid in _pids(cg):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _write(os.path.join(cg, "freezer.state"), "THAWED")
    deadline = time.time() + timeout
    while _pids(cg) and time.time() < deadline:
        time.sleep(0.02)
    os.rmdir(cg)  # raises (EBUSY) if anything survived: the test must see it


def sweep_leftovers():
    """Release the cgroups of earlier runs whose creator is gone; those of a
    run still going (another worktree's tests, in parallel) are left alone."""
    for name in os.listdir(ROOT):
        m = re.match(re.escape(PREFIX) + r"(\d+)-", name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            release(os.path.join(ROOT, name))


class Freezer:
    """One freezer cgroup of a unique name, with its watchdog."""

    def __init__(self):
        self.path = os.path.join(ROOT, "%s%d-%s" % (PREFIX, os.getpid(), uuid.uuid4().hex[:8]))
        os.mkdir(self.path)
        self._watchdog()

    def _watchdog(self):
        # Double fork (sh exits at once): the loop is re-parented to init, out
        # of the process tree ctest kills on a timeout. It ends by itself as
        # soon as the teardown removed the cgroup.
        script = ('cg=$1 owner=$2; ( while [ -d "$cg" ] && [ -d /proc/$owner ]; do sleep 0.5; done; '
                  '[ -d "$cg" ] || exit 0; for p in $(cat "$cg/cgroup.procs"); do kill -9 $p; done; '
                  'echo THAWED > "$cg/freezer.state"; sleep 1; rmdir "$cg" ) '
                  '</dev/null >/dev/null 2>&1 &')
        subprocess.run(["/bin/sh", "-c", script, "sh", self.path, str(os.getpid())], check=True,
                       start_new_session=True)

    def freeze(self, pid, timeout=5.0):
        """Move pid (all its threads) in and freeze; wait until FROZEN."""
        _write(os.path.join(self.path, "cgroup.procs"), str(pid))
        _write(os.path.join(self.path, "freezer.state"), "FROZEN")
        deadline = time.time() + timeout
        while self.state() != "FROZEN":
            assert time.time() < deadline, "freezer stuck in %s" % self.state()
            time.sleep(0.02)

    def state(self):
        with open(os.path.join(self.path, "freezer.state")) as f:
            return f.read().strip()

    def pids(self):
        return _pids(self.path)

    def release(self):
        release(self.path)
