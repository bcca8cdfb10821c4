"""What the page's status bar reads: GET /api/health/deps with the real
peers (sshd as the devvm, sshd + breakglass-pve + the qm stand-in as the
Proxmox host, the mock LLM), from probes, verbs, the triage and a turn;
then with the devvm's sshd down (state failing, error named) and the mock
LLM gone; the probe rate limit under a reload storm (counted in the qm
stand-in's record and the mock's); GET /api/whoami under each auth mode;
GET /api/audit?kind= filtering; GET /api/pve/verbs' table.

usage: web_deps.py BREAKGLASS_PVE"""
import base64
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from webharness import SOURCE, SSE, TOKEN, Server, check, config, crypt_hash, finish, tmpdir, write  # noqa: E402
from world import World  # noqa: E402

INTERVAL = 5    # [web] health_interval for this test
WAIT_MS = 1500  # how long the request that starts a probe waits for it (deps.c)


def deps(srv):
    t0 = time.time()
    r = srv.request("GET", "/api/health/deps", timeout=30)
    return r, time.time() - t0


def settled(srv, what, cond=lambda d: True, timeout=40):
    """GET deps until no probe runs and cond holds; every answer within the
    request's budget (a probe is never waited for longer)."""
    deadline = time.time() + timeout
    slow = []
    while True:
        r, took = deps(srv)
        if took > WAIT_MS / 1000.0 + 3:
            slow.append(took)
        d = r.doc or {}
        peers = d.get("peers", {})
        if r.status == 200 and not any(p.get("probing") for p in peers.values()) and cond(d):
            break
        if time.time() > deadline:
            break
        time.sleep(0.2)
    check(not slow, "%s: every answer within the wait budget (%.1f s + slack)" % (what, WAIT_MS / 1000.0), slow)
    return r.doc or {}


def qm_status_calls(world):
    return len([c for c in world.qm_calls() if c.split()[:1] == ["status"]])


def models_calls(world):
    if not os.path.exists(world.mock_record):
        return 0
    with open(world.mock_record) as f:
        return len([1 for line in f if line.strip() and json.loads(line).get("path") == "/v1/models"])


