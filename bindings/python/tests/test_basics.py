"""The bindings without a peer: the library, configuration, errors, handles."""
import ctypes
import os
import re

import pytest

import breakglass
from breakglass import _ffi


def test_version_is_the_loaded_library():
    v = breakglass.version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)
    expected = os.environ.get("BG_PROJECT_VERSION")
    if expected:
        assert v == expected


def test_loaded_from_the_library_asked_for():
    want = os.environ.get("BREAKGLASS_LIBRARY")
    if want:
        assert os.path.samefile(_ffi.lib._name, want)
    else:
        assert _ffi.lib._name == _ffi.SONAME


def test_every_bound_function_is_exported():
    assert len(_ffi.BOUND) > 40
    for name in _ffi.BOUND:
        assert getattr(_ffi.lib, name), name


def test_config_values_and_origins():
    text = "[devvm]\nhost = 10.0.10.10\nport = 2222\n[pve]\nhost = 192.168.1.5\n"
    with breakglass.Config.from_string(text, name="site.conf", overrides={("pve", "port"): "2200"}) as cfg:
        assert cfg.kind == "client"
        assert cfg.get("devvm", "host") == "10.0.10.10"
        assert cfg.get("devvm", "port") == "2222"
        assert cfg.origin("devvm", "port") == "site.conf:3"
        assert cfg.get("devvm", "user") == "breakglass"
        assert cfg.origin("devvm", "user") == "default"
        assert cfg.get("pve", "port") == "2200"
        assert cfg.origin("pve", "port") == "python"
        rows = cfg.items()
        assert ("devvm", "host", "10.0.10.10", "site.conf:2") in rows
        with pytest.raises(KeyError):
            cfg.get("devvm", "nonsense")


def test_config_error_carries_status_and_message():
    with pytest.raises(breakglass.ConfigError) as e:
        breakglass.Config.from_string("[devvm]\nhost = h\nport = x\n", name="bad.conf")
    assert e.value.status == -4
    assert e.value.name == _ffi.bg_strerror(-4).decode()
    assert "bad.conf:3" in e.value.message and "port" in e.value.message
    assert isinstance(e.value, breakglass.BreakglassError)


def test_missing_required_key_is_an_error():
    with pytest.raises(breakglass.ConfigError) as e:
        breakglass.Config.from_string("[devvm]\nport = 22\n", name="x.conf")
    assert "host" in e.value.message


def test_config_file_load(tmp_path):
    p = tmp_path / "pve.conf"
    p.write_text("[vm]\nvmid = 104\n")
    with breakglass.Config.load(str(p), kind="pve") as cfg:
        assert cfg.kind == "pve"
        assert cfg.get("vm", "vmid") == "104"
        assert cfg.origin("vm", "vmid") == "%s:2" % p
    with pytest.raises(breakglass.BreakglassError):
        breakglass.Config.load(str(tmp_path / "absent.conf"), kind="pve")


def test_closed_handle_refuses_use():
    cfg = breakglass.Config.from_string("[devvm]\nhost = h\n[pve]\nhost = p\n")
    cfg.close()
    cfg.close()  # twice is fine
    with pytest.raises(ctypes.ArgumentError, match="Config is closed"):
        cfg.get("devvm", "host")


def test_secret_round_trip(tmp_path):
    with breakglass.Secret.from_bytes(b"abc") as s:
        assert s._ptr
    p = tmp_path / "k"
    p.write_bytes(b"secret")
    with breakglass.Secret.from_file(str(p)) as s:
        assert s._ptr
    with pytest.raises(breakglass.BreakglassError):
        breakglass.Secret.from_file(str(tmp_path / "absent"))
    os.environ["BG_PY_TEST_SECRET"] = "s3cret"
    with breakglass.Secret.from_env("BG_PY_TEST_SECRET"):
        getenv = ctypes.CDLL(None).getenv
        getenv.restype = ctypes.c_char_p
        assert getenv(b"BG_PY_TEST_SECRET") is None  # read once, then gone


def test_verb_table():
    verbs = {v.name: v for v in breakglass.pve_verbs()}
    assert set(verbs) == {"status", "forensics", "reset", "stop", "start", "cycle"}
    assert verbs["cycle"].mutating and not verbs["status"].mutating


def test_rsa_key_is_refused_with_a_reason(tmp_path):
    import subprocess
    k = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(k)], check=True)
    text = "[devvm]\nhost = 127.0.0.1\n[pve]\nhost = 127.0.0.1\n[ssh]\nkey_file = %s\n" % k
    with breakglass.Config.from_string(text) as cfg:
        with pytest.raises(breakglass.BreakglassError) as e:
            with breakglass.Secret.ssh_key(cfg) as key:
                breakglass.SSH(cfg, "devvm", key)
    assert e.value.status == -16 and "ed25519" in e.value.message
