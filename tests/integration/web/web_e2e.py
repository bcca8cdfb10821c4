"""breakglass-web with its real peers: the verbs through the real
breakglass-pve under sshd (qm stand-in, a real QEMU), the triage over a
real sshd, an agent turn against the mock LLM followed over SSE by
clients that come and go, an approval through the API, a restart."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from webharness import SOURCE, SSE, Server, check, config, finish, metric, tmpdir  # noqa: E402
from world import World  # noqa: E402

pve_bin = sys.argv[1]
base = tmpdir()
world = World(base, pve_bin, scenario=os.path.join(SOURCE, "tests", "fixtures", "web", "turn.json"))
srv = None
try:
    conf = config(base, auth="bearer", **world.conf_args(provider="anthropic"))
    env = {"ANTHROPIC_API_KEY": "sk-test-key"}
    srv = Server(conf, env=env)

    # --- verbs through the real forced command ---
    r = srv.request("POST", "/api/pve/status", body={})
    res = (r.doc or {}).get("result") or {}
    check(r.status == 200 and r.doc["exit_code"] == 0 and r.doc["verb"] == "status" and
          r.doc["rejected"] is False and res.get("status") == "stopped" and "status: stopped" in r.doc["stdout"],
          "POST /api/pve/status: 200, exit 0, the VM stopped", r)
    before = world.qm_calls()
    r = srv.request("POST", "/api/pve/destroy", body={})
    check(r.status == 400 and world.qm_calls() == before, "unknown verb: 400, the stand-in's record shows nothing ran", r)

    # A second mutating verb while one runs: 409 naming who holds it. Two
    # at once (a verb with its forensics takes most of a second here).
    results = []
    gate = threading.Barrier(2)

    def run():
        gate.wait()
        results.append(srv.request("POST", "/api/pve/stop", body={}, timeout=120))

    ts = [threading.Thread(target=run) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    busy = [x for x in results if x.status == 409]
    ran = [x for x in results if x.status != 409]
    check(len(busy) == 1 and "bearer" in busy[0].doc.get("holder", "") and busy[0].doc.get("verb") == "stop",
          "a second mutating verb while one runs: 409 with the holder", results)
    check(len(ran) == 1 and ran[0].status in (200, 502) and ran[0].doc.get("result"),
          "the first verb ran to its end", results)

    # --- triage over the devvm's sshd ---
    r = srv.request("POST", "/api/devvm/triage", body={}, timeout=120)
    check(r.status == 200 and isinstance(r.doc.get("sections"), list) and "findings" in r.doc,
          "POST /api/devvm/triage: the bundle as JSON", r)

    # --- an agent turn, followed by clients that come and go ---
    sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
    a = SSE(srv.port, sid)
    check(a.head() == 200, "client A attached", a.status)
    _, caught = a.events_until_caught_up()
    r = srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "check the devvm"})
    check(r.status == 202, "POST prompt: 202", r)
    seen = []
    while True:
        f = a.frame(20)
        if f is None:
            break
        if "data" in f:
            seen.append(json.loads(f["data"]))
            if seen[-1]["kind"] == "tool":
                break
    check(seen and seen[0]["kind"] == "user" and seen[0]["by"] == "bearer" and seen[-1]["kind"] == "tool",
          "client A sees the turn live: user, text, tool", seen)
    a.close()  # the client leaves in the middle of the turn
    r = srv.request("POST", "/api/session/%s/prompt" % sid, body={"prompt": "again"})
    check(r.status == 409, "a second prompt while the turn runs: 409", r)
    b = SSE(srv.port, sid)
    b.head()
    events = []
    approval = None
    approved_request = (None, None)
    deadline = time.time() + 90
    while time.time() < deadline:
        f = b.frame(30)
        if f is None:
            break
        if "data" not in f or "id" not in f:
            continue
        e = json.loads(f["data"])
        events.append(e)
        if e["kind"] == "approval_required" and not approval:
            approval = srv.request("POST", "/api/session/%s/approve" % sid,
                                   body={"nonce": e["nonce"], "verb": e["verb"], "approved": True})
            approved_request = (e["nonce"], e["verb"])
        if e["kind"] == "turn_end":
            break
    ids = [e["id"] for e in events]
    kinds = [e["kind"] for e in events]
    outputs = " ".join(str(e.get("output", "")) for e in events if e["kind"] == "tool_result")
    check(ids == list(range(len(ids))) and "web-e2e-42" in outputs,
          "client B gets the whole turn replayed, in order, including what ran after A left", kinds)
    check(approval is not None and approval.status == 200 and approved_request[1] == "start" and
          approval.doc == {"nonce": approved_request[0], "verb": "start", "approved": True},
          "POST approve: 200 {nonce, verb, approved}", approval)
    check("approval" in kinds and kinds[-1] == "turn_end" and world.qemu_pid() is not None,
          "the approved verb ran: a real QEMU runs", kinds)
    b.close()
    c = SSE(srv.port, sid, last_id=ids[-3])
    c.head()
    got, caught = c.events_until_caught_up()
    check(caught and [e["id"] for e in got] == ids[-2:], "Last-Event-ID resumes with nothing lost or repeated",
          [e["id"] for e in got])
    c.close()
    audit = srv.request("GET", "/api/audit?limit=200").doc
    actions = [x["action"] for x in audit]
    check("agent.prompt" in actions and "approval" in actions and "pve.inspect" in actions and
          "pve.mutate" in actions and "devvm.triage" in actions, "the audit has every action", actions)
    check(metric(srv, "breakglass_agent_turns_total") == "breakglass_agent_turns_total 1" and
          metric(srv, "breakglass_agent_tool_calls_total") == "breakglass_agent_tool_calls_total 2" and
          metric(srv, "breakglass_agent_approvals_total") == "breakglass_agent_approvals_total 1",
          "/metrics counts the turn, its tool calls and the approval",
          [metric(srv, n) for n in ("breakglass_agent_turns_total", "breakglass_agent_tool_calls_total")])
    rc = srv.stop()
    check(rc == 0, "SIGTERM: exit 0", rc)
    srv = Server(conf, env=env)
    r = srv.request("GET", "/api/sessions")
    mine = [s for s in r.doc["sessions"] if s["id"] == sid]
    check(mine and mine[0]["title"] == "check the devvm" and mine[0]["busy"] is False,
          "restart: the session is back, titled by its first prompt", r)
    d = SSE(srv.port, sid)
    d.head()
    got, caught = d.events_until_caught_up()
    check(caught and [e["id"] for e in got] == ids, "restart: the events replay as before", len(got))
    d.close()
finally:
    if srv:
        srv.stop()
    world.stop()
finish()
