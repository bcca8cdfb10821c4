"""breakglass-web on loopback, no SSH peers: every route's auth, request
safety (CSRF, sizes, JSON, traversal), headers, SSE replay/resume/
keepalive/drop, restart, SIGTERM, the configuration checks."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from webharness import (SSE, TOKEN, WEB, Server, check, config, crypt_hash, finish, metric,  # noqa: E402
                        tmpdir, write, write_session)

ROUTES = [l.split() for l in subprocess.run([WEB, "--routes"], capture_output=True, text=True).stdout.splitlines()]
SID = "0123456789abcdef0123456789abcdef"
EVENTS = [
    {"kind": "user", "text": "disk full?", "by": "alice"},
    {"kind": "text", "text": "Checking <b>now</b>."},
    {"kind": "tool", "tool_use_id": "t1", "name": "devvm_exec", "input": {"command": "df -h"}},
    {"kind": "tool_result", "tool_use_id": "t1", "ok": True, "exit_code": 0, "output": "/dev/vda1 100%",
     "truncated": False, "elapsed_ms": 40},
    {"kind": "turn_end", "stop_reason": "end_turn", "usage": {}},
]


def concrete(pattern):
    return pattern.replace("{id}", SID).replace("{verb}", "status").replace("{build}", "0" * 12).replace(
        "{path}", "index.html")


def check_config_refusals(d):
    cases = [
        ("auth = none on a public address", dict(auth="none", extra="").items(), "listen = 0.0.0.0:8080",
         "loopback"),
        ("IPv6 listen", dict(auth="bearer").items(), "listen = [::]:8080", "IPv6"),
    ]
    for what, kw, listen, word in cases:
        conf = config(d, **dict(kw))
        text = open(conf).read().replace("listen = 127.0.0.1:0", listen)
        write(conf, text)
        p = subprocess.run([WEB, "--config", conf, "--check"], capture_output=True, text=True,
                           env={"API_BEARER_TOKEN": TOKEN})
        check(p.returncode == 2 and word in p.stderr, "--check refuses " + what, p.stderr)
    hp = write(os.path.join(d, "htpasswd.md5"), "bob:$1$abcdefgh$0123456789abcdefghijkl\n")
    conf = config(d, auth="basic", extra="htpasswd_file = %s" % hp)
    p = subprocess.run([WEB, "--config", conf, "--check"], capture_output=True, text=True)
    check(p.returncode == 2 and "unsupported hash" in p.stderr, "--check refuses an md5-crypt htpasswd", p.stderr)
    conf = config(d, auth="bearer")
    p = subprocess.run([WEB, "--config", conf, "--check"], capture_output=True, text=True, env={})
    check(p.returncode == 2 and "API_BEARER_TOKEN" in p.stderr, "--check refuses bearer without a token", p.stderr)
    p = subprocess.run([WEB, "--config", conf, "--check"], capture_output=True, text=True,
                       env={"API_BEARER_TOKEN": TOKEN})
    check(p.returncode == 0, "--check passes a good configuration", p.stdout + p.stderr)


def check_auth(d):
    users = {"alice": ("yescrypt-pw", "$y$"), "bob": ("bcrypt-pw", "$2b$"), "carol": ("sha512-pw", "$6$")}
    hp = write(os.path.join(d, "htpasswd"), "".join("%s:%s\n" % (u, crypt_hash(pw, pre))
                                                     for u, (pw, pre) in users.items()))
    conf = config(d, auth="proxy,bearer,basic",
                  extra="htpasswd_file = %s\ntrusted_proxies = 10.0.0.0/8" % hp)
    srv = Server(conf)
    try:
        for method, pattern, auth in ROUTES:
            path = concrete(pattern)
            body = {} if method == "POST" else None
            r = srv.request(method, path, body=body, token=None)
            if auth == "none":
                check(r.status in (200, 204), "%s %s needs no auth" % (method, pattern), r)
                continue
            check(r.status == 401 and r.doc and r.doc.get("error") and
                  r.headers.get("www-authenticate", "").startswith("Basic"),
                  "%s %s without credentials: 401 JSON + WWW-Authenticate" % (method, pattern), r)
            r = srv.request(method, path, body=body, token="wrong-token-wrong-token")
            check(r.status in (401, 429), "%s %s with a wrong bearer: 401" % (method, pattern), r)
        import base64
        for u, (pw, pre) in users.items():
            cred = base64.b64encode(("%s:%s" % (u, pw)).encode()).decode()
            r = srv.request("GET", "/api/pve/verbs", token=None, headers={"Authorization": "Basic " + cred})
            check(r.status == 200, "basic auth with a %s hash" % pre, r)
        cred = base64.b64encode(b"alice:wrong").decode()
        r = srv.request("GET", "/api/pve/verbs", token=None, headers={"Authorization": "Basic " + cred})
        check(r.status in (401, 429), "basic auth with a wrong password: refused", r)
        r = srv.request("GET", "/api/pve/verbs", token=None, headers={"X-authentik-username": "mallory"})
        check(r.status in (401, 429), "a proxy header from an untrusted address is not believed", r)
        # The operator is never locked out: right credentials pass after a burst of failures.
        for _ in range(8):
            srv.request("GET", "/api/audit", token="nope-nope-nope-nope")
        t0 = time.time()
        r = srv.request("GET", "/api/audit?limit=500")
        check(r.status == 200 and time.time() - t0 < 0.5, "the right token passes right after failures", r)
        recs = r.doc or []
        fails = [x for x in recs if x.get("action") == "auth.failure"]
        check(len(fails) >= 10 and all("from=127.0.0.1" in (x.get("detail") or "") for x in fails),
              "each auth failure is an audit record with the address", json.dumps(recs[:3]))
        t0 = time.time()
        for _ in range(3):
            srv.request("GET", "/api/audit", token="nope-nope-nope-nope")
        check(time.time() - t0 >= 0.9, "repeated failures from one address are slowed down",
              "%.2f s" % (time.time() - t0))
    finally:
        srv.stop()
    conf = config(d, auth="proxy", extra="trusted_proxies = 127.0.0.0/8")
    srv = Server(conf)
    try:
        r = srv.request("POST", "/api/session", body={}, token=None, headers={"X-authentik-username": "alice"})
        check(r.status == 200, "a proxy header from a trusted address is believed", r)
        r = srv.request("GET", "/api/audit", token=None, headers={"X-authentik-username": "alice"})
        check(any(x.get("who") == "alice" and x.get("action") == "session.create" for x in (r.doc or [])),
              "the audit names the proxy's user", r)
    finally:
        srv.stop()


def check_safety(d):
    conf = config(d, auth="bearer")
    srv = Server(conf)
    try:
        r = srv.request("POST", "/api/session", body="{}", headers={"Origin": "https://evil.example"})
        check(r.status == 403, "CSRF: a foreign Origin is refused", r)
        r = srv.request("POST", "/api/session", body="{}", headers={"Sec-Fetch-Site": "cross-site"})
        check(r.status == 403, "CSRF: Sec-Fetch-Site cross-site is refused", r)
        r = srv.request("POST", "/api/session", body="{}",
                        headers={"Origin": "http://127.0.0.1:%d" % srv.port, "Sec-Fetch-Site": "same-origin"})
        check(r.status == 200, "same-origin POST passes", r)
        for ct in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None):
            r = srv.request("POST", "/api/session", body="{}", headers={"Content-Type": ct})
            check(r.status == 403, "CSRF: Content-Type %s is refused" % ct, r)
        sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
        before = len(srv.request("GET", "/api/audit?limit=1000").doc)
        big = b"POST /api/session/%s/prompt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" \
              b"Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n" % (sid.encode(), TOKEN.encode())
        out = srv.raw(big, timeout=5)
        check(out.startswith(b"HTTP/1.1 413"), "a body over 64 KiB: 413 before it is sent", out[:200])
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        s.sendall(b"POST /api/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{" % TOKEN.encode())
        t0, out = time.time(), b""
        try:
            while not out:
                s.sendall(b" ")  # a byte every 3 s, never the whole body
                s.settimeout(3)
                try:
                    out = s.recv(4096)
                except socket.timeout:
                    pass
        except OSError:
            pass
        s.close()
        check(out.startswith(b"HTTP/1.1 408") and time.time() - t0 < 16, "a body sent a byte at a time: 408",
              "%r after %.1f s" % (out[:60], time.time() - t0))
        r = srv.request("POST", "/api/session/%s/prompt" % sid, body=json.dumps({"prompt": "x" * 70000}))
        check(r.status == 413, "a body over 64 KiB sent whole: 413", r)
        after = srv.request("GET", "/api/audit?limit=1000").doc
        check(not any(x.get("action") == "agent.prompt" for x in after), "no prompt was taken from those", after[:2])
        out = srv.raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", timeout=5)
        check(out.startswith(b"HTTP/1.1 431") or out.startswith(b"HTTP/1.1 400"), "headers over the limit: 431",
              out[:200])
        for body, field in (("{", "body"), ("[1]", "body"), ('{"prompt": 5}', "prompt"), ("{}", "prompt"),
                            ('{"prompt": ""}', "prompt"), ('{"prompt":"a"} x', "body"),
                            ('{"prompt":"\\ud800"}', "body")):
            r = srv.request("POST", "/api/session/%s/prompt" % sid, body=body)
            check(r.status == 400 and r.doc and r.doc.get("field") == field,
                  "bad body %r: 400 naming %s" % (body, field), r)
        for body, field in (('{"approved": true, "verb": "stop"}', "nonce"), ('{"nonce": "x", "approved": true}', "verb"),
                            ('{"nonce": "x", "verb": "stop"}', "approved"),
                            ('{"nonce": "x", "verb": "stop", "approved": "yes"}', "approved")):
            r = srv.request("POST", "/api/session/%s/approve" % sid, body=body)
            check(r.status == 400 and r.doc and r.doc.get("field") == field,
                  "approve %s: 400 naming %s" % (body, field), r)
        r = srv.request("POST", "/api/session/%s/approve" % sid, body={"nonce": "t9", "verb": "stop", "approved": True})
        check(r.status == 404, "approve with no turn waiting: 404", r)
        r = srv.request("GET", "/api/session/%s/stream" % sid, headers={"Last-Event-ID": "abc"})
        check(r.status == 400 and r.doc.get("field") == "Last-Event-ID", "a bad Last-Event-ID: 400", r)
        r = srv.request("GET", "/no/such/route")
        check(r.status == 404 and r.doc and r.doc.get("error"), "unknown route: 404 JSON", r)
        r = srv.request("DELETE", "/api/sessions")
        check(r.status == 405 and r.doc, "a wrong method: 405 JSON", r)
        r = srv.request("GET", "/api/session/%s/stream" % ("f" * 32))
        check(r.status == 404 and r.doc, "stream of an unknown session: 404 JSON", r)
        r = srv.request("POST", "/api/session/%s/prompt" % ("f" * 32), body={"prompt": "hi"})
        check(r.status == 404, "prompt to an unknown session: 404", r)
        r = srv.request("POST", "/api/pve/destroy", body={})
        check(r.status == 400 and r.doc.get("verbs"), "unknown verb: 400 with the verbs", r)
        # Path traversal, every encoding: never a file, never a 200.
        for p in ("/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/api/session/..%2f..%2fetc%2fpasswd/stream",
                  "/api/session/%2e%2e%2f%2e%2e%2fetc%2fpasswd/stream", "/%252e%252e/etc/passwd",
                  "/..%5c..%5cetc%5cpasswd", "/api/pve/..%2f..%2fetc", "/%c0%ae%c0%ae/etc/passwd",
                  "/api/session/" + SID + "%00/stream", "/api/./pve/../pve/verbs/..", "//etc/passwd",
                  "/api/session/" + SID.upper() + "/stream", "/api/pve/%73tatus/../../../etc/shadow"):
            out = srv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (p, TOKEN)).encode())
            check(b"root:" not in out and not out.startswith(b"HTTP/1.1 200") and out.startswith(b"HTTP/1.1 "),
                  "traversal %s: refused" % p, out[:120])
        # Headers on every answer.
        for method, pattern, _ in ROUTES:
            if pattern.endswith("/stream") or pattern in ("/api/pve/{verb}", "/api/devvm/triage"):
                continue
            r = srv.request(method, concrete(pattern).replace(SID, sid), body={} if method == "POST" else None)
            ok = r.headers.get("x-content-type-options") == "nosniff" and \
                r.headers.get("referrer-policy") == "no-referrer"
            if pattern.startswith("/api"):
                ok = ok and r.headers.get("cache-control") == "no-store"
            check(ok, "%s %s: security headers" % (method, pattern), r.headers)
        r = srv.request("GET", "/")
        csp = r.headers.get("content-security-policy", "")
        check(r.status == 200 and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and
              "unsafe-inline" not in csp, "the page has a strict CSP", r.headers)
        r = srv.request("GET", "/health", token=None)
        check(r.doc == {"status": "ok", "service": "breakglass"}, "/health body", r)
        r = srv.request("GET", "/api/pve/verbs")
        check(r.doc and r.doc["verbs"] == ["status", "forensics", "reset", "stop", "start", "cycle"] and
              r.doc["mutating"] == ["reset", "stop", "start", "cycle"], "/api/pve/verbs from the verb table", r)
        r = srv.request("POST", "/api/session/%s/cancel" % sid, body={})
        check(r.status == 200 and r.doc == {"cancelled": False}, "cancel with no turn: cancelled false", r)
        m = srv.request("GET", "/metrics")
        text = m.body.decode()
        check(m.status == 200 and m.headers["content-type"].startswith("text/plain") and
              'breakglass_http_requests_total{route="/health",status="200"}' in text and
              "process_resident_memory_bytes" in text and "breakglass_sse_clients 0" in text and
              'breakglass_pve_verbs_total{verb="cycle",result="ok"} 0' in text,
              "/metrics in Prometheus text format", text[:600])
        lines = [json.loads(x) for x in srv.log_lines() if '"event":"request"' in x]
        check(lines and all(set(("route", "status", "bytes", "ms", "user")) <= set(x) for x in lines),
              "one JSON log line per request with route, status, bytes, ms, user", lines[:2])
    finally:
        rc = srv.stop()
    check(rc == 0, "SIGTERM: exit 0", rc)


def check_sse(d):
    sessions = os.path.join(d, "sessions")
    write_session(sessions, SID, EVENTS)
    conf = config(d, auth="bearer")
    srv = Server(conf, args=["--keepalive-ms", "400"])
    try:
        c = SSE(srv.port, SID)
        check(c.head() == 200 and c.headers.get("content-type", "").startswith("text/event-stream") and
              c.headers.get("x-accel-buffering") == "no" and "no-cache" in c.headers.get("cache-control", ""),
              "SSE: 200 text/event-stream, X-Accel-Buffering: no, Cache-Control: no-cache", c.headers)
        got, caught = c.events_until_caught_up()
        check(caught and [e["id"] for e in got] == [0, 1, 2, 3, 4] and got[1]["text"] == "Checking <b>now</b>.",
              "SSE: the session (reloaded from disk) replayed, then caught-up", got)
        f = c.frame(3)
        check(f is not None and f.get("comment") == "keepalive", "SSE: : keepalive comments", f)
        c.close()
        c = SSE(srv.port, SID, last_id=2)
        c.head()
        got, caught = c.events_until_caught_up()
        check(caught and [e["id"] for e in got] == [3, 4], "SSE: Last-Event-ID 2 resumes at 3, nothing repeated", got)
        c2 = SSE(srv.port, SID, last_id=4)
        c2.head()
        got, caught = c2.events_until_caught_up()
        check(caught and got == [], "SSE: Last-Event-ID at the end: caught-up at once", got)
        time.sleep(0.3)
        n = metric(srv, "breakglass_sse_clients")
        check(n == "breakglass_sse_clients 2", "two attached clients in /metrics", n)
        c.close()
        deadline = time.time() + 2
        while time.time() < deadline and metric(srv, "breakglass_sse_clients") != "breakglass_sse_clients 1":
            time.sleep(0.05)
        check(metric(srv, "breakglass_sse_clients") == "breakglass_sse_clients 1",
              "a client that left is noticed within one keepalive", metric(srv, "breakglass_sse_clients"))
        # Streams hold no worker: many more than the request budget attach.
        many = [SSE(srv.port, SID) for _ in range(80)]
        ok = all(x.head() == 200 for x in many)
        t0 = time.time()
        r = srv.request("GET", "/api/pve/verbs")
        check(ok and r.status == 200 and time.time() - t0 < 0.5, "80 attached streams leave the workers free", r)
        for x in many:
            x.close()
        t0 = time.time()
        rc = srv.stop()
        f = None
        while True:
            f = c2.frame(5)
            if f is None or f.get("event") == "shutdown":
                break
        check(f is not None and f.get("event") == "shutdown", "SIGTERM: an attached client gets a final event", f)
        check(c2.frame(2) is None and c2.closed, "SIGTERM: then its stream is closed", c2.buf[:100])
        check(rc == 0 and time.time() - t0 < 5, "SIGTERM with clients attached: exit 0 within 5 s",
              "rc=%r %.1f s" % (rc, time.time() - t0))
    finally:
        srv.stop()
    # A restart reloads the sessions.
    srv = Server(conf)
    try:
        r = srv.request("GET", "/api/sessions")
        ids = [s["id"] for s in (r.doc or {}).get("sessions", [])]
        check(SID in ids and any(s.get("title") == "disk full?" for s in r.doc["sessions"]),
              "restart: the sessions are back, titled by their first prompt", r)
    finally:
        srv.stop()


def check_budget(d):
    conf = config(d, auth="bearer", extra="threads = 4")
    srv = Server(conf)
    try:
        sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
        streams, heads = [], []
        for _ in range(32):  # one after the other: the request budget (threads) is not what is tested here
            streams.append(SSE(srv.port, sid))
            heads.append(streams[-1].head())
        extra = SSE(srv.port, sid)
        st = extra.head()
        body = extra.buf
        check(heads.count(200) == 32 and st == 503, "a stream beyond the budget (8 x threads): a clean 503",
              "%r %r %r" % (heads.count(200), st, body[:100]))
        for x in streams + [extra]:
            x.close()
    finally:
        srv.stop()


def check_prune(d):
    conf = config(d, auth="bearer", extra="max_sessions = 3")
    srv = Server(conf)
    try:
        ids = [srv.request("POST", "/api/session", body={}).doc["session_id"] for _ in range(5)]
        got = [x["id"] for x in srv.request("GET", "/api/sessions").doc["sessions"]]
        check(len(got) == 3 and set(got) == set(ids[2:]), "max_sessions = 3: the oldest idle sessions are pruned",
              got)
        r = srv.request("GET", "/api/session/%s/stream" % ids[0])
        check(r.status == 404, "a pruned session is gone", r)
    finally:
        srv.stop()
    srv = Server(conf)
    try:
        got = [x["id"] for x in srv.request("GET", "/api/sessions").doc["sessions"]]
        check(set(got) == set(ids[2:]), "after a restart, the same three", got)
    finally:
        srv.stop()


d = tmpdir()
check_config_refusals(d)
check_prune(tmpdir())
check_auth(tmpdir())
check_safety(tmpdir())
check_sse(tmpdir())
check_budget(tmpdir())
finish()
