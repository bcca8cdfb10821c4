"""The real peers the bindings' tests (and the examples' test) run against:
a real OpenSSH sshd on loopback as the devvm (tests/lab/sshd-fixture), a
second one as the Proxmox host whose only command for the client's key is
the real breakglass-pve, driving a real QEMU through the qm stand-in
(tests/lab/qm-standin); and a breakglass.conf for both. No pytest here.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("BG_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))
FIXTURE = os.path.join(SOURCE, "tests", "lab", "sshd-fixture")
STANDIN = os.path.join(SOURCE, "tests", "lab", "qm-standin")

sys.path.insert(0, os.path.join(SOURCE, "tests", "lab"))
import bglab  # noqa: E402  (the lab's helpers: pve.conf, the qm stand-in, the record)
VMID = 102


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Lab:
    def __init__(self, base):
        self.base = base
        self.sshds = []
        self.run = os.path.join(base, "run")
        for d in ("run", "state", "lock"):
            os.makedirs(os.path.join(base, d))
        self.record = os.path.join(self.run, "qm.log")
        qm = bglab.install_qm(os.path.join(base, "qm"), self.run, record=self.record, standin=STANDIN,
                              status_timeout=1, term_wait=0.5)
        open(self.record, "w").close()  # the record exists: "no qm ran" is an empty record, never a missing one
        write(os.path.join(self.run, "%d.conf" % VMID), "name: devvm\n")
        self.pve_conf = bglab.write_pve_conf(
            os.path.join(base, "pve.conf"), vmid=VMID, qm=qm, run_dir=self.run, log=os.path.join(base, "pve.log"),
            state_dir=os.path.join(base, "state"), lock_dir=os.path.join(base, "lock"),
            timeouts={"qm": 20, "stop": 5, "kill": 3, "qmp": 2, "lock_wait": 1},
            forensics={"blockstats_interval_ms": 100, "keep": 5})

    def start_sshd(self, name, *args, key_from=None):
        d = os.path.join(self.base, name)
        os.makedirs(d)
        if key_from:  # both targets take the same client key, as in production
            for f in ("id_ed25519", "id_ed25519.pub"):
                shutil.copy(os.path.join(key_from, f), d)
        p = subprocess.run([FIXTURE, "start", d] + list(args), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("sshd-fixture failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
        self.sshds.append(d)
        return dict(line.split("=", 1) for line in p.stdout.split())

    def up(self, pve_bin):
        self.devvm = self.start_sshd("devvm")
        self.pve = self.start_sshd("pve", "--user", "root", key_from=self.devvm["SSHD_DIR"])
        pub = open(self.devvm["SSHD_CLIENT_KEY"] + ".pub").read().strip()
        write(self.pve["SSHD_AUTHORIZED_KEYS"],
              'command="%s --config %s",restrict,from="127.0.0.1" %s\n' % (pve_bin, self.pve_conf, pub))
        self.key_file = self.devvm["SSHD_CLIENT_KEY"]

    def config_text(self, **agent):
        a = {"provider": "offline", "pve_mutations": "confirm"}
        a.update(agent)
        return """[devvm]
host = 127.0.0.1
port = %s
user = %s
host_key = %s
command_timeout = 30
[pve]
host = 127.0.0.1
port = %s
user = root
host_key = %s
verb_timeout = 120
[ssh]
key_file = %s
connect_timeout = 5
[agent]
%s""" % (self.devvm["SSHD_PORT"], self.devvm["SSHD_USER"], self.devvm["SSHD_HOST_KEY_FPR"], self.pve["SSHD_PORT"],
         self.pve["SSHD_HOST_KEY_FPR"], self.key_file, "".join("%s = %s\n" % kv for kv in a.items()))

    def qm_calls(self):
        return bglab.invocations(self.record)

    def qemu_pid(self):
        return bglab.qemu_pid(self.run, VMID)

    def down(self):
        pid = self.qemu_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        for d in self.sshds:
            subprocess.run([FIXTURE, "stop", d])
        shutil.rmtree(self.base, ignore_errors=True)


def start_lab(pve_bin):
    """A lab in a directory of its own; call down() when done."""
    base = tempfile.mkdtemp(prefix="bg-lab-")
    os.chmod(base, 0o755)  # sshd's users must reach their files
    world = Lab(base)
    try:
        world.up(pve_bin)
    except BaseException:
        world.down()
        raise
    return world
