#!/usr/bin/python3
"""bglab: the lab's helpers, written once, for scripts/lab (through the
command line below) and for the Python tests (imported).

    pve.conf       pve_conf_text / write_pve_conf: breakglass-pve's config
    qm stand-in    install_qm: DIR/qm -> tests/lab/qm-standin, with DIR/qm.env;
                   invocations: what the stand-in recorded
    ports          free_port, port_in_use
    KEY=VALUE      read_assignments: a helper's output or env file, parsed as
                   data (never run as shell code)
    /tmp dirs      test_tmpdir, tmpdirs_done: a test script's directories,
                   removed at exit when it passed, kept when it did not

Command line (what scripts/lab calls; each prints nothing but its answer):

    bglab.py free-port
    bglab.py port-in-use HOST:PORT          exit 0 when in use, 1 when free
    bglab.py pve-conf OUT --vmid N --qm P --run-dir D --log F --state-dir D
                      --lock-dir D [--set SECTION.KEY=VALUE]... [--comment TEXT]
    bglab.py install-qm QM_PATH --run-dir D [--set KEY=VALUE]...
    bglab.py assignments NAME_REGEX [FILE]  check a KEY=VALUE list (stdin or
                      FILE): every name matches NAME_REGEX and no value holds
                      a control character; print it back unchanged
"""
import argparse
import atexit
import json
import os
import re
import shutil
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "qm-standin")

# pve.conf's sections in the order the docs list them (docs/config.md).
PVE_SECTIONS = ("vm", "paths", "timeouts", "forensics", "verbs", "proxmox")
_NAME = re.compile(r"^[a-z_]+$")


def _value(v):
    """An INI value as text; a line break or control byte inside would
    start a new key, so it is refused rather than written."""
    if isinstance(v, bool):
        v = "true" if v else "false"
    s = str(v)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        raise ValueError("pve.conf value %r holds a control character" % s)
    return s


def pve_conf_text(vmid, qm, run_dir, log, state_dir, lock_dir, timeouts=None, forensics=None, verbs=None,
                  proxmox=None, comment=None):
    """breakglass-pve's pve.conf for one VM. timeouts/forensics/proxmox are
    dicts of [timeouts]/[forensics]/[proxmox] keys; verbs is the [verbs]
    allow list."""
    sections = {
        "vm": {"vmid": int(vmid)},
        "paths": {"qm": qm, "run_dir": run_dir, "log": log, "state_dir": state_dir, "lock_dir": lock_dir},
        "timeouts": dict(timeouts or {}),
        "forensics": dict(forensics or {}),
        "verbs": {"allow": " ".join(verbs)} if verbs else {},
        "proxmox": dict(proxmox or {}),
    }
    out = []
    if comment:
        out.append("# %s\n" % _value(comment))
    for name in PVE_SECTIONS:
        keys = sections[name]
        if not keys:
            continue
        out.append("[%s]\n" % name)
        for k, v in keys.items():
            if not _NAME.match(k):
                raise ValueError("pve.conf key %r is not a key name" % k)
            out.append("%s = %s\n" % (k, _value(v)))
    return "".join(out)


def write_pve_conf(path, **kw):
    """Write pve_conf_text(**kw) to path (mode 0644: breakglass-pve refuses
    a group- or world-writable config). Returns path."""
    text = pve_conf_text(**kw)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def install_qm(path, run_dir, record=None, standin=STANDIN, **settings):
    """An executable `qm` at path: a symlink to the stand-in with its
    settings in path.env (breakglass-pve runs qm with a cleaned environment,
    so the stand-in reads them from there; read its usage header).
    settings are BG_QM_* names without the prefix: conf_dir="/x" writes
    BG_QM_CONF_DIR=/x. Every invocation is recorded in record (default
    run_dir/qm.log). Returns path."""
    env = {"RUN_DIR": run_dir, "RECORD": record or os.path.join(run_dir, "qm.log")}
    env.update({k.upper(): v for k, v in settings.items()})
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(standin, path)
    with open(path + ".env", "w") as f:
        f.write("".join("BG_QM_%s=%s\n" % (k, _value(v)) for k, v in env.items()))
    return path


def invocations(record):
    """The qm calls the stand-in recorded, each as its words ("start 102").
    The record exists from install on: a missing one is an error, never
    "no qm ran" (a broken record must not pass for a quiet one)."""
    if not os.path.exists(record):
        raise AssertionError("no qm record %s: the stand-in's record is broken, so no test can tell what ran"
                             % record)
    with open(record) as f:
        return [" ".join(json.loads(line)["argv"]) for line in f if line.strip()]


