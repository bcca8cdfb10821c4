"""How this area reaches the qm stand-in (tests/lab/qm-standin, read its
usage header): one place to adapt."""
import json
import os

from conftest import SRC

STANDIN = os.environ.get("BG_QM_STANDIN") or os.path.join(SRC, "tests/lab/qm-standin")


# ctest sets BG_QEMU_ID_SHIM; a bench run finds it in the build tree. Without
# it QEMU starts with no -id (test_proxmox.py checks that it has one).
SHIM = os.environ.get("BG_QEMU_ID_SHIM") or os.path.join(os.environ.get("BG_BINARY_DIR", "/nonexistent"),
                                                         "tests", "libbg_qemu_id_shim.so")


def make_qm(root, run_dir, vmid):
    """An executable `qm` for a lab rooted at root: a symlink to the
    stand-in with its settings in qm.env beside it (breakglass-pve runs qm
    with a cleaned environment). Every invocation is recorded, as one JSON
    line, in run_dir/qm.log before the stand-in does anything. QEMU starts
    as Proxmox starts it: reached as `kvm`, with `-id <vmid>` (through the
    qemu-id shim). Beside qm: ha-manager, vzdump and pveversion, the
    stand-in under those names (HA resources in run_dir/resources.cfg,
    tasks in run_dir/tasks-active)."""
    path = os.path.join(root, "qm")
    os.symlink(STANDIN, path)
    os.symlink("/usr/bin/qemu-system-x86_64", os.path.join(root, "kvm"))
    for prog in ("ha-manager", "vzdump", "pveversion"):
        os.symlink(STANDIN, os.path.join(root, prog))
    with open(path + ".env", "w") as f:
        f.write("BG_QM_RUN_DIR=%s\nBG_QM_RECORD=%s\n" % (run_dir, os.path.join(run_dir, "qm.log")))
        f.write("BG_QM_QEMU=%s\n" % os.path.join(root, "kvm"))
        if os.path.isfile(SHIM):
            f.write("BG_QM_ID_SHIM=%s\n" % SHIM)
        f.write("BG_QM_HA_START_DELAY=0.5\n")
        # fast failure paths: the tests freeze QEMU on purpose
        f.write("BG_QM_STATUS_TIMEOUT=0.5\nBG_QM_QMP_TIMEOUT=1\nBG_QM_TERM_WAIT=0.5\nBG_QM_LOCK_TIMEOUT=3\n")
    with open(os.path.join(run_dir, "%d.conf" % vmid), "w") as f:
        f.write("name: devvm\n")  # the tiny QEMU: QMP and a null block device
    return path


def invocations(record):
    """The recorded qm calls, each as its words ("start 102")."""
    try:
        with open(record) as f:
            return [" ".join(json.loads(line)["argv"]) for line in f if line.strip()]
    except FileNotFoundError:
        return []
