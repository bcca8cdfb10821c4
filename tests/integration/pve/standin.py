"""How this area reaches the qm stand-in (tests/lab/qm-standin, read its
usage header), through the lab's helpers (tests/lab/bglab.py)."""
import os
import subprocess

import bglab
from conftest import SRC

STANDIN = os.environ.get("BG_QM_STANDIN") or os.path.join(SRC, "tests/lab/qm-standin")


# ctest sets BG_QEMU_ID_SHIM; a bench run finds it in the build tree. Without
# it QEMU starts with no -id (test_proxmox.py checks that it has one).
SHIM = os.environ.get("BG_QEMU_ID_SHIM") or os.path.join(os.environ.get("BG_BINARY_DIR", "/nonexistent"),
                                                         "tests", "libbg_qemu_id_shim.so")


def make_qm(root, run_dir, vmid, **settings):
    """An executable `qm` for a lab rooted at root: a symlink to the
    stand-in with its settings in qm.env beside it (breakglass-pve runs qm
    with a cleaned environment). Every invocation is recorded, as one JSON
    line, in run_dir/qm.log before the stand-in does anything. QEMU starts
    as Proxmox starts it: reached as `kvm`, with `-id <vmid>` (through the
    qemu-id shim). Beside qm: ha-manager, vzdump and pveversion, the
    stand-in under those names (HA resources in run_dir/resources.cfg,
    tasks in run_dir/tasks-active). settings override the stand-in's
    (e.g. status_timeout=3, Proxmox's own, where a test or bench is about
    what a frozen QEMU costs)."""
    kvm = os.path.join(root, "kvm")
    os.symlink("/usr/bin/qemu-system-x86_64", kvm)
    for prog in ("ha-manager", "vzdump", "pveversion"):
        os.symlink(STANDIN, os.path.join(root, prog))
    shim = {"id_shim": SHIM} if os.path.isfile(SHIM) else {}
    # fast failure paths: the tests freeze QEMU on purpose
    fast = dict(ha_start_delay=0.5, status_timeout=0.5, qmp_timeout=1, term_wait=0.5, lock_timeout=3)
    fast.update(settings)
    path = bglab.install_qm(os.path.join(root, "qm"), run_dir, standin=STANDIN, qemu=kvm, **fast, **shim)
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


invocations = bglab.invocations