def storm(srv, n, waves=1, gap=0.0):
    out = []

    def one():
        out.append(deps(srv))

    for _ in range(waves):
        ts = [threading.Thread(target=one) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        time.sleep(gap)
    return out


def start(world, base, interval):
    conf = config(base, auth="bearer", extra="health_interval = %d" % interval,
                  **world.conf_args(provider="anthropic"))
    return Server(conf, env={"ANTHROPIC_API_KEY": "sk-test-key"})


def check_sources(world, base):
    """Probes first, then the server's own calls; a long interval, so no
    probe overtakes what the calls said."""
    srv = start(world, base, 3600)
    try:
        # --- nothing known yet: the first request probes all three ---
        d = settled(srv, "first load", lambda d: all(p["state"] != "unknown" for p in d["peers"].values()))
        p = d.get("peers", {})
        check(set(p) == {"devvm", "pve", "llm"} and all(p[k]["state"] == "ok" and p[k]["last_ok_via"] == "probe" and
                                                         p[k]["recent"] is True and p[k]["last_ok"]
                                                         for k in p),
              "first load: devvm, pve and llm probed, all ok", d)
        vm = d.get("vm", {})
        check(vm.get("state") == "stopped" and vm.get("read_via") == "probe" and vm.get("read_at") and
              vm.get("vmid") == "102" and vm.get("name") == "devvm",
              "the VM's last known state and when it was read (the probe's status verb)", vm)
        check(d.get("llm_provider") == "anthropic" and d.get("interval_s") == 3600 and d.get("probes") == 3,
              "three probes so far, the interval and the provider", d)
        # --- a reload storm while everything is recent: no probe at all ---
        qm0, mod0 = qm_status_calls(world), models_calls(world)
        got = storm(srv, 40)
        d2 = srv.request("GET", "/api/health/deps").doc
        check(all(r.status == 200 for r, _ in got) and d2["probes"] == 3 and qm_status_calls(world) == qm0 and
              models_calls(world) == mod0,
              "40 reloads at once while the peers are recent: no probe (qm status %d, /v1/models %d)" % (
                  qm_status_calls(world) - qm0, models_calls(world) - mod0), d2)

        # --- the server's own calls count ---
        r = srv.request("POST", "/api/pve/status", body={}, timeout=60)
        d = srv.request("GET", "/api/health/deps").doc
        check(r.status == 200 and d["peers"]["pve"]["last_ok_via"] == "verb" and d["vm"]["read_via"] == "verb" and
              d["vm"]["state"] == "stopped", "a verb updates the host's health and the VM's state", d)
        r = srv.request("POST", "/api/devvm/triage", body={}, timeout=120)
        d = srv.request("GET", "/api/health/deps").doc
        check(r.status == 200 and d["peers"]["devvm"]["last_ok_via"] == "triage",
              "a triage updates the devvm's health", d["peers"]["devvm"])
        sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
        r = srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "are both hosts there?"})
        c = SSE(srv.port, sid)
        c.head()
        kinds = []
        deadline = time.time() + 90
        while time.time() < deadline:
            f = c.frame(30)
            if f is None:
                break
            if "data" in f and "id" in f:
                kinds.append(json.loads(f["data"])["kind"])
                if kinds[-1] == "turn_end":
                    break
        c.close()
        check(r.status == 202 and kinds and kinds[-1] == "turn_end" and kinds.count("tool_result") == 2,
              "a turn with a devvm and a pve tool call ran", kinds)
        d = {}
        for _ in range(50):  # the turn's events are read once its thread ends
            d = srv.request("GET", "/api/health/deps").doc
            if all(d["peers"][k]["last_ok_via"] == "turn" for k in ("devvm", "pve", "llm")):
                break
            time.sleep(0.1)
        check(all(d["peers"][k]["last_ok_via"] == "turn" for k in ("devvm", "pve", "llm")) and
              d["vm"]["read_via"] == "turn" and d["vm"]["state"] == "stopped",
              "a turn's tool results and the model's reply update all three and the VM's state", d)
        # A second session's agent: the key was read from the environment
        # once, and every agent (and the probe) has it.
        sid2 = srv.request("POST", "/api/session", body={}).doc["session_id"]
        r = srv.request("POST", "/api/session/%s/prompt" % sid2, body={"prompt": "and now?"})
        c = SSE(srv.port, sid2)
        c.head()
        events = []
        deadline = time.time() + 60
        while time.time() < deadline:
            f = c.frame(30)
            if f is None:
                break
            if "data" in f and "id" in f:
                events.append(json.loads(f["data"]))
                if events[-1]["kind"] == "turn_end":
                    break
        c.close()
        texts = "".join(e.get("text", "") for e in events if e["kind"] == "text")
        check(r.status == 202 and "has the key too" in texts and not [e for e in events if e["kind"] == "error"],
              "a second session's turn reaches the LLM with the API key", events)
    finally:
        srv.stop()
        check(not srv.sanitizer_report(), "no sanitizer report", srv.sanitizer_report())


