"""exec and triage on the devvm: a real sshd on loopback."""
import threading
import time

import pytest


def test_exec_status_and_streams(lab, bg, cfg, key):
    with bg.SSH(cfg, "devvm", key) as devvm:
        r = devvm.exec("echo hello; echo oops >&2; exit 7")
        assert r.exit_code == 7
        assert r.stdout == b"hello\n" and r.stderr == b"oops\n"
        assert devvm.exec("id -un").text.strip() == lab.devvm["SSHD_USER"]
        assert devvm.host_key_fingerprint == lab.devvm["SSHD_HOST_KEY_FPR"]


def test_exec_output_callback_sees_output_as_it_comes(cfg, bg, key):
    seen = []
    with bg.SSH(cfg, "devvm", key) as devvm:
        r = devvm.exec("echo one; echo two >&2", on_output=lambda stream, data: seen.append((stream, data)))
    assert r.exit_code == 0
    assert b"".join(d for s, d in seen if s == "stdout") == b"one\n"
    assert b"".join(d for s, d in seen if s == "stderr") == b"two\n"


def test_exec_callback_aborts_and_exceptions_propagate(cfg, bg, key):
    with bg.SSH(cfg, "devvm", key) as devvm:
        with pytest.raises(bg.CancelledError):
            devvm.exec("echo x; sleep 20", on_output=lambda s, d: True)

        def boom(stream, data):
            raise KeyError("from the callback")

        with pytest.raises(KeyError):
            devvm.exec("echo x; sleep 20", on_output=boom)
        assert devvm.exec("echo again").text == "again\n"  # the handle still works


def test_exec_timeout(cfg, bg, key):
    t0 = time.monotonic()
    with bg.SSH(cfg, "devvm", key) as devvm:
        try:
            r = devvm.exec("echo started; sleep 30", timeout=2)
        except bg.TimeoutError as e:
            r = e.result
            assert e.status == -5
    assert r.timed_out and r.stdout == b"started\n"
    assert time.monotonic() - t0 < 25


def test_cancel_from_another_thread(cfg, bg, key):
    with bg.SSH(cfg, "devvm", key) as devvm:
        devvm.connect()
        started = threading.Event()
        timer = threading.Thread(target=lambda: (started.wait(10), devvm.cancel()))
        timer.start()
        with pytest.raises(bg.CancelledError):
            devvm.exec("echo go; sleep 30", on_output=lambda s, d: started.set())
        timer.join()


def test_host_key_mismatch(lab, bg):
    text = lab.config_text().replace(lab.devvm["SSHD_HOST_KEY_FPR"], "SHA256:" + "A" * 43)
    with bg.Config.from_string(text) as cfg, bg.Secret.ssh_key(cfg) as key, bg.SSH(cfg, "devvm", key) as devvm:
        with pytest.raises(bg.HostKeyError) as e:
            devvm.exec("true")
        assert e.value.status == -8 and "SHA256:" in e.value.message


def test_unreachable_target(lab, bg):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    text = lab.config_text().replace("port = %s" % lab.devvm["SSHD_PORT"], "port = %d" % port, 1)
    with bg.Config.from_string(text) as cfg, bg.Secret.ssh_key(cfg) as key, bg.SSH(cfg, "devvm", key) as devvm:
        with pytest.raises(bg.ConnectError) as e:
            devvm.exec("true")
        assert str(port) in e.value.message or "127.0.0.1" in e.value.message


def test_triage_of_this_machine(cfg, bg, key):
    with bg.SSH(cfg, "devvm", key) as devvm:
        t = devvm.triage(timeout=90)
    names = [s.name for s in t.sections]
    assert names and "uptime" in names and "memory" in names
    assert t.section("memory").ok and "MemTotal:" in t.section("memory").output
    assert "procs" in names and t.section("procs").ok and "threads_max: " in t.section("procs").output
    for f in t.findings:
        assert f.severity in ("info", "warn", "critical") and f.summary
        assert f.culprit is None or f.culprit.split(":", 1)[0] in ("unit", "pid", "mount", "file")
