"""An agent turn (offline provider: the rule-based playbook) over the real
peers: the VM is stopped, so the playbook asks for `pve start`, a mutating
verb that needs approval. The approval callback decides."""
import json


def run_turn(bg, lab, decision):
    asked, events = [], []

    def approve(step):
        asked.append(step)
        return decision

    with bg.Config.from_string(lab.config_text(pve_mutations="confirm")) as cfg, \
            bg.Secret.ssh_key(cfg) as key, bg.SessionStore() as store, store.create() as session, \
            bg.Agent(cfg, session, key, approve=approve) as agent:
        got = agent.run("the devvm does not answer", by="pytest", on_event=events.append)
        assert not agent.callback_errors
        log = session.events()
    return asked, events, got, log


def test_denied_start_does_not_run(lab, bg):
    before = lab.qm_calls()
    asked, events, got, log = run_turn(bg, lab, (False, "pytest-operator"))
    assert [a.name for a in asked] == ["pve"] and asked[0].input.get("verb") == "start"
    kinds = [e.kind for e in events]
    assert kinds[0] == "user" and kinds[-1] == "turn_end"
    assert [e.id for e in events] == [e.id for e in got] == [e.id for e in log]
    approvals = [e for e in events if e.kind == "approval"]
    assert approvals and approvals[0]["approved"] is False and approvals[0]["by"] == "pytest-operator"
    assert "approval_required" in kinds
    assert not any(c.startswith("start") for c in lab.qm_calls()[len(before):])
    assert lab.qemu_pid() is None


def test_approved_start_runs(lab, bg):
    asked, events, _, _ = run_turn(bg, lab, True)
    assert asked and asked[0].input.get("verb") == "start"
    approvals = [e for e in events if e.kind == "approval"]
    assert approvals and approvals[0]["approved"] is True
    results = [e for e in events if e.kind == "tool_result"]
    assert results and json.dumps(results[-1].data)
    assert "start 102" in lab.qm_calls()
    assert lab.qemu_pid(), "the approved start left a running QEMU"


def test_failing_approval_callback_denies(lab, bg):
    # The VM runs now (previous test): stop it first so the playbook asks again.
    with bg.Config.from_string(lab.config_text()) as cfg, bg.Secret.ssh_key(cfg) as key, \
            bg.SSH(cfg, "pve", key) as pve:
        pve.pve("stop")

    def approve(step):
        raise RuntimeError("operator unreachable")

    with bg.Config.from_string(lab.config_text()) as cfg, bg.Secret.ssh_key(cfg) as key, \
            bg.SessionStore() as store, store.create() as session, \
            bg.Agent(cfg, session, key, approve=approve) as agent:
        events = agent.run("the devvm does not answer")
        assert agent.callback_errors and isinstance(agent.callback_errors[0], RuntimeError)
    approvals = [e for e in events if e.kind == "approval"]
    assert approvals and approvals[0]["approved"] is False
    assert lab.qemu_pid() is None
