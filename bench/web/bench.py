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
from webharness import TOKEN, WEB, Server, config, tmpdir, write  # noqa: E402


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def attach(port, sid, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(("GET /api/session/%s/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (sid, TOKEN)).encode())
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


def ready_ms(conf, runs=15):
    times = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKGLASS_")}
    env["API_BEARER_TOKEN"] = TOKEN
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([WEB, "--config", conf], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        port = None
        for line in p.stdout:
            if b'"listening"' in line:
                port = json.loads(line)["port"]
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
        times.append((time.perf_counter() - t0) * 1000)
        p.terminate()
        p.wait()
    return statistics.median(times)


def relay(srv, sid, turns=20):
    s = attach(srv.port, sid, 1)[0]
    lat = []
    buf = b""
    for i in range(turns):
        srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "bench %d" % i})
        done = False
        while not done:
            buf += s.recv(65536)
            now = time.time() * 1000
            while b"\n\n" in buf:
                frame, buf = buf.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        e = json.loads(line[6:])
                        if e.get("kind") == "text":
                            lat.append(now - e["ts"])
                        done = done or e.get("kind") == "turn_end"
    s.close()
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat)


def main():
    base = tmpdir()
    scen = write(os.path.join(base, "s.json"), json.dumps({"steps": [
        {"reply": {"text": "relay %d " % i + "measuring the relay. " * 4, "piece": 8, "stop_reason": "end_turn"}}
        for i in range(500)]}), 0o644)
    pf = os.path.join(base, "mock.port")
    mock = subprocess.Popen([os.path.join(SRC, "tests", "lab", "mock-llm"), "--scenario", scen, "--record",
                             os.path.join(base, "rec.jsonl"), "--port-file", pf, "--max-life", "600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (os.path.exists(pf) and open(pf).read().strip()):
        time.sleep(0.05)
    conf = config(base, auth="bearer", provider="anthropic", base_url="http://127.0.0.1:%s" % open(pf).read().strip())
    srv = Server(conf, env={"ANTHROPIC_API_KEY": "sk-test-key"})
    try:
        time.sleep(0.5)
        idle = rss_kib(srv.proc.pid)
        sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
        c100 = attach(srv.port, sid, 100)
        r100 = rss_kib(srv.proc.pid)
        c500 = c100 + attach(srv.port, sid, 400)
        r500 = rss_kib(srv.proc.pid)
        for s in c500:
            s.close()
        time.sleep(0.5)
        health, hf = ab(srv.port, "/health")
        verbs, vf = ab(srv.port, "/api/pve/verbs")
        p50, p99, n = relay(srv, sid)
    finally:
        srv.stop()
        mock.kill()
    ready = ready_ms(conf)
    print("breakglass-web (the Python app it replaces: 34 MiB idle, 48 MiB at 500 clients, 146 ms to ready, "
          "7.5k rps on /health)")
    print("RSS idle             %6.1f MiB   (target < 7)" % (idle / 1024))
    print("RSS 100 clients      %6.1f MiB" % (r100 / 1024))
    print("RSS 500 clients      %6.1f MiB   (target < 24)" % (r500 / 1024))
    print("/health              %8.0f rps (%d failed)" % (health, hf))
    print("/api/pve/verbs       %8.0f rps (%d failed)" % (verbs, vf))
    print("exec -> ready        %6.1f ms    (target < 10; spawn until /health answers, median of 15)" % ready)
    print("event -> SSE client  p50 %.1f ms, p99 %.1f ms over %d events (target p99 < 2; ts has 1 ms resolution)"
          % (p50, p99, n))


main()
