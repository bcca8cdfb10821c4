"""docs/forced-command.md: syslog (LOG_AUTHPRIV) gets the same lines as the log file. Checked
on the wire: breakglass-pve runs in a private mount namespace whose /dev is a
fresh tmpfs (the real device nodes it needs bound back in) where /dev/log
leads to a datagram socket of this test — the path glibc's syslog(3) always
sends to. The real /dev is never touched."""
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import BIN

LOG_AUTHPRIV = 10
LOG_NOTICE = 5
# glibc's RFC 3164 form: <PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE
SYSLOG_RE = re.compile(rb"^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) breakglass-pve\[(\d+)\]: (.*)$", re.S)
FILE_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) breakglass-pve\[(\d+)\]: (.*)$")

# Run as root by unshare -m: /dev becomes a tmpfs holding the device nodes
# a process needs (bind mounts of the real ones) and the log link.
PRIVATE_DEV = r"""
set -eu
d=$1; shift
mount --bind /dev "$d/realdev"
mount -t tmpfs -o mode=0755,size=64k bg-syslog-dev /dev
for n in null zero full random urandom; do
    : > "/dev/$n"
    mount --bind "$d/realdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
ln -s "$d/log.sock" /dev/log
umount -l "$d/realdev"
exec "$@"
"""


@pytest.fixture(scope="module", autouse=True)
def private_namespace_possible():
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.exit("test_syslog: cannot make a private mount namespace (unshare -m): %s"
                    % r.stderr.decode().strip(), returncode=77)


class SyslogSink:
    """A datagram socket that collects what arrives, read while the program
    runs (a full queue would block its sender)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.datagrams = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                self.datagrams.append(self.sock.recv(65536))
            except socket.timeout:
                if self._stop.is_set():
                    return

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def sink(lab):
    os.mkdir(os.path.join(lab.root, "realdev"))
    s = SyslogSink(os.path.join(lab.root, "log.sock"))
    yield s
    s.close()


def run_with_syslog(lab, sink, ssh_command):
    """breakglass-pve as sshd runs it (from 127.0.0.9, the request in
    SSH_ORIGINAL_COMMAND), with /dev/log ours; returns (pid, exit, file lines,
    syslog datagrams) for what this run logged."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SSH_CONNECTION": "127.0.0.9 40000 127.0.0.1 22",
           "SSH_ORIGINAL_COMMAND": ssh_command}
    before = len(lab.log_lines())
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", PRIVATE_DEV, "sh",
                          lab.root, BIN, "--config", lab.conf], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    sink.close()  # everything sent has arrived: the sender is gone
    assert b"mount:" not in err and b"unshare:" not in err, err  # the program ran in the namespace
    return p.pid, p.returncode, lab.log_lines()[before:], sink.datagrams


def assert_same_lines(pid, file_lines, datagrams):
    assert file_lines, "nothing in the log file"
    events = []
    for line in file_lines:
        m = FILE_RE.match(line)
        assert m, line
        assert int(m.group(2)) == pid, line  # unshare and sh exec'd: the same pid
        events.append(m.group(3))
    received = []
    for dgram in datagrams:
        m = SYSLOG_RE.match(dgram)
        assert m, dgram
        pri = int(m.group(1))
        assert pri >> 3 == LOG_AUTHPRIV and pri & 7 == LOG_NOTICE, dgram
        assert int(m.group(3)) == pid, dgram  # tag breakglass-pve[PID], PID the program's own
        received.append(m.group(4).decode("ascii"))
    assert received == events  # the same events, the same text, the same order


def test_an_accepted_request_goes_to_syslog_line_for_line(lab, sink):
    lab.start_vm()
    pid, code, lines, datagrams = run_with_syslog(lab, sink, "status --json")
    assert code == 0
    assert_same_lines(pid, lines, datagrams)
    assert "event=request verb=status from=127.0.0.9 json=1" in lines[0]
    assert any("event=complete verb=status" in ln and "ok=1" in ln for ln in lines)
    assert len(datagrams) >= 3  # request, qm-status step, …, complete


def test_a_rejected_request_goes_to_syslog_escaped(lab, sink):
    pid, code, lines, datagrams = run_with_syslog(lab, sink, "status; reboot\x01")
    assert code == 2
    assert_same_lines(pid, lines, datagrams)
    assert len(lines) == 1 and "event=rejected verb=- from=127.0.0.9" in lines[0]
    assert b"\x01" not in datagrams[0] and b"reboot" in datagrams[0]  # escaped, not raw
    assert lab.invocations() == []  # and nothing ran
