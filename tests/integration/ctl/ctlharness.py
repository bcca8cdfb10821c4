"""Shared helpers for the breakglassctl integration tests."""
import os
import socket
import subprocess
import sys
import threading

SOURCE = os.environ.get("BG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")

sys.path.insert(0, os.path.join(SOURCE, "tests", "lab"))
import bglab  # noqa: E402  (the lab's helpers: a run's /tmp directories)

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what + (("\n     " + detail.replace("\n", "\n     ")) if detail else ""))
        failures.append(what)


def finish():
    if failures:
        print("%d check(s) failed: %s" % (len(failures), ", ".join(failures)))
        sys.exit(1)
    print("all checks passed")
    bglab.tmpdirs_done(True)
    sys.exit(0)


class Run:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def __str__(self):
        return "argv=%r rc=%r\nstdout=%r\nstderr=%r" % (self.argv, self.rc, self.out[:2000], self.err[:2000])


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_") and k != "SSH_AUTH_SOCK"}
    env.update(extra or {})
    return env


def run(binary, args, env=None, timeout=60):
    argv = [binary] + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=clean_env(env), timeout=timeout)
    return Run(argv, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Listener:
    """A TCP listener on loopback that records every connection it gets
    (and says nothing): the proof that a command contacted nobody."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.accepted += 1
                c.close()
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tmpdir():
    """A directory for this run, gone at exit if the run passed (bglab)."""
    return bglab.test_tmpdir("bg-ctl-")
