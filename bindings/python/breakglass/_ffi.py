"""Every ctypes prototype of the bindings, in one place.

The C API is the contract (include/breakglass/*.h); this module mirrors
the functions and structs the package uses and nothing else. When a C
signature changes, this file is the only one to edit.

The library is loaded once, from $BREAKGLASS_LIBRARY when set (a path, for
tests against a build tree), else the installed soname.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_longlong, c_size_t, c_uint, c_void_p)

SONAME = "libbreakglass.so.1"

_path = os.environ.get("BREAKGLASS_LIBRARY") or SONAME
try:
    lib = ctypes.CDLL(_path)
except OSError as e:  # pragma: no cover - depends on the machine
    raise ImportError("breakglass: cannot load %s (%s): install libbreakglass1, or set BREAKGLASS_LIBRARY "
                      "to the library's path" % (_path, e)) from e


def _fn(name: str, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


# ---- opaque handles ------------------------------------------------------
bg_config_p = c_void_p
bg_secret_p = c_void_p
bg_ssh_p = c_void_p
bg_triage_p = c_void_p
bg_session_store_p = c_void_p
bg_session_p = c_void_p
bg_agent_p = c_void_p


# ---- common.h ------------------------------------------------------------
class bg_error(Structure):
    _fields_ = [("code", c_int), ("message", c_char_p)]


bg_strerror = _fn("bg_strerror", c_char_p, c_int)
bg_error_last = _fn("bg_error_last", POINTER(bg_error))
bg_error_clear = _fn("bg_error_clear", None)
bg_version = _fn("bg_version", c_char_p)

# No binding takes a library-allocated string yet (the *_to_json
# functions): when one does, free it with bg_free() once the API has it.


# ---- config.h ------------------------------------------------------------
BG_CONFIG_CLIENT = 1
BG_CONFIG_PVE = 2
bg_config_visit_fn = CFUNCTYPE(c_int, c_char_p, c_char_p, c_char_p, c_char_p, c_void_p)

bg_config_new = _fn("bg_config_new", c_int, POINTER(bg_config_p), c_int)
bg_config_load_file = _fn("bg_config_load_file", c_int, bg_config_p, c_char_p, c_int)
bg_config_load_string = _fn("bg_config_load_string", c_int, bg_config_p, c_char_p, c_char_p, c_size_t)
bg_config_load_env = _fn("bg_config_load_env", c_int, bg_config_p, c_void_p)
bg_config_set = _fn("bg_config_set", c_int, bg_config_p, c_char_p, c_char_p, c_char_p, c_char_p)
bg_config_validate = _fn("bg_config_validate", c_int, bg_config_p)
bg_config_load = _fn("bg_config_load", c_int, POINTER(bg_config_p), c_int, c_char_p)
bg_config_get_kind = _fn("bg_config_get_kind", c_int, bg_config_p)
bg_config_get = _fn("bg_config_get", c_char_p, bg_config_p, c_char_p, c_char_p)
bg_config_origin = _fn("bg_config_origin", c_char_p, bg_config_p, c_char_p, c_char_p)
bg_config_foreach = _fn("bg_config_foreach", c_int, bg_config_p, bg_config_visit_fn, c_void_p)
bg_config_free = _fn("bg_config_free", None, bg_config_p)

# ---- secret.h ------------------------------------------------------------
bg_secret_new = _fn("bg_secret_new", c_int, POINTER(bg_secret_p), c_char_p, c_size_t)
bg_secret_from_file = _fn("bg_secret_from_file", c_int, POINTER(bg_secret_p), c_char_p)
bg_secret_from_env = _fn("bg_secret_from_env", c_int, POINTER(bg_secret_p), c_char_p)
bg_secret_free = _fn("bg_secret_free", None, bg_secret_p)

# ---- ssh.h ---------------------------------------------------------------
BG_SSH_STDOUT = 1
BG_SSH_STDERR = 2
bg_ssh_output_fn = CFUNCTYPE(c_int, c_int, POINTER(ctypes.c_char), c_size_t, c_void_p)

BG_SSH_EXEC_OPTIONS_VERSION = 1


class bg_ssh_exec_options(Structure):
    _fields_ = [("version", c_uint), ("timeout_s", c_int), ("remote_timeout", c_int), ("output_cap", c_size_t),
                ("on_output", bg_ssh_output_fn), ("payload", c_void_p)]


class bg_ssh_result(Structure):
    _fields_ = [("exit_code", c_int), ("exit_signal", c_char_p), ("timed_out", c_int),
                ("out", POINTER(ctypes.c_char)), ("out_len", c_size_t), ("out_dropped", c_size_t),
                ("err", POINTER(ctypes.c_char)), ("err_len", c_size_t), ("err_dropped", c_size_t),
                ("elapsed_ms", c_longlong)]


bg_ssh_key_load = _fn("bg_ssh_key_load", c_int, POINTER(bg_secret_p), POINTER(c_void_p), bg_config_p, c_char_p,
                      c_uint)
bg_ssh_new_from_config = _fn("bg_ssh_new_from_config", c_int, POINTER(bg_ssh_p), bg_config_p, c_char_p,
                             bg_secret_p)
bg_ssh_connect = _fn("bg_ssh_connect", c_int, bg_ssh_p)
bg_ssh_host_key_fingerprint = _fn("bg_ssh_host_key_fingerprint", c_char_p, bg_ssh_p)
bg_ssh_exec_options_init = _fn("bg_ssh_exec_options_init", c_int, POINTER(bg_ssh_exec_options), c_uint)
bg_ssh_exec = _fn("bg_ssh_exec", c_int, POINTER(bg_ssh_result), bg_ssh_p, c_char_p, POINTER(bg_ssh_exec_options))
bg_ssh_result_clear = _fn("bg_ssh_result_clear", None, POINTER(bg_ssh_result))
bg_ssh_cancel = _fn("bg_ssh_cancel", None, bg_ssh_p)
bg_ssh_free = _fn("bg_ssh_free", None, bg_ssh_p)


# ---- pve.h ---------------------------------------------------------------
class bg_pve_verb(Structure):
    _fields_ = [("name", c_char_p), ("mutating", c_int), ("summary", c_char_p)]


class bg_pve_step(Structure):
    _fields_ = [("name", c_char_p), ("ok", c_int), ("elapsed_ms", c_longlong), ("detail", c_char_p)]


class bg_pve_result(Structure):
    _fields_ = [("verb", c_char_p), ("exit_code", c_int), ("rejected", c_int), ("ok", c_int), ("status", c_char_p),
                ("vmid", c_char_p), ("forensics_id", c_char_p), ("verdict", c_char_p),
                ("recommended_verb", c_char_p), ("steps", POINTER(bg_pve_step)), ("nsteps", c_size_t),
                ("elapsed_ms", c_longlong), ("stdout_text", c_char_p), ("stderr_text", c_char_p),
                ("json", c_char_p)]


bg_pve_verbs = _fn("bg_pve_verbs", POINTER(bg_pve_verb), POINTER(c_size_t))
bg_pve_run = _fn("bg_pve_run", c_int, POINTER(bg_pve_result), bg_ssh_p, c_char_p, c_int, bg_ssh_output_fn, c_void_p)
bg_pve_result_clear = _fn("bg_pve_result_clear", None, POINTER(bg_pve_result))


# ---- triage.h ------------------------------------------------------------
class bg_triage_section(Structure):
    _fields_ = [("name", c_char_p), ("ok", c_int), ("output", c_char_p), ("error", c_char_p)]


class bg_triage_finding(Structure):
    _fields_ = [("rule", c_char_p), ("severity", c_int), ("summary", c_char_p), ("evidence", c_char_p),
                ("culprit", c_char_p)]


bg_severity_name = _fn("bg_severity_name", c_char_p, c_int)
bg_triage_run = _fn("bg_triage_run", c_int, POINTER(bg_triage_p), bg_ssh_p, c_int)
bg_triage_section_count = _fn("bg_triage_section_count", c_size_t, bg_triage_p)
bg_triage_section_at = _fn("bg_triage_section_at", POINTER(bg_triage_section), bg_triage_p, c_size_t)
bg_triage_finding_count = _fn("bg_triage_finding_count", c_size_t, bg_triage_p)
bg_triage_finding_at = _fn("bg_triage_finding_at", POINTER(bg_triage_finding), bg_triage_p, c_size_t)
bg_triage_free = _fn("bg_triage_free", None, bg_triage_p)

# ---- session.h -----------------------------------------------------------
bg_session_event_fn = CFUNCTYPE(c_int, c_longlong, c_int, POINTER(ctypes.c_char), c_size_t, c_void_p)

bg_event_kind_name = _fn("bg_event_kind_name", c_char_p, c_int)
bg_session_store_open = _fn("bg_session_store_open", c_int, POINTER(bg_session_store_p), c_char_p, c_int)
bg_session_store_free = _fn("bg_session_store_free", None, bg_session_store_p)
bg_session_create = _fn("bg_session_create", c_int, POINTER(bg_session_p), bg_session_store_p)
bg_session_open = _fn("bg_session_open", c_int, POINTER(bg_session_p), bg_session_store_p, c_char_p)
bg_session_release = _fn("bg_session_release", None, bg_session_p)
bg_session_id = _fn("bg_session_id", c_char_p, bg_session_p)
bg_session_last_id = _fn("bg_session_last_id", c_longlong, bg_session_p)
bg_session_busy = _fn("bg_session_busy", c_int, bg_session_p)
bg_session_read = _fn("bg_session_read", c_int, bg_session_p, c_longlong, c_int, bg_session_event_fn, c_void_p)

# ---- agent.h -------------------------------------------------------------
bg_agent_approve_fn = CFUNCTYPE(c_int, c_char_p, c_char_p, c_char_p, POINTER(c_char_p), c_void_p)

BG_AGENT_OPTIONS_VERSION = 1


class bg_agent_options(Structure):
    _fields_ = [("version", c_uint), ("audit", c_void_p), ("ssh_key", bg_secret_p), ("api_key", bg_secret_p),
                ("approve", bg_agent_approve_fn), ("approve_payload", c_void_p), ("approval_timeout_s", c_int),
                ("provider", c_char_p)]


bg_agent_options_init = _fn("bg_agent_options_init", c_int, POINTER(bg_agent_options), c_uint)
bg_agent_new = _fn("bg_agent_new", c_int, POINTER(bg_agent_p), bg_config_p, bg_session_p,
                   POINTER(bg_agent_options))
bg_agent_run = _fn("bg_agent_run", c_int, bg_agent_p, c_char_p, c_char_p)
bg_agent_start = _fn("bg_agent_start", c_int, bg_agent_p, c_char_p, c_char_p)
bg_agent_wait = _fn("bg_agent_wait", c_int, bg_agent_p)
bg_agent_cancel = _fn("bg_agent_cancel", c_int, bg_agent_p)
bg_agent_decide = _fn("bg_agent_decide", c_int, bg_agent_p, c_char_p, c_char_p, c_int, c_char_p)
bg_agent_free = _fn("bg_agent_free", None, bg_agent_p)

# Every C function bound above, for the report and a test that checks each
# one is exported by the loaded library.
BOUND = sorted(name for name, v in list(globals().items())
               if name.startswith("bg_") and isinstance(v, ctypes._CFuncPtr))
