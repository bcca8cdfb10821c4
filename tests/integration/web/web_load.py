"""Load (issue point 7): 200 attached SSE clients on one session while
turns (against the mock LLM) write events and a steady stream of requests
runs, for SECONDS (default 60). Zero failed requests; every event reaches
every client, in order, once; RSS before, with the clients, and after.
    web_load.py [SECONDS]"""
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from webharness import (SOURCE, TOKEN, Server, check, config, deployed_env, finish, memory, memory_line,  # noqa: E402
                        tmpdir, write)

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
CLIENTS = 200
base = tmpdir()
scenario = write(os.path.join(base, "load.json"), json.dumps({"steps": [
    {"reply": {"text": "load turn %d: " % i + "all quiet on the devvm. " * 8, "piece": 16, "stop_reason": "end_turn"}}
    for i in range(2000)]}), 0o644)
mock_port_file = os.path.join(base, "mock.port")
mock = subprocess.Popen([os.path.join(SOURCE, "tests", "lab", "mock-llm"), "--scenario", scenario, "--record",
                         os.path.join(base, "mock.jsonl"), "--port-file", mock_port_file, "--max-life",
                         str(seconds + 300)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(200):
    if os.path.exists(mock_port_file) and open(mock_port_file).read().strip():
        break
    time.sleep(0.05)
mock_port = int(open(mock_port_file).read())


def rss(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


class Client:
    def __init__(self, port, sid):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.sendall(("GET /api/session/%s/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                        % (sid, TOKEN)).encode())
        self.s.setblocking(False)
        self.buf = b""
        self.head = False
        self.ids = []
        self.bad = None
        self.closed = False

    def feed(self):
        try:
            chunk = self.s.recv(262144)
        except BlockingIOError:
            return
        if not chunk:
            self.closed = True
            return
        self.buf += chunk
        if not self.head:
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                self.bad = head[:100]
            self.head = True
        while b"\n\n" in self.buf:
            frame, self.buf = self.buf.split(b"\n\n", 1)
            for line in frame.split(b"\n"):
                if line.startswith(b"id: "):
                    i = int(line[4:])
                    if self.ids and i != self.ids[-1] + 1 and not self.bad:
                        self.bad = "id %d after %d" % (i, self.ids[-1])
                    self.ids.append(i)


srv = Server(config(base, auth="bearer", provider="anthropic", base_url="http://127.0.0.1:%d" % mock_port),
             env=dict(deployed_env(), ANTHROPIC_API_KEY="sk-test-key"))
stop = threading.Event()
stats = {"requests": 0, "failed": [], "turns": 0}
try:
    rss_idle = rss(srv.proc.pid)
    mem_idle = memory(srv.proc.pid)
    sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
    sel = selectors.DefaultSelector()
    clients = [Client(srv.port, sid) for _ in range(CLIENTS)]
    for c in clients:
        sel.register(c.s, selectors.EVENT_READ, c)

    def pump(until):
        while time.time() < until:
            for key, _ in sel.select(0.2):
                key.data.feed()

    pump(time.time() + 2)
    rss_attached = rss(srv.proc.pid)
    mem_attached = memory(srv.proc.pid)

    def steady():
        paths = ["/health", "/api/pve/verbs", "/api/sessions", "/metrics", "/api/audit?limit=5"]
        i = 0
        while not stop.is_set():
            p = paths[i % len(paths)]
            i += 1
            try:
                r = srv.request("GET", p, timeout=10)
                if r.status != 200:
                    stats["failed"].append((p, r.status))
            except OSError as e:
                stats["failed"].append((p, str(e)))
            stats["requests"] += 1
            time.sleep(0.01)

    def events_busy():
        x = [x for x in srv.request("GET", "/api/sessions").doc["sessions"] if x["id"] == sid][0]
        return x["events"], x["busy"]

    def turns():
        while not stop.is_set():
            before = events_busy()[0]
            r = srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "report %d" % stats["turns"]})
            if r.status != 202:
                stats["failed"].append(("prompt", r.status))
                time.sleep(0.2)
                continue
            stats["turns"] += 1
            while not stop.is_set():  # the turn began (it wrote) and ended (not busy)
                n, busy = events_busy()
                if n > before and not busy:
                    break
                time.sleep(0.05)

    threads = [threading.Thread(target=steady), threading.Thread(target=turns)]
    for t in threads:
        t.start()
    pump(time.time() + seconds)
    stop.set()
    for t in threads:
        t.join()
    deadline = time.time() + 30
    while time.time() < deadline and events_busy()[1]:  # the last turn ends
        pump(time.time() + 0.2)
    last = max(x["events"] for x in srv.request("GET", "/api/sessions").doc["sessions"] if x["id"] == sid) - 1
    deadline = time.time() + 30
    while time.time() < deadline and not all(c.ids and c.ids[-1] == last for c in clients):
        pump(time.time() + 0.5)
    rss_after = rss(srv.proc.pid)
    mem_after = memory(srv.proc.pid)
    print("%d turns, %d events, %d steady requests in %g s; RSS idle %d KiB, with %d clients %d KiB, after %d KiB"
          % (stats["turns"], last + 1, stats["requests"], seconds, rss_idle, CLIENTS, rss_attached, rss_after))
    check(stats["turns"] >= 3 and last > 30, "turns wrote events during the run", stats["turns"])
    check(not stats["failed"], "zero failed requests", stats["failed"][:5])
    bad = [c.bad for c in clients if c.bad]
    check(not bad, "every client's ids strictly consecutive", bad[:3])
    full = [c for c in clients if c.ids == list(range(last + 1))]
    check(len(full) == CLIENTS, "every event delivered to every client, in order, once",
          "%d of %d complete; e.g. %r" % (len(full), CLIENTS, [(len(c.ids), c.ids[-1:] if c.ids else None)
                                                             for c in clients if c not in full][:3]))
    for c in clients:
        c.s.close()
    time.sleep(2.5)  # quiet: the server gives back what the burst left (apps/web/mem.c)
    mem_quiet = memory(srv.proc.pid)
    for what, m in (("idle", mem_idle), ("%d clients" % CLIENTS, mem_attached), ("after the run", mem_after),
                    ("clients gone, 2.5 s quiet", mem_quiet)):
        print("memory %-26s %s" % (what, memory_line(m)))
    # Each worker gives back the stack pages its request touched (apps/web/mem.c):
    # without that, ~16 KiB more per worker that served a request.
    check(mem_quiet["stacks"] <= mem_idle["stacks"] + 512, "the workers' stacks are back to their idle size",
          "%d KiB idle, %d KiB after" % (mem_idle["stacks"], mem_quiet["stacks"]))
    # SIGTERM in the middle of a turn, with a client attached: the turn is
    # cancelled and its last events are on disk, the client gets a final
    # event, exit 0 within 5 s.
    watcher = Client(srv.port, sid)
    n0 = events_busy()[0]
    srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "interrupted"})
    t0 = time.time()
    rc = srv.stop()
    took = time.time() - t0
    end = time.time() + 5
    while time.time() < end and not watcher.closed:
        watcher.s.setblocking(True)
        watcher.s.settimeout(1)
        try:
            chunk = watcher.s.recv(262144)
        except OSError:
            break
        if not chunk:
            break
        watcher.buf += chunk
    check(rc == 0 and took < 5, "SIGTERM during a turn: exit 0 within 5 s", "rc=%r %.1f s" % (rc, took))
    check(b"event: shutdown" in watcher.buf, "SIGTERM: the attached client got the final event", watcher.buf[-200:])
    kinds = [json.loads(line)["kind"] for line in open(os.path.join(base, "sessions", sid + ".jsonl"))][n0:]
    check(kinds and kinds[0] == "user" and kinds[-1] == "turn_end", "SIGTERM: the turn's events are on disk, "
          "ended by turn_end", kinds[-5:])
finally:
    stop.set()
    srv.stop()
    mock.kill()
finish()
