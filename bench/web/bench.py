"""The measurements of bench/web/run (see there)."""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

SRC = os.environ["BG_SOURCE_DIR"]
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "web"))
from webharness import TOKEN, WEB, Server, config, deployed_env, memory, tmpdir, write  # noqa: E402

STREAM_REQ = "GET /api/session/%s/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"

# The background clients of the relay measurement, in a process of their
# own (so that reading them does not delay the measuring client): attach
# N, say "ready" once each has caught up, then read everything until stdin
# closes, every 20 ms (what arrived meanwhile waits in each socket's
# buffer: on 2 CPUs, a Python loop reading 500 sockets per event would
# measure Python, not the server, which writes to each client at once
# either way and never waits for a reader).
DRAINER = r"""
import selectors, socket, sys, time
port, sid, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("GET /api/session/%s/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (sid, token)).encode())
    s.settimeout(30)
    buf = b""
    while b"caught-up" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("stream closed before caught-up")
        buf += chunk
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
sel.register(sys.stdin, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    time.sleep(0.02)
    for key, _ in sel.select():
        if key.fileobj is sys.stdin:
            sys.exit(0)
        try:
            if not key.fileobj.recv(262144):
                sel.unregister(key.fileobj)
        except BlockingIOError:
            pass
"""


def attach(port, sid, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall((STREAM_REQ % (sid, TOKEN)).encode())
        s.settimeout(10)
        buf = b""
        while b"caught-up" not in buf:
            buf += s.recv(65536)
        socks.append(s)
    return socks


def ab(port, path, n=20000, c=32):
    p = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(c), "-H", "Authorization: Bearer " + TOKEN,
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True)
    m = re.search(r"Requests per second:\s+([\d.]+)", p.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", p.stdout)
    return float(m.group(1)) if m else 0.0, int(failed.group(1)) if failed else -1


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def ready(conf, env, runs=15):
    """exec -> /health answers; and the server's own ready_ms (main() ->
    listening, from its log line); the rest is exec and dynamic loading."""
    total, own = [], []
    e = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
    e.update(env)
    e["API_BEARER_TOKEN"] = TOKEN
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([WEB, "--config", conf], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e)
        port = None
        for line in p.stdout:
            if b'"listening"' in line:
                doc = json.loads(line)
                port = doc["port"]
                own.append(doc["ready_ms"])
                break
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    s.close()
                    break
            except OSError:
                pass
        total.append((time.perf_counter() - t0) * 1000)
        p.terminate()
        p.wait()
    return statistics.median(total), statistics.median(own)


def thread_floor(workers=256):
    """CivetWeb 1.15 creates all its workers (4 x [web] threads, 256 by
    default) before it accepts: what creating that many waiting threads
    costs on this machine, in a bare C program (bench/web/thread_floor)."""
    prog = os.path.join(os.environ["BG_BINARY_DIR"], "bench", "web", "thread_floor")
    if not os.access(prog, os.X_OK):
        return "not measured (build the thread_floor target)"
    ms = float(subprocess.run([prog, str(workers), "15"], capture_output=True, text=True, check=True).stdout)
    return ("creating %d waiting threads takes %.1f ms here (a bare C program, median of 15): CivetWeb 1.15 "
            "makes all its workers before it accepts, and point 2's dribblers need that many" % (workers, ms))


# Each text delta carries the mock LLM's CLOCK_MONOTONIC microseconds at its
# write: "[@T@]" becomes "[123456789]" (tests/lab/mock-llm, fault "stamp").
STAMPED_PIECE = "[@T@] relay. "
STAMP = re.compile(r"\[(\d+)\]")


def relay(srv, sid, background, turns=30):
    """event -> SSE client for one measuring client, attached first, so
    that with `background` more clients on the session it is the last
    one written to."""
    s = attach(srv.port, sid, 1)[0]
    drainer = None
    if background:
        drainer = subprocess.Popen([sys.executable, "-c", DRAINER, str(srv.port), sid, str(background), TOKEN],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if drainer.stdout.readline().strip() != b"ready":
            raise RuntimeError("the background clients did not attach")
    lat, from_llm = [], []
    buf = b""
    frames = 0
    t0 = cpu_ticks(srv.proc.pid)
    try:
        for i in range(turns):
            while True:  # the last turn's turn_end can arrive before its turn is over: 409 until then
                r = srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "bench %d" % i})
                if r.status != 409:
                    break
                time.sleep(0.005)
            if r.status != 202:
                raise RuntimeError("prompt: HTTP %d %r" % (r.status, r.body[:200]))
            done = False
            while not done:
                chunk = s.recv(65536)
                now = time.time() * 1000
                now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
                buf += chunk
                while b"\n\n" in buf:
                    frame, buf = buf.split(b"\n\n", 1)
                    frames += frame.startswith(b"id: ")
                    for line in frame.split(b"\n"):
                        if line.startswith(b"data: "):
                            e = json.loads(line[6:])
                            if e.get("kind") == "text":
                                lat.append(now - e["ts"])
                                from_llm += [(now_us - int(t)) / 1000 for t in STAMP.findall(e.get("text", ""))]
                            done = done or e.get("kind") == "turn_end"
    finally:
        s.close()
        if drainer:
            drainer.stdin.close()
            drainer.wait()
    cpu_ms = (cpu_ticks(srv.proc.pid) - t0) * 1000 / os.sysconf("SC_CLK_TCK")
    lat.sort()
    from_llm.sort()
    return (lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat), cpu_ms / max(frames, 1),
            from_llm[len(from_llm) // 2], from_llm[int(len(from_llm) * 0.99)], len(from_llm))


def mib(kib):
    return kib / 1024


def mem_line(label, m, target=""):
    return ("%-22s RSS %5.1f MiB  (Pss %4.1f; anon %4.1f = stacks %3.1f + heap %3.1f + other %3.1f; file %3.1f)%s"
            % (label, mib(m["rss"]), mib(m["pss"]), mib(m["anon"]), mib(m["stacks"]), mib(m["heap"]),
               mib(m["other_anon"]), mib(m["file"]), target))


def main():
    load0 = os.getloadavg()[0]
    base = tmpdir()
    env = deployed_env()
    scen = write(os.path.join(base, "s.json"), json.dumps({"steps": [
        {"reply": {"text": STAMPED_PIECE * 12, "piece": len(STAMPED_PIECE), "stop_reason": "end_turn"},
         "faults": {"stamp": True}}
        for i in range(500)]}), 0o644)
    pf = os.path.join(base, "mock.port")
    mock = subprocess.Popen([os.path.join(SRC, "tests", "lab", "mock-llm"), "--scenario", scen, "--record",
                             os.path.join(base, "rec.jsonl"), "--port-file", pf, "--max-life", "900"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (os.path.exists(pf) and open(pf).read().strip()):
        time.sleep(0.05)
    conf = config(base, auth="bearer", provider="anthropic", base_url="http://127.0.0.1:%s" % open(pf).read().strip())
    srv = Server(conf, env=dict(env, ANTHROPIC_API_KEY="sk-test-key"))
    pid = srv.proc.pid
    try:
        time.sleep(0.5)
        idle = memory(pid)
        sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
        c100 = attach(srv.port, sid, 100)
        m100 = memory(pid)
        c500 = c100 + attach(srv.port, sid, 400)
        m500 = memory(pid)
        for s in c500:
            s.close()
        time.sleep(0.5)
        t0 = cpu_ticks(pid)
        health, hf = ab(srv.port, "/health")
        cpu_health = (cpu_ticks(pid) - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / 20000
        verbs, vf = ab(srv.port, "/api/pve/verbs")
        time.sleep(2.5)  # quiet: what the burst left is given back (apps/web/mem.c)
        burst = memory(pid)
        relays = [(n, relay(srv, sid, n - 1)) for n in (1, 100, 500)]
        time.sleep(2.5)
        turned = memory(pid)
    finally:
        srv.stop()
        mock.kill()
    ready_total, ready_own = ready(conf, env)
    print("breakglass-web, run as deployed (%s); load average %.1f at the start, %.1f at the end, %d CPUs"
          % (" ".join("%s=%s" % kv for kv in env.items()) or "no extra environment", load0, os.getloadavg()[0],
             os.cpu_count()))
    print("The Python app it replaces cannot run here; its figures, for reference: 34 MiB idle, 48 MiB at 500 "
          "clients, 146 ms to ready, 7.5k rps on /health.")
    print(mem_line("RSS idle", idle, "   target < 7 MiB"))
    print(mem_line("RSS 100 clients", m100))
    print(mem_line("RSS 500 clients", m500, "   target < 24 MiB"))
    print(mem_line("RSS after 40k requests", burst, "   (2.5 s quiet)"))
    print(mem_line("RSS after the turns", turned, "   (libcurl loaded by the first turn)"))
    print("/health              %6.0f rps (%d failed), %.0f us of server CPU per request" % (health, hf, cpu_health))
    print("/api/pve/verbs       %6.0f rps (%d failed)" % (verbs, vf))
    print("exec -> ready        %6.1f ms  target < 10 (spawn until /health answers, median of 15); of which "
          "main() -> listening %.0f ms, the rest exec and dynamic loading" % (ready_total, ready_own))
    print("  the floor under it: %s" % thread_floor())
    for n, (p50, p99, count, cpu, l50, l99, lcount) in relays:
        print("event -> SSE client  %3d client%s: p50 %.1f ms, p99 %.1f ms over %d events  target p99 < 2; "
              "server CPU %.2f ms per event (turn included)" % (n, "s" if n > 1 else " ", p50, p99, count, cpu))
        print("  LLM -> SSE client  %3d client%s: p50 %.2f ms, p99 %.2f ms over %d deltas (a bound on the relay, "
              "to the microsecond)" % (n, "s" if n > 1 else " ", l50, l99, lcount))
    print("(event -> client: the event's ts, set when it is appended, has 1 ms resolution and is truncated, so "
          "each figure is an upper bound, by up to 1 ms. LLM -> client: from the mock LLM's write of the delta "
          "(its CLOCK_MONOTONIC, stamped into the text) to the client's read of the event: the relay plus "
          "the server's receive, parse and append before it, so also an upper bound on the relay, without the "
          "1 ms step. The measuring client is the one written to last; each turn's 12 deltas come in one burst, "
          "so a delta also waits for those before it)")


main()
