"""PVE verbs through the real forced command, driving a real QEMU."""
import pytest


def test_verbs_change_the_vm(lab, bg, cfg, key):
    with bg.SSH(cfg, "pve", key) as pve:
        r = pve.pve("status")
        assert r.ok and r.exit_code == 0 and r.status == "stopped" and r.vmid == "102"
        assert lab.qemu_pid() is None

        progress = []
        r = pve.pve("start", on_output=lambda s, d: progress.append(d))
        assert r.ok and r.status == "running"
        assert progress, "the output callback saw the verb's output"
        pid = lab.qemu_pid()
        assert pid, "a real QEMU runs"
        assert any(s.name == "forensics" for s in r.steps) and r.forensics_id
        assert r.document and r.document.get("verb") == "start"

        r = pve.pve("stop")
        assert r.ok and r.status == "stopped" and lab.qemu_pid() is None
    calls = lab.qm_calls()
    assert "start 102" in calls and any(c.startswith("stop 102") for c in calls)


def test_unknown_verb_never_leaves_the_process(lab, bg, cfg, key):
    before = lab.qm_calls()
    with bg.SSH(cfg, "pve", key) as pve:
        with pytest.raises(bg.BreakglassError) as e:
            pve.pve("destroy")
    assert e.value.status == -3  # BG_EINVAL
    assert "destroy" in e.value.message
    assert lab.qm_calls() == before


def test_rejected_by_the_host(lab, bg, cfg, key):
    # The host allows only status: start is refused there (exit 2).
    with open(lab.pve_conf) as f:
        conf = f.read()
    with open(lab.pve_conf, "w") as f:
        f.write(conf + "[verbs]\nallow = status\n")
    try:
        before = lab.qm_calls()
        with bg.SSH(cfg, "pve", key) as pve:
            with pytest.raises(bg.RejectedError) as e:
                pve.pve("start")
            assert e.value.status == -10 and e.value.result.rejected and e.value.result.exit_code == 2
            r = pve.pve("start", check=False)
            assert r.rejected and not r.ok
        assert lab.qm_calls() == before, "a rejected request runs no qm"
    finally:
        with open(lab.pve_conf, "w") as f:
            f.write(conf)
