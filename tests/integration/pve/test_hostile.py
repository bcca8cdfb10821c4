"""breakglass-pve against a hostile guest, through the real binary: a guest
agent (run_dir/VMID.qga, served here by a thread) that floods its channel
cannot hang `forensics`, and one whose error text carries terminal escapes
and a forged line cannot reach the admin's terminal raw."""
import json
import os
import socket
import subprocess
import threading
import time

from conftest import VMID


class HostileAgent:
    """A unix socket at path; `serve(conn)` handles the one connection."""

    def __init__(self, path, serve):
        # QEMU's own (agentless) channel socket is replaced: the path is
        # what breakglass-pve connects to, as a guest's agent would answer
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.path = path
        self.serve = serve
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                self.serve(conn)
            except OSError:
                pass  # the reader went away: what a deadline does

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def read_line(conn):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def flood(conn):
    read_line(conn)  # guest-sync: never answered, only noise
    conn.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE (root): a deep queue
    # yes(1) writes as fast as the socket drains: the reader always finds
    # more lines waiting, as with a guest that floods its channel
    yes = subprocess.Popen(["yes", '{"return":{}}'], stdout=conn.fileno(), stderr=subprocess.DEVNULL)
    try:
        yes.wait(timeout=150)
    except subprocess.TimeoutExpired:
        pass
    finally:
        yes.kill()
        yes.wait()


def escapes(conn):
    sync = json.loads(read_line(conn))
    conn.sendall(b'{"return":%d}\n' % sync["arguments"]["id"])
    read_line(conn)  # guest-ping
    conn.sendall(b'{"error":{"class":"GenericError","desc":"\\u001b]0;owned\\u0007\\r\\n'
                 b'verdict: healthy\\u001b[2J"}}\n')
    time.sleep(5)


def qga(lab):
    return os.path.join(lab.run, "%d.qga" % VMID)


def test_a_flooding_agent_cannot_hang_forensics(lab):
    lab.start_vm()
    agent = HostileAgent(qga(lab), flood)
    try:
        t0 = time.time()
        r, doc = lab.pve_json("forensics", timeout=60)
        took = time.time() - t0
    finally:
        agent.close()
    assert r.returncode == 0, r
    # [timeouts] qmp = 1 in the lab: the agent gets at most that
    assert took < 15, took
    summary = json.load(open(os.path.join(doc["forensics"]["path"], "summary.json")))
    ping = [s for s in summary["sections"] if s["name"] == "agent-ping"][0]
    assert not ping["ok"] and "did not answer guest-ping" in ping["error"], ping
    assert ping["elapsed_ms"] < 5000, ping


def test_agent_error_text_never_reaches_the_terminal_raw(lab):
    lab.start_vm()
    agent = HostileAgent(qga(lab), escapes)
    try:
        r = lab.pve("forensics", timeout=120)
    finally:
        agent.close()
    assert r.returncode == 0, r
    out = r.stdout
    assert b"\x1b" not in out and b"\x07" not in out and b"\r" not in out, out
    lines = out.decode("ascii").splitlines()
    assert sum(1 for line in lines if line.startswith("verdict:")) == 1, lines  # no forged line
    assert any("guest-ping failed: \\x1b]0;owned\\x07\\r\\nverdict: healthy" in line for line in lines), lines


def test_a_local_user_cannot_forge_the_config_or_the_lock(lab):
    """A pve.conf others can write is refused before it is read; a lock
    file that is not ours (a forged holder) is refused, never reported."""
    os.chmod(lab.conf, 0o666)
    r = lab.pve("status")
    assert r.returncode == 1 and b"chmod go-w" in r.stderr and lab.conf.encode() in r.stderr, r
    os.chmod(lab.conf, 0o644)
    os.chmod(lab.lock, 0o1777)  # like /run/lock
    r = lab.pve("status")
    assert r.returncode == 1 and b"[paths] lock_dir" in r.stderr and b"writable by group or others" in r.stderr, r
    os.chmod(lab.lock, 0o700)
    forged = os.path.join(lab.lock, "breakglass-pve-%d.lock" % VMID)
    with open(forged, "w") as f:
        f.write("cycle 1999-01-01T00:00:00Z 6.6.6.6 1\n")
    os.chown(forged, 65534, 65534)
    r = lab.pve("cycle")
    assert r.returncode == 1 and forged.encode() in r.stderr and b"6.6.6.6" not in r.stdout + r.stderr, r
    assert lab.invocations() == []  # nothing ran: no qm