def check_failures(world, base):
    """The devvm's sshd and the LLM go away; the probe rate limit."""
    srv = start(world, base, INTERVAL)
    try:
        d = settled(srv, "restarted", lambda d: all(p["state"] == "ok" for p in d["peers"].values()))
        check(all(p["state"] == "ok" and p["last_ok_via"] == "probe" for p in d["peers"].values()),
              "after a restart the three are probed again, all ok (the LLM key was read once, kept for the probe)",
              d)

        # --- the devvm's sshd goes down ---
        subprocess.run([os.path.join(SOURCE, "tests", "lab", "sshd-fixture"), "stop", world.fixtures[1]],
                       capture_output=True)
        time.sleep(INTERVAL + 0.5)
        d = settled(srv, "devvm down", lambda d: d["peers"]["devvm"]["state"] == "failing")
        dv = d["peers"]["devvm"]
        check(dv["state"] == "failing" and dv["last_failure_via"] == "probe" and dv["error"] and
              dv["last_ok"] and dv["last_failure"] > dv["last_ok"],
              "devvm's sshd down: failing, the error named, the last success kept", dv)
        check(any(w in dv["error"].lower() for w in ("connect", "refused", "port")),
              "the error says what failed: %s" % dv["error"], dv)
        check(d["peers"]["pve"]["state"] == "ok", "the Proxmox host still ok", d["peers"]["pve"])
        r = srv.request("POST", "/api/devvm/triage", body={}, timeout=120)
        d = srv.request("GET", "/api/health/deps").doc
        check(r.status == 502 and d["peers"]["devvm"]["last_failure_via"] == "triage",
              "a failed triage is a devvm failure", d["peers"]["devvm"])

        # --- the rate limit: a reload storm when every peer is due ---
        d = settled(srv, "before the storm")
        p0, qm0, mod0 = d["probes"], qm_status_calls(world), models_calls(world)
        time.sleep(INTERVAL + 0.5)  # every peer is due again
        t0 = time.time()
        got = storm(srv, 15, waves=6, gap=0.25)
        spread = time.time() - t0
        d = settled(srv, "after the storm")
        elapsed = time.time() - t0
        probes, qm1, mod1 = d["probes"] - p0, qm_status_calls(world) - qm0, models_calls(world) - mod0
        bound = 1 + int(elapsed / INTERVAL)  # probes per peer the interval allows
        check(all(r.status == 200 for r, _ in got) and 1 <= probes <= 3 * bound and qm1 <= bound and mod1 <= bound,
              "90 reloads over %.1f s, all answered: %d probes in %.1f s (at most one per peer per %d s; "
              "qm status %d, /v1/models %d)" % (spread, probes, elapsed, INTERVAL, qm1, mod1), d)
        check(qm1 >= 1 and mod1 >= 1, "the due peers were probed once the storm began (host: qm status, "
              "LLM: /v1/models)", (qm1, mod1))

        # --- the LLM goes away ---
        world.mock.kill()
        world.mock.wait()
        time.sleep(INTERVAL + 0.5)
        d = settled(srv, "LLM down", lambda d: d["peers"]["llm"]["state"] == "failing")
        llm = d["peers"]["llm"]
        check(llm["state"] == "failing" and llm["last_failure_via"] == "probe" and llm["last_ok"] and
              any(w in (llm["error"] or "").lower() for w in ("connect", "refused")),
              "the mock LLM gone: llm failing, with the error: %s" % llm["error"], llm)
        t0 = time.time()
        srv.stop()
        check(time.time() - t0 < 6, "stop with probes behind: within 5 s", time.time() - t0)
    finally:
        srv.stop()
        check(not srv.sanitizer_report(), "no sanitizer report", srv.sanitizer_report())


def check_whoami(d):
    users = {"alice": "alice-pw"}
    hp = write(os.path.join(d, "htpasswd"), "alice:%s\n" % crypt_hash("alice-pw", "$y$"))
    cases = [
        ("bearer", "", {"Authorization": "Bearer " + TOKEN}, {"user": "bearer", "method": "bearer"}),
        ("basic", "htpasswd_file = %s" % hp,
         {"Authorization": "Basic " + base64.b64encode(b"alice:" + users["alice"].encode()).decode()},
         {"user": "alice", "method": "basic"}),
        ("proxy", "trusted_proxies = 127.0.0.1/32", {"X-authentik-username": "carol"},
         {"user": "carol", "method": "proxy"}),
        ("none", "", {}, {"user": "anonymous", "method": "none"}),
    ]
    for auth, extra, headers, want in cases:
        srv = Server(config(d, auth=auth, extra=extra))
        try:
            r = srv.request("GET", "/api/whoami", token=None, headers=headers)
            check(r.status == 200 and r.doc == want and r.headers.get("cache-control") == "no-store",
                  "GET /api/whoami with auth = %s: %s" % (auth, want), r)
            if auth != "none":
                r = srv.request("GET", "/api/whoami", token=None)
                check(r.status == 401, "GET /api/whoami without credentials (auth = %s): 401" % auth, r)
        finally:
            srv.stop()


