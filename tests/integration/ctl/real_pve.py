"""breakglassctl pve against the real forced command: breakglass-pve as
the `command=` of a real sshd (tests/lab/sshd-fixture), driving a real
QEMU through the qm stand-in (tests/lab/qm-standin). The verbs change the
VM's real state, the stand-in's record shows what ran, and a bad verb
never reaches the host."""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from ctlharness import SOURCE, check, finish, run, tmpdir, write  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE, "tests", "lab"))
import bglab  # noqa: E402  (the lab's helpers: pve.conf, the qm stand-in)

ctl, pve_bin = sys.argv[1], sys.argv[2]
VMID = 102
fixture = os.path.join(SOURCE, "tests", "lab", "sshd-fixture")
base = tmpdir()
os.chmod(base, 0o755)
rundir, state, lock = (os.path.join(base, d) for d in ("run", "state", "lock"))
for d in (rundir, state, lock):
    os.makedirs(d)
record = os.path.join(rundir, "qm.log")
qm = bglab.install_qm(os.path.join(base, "qm"), rundir, record=record, status_timeout=1, term_wait=0.5)
write(os.path.join(rundir, "%d.conf" % VMID), "name: devvm\n")
pve_conf = bglab.write_pve_conf(os.path.join(base, "pve.conf"), vmid=VMID, qm=qm, run_dir=rundir,
                                log=os.path.join(base, "pve.log"), state_dir=state, lock_dir=lock,
                                timeouts={"qm": 20, "stop": 5, "kill": 3, "qmp": 2, "lock_wait": 1},
                                forensics={"blockstats_interval_ms": 100, "keep": 5})


def qm_calls():
    return bglab.invocations(record)


def qemu_pid():
    try:
        pid = int(open(os.path.join(rundir, "%d.pid" % VMID)).read().strip())
        return pid if "qemu-system" in os.readlink("/proc/%d/exe" % pid) else None
    except (OSError, ValueError):
        return None


sshd_dir = os.path.join(base, "sshd")
p = subprocess.run([fixture, "start", sshd_dir, "--user", "root"], capture_output=True, text=True)
if p.returncode == 77:
    print(p.stderr)
    sys.exit(77)
if p.returncode != 0:
    print("sshd-fixture failed:", p.stdout, p.stderr)
    sys.exit(1)
env = bglab.read_assignments(p.stdout, r"SSHD_[A-Z_]+")
try:
    pub = open(env["SSHD_CLIENT_KEY"] + ".pub").read().strip()
    write(env["SSHD_AUTHORIZED_KEYS"],
          'command="%s --config %s",restrict,from="127.0.0.1" %s\n' % (pve_bin, pve_conf, pub))
    conf = write(os.path.join(base, "ctl.conf"), """[devvm]
host = 127.0.0.1
[pve]
host = 127.0.0.1
port = %s
user = root
host_key = %s
host_key_policy = pin
verb_timeout = 90
[ssh]
key_file = %s
""" % (env["SSHD_PORT"], env["SSHD_HOST_KEY_FPR"], env["SSHD_CLIENT_KEY"]))

    r = run(ctl, ["--config", conf, "pve", "status"])
    check(r.rc == 0 and "status on VM %d: ok, VM stopped" % VMID in r.out, "pve status of a stopped VM", str(r))
    r = run(ctl, ["--config", conf, "--json", "pve", "start"], timeout=120)
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    res = doc.get("result") or {}
    pid1 = qemu_pid()
    check(r.rc == 0 and res.get("status") == "running" and res.get("ok") is True and pid1,
          "pve start: exit 0, VM running, a real QEMU", str(r))
    check(any(s.get("name") == "forensics" for s in res.get("steps", [])) and (res.get("forensics") or {}).get("id"),
          "pve start: forensics first, bundle id in the result", str(r))
    r = run(ctl, ["--config", conf, "pve", "cycle"], timeout=120)
    pid2 = qemu_pid()
    check(r.rc == 0 and pid2 and pid2 != pid1 and "verdict" in r.out, "pve cycle: a new QEMU, verdict shown", str(r))
    before = qm_calls()
    r = run(ctl, ["--config", conf, "pve", "destroy"])
    check(r.rc == 2 and qm_calls() == before, "pve destroy: usage error, no qm ran", str(r))
    r = run(ctl, ["--config", conf, "pve", "stop"], timeout=120)
    check(r.rc == 0 and qemu_pid() is None and "VM stopped" in r.out, "pve stop: the QEMU is gone", str(r))
    check("start %d" % VMID in qm_calls() and "stop %d" % VMID in " ".join(qm_calls()),
          "the stand-in recorded start and stop", repr(qm_calls()))
finally:
    pid = qemu_pid()
    if pid:
        os.kill(pid, signal.SIGKILL)
    subprocess.run([fixture, "stop", sshd_dir])
finish()
