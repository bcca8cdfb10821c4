"""The peers of breakglass-web, for real: a loopback sshd as the devvm
(tests/lab/sshd-fixture), a second one as the Proxmox host whose forced
command is the real breakglass-pve driving the qm stand-in
(tests/lab/qm-standin, a real QEMU when started), and optionally the mock
LLM (tests/lab/mock-llm) with a scenario from tests/fixtures/agent."""
import os
import signal
import subprocess
import sys
import time

from webharness import SOURCE, write

VMID = 102
FIXTURE = os.path.join(SOURCE, "tests", "lab", "sshd-fixture")
STANDIN = os.path.join(SOURCE, "tests", "lab", "qm-standin")
MOCK = os.path.join(SOURCE, "tests", "lab", "mock-llm")

sys.path.insert(0, os.path.join(SOURCE, "tests", "lab"))
import bglab  # noqa: E402  (the lab's helpers: pve.conf, the qm stand-in, the record)


def start_fixture(d, *args):
    p = subprocess.run([FIXTURE, "start", d] + list(args), capture_output=True, text=True)
    if p.returncode == 77:
        print(p.stderr)
        sys.exit(77)
    if p.returncode != 0:
        raise RuntimeError("sshd-fixture: %s %s" % (p.stdout, p.stderr))
    return dict(line.split("=", 1) for line in p.stdout.split())


class World:
    def __init__(self, base, pve_bin, scenario=None):
        self.base = base
        self.fixtures = []
        self.mock = None
        self.rundir = os.path.join(base, "run")
        self.record = os.path.join(self.rundir, "qm.log")
        for d in ("run", "state", "lock"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        qm = bglab.install_qm(os.path.join(base, "qm"), self.rundir, record=self.record, standin=STANDIN,
                              status_timeout=1, term_wait=0.5)
        open(self.record, "w").close()  # the record exists: "no qm ran" is an empty record, never a missing one
        write(os.path.join(self.rundir, "%d.conf" % VMID), "name: devvm\n", 0o644)
        pve_conf = bglab.write_pve_conf(
            os.path.join(base, "pve.conf"), vmid=VMID, qm=qm, run_dir=self.rundir, log=os.path.join(base, "pve.log"),
            state_dir=os.path.join(base, "state"), lock_dir=os.path.join(base, "lock"),
            timeouts={"qm": 20, "stop": 5, "kill": 3, "qmp": 2, "lock_wait": 1},
            forensics={"blockstats_interval_ms": 100, "keep": 5})
        pve_dir = os.path.join(base, "pve-sshd")
        self.fixtures.append(pve_dir)
        self.pve = start_fixture(pve_dir, "--user", "root")
        pub = open(self.pve["SSHD_CLIENT_KEY"] + ".pub").read().strip()
        write(self.pve["SSHD_AUTHORIZED_KEYS"],
              'command="%s --config %s",restrict,from="127.0.0.1" %s\n' % (pve_bin, pve_conf, pub), 0o644)
        keys = write(os.path.join(base, "devvm.keys"), pub + "\n", 0o644)
        devvm_dir = os.path.join(base, "devvm-sshd")
        self.fixtures.append(devvm_dir)
        self.devvm = start_fixture(devvm_dir, "--authorized-keys", keys)
        self.key = self.pve["SSHD_CLIENT_KEY"]
        self.mock_port = 9
        if scenario:
            self.mock_record = os.path.join(base, "mock.jsonl")
            port_file = os.path.join(base, "mock.port")
            self.mock = subprocess.Popen([MOCK, "--scenario", scenario, "--record", self.mock_record,
                                          "--port-file", port_file, "--max-life", "600"],
                                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(base, "mock.err"), "w"))
            for _ in range(200):
                if os.path.exists(port_file) and open(port_file).read().strip():
                    break
                time.sleep(0.05)
            self.mock_port = int(open(port_file).read().strip())

    def conf_args(self, provider="offline"):
        return dict(devvm_port=self.devvm["SSHD_PORT"], devvm_user=self.devvm["SSHD_USER"],
                    pve_port=self.pve["SSHD_PORT"], pve_user="root", key=self.key, provider=provider,
                    base_url="http://127.0.0.1:%d" % self.mock_port)

    def qm_calls(self):
        return bglab.invocations(self.record)

    def qemu_pid(self):
        return bglab.qemu_pid(self.rundir, VMID)

    def stop(self):
        pid = self.qemu_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        if self.mock:
            self.mock.kill()
            self.mock.wait()
        for d in self.fixtures:
            subprocess.run([FIXTURE, "stop", d], capture_output=True)
