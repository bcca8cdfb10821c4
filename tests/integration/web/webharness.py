"""Shared helpers for the breakglass-web integration tests: start a real
server on loopback (port chosen by the kernel, read from its `listening`
log line), talk to it with http.client and raw sockets, stop it."""
import ctypes
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.environ.get("BG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("BG_BINARY_DIR", "")
WEB = os.path.join(BINARY, "apps", "web", "breakglass-web")
TOKEN = "test-token-0123456789abcdef"

sys.path.insert(0, os.path.join(SOURCE, "tests", "lab"))
import bglab  # noqa: E402  (the lab's helpers: a run's /tmp directories)

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what + (("\n     " + str(detail).replace("\n", "\n     ")) if detail else ""))
        failures.append(what)
    sys.stdout.flush()
    return cond


def finish():
    if failures:
        print("%d check(s) failed: %s" % (len(failures), ", ".join(failures)))
        sys.exit(1)
    print("all checks passed")
    bglab.tmpdirs_done(True)
    sys.exit(0)


def tmpdir():
    """A directory for this run, gone at exit if the run passed (bglab)."""
    return bglab.test_tmpdir("bg-web-", 0o755)


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def crypt_hash(password, prefix):
    """A crypt(3) hash from libcrypt itself ($y$, $2b$, $6$, ...)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(prefix.encode(), 0, None, 0)
    return lib.crypt(password.encode(), salt).decode()


BASE_CONF = """[devvm]
host = 127.0.0.1
port = {devvm_port}
user = {devvm_user}
[pve]
host = 127.0.0.1
port = {pve_port}
user = {pve_user}
vmid = 102
verb_timeout = 60
[ssh]
key_file = {key}
[agent]
provider = {provider}
base_url = {base_url}
pve_mutations = confirm
devvm_mutations = {devvm_mutations}
[web]
listen = 127.0.0.1:0
auth = {auth}
sessions_dir = {dir}/sessions
audit_log = {dir}/audit.jsonl
{extra}
"""


def make_key(d):
    key = os.path.join(d, "id_ed25519")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    return key


def config(d, auth="bearer", extra="", **kw):
    # The devvm of these tests is this machine, over its own sshd: what its
    # triage finds depends on what else runs here (another test's TCG guest
    # is a cpu_runaway), so no remedy may hold a turn on an approval.
    vals = dict(devvm_port=22, devvm_user="breakglass", pve_port=22, pve_user="root", key=None,
                provider="offline", base_url="http://127.0.0.1:9", auth=auth, dir=d, extra=extra,
                devvm_mutations="deny")
    vals.update(kw)
    if not vals["key"]:
        vals["key"] = make_key(d)
    return write(os.path.join(d, "breakglass.conf"), BASE_CONF.format(**vals))


class Server:
    def __init__(self, conf, args=(), env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
        e["API_BEARER_TOKEN"] = TOKEN
        e.update(env or {})
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([WEB, "--config", conf] + list(args), stdout=subprocess.PIPE,
                                     stderr=self.err, env=e)
        self.port = None
        self.lines = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = self._readline(deadline - time.time())
            if line is None:
                break
            if '"event":"listening"' in line:
                self.port = json.loads(line)["port"]
                self.ready = json.loads(line)
                break
        if not self.port:
            self.proc.kill()
            self.err.seek(0)
            raise RuntimeError("server did not start: %r %r" % (self.lines, self.err.read()[-2000:]))
        # Keep reading its log, as a container runtime would.
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode("utf-8", "replace"))

    def _readline(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], max(timeout, 0))
        if not r:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return None
        line = line.decode("utf-8", "replace")
        self.lines.append(line)
        return line

    def log_lines(self, wait=0.2):
        """The log lines read so far."""
        time.sleep(wait)
        return list(self.lines)

    def request(self, method, path, body=None, headers=None, token=TOKEN, timeout=30):
        h = {}
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        elif method == "POST":
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        return Resp(r.status, dict((k.lower(), v) for k, v in r.getheaders()), data, doc)

    def raw(self, data, timeout=10, shut=False):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        s.close()
        return out

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Show where it is stuck before killing it.
            p = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt 12"],
                               capture_output=True, text=True, timeout=60)
            print("breakglass-web did not stop within %d s; its threads:\n%s" % (timeout, p.stdout[-12000:]))
            self.proc.kill()
            rc = None
        self.log_lines(0.1)
        return rc

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def sanitizer_report(self):
        """What AddressSanitizer, LeakSanitizer or UBSan said (in a sanitized
        build), or "" — call after stop()."""
        err = self.stderr()
        for word in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if word in err:
                return err[max(0, err.index(word) - 200):][:3000]
        return ""


class Resp:
    def __init__(self, status, headers, body, doc):
        self.status, self.headers, self.body, self.doc = status, headers, body, doc

    def __repr__(self):
        return "HTTP %d %r %r" % (self.status, self.headers, self.body[:400])


class SSE:
    """An SSE client on a raw socket: frames as they come."""

    def __init__(self, port, session, last_id=None, token=TOKEN, timeout=15):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        hdr = "GET /api/session/%s/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n" % (
            session, port)
        if token:
            hdr += "Authorization: Bearer %s\r\n" % token
        if last_id is not None:
            hdr += "Last-Event-ID: %s\r\n" % last_id
        self.s.sendall((hdr + "\r\n").encode())
        self.buf = b""
        self.status = None
        self.headers = {}
        self.closed = False

    def _fill(self, deadline):
        self.s.settimeout(max(deadline - time.time(), 0.01))
        try:
            chunk = self.s.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def head(self, timeout=10):
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf and time.time() < deadline and not self.closed:
            self._fill(deadline)
        if b"\r\n\r\n" not in self.buf:
            return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        return self.status

    def frame(self, timeout=10):
        """The next frame as a dict: {'id','event','data','comment'}; None on timeout or close."""
        deadline = time.time() + timeout
        while b"\n\n" not in self.buf:
            if self.closed or time.time() >= deadline:
                return None
            self._fill(deadline)
        raw, self.buf = self.buf.split(b"\n\n", 1)
        f = {}
        for line in raw.decode("utf-8").split("\n"):
            if line.startswith(":"):
                f["comment"] = line[1:].strip()
            else:
                k, _, v = line.partition(":")
                f[k] = v[1:] if v.startswith(" ") else v
        return f

    def events_until_caught_up(self, timeout=10):
        out = []
        while True:
            f = self.frame(timeout)
            if f is None:
                return out, False
            if f.get("event") == "caught-up":
                return out, True
            if "data" in f and "id" in f:
                out.append(json.loads(f["data"]))

    def close(self):
        self.s.close()


def write_session(d, sid, events):
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, sid + ".jsonl"), "w") as f:
        for i, e in enumerate(events):
            e = dict(e)
            e["id"] = i
            e.setdefault("ts", 1000 + i)
            f.write(json.dumps(e) + "\n")
    os.chmod(os.path.join(d, sid + ".jsonl"), 0o600)


def metric(srv, name):
    r = srv.request("GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line
    return None


def deployed_env():
    """The environment the systemd unit gives the server beyond its
    secrets (GLIBC_TUNABLES), so that measurements are of the server as
    deployed."""
    out = {}
    with open(os.path.join(SOURCE, "deploy", "systemd", "breakglass-web.service")) as f:
        for line in f:
            if line.startswith("Environment=GLIBC_TUNABLES="):
                k, v = line.strip()[len("Environment="):].split("=", 1)
                out[k] = v
    return out


def memory(pid):
    """Where a process's resident memory is, in KiB, from /proc/PID/smaps:
    rss and pss; anon (private, dirty: what this process costs) and file
    (file-backed pages: code and read-only data of the program and its
    shared libraries, shared with every process that maps them); and the
    anonymous part split into thread stacks (a mapping right after its
    4 KiB guard page), malloc heaps ([heap] and glibc's 64 MiB arena
    reservations) and the rest (relocated library data, CivetWeb's
    per-worker structures, ...)."""
    maps = []
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and ":" not in head[0]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"lo": lo, "hi": hi, "perm": head[1], "name": head[5] if len(head) > 5 else "",
                       "Rss": 0, "Pss": 0, "Anonymous": 0}
                maps.append(cur)
            elif head[0].rstrip(":") in ("Rss", "Pss", "Anonymous"):
                cur[head[0].rstrip(":")] = int(head[1])
    out = {"rss": 0, "pss": 0, "anon": 0, "file": 0, "stacks": 0, "heap": 0, "other_anon": 0, "threads": 0}
    for i, m in enumerate(maps):
        out["rss"] += m["Rss"]
        out["pss"] += m["Pss"]
        out["anon"] += m["Anonymous"]
        if m["name"].startswith("/"):
            out["file"] += m["Rss"] - m["Anonymous"]
        if not m["Anonymous"] or m["name"].startswith("/") or m["name"].startswith("[stack"):
            if m["name"] == "[stack]":
                out["stacks"] += m["Anonymous"]
            elif m["Anonymous"] and m["name"].startswith("/"):
                out["other_anon"] += m["Anonymous"]
            continue
        prev = maps[i - 1] if i else None
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        if m["name"] == "[heap]" or (nxt and nxt["perm"] == "---p" and nxt["lo"] == m["hi"]
                                     and (nxt["hi"] - m["lo"]) == 64 << 20):
            out["heap"] += m["Anonymous"]
        elif prev and prev["perm"] == "---p" and prev["hi"] == m["lo"] and prev["hi"] - prev["lo"] == 4096:
            out["stacks"] += m["Anonymous"]
        else:
            out["other_anon"] += m["Anonymous"]
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    return out


def memory_line(m):
    return ("RSS %d KiB (Pss %d): anon %d [stacks %d, heap %d, other %d], file %d; %d threads"
            % (m["rss"], m["pss"], m["anon"], m["stacks"], m["heap"], m["other_anon"], m["file"], m["threads"]))