def qemu_pid(run_dir, vmid):
    """The pid in run_dir/VMID.pid when it is a live QEMU, else None."""
    try:
        with open(os.path.join(run_dir, "%d.pid" % int(vmid))) as f:
            pid = int(f.read().strip())
        exe = os.path.basename(os.readlink("/proc/%d/exe" % pid))
        return pid if exe.startswith("qemu-system") or exe == "kvm" else None
    except (OSError, ValueError):
        return None


def free_port(host="127.0.0.1"):
    """A TCP port free on host right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(hostport):
    """True when HOST:PORT cannot be bound (someone listens there)."""
    host, port = hostport.rsplit(":", 1)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return True
    return False


_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read_assignments(text, allowed=r".*"):
    """KEY=VALUE lines (blank lines and # comments skipped) as a dict, the
    value taken literally. A line of another shape, a name that does not
    match allowed, or a control character in a value raises ValueError."""
    names = re.compile(allowed)
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ASSIGNMENT.match(line)
        if not m:
            raise ValueError("not a KEY=VALUE line: %r" % line)
        if not names.fullmatch(m.group(1)):
            raise ValueError("unexpected name %s (allowed: %s)" % (m.group(1), allowed))
        out[m.group(1)] = _value(m.group(2))
    return out


# A test script's directories under /tmp: removed at exit when the script
# said it passed (CI runs the suite again and again on one machine, and
# web_load's mock record alone is ~200 MB), kept for the post-mortem, and
# named, when it failed or died before saying.
_tmpdirs = []
_tmpdirs_passed = []


def test_tmpdir(prefix, mode=0o700):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, mode)
    _tmpdirs.append(d)
    return d


def tmpdirs_done(passed):
    _tmpdirs_passed[:] = [bool(passed)]


@atexit.register
def _remove_tmpdirs():
    if not _tmpdirs:
        return
    if _tmpdirs_passed == [True]:
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
    else:
        print("kept for the post-mortem: %s" % " ".join(_tmpdirs))
        sys.stdout.flush()


def _settings(pairs, sep="="):
    out = {}
    for p in pairs or []:
        k, eq, v = p.partition(sep)
        if not eq:
            raise SystemExit("bglab: --set %r is not KEY=VALUE" % p)
        out[k] = v
    return out


def main(argv):
    ap = argparse.ArgumentParser(prog="bglab.py", description="the lab's helpers (tests/lab/bglab.py)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    p = sub.add_parser("port-in-use")
    p.add_argument("hostport")
    p = sub.add_parser("pve-conf")
    p.add_argument("out")
    for opt in ("--vmid", "--qm", "--run-dir", "--log", "--state-dir", "--lock-dir"):
        p.add_argument(opt, required=True)
    p.add_argument("--set", action="append", help="SECTION.KEY=VALUE ([timeouts] and [forensics])")
    p.add_argument("--comment")
    p = sub.add_parser("install-qm")
    p.add_argument("path")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--set", action="append", help="KEY=VALUE: BG_QM_KEY in qm.env")
    p = sub.add_parser("assignments")
    p.add_argument("allowed")
    p.add_argument("file", nargs="?")
    a = ap.parse_args(argv)

    if a.cmd == "free-port":
        print(free_port())
    elif a.cmd == "port-in-use":
        return 0 if port_in_use(a.hostport) else 1
    elif a.cmd == "pve-conf":
        extra = {"timeouts": {}, "forensics": {}}
        for k, v in _settings(a.set).items():
            section, dot, key = k.partition(".")
            if not dot or section not in extra:
                raise SystemExit("bglab: --set %s: only timeouts.KEY and forensics.KEY" % k)
            extra[section][key] = v
        write_pve_conf(a.out, vmid=a.vmid, qm=a.qm, run_dir=a.run_dir, log=a.log, state_dir=a.state_dir,
                       lock_dir=a.lock_dir, comment=a.comment, **extra)
    elif a.cmd == "install-qm":
        install_qm(a.path, a.run_dir, **{k.lower(): v for k, v in _settings(a.set).items()})
    elif a.cmd == "assignments":
        text = open(a.file).read() if a.file else sys.stdin.read()
        try:
            vals = read_assignments(text, a.allowed)
        except ValueError as e:
            print("bglab: %s" % e, file=sys.stderr)
            return 1
        sys.stdout.write("".join("%s=%s\n" % kv for kv in vals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