def check_audit(d):
    srv = Server(config(d, auth="bearer"))
    try:
        srv.request("POST", "/api/session", body={})
        srv.request("POST", "/api/session", body={}, headers={"Origin": "http://evil.example"})
        srv.request("POST", "/api/pve/destroy", body={})
        srv.request("GET", "/api/sessions", token="wrong-token-wrong-token")
        srv.request("POST", "/api/session", body={})
        everything = srv.request("GET", "/api/audit").doc
        actions = [x["action"] for x in everything]
        check(actions[:5] == ["session.create", "auth.failure", "pve.unknown", "csrf.refused", "session.create"],
              "GET /api/audit: every record, newest first", actions)

        def kinds(q):
            r = srv.request("GET", "/api/audit?" + q)
            return r, [x["action"] for x in (r.doc or [])] if r.status == 200 else None

        r, a = kinds("kind=pve")
        check(r.status == 200 and a == ["pve.unknown"], "kind=pve: the pve.* records only", a)
        r, a = kinds("kind=auth,csrf")
        check(a == ["auth.failure", "csrf.refused"], "kind=auth,csrf: both kinds, newest first", a)
        r, a = kinds("kind=auth%2Ccsrf&limit=1")
        check(a == ["auth.failure"], "kind (comma encoded) with limit=1: the newest of them", a)
        r, a = kinds("kind=session.create")
        check(a == ["session.create", "session.create"], "kind=session.create: an exact action", a)
        r, a = kinds("kind=sess")
        check(a == [], "kind=sess: a kind is a whole word, not a prefix of one", a)
        r, a = kinds("limit=2")
        check(a == actions[:2], "limit=2 alone: the two newest", a)
        for q, field in (("kind=PVE", "kind"), ("kind=", "kind"), ("kind=a,,b", "kind"), ("kind=%zz", "query"),
                         ("kind=" + ",".join("k%d" % i for i in range(9)), "kind"), ("limit=0&kind=pve", "limit"),
                         ("who=alice", "query"), ("kind", "query")):
            r = srv.request("GET", "/api/audit?" + q)
            check(r.status == 400 and r.doc and r.doc.get("field") == field, "audit ?%s: 400 naming %s" % (q, field),
                  r)
        r = srv.request("GET", "/api/pve/verbs")
        table = {v["name"]: v for v in (r.doc or {}).get("table", [])}
        check(list(table) == r.doc["verbs"] and all(table[v]["mutating"] == (v in r.doc["mutating"]) for v in table) and
              all(table[v]["summary"] for v in table) and "frozen VM" in table["cycle"]["summary"] and
              table["status"]["mutating"] is False,
              "GET /api/pve/verbs: a table with each verb's mutating flag and what it does (cycle: the recovery "
              "action for a frozen VM)", r.doc)
    finally:
        srv.stop()
        check(not srv.sanitizer_report(), "no sanitizer report", srv.sanitizer_report())


base = tmpdir()
for sub in ("whoami", "audit", "world"):
    os.makedirs(os.path.join(base, sub))
check_whoami(os.path.join(base, "whoami"))
check_audit(os.path.join(base, "audit"))

world_dir = os.path.join(base, "world")
world = World(world_dir, sys.argv[1], scenario=os.path.join(SOURCE, "tests", "fixtures", "web", "deps.json"))
try:
    check_sources(world, world_dir)
    check_failures(world, world_dir)
finally:
    world.stop()
finish()
