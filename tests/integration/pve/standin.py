"""How this area reaches the qm stand-in (tests/lab/qm-standin, read its
usage header), through the lab's helpers (tests/lab/bglab.py)."""
import os

import bglab
from conftest import SRC

STANDIN = os.environ.get("BG_QM_STANDIN") or os.path.join(SRC, "tests/lab/qm-standin")


def make_qm(root, run_dir, vmid):
    """An executable `qm` for a lab rooted at root: a symlink to the
    stand-in with its settings in qm.env beside it (breakglass-pve runs qm
    with a cleaned environment). Every invocation is recorded, as one JSON
    line, in run_dir/qm.log before the stand-in does anything."""
    # fast failure paths: the tests freeze QEMU on purpose
    path = bglab.install_qm(os.path.join(root, "qm"), run_dir, standin=STANDIN, status_timeout=0.5, qmp_timeout=1,
                            term_wait=0.5, lock_timeout=3)
    with open(os.path.join(run_dir, "%d.conf" % vmid), "w") as f:
        f.write("name: devvm\n")  # the tiny QEMU: QMP and a null block device
    return path


invocations = bglab.invocations
