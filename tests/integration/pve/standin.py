"""How this area reaches the qm stand-in (tests/lab/qm-standin, read its
usage header): one place to adapt."""
import json
import os
import subprocess

from conftest import SRC

STANDIN = os.environ.get("BG_QM_STANDIN") or os.path.join(SRC, "tests/lab/qm-standin")


def make_qm(root, run_dir, vmid):
    """An executable `qm` for a lab rooted at root: a symlink to the
    stand-in with its settings in qm.env beside it (breakglass-pve runs qm
    with a cleaned environment). Every invocation is recorded, as one JSON
    line, in run_dir/qm.log before the stand-in does anything."""
    path = os.path.join(root, "qm")
    os.symlink(STANDIN, path)
    with open(path + ".env", "w") as f:
        f.write("BG_QM_RUN_DIR=%s\nBG_QM_RECORD=%s\n" % (run_dir, os.path.join(run_dir, "qm.log")))
        # fast failure paths: the tests freeze QEMU on purpose
        f.write("BG_QM_STATUS_TIMEOUT=0.5\nBG_QM_QMP_TIMEOUT=1\nBG_QM_TERM_WAIT=0.5\nBG_QM_LOCK_TIMEOUT=3\n")
    with open(os.path.join(run_dir, "%d.conf" % vmid), "w") as f:
        f.write("name: devvm\n")  # the tiny QEMU: QMP and a null block device
    # An empty record proves "no qm ran" only if the stand-in records at
    # all: call it once the way breakglass-pve does (clean environment),
    # see that call recorded, then start the test from an empty record.
    record = os.path.join(run_dir, "qm.log")
    subprocess.run([path, "status", str(vmid)], capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    seen = invocations(record)
    assert seen == ["status %d" % vmid], "the qm stand-in does not record its calls in %s: %r" % (record, seen)
    open(record, "w").close()
    return path


def invocations(record):
    """The recorded qm calls, each as its words ("start 102"). The record
    exists from make_qm on: a missing one is an error, never "no qm ran"."""
    if not os.path.exists(record):
        raise AssertionError("no qm record %s: the stand-in's record is broken, so no test can tell what ran"
                             % record)
    with open(record) as f:
        return [" ".join(json.loads(line)["argv"]) for line in f if line.strip()]
