"""30 s of random request lines and headers against breakglass-web: no
crash, no hang (every connection is answered or closed within the request
timeout), /health keeps answering, and SIGTERM still ends it with 0.
Under an ASan build (scripts/test's sanitizer step) this is the ASan run.
    web_fuzz.py [SECONDS] [SEED]"""
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from webharness import TOKEN, Server, check, config, finish, tmpdir  # noqa: E402

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30
seed = int(sys.argv[2]) if len(sys.argv) > 2 else random.randrange(1 << 30)
print("seed %d (rerun: web_fuzz.py %g %d)" % (seed, seconds, seed))

SID = "0123456789abcdef0123456789abcdef"
PATHS = [b"/health", b"/", b"/api/session", b"/api/sessions", b"/api/session/%s/stream" % SID.encode(),
         b"/api/session/%s/prompt" % SID.encode(), b"/api/pve/status", b"/api/pve/verbs", b"/metrics",
         b"/api/audit?limit=5", b"/api/devvm/triage", b"/api/audit?kind=pve,auth%2Ccsrf&limit=3",
         b"/api/whoami", b"/api/health/deps", b"/favicon.ico", b"/ui/000000000000/index.html", b"/ui/x/../app.js"]
METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE", b"CONNECT", b"TRACE", b"G\x00T", b""]
HEADERS = [b"Host: 127.0.0.1", b"Authorization: Bearer " + TOKEN.encode(), b"Content-Type: application/json",
           b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: 99999999999999999999",
           b"Transfer-Encoding: chunked", b"Origin: http://127.0.0.1", b"Last-Event-ID: 3",
           b"Authorization: Basic !!!!", b"X-authentik-username: \xff\xfe", b"Sec-Fetch-Site: cross-site",
           b"Expect: 100-continue", b"Connection: keep-alive", b"Range: bytes=0-",
           b'If-None-Match: W/"abc", "', b"If-None-Match: *"]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randrange(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[pos % len(data)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif op == 2 and data:
            del data[pos:pos + rng.randrange(1, 16)]
        elif op == 3:
            data[pos:pos] = rng.choice([b"\r\n", b"\n", b"\r", b"\x00", b"%", b"%00", b"%2e%2e/", b"../", b" ",
                                        b":", b"\xc0\xae", b"HTTP/1.1", b"\r\n\r\n"])
        elif op == 4:
            data[pos:pos] = bytes([rng.randrange(32, 127)]) * rng.randrange(1, 20000)
        else:
            data[pos:pos] = rng.choice(HEADERS) + b"\r\n"
    return bytes(data)


def one_request(rng):
    hdrs = b"".join(h + b"\r\n" for h in rng.sample(HEADERS, rng.randrange(0, 6)))
    req = b"%s %s HTTP/1.%d\r\n%s\r\n" % (rng.choice(METHODS), rng.choice(PATHS), rng.randrange(3), hdrs)
    if rng.random() < 0.3:
        req += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    return mutate(rng, req) if rng.random() < 0.9 else req


stats = {"sent": 0, "answered": 0, "closed": 0, "hung": 0}
lock = threading.Lock()
hung = []


def worker(port, wseed, until):
    rng = random.Random(wseed)
    while time.time() < until:
        data = one_request(rng)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            continue
        s.settimeout(8)  # the server's request timeout is 5 s
        got = b""
        try:
            s.sendall(data)
            if rng.random() < 0.5:
                s.shutdown(socket.SHUT_WR)
            t0 = time.time()
            while time.time() - t0 < 8:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
                if b"text/event-stream" in got:  # a stream we asked for by chance: leave it
                    break
            else:
                with lock:
                    stats["hung"] += 1
                    hung.append(data[:300])
        except socket.timeout:
            with lock:
                stats["hung"] += 1
                hung.append(data[:300])
        except OSError:
            pass
        finally:
            s.close()
        with lock:
            stats["sent"] += 1
            stats["answered" if got.startswith(b"HTTP/1.") else "closed"] += 1


base = tmpdir()
conf = config(base, auth="bearer")
srv = Server(conf)
try:
    sid = srv.request("POST", "/api/session", body={}).doc["session_id"]  # noqa: F841
    until = time.time() + seconds
    threads = [threading.Thread(target=worker, args=(srv.port, seed + i, until)) for i in range(6)]
    for t in threads:
        t.start()
    health_fail = 0
    while time.time() < until:
        try:
            r = srv.request("GET", "/health", token=None, timeout=5)
            health_fail += r.status != 200
        except OSError:
            health_fail += 1
        time.sleep(0.5)
    for t in threads:
        t.join()
    print("requests %(sent)d: answered %(answered)d, closed without an answer %(closed)d, hung %(hung)d" % stats)
    check(srv.proc.poll() is None, "the server is alive after %g s of random requests" % seconds)
    check(health_fail == 0, "/health answered throughout", health_fail)
    check(stats["hung"] == 0, "no connection hung past the request timeout", "%r\n%s" % (stats, "\n".join(
        repr(h) for h in hung[:5])))
    check(stats["sent"] > 100, "the fuzzer really sent requests", stats)
finally:
    rc = srv.stop()
check(rc == 0, "SIGTERM after the fuzz: exit 0", rc)
check("AddressSanitizer" not in srv.stderr() and "runtime error" not in srv.stderr(),
      "no sanitizer report", srv.stderr()[-2000:])
finish()
