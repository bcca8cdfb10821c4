"""Fixtures for the bindings' tests: real peers only (lab.py). One lab per
test module, each in its own directories. Needs root (sshd switches users,
the stand-in kills QEMU); the ctest wrapper (run-tests) exits 77
beforehand when a peer cannot run."""
import os
import sys

import pytest

# The ASan runtime preloaded for this interpreter (a sanitized build) is
# not for the sshd, qm stand-in and shells the tests start.
os.environ.pop("LD_PRELOAD", None)
sys.path.insert(0, os.path.dirname(__file__))
from lab import start_lab  # noqa: E402


@pytest.fixture(scope="module")
def lab():
    pve_bin = os.environ.get("BG_PVE_BIN")
    assert pve_bin and os.access(pve_bin, os.X_OK), "BG_PVE_BIN must name the built breakglass-pve"
    world = start_lab(pve_bin)
    try:
        yield world
    finally:
        world.down()


@pytest.fixture
def bg():
    import breakglass
    return breakglass


@pytest.fixture
def cfg(lab, bg):
    with bg.Config.from_string(lab.config_text(), name="lab.conf") as c:
        yield c


@pytest.fixture
def key(cfg, bg):
    with bg.Secret.ssh_key(cfg) as k:
        yield k
