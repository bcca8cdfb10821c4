"""breakglass: Python bindings for libbreakglass (ctypes over the C API).

    import breakglass

    with breakglass.Config.load("/etc/breakglass/breakglass.conf") as cfg, \\
         breakglass.Secret.ssh_key(cfg) as key, \\
         breakglass.SSH(cfg, "pve", key) as pve:
        result = pve.pve("status")
        print(result.status)

Every failure of the library raises BreakglassError (or a subclass) with
the bg_status code (`.status`, `.name`) and the library's message, which
says what failed and what to do. Handles are context managers; close()
may also be called directly, and twice.

The prototypes live in breakglass._ffi; the library is loaded from
$BREAKGLASS_LIBRARY when set, else the installed libbreakglass.so.1.
"""
from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from . import _ffi

__all__ = [
    "version", "BreakglassError", "ConfigError", "TimeoutError", "ConnectError", "AuthError", "HostKeyError",
    "RejectedError", "BusyError", "FailedError", "CancelledError", "DeniedError", "Config", "Secret", "SSH",
    "ExecResult", "PveVerb", "PveStep", "PveResult", "pve_verbs", "Triage", "TriageSection", "TriageFinding",
    "SessionStore", "Session", "Event", "Agent", "Approval",
]

# ---- errors ----------------------------------------------------------------


class BreakglassError(Exception):
    """A libbreakglass failure: `status` is the bg_status code (negative),
    `name` its short description, `message` the library's words."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.name = _ffi.bg_strerror(status).decode()
        self.message = message
        super().__init__("%s (%s, %d)" % (message or self.name, self.name, status))


class ConfigError(BreakglassError):
    """BG_ECONFIG: the message names the file, the line and the key."""


class TimeoutError(BreakglassError):  # noqa: A001 - the library's name for it
    """BG_ETIMEOUT"""


class ConnectError(BreakglassError):
    """BG_ECONNECT"""


class AuthError(BreakglassError):
    """BG_EAUTH"""


class HostKeyError(BreakglassError):
    """BG_EHOSTKEY"""


class RejectedError(BreakglassError):
    """BG_EREJECTED: the Proxmox host refused the request."""


class BusyError(BreakglassError):
    """BG_EBUSY: another mutating verb holds the VM's lock."""


class FailedError(BreakglassError):
    """BG_EFAILED: the verb ran but did not reach its goal."""


class CancelledError(BreakglassError):
    """BG_ECANCELLED"""


class DeniedError(BreakglassError):
    """BG_EDENIED"""


_ERRORS = {-4: ConfigError, -5: TimeoutError, -6: ConnectError, -7: AuthError, -8: HostKeyError,
           -10: RejectedError, -11: BusyError, -12: FailedError, -13: CancelledError, -19: DeniedError}


def _error(rc: int, extra: Optional[Dict[str, Any]] = None) -> BreakglassError:
    last = _ffi.bg_error_last().contents
    msg = last.message.decode("utf-8", "replace") if last.message and last.code == rc else ""
    err = _ERRORS.get(rc, BreakglassError)(rc, msg)
    for k, v in (extra or {}).items():
        setattr(err, k, v)
    return err


def _check(rc: int) -> int:
    if rc < 0:
        raise _error(rc)
    return rc


def _b(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode()


def _s(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8", "replace")


def version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return _ffi.bg_version().decode()


class _Handle:
    """An owned C handle, freed by close() or at the end of a with block."""
    _free: Callable[[Any], None]

    def __init__(self, ptr: ctypes.c_void_p):
        self._ptr = ptr

    @property
    def _as_parameter_(self) -> ctypes.c_void_p:
        if not self._ptr:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._ptr

    def close(self) -> None:
        if self._ptr:
            type(self)._free(self._ptr)
            self._ptr = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---- configuration ---------------------------------------------------------

_KINDS = {"client": _ffi.BG_CONFIG_CLIENT, "pve": _ffi.BG_CONFIG_PVE}


class Config(_Handle):
    """A loaded configuration: breakglass.conf ("client") or pve.conf ("pve")."""
    _free = staticmethod(_ffi.bg_config_free)

    @classmethod
    def load(cls, path: Optional[str] = None, kind: str = "client") -> "Config":
        """Defaults, the file (or the default path, which may be missing),
        the environment (client only), validation: as the programs do."""
        out = ctypes.c_void_p()
        _check(_ffi.bg_config_load(ctypes.byref(out), _KINDS[kind], _b(path)))
        return cls(out)

    @classmethod
    def from_string(cls, text: str, kind: str = "client", name: str = "<string>", env: bool = False,
                    overrides: Optional[Dict[Tuple[str, str], str]] = None) -> "Config":
        """INI text as if read from the file `name`; then the environment
        when `env`, then `overrides` {(section, key): value}; validated."""
        out = ctypes.c_void_p()
        _check(_ffi.bg_config_new(ctypes.byref(out), _KINDS[kind]))
        cfg = cls(out)
        try:
            data = text.encode()
            _check(_ffi.bg_config_load_string(cfg, name.encode(), data, len(data)))
            if env:
                _check(_ffi.bg_config_load_env(cfg, None))
            for (section, key), value in (overrides or {}).items():
                _check(_ffi.bg_config_set(cfg, section.encode(), key.encode(), value.encode(), b"python"))
            _check(_ffi.bg_config_validate(cfg))
        except BaseException:
            cfg.close()
            raise
        return cfg

    @property
    def kind(self) -> str:
        k = _ffi.bg_config_get_kind(self)
        return "client" if k == _ffi.BG_CONFIG_CLIENT else "pve"

    def get(self, section: str, key: str) -> str:
        """A key's value as text; KeyError for an unknown key."""
        v = _ffi.bg_config_get(self, section.encode(), key.encode())
        if v is None:
            _ffi.bg_error_clear()
            raise KeyError("%s.%s" % (section, key))
        return v.decode()

    def origin(self, section: str, key: str) -> str:
        """Where the value came from: "default", "FILE:LINE", "environment …"."""
        v = _ffi.bg_config_origin(self, section.encode(), key.encode())
        if v is None:
            raise KeyError("%s.%s" % (section, key))
        return v.decode()

    def items(self) -> List[Tuple[str, str, str, str]]:
        """Every key: (section, key, value, origin), in declaration order."""
        rows: List[Tuple[str, str, str, str]] = []

        def visit(section, key, value, origin, _payload):
            rows.append((section.decode(), key.decode(), (value or b"").decode(), (origin or b"").decode()))
            return 0

        _ffi.bg_config_foreach(self, _ffi.bg_config_visit_fn(visit), None)
        return rows


# ---- secrets ----------------------------------------------------------------


class Secret(_Handle):
    """Bytes in locked memory (an SSH key, an API key), wiped when closed."""
    _free = staticmethod(_ffi.bg_secret_free)

    @classmethod
    def from_bytes(cls, data: Union[bytes, str]) -> "Secret":
        raw = data.encode() if isinstance(data, str) else data
        out = ctypes.c_void_p()
        _check(_ffi.bg_secret_new(ctypes.byref(out), raw, len(raw)))
        return cls(out)

    @classmethod
    def from_file(cls, path: str) -> "Secret":
        out = ctypes.c_void_p()
        _check(_ffi.bg_secret_from_file(ctypes.byref(out), path.encode()))
        return cls(out)

    @classmethod
    def from_env(cls, name: str) -> "Secret":
        """Read and remove the environment variable `name`."""
        out = ctypes.c_void_p()
        _check(_ffi.bg_secret_from_env(ctypes.byref(out), name.encode()))
        return cls(out)

    @classmethod
    def ssh_key(cls, cfg: Config) -> Optional["Secret"]:
        """The client's private key from the configuration ([ssh] key_file,
        else $BREAKGLASS_SSH_KEY); None when there is none (use_agent)."""
        out = ctypes.c_void_p()
        rc = _ffi.bg_ssh_key_load(ctypes.byref(out), None, cfg, None, 0)
        if rc == -15:  # BG_ENOTFOUND: no key configured
            _ffi.bg_error_clear()
            return None
        _check(rc)
        return cls(out)


# ---- SSH: exec, PVE verbs, triage ------------------------------------------

OutputCallback = Callable[[str, bytes], Optional[bool]]


@dataclass
class ExecResult:
    """One command on the devvm."""
    exit_code: int
    stdout: bytes
    stderr: bytes
    exit_signal: Optional[str] = None
    timed_out: bool = False
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    elapsed_ms: int = 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


@dataclass
class PveVerb:
    name: str
    mutating: bool
    summary: str


@dataclass
class PveStep:
    name: str
    ok: bool
    elapsed_ms: int
    detail: Optional[str]


@dataclass
class PveResult:
    """What a verb did on the Proxmox host (breakglass-pve's --json)."""
    verb: Optional[str]
    exit_code: int
    rejected: bool
    ok: bool
    status: Optional[str]
    vmid: Optional[str]
    forensics_id: Optional[str]
    verdict: Optional[str]
    recommended_verb: Optional[str]
    steps: List[PveStep]
    elapsed_ms: int
    stdout: Optional[str]
    stderr: Optional[str]
    document: Optional[Dict[str, Any]] = None


def pve_verbs() -> List[PveVerb]:
    """The verb table (the one the forced command enforces)."""
    n = ctypes.c_size_t()
    table = _ffi.bg_pve_verbs(ctypes.byref(n))
    return [PveVerb(_s(table[i].name) or "", bool(table[i].mutating), _s(table[i].summary) or "")
            for i in range(n.value)]


@dataclass
class TriageSection:
    name: str
    ok: bool
    output: str
    error: Optional[str]


@dataclass
class TriageFinding:
    rule: str
    severity: str
    summary: str
    evidence: str
    # what to act on, or None: "unit:NAME", "pid:PID:COMM", "mount:PATH", "file:PATH"
    culprit: Optional[str] = None


@dataclass
class Triage:
    sections: List[TriageSection] = field(default_factory=list)
    findings: List[TriageFinding] = field(default_factory=list)

    def section(self, name: str) -> Optional[TriageSection]:
        return next((s for s in self.sections if s.name == name), None)


def _output_cb(on_output: Optional[OutputCallback], errors: List[BaseException]):
    """A C output callback that hands (stream, bytes) to on_output; a true
    return aborts; an exception aborts and is raised afterwards."""
    if on_output is None:
        return _ffi.bg_ssh_output_fn()

    def cb(stream, data, length, _payload):
        try:
            stop = on_output("stdout" if stream == _ffi.BG_SSH_STDOUT else "stderr", ctypes.string_at(data, length))
            return -13 if stop else 0
        except BaseException as e:  # noqa: BLE001 - carried over the C frames
            errors.append(e)
            return -13

    return _ffi.bg_ssh_output_fn(cb)


class SSH(_Handle):
    """One SSH target from the configuration: "devvm" or "pve". Nothing
    connects until the first call (or connect())."""
    _free = staticmethod(_ffi.bg_ssh_free)

    def __init__(self, cfg: Config, target: str, key: Optional[Secret] = None):
        out = ctypes.c_void_p()
        _check(_ffi.bg_ssh_new_from_config(ctypes.byref(out), cfg, target.encode(), key))
        super().__init__(out)
        self._refs = (cfg, key)  # both must outlive the handle
        self.target = target

    def connect(self) -> None:
        _check(_ffi.bg_ssh_connect(self))

    @property
    def host_key_fingerprint(self) -> Optional[str]:
        return _s(_ffi.bg_ssh_host_key_fingerprint(self))

    def cancel(self) -> None:
        """Abort the exec in progress (from another thread)."""
        _ffi.bg_ssh_cancel(self)

    def exec(self, command: str, timeout: int = 60, on_output: Optional[OutputCallback] = None,
             output_cap: int = 0, remote_timeout: bool = True) -> ExecResult:
        """Run `command` on the target and wait for it. A non-zero exit
        status is a result, not an error; a timeout raises TimeoutError
        with `.result` holding what came."""
        opts = _ffi.bg_ssh_exec_options()
        _check(_ffi.bg_ssh_exec_options_init(ctypes.byref(opts), _ffi.BG_SSH_EXEC_OPTIONS_VERSION))
        errors: List[BaseException] = []
        opts.timeout_s = timeout
        opts.remote_timeout = 1 if remote_timeout else 0
        opts.output_cap = output_cap
        opts.on_output = _output_cb(on_output, errors)
        res = _ffi.bg_ssh_result()
        try:
            rc = _ffi.bg_ssh_exec(ctypes.byref(res), self, command.encode(), ctypes.byref(opts))
            result = ExecResult(
                exit_code=res.exit_code,
                stdout=ctypes.string_at(res.out, res.out_len) if res.out else b"",
                stderr=ctypes.string_at(res.err, res.err_len) if res.err else b"",
                exit_signal=_s(res.exit_signal), timed_out=bool(res.timed_out), stdout_dropped=res.out_dropped,
                stderr_dropped=res.err_dropped, elapsed_ms=res.elapsed_ms)
        finally:
            _ffi.bg_ssh_result_clear(ctypes.byref(res))
        if errors:
            raise errors[0]
        if rc < 0:
            raise _error(rc, {"result": result})
        return result

    def pve(self, verb: str, timeout: int = 240, on_output: Optional[OutputCallback] = None,
            check: bool = True) -> PveResult:
        """Run a verb through the forced command (this handle must be the
        "pve" target). With `check`, a refused, busy or failed verb raises
        (RejectedError, BusyError, FailedError, …) with `.result`; without,
        the result is returned whatever the exit status (transport errors
        still raise)."""
        errors: List[BaseException] = []
        res = _ffi.bg_pve_result()
        try:
            rc = _ffi.bg_pve_run(ctypes.byref(res), self, verb.encode(), timeout, _output_cb(on_output, errors),
                                 None)
            result = PveResult(
                verb=_s(res.verb), exit_code=res.exit_code, rejected=bool(res.rejected), ok=bool(res.ok),
                status=_s(res.status), vmid=_s(res.vmid), forensics_id=_s(res.forensics_id),
                verdict=_s(res.verdict), recommended_verb=_s(res.recommended_verb),
                steps=[PveStep(_s(res.steps[i].name) or "", bool(res.steps[i].ok), res.steps[i].elapsed_ms,
                               _s(res.steps[i].detail)) for i in range(res.nsteps)],
                elapsed_ms=res.elapsed_ms, stdout=_s(res.stdout_text), stderr=_s(res.stderr_text),
                document=json.loads(res.json) if res.json else None)
        finally:
            _ffi.bg_pve_result_clear(ctypes.byref(res))
        if errors:
            raise errors[0]
        if rc < 0 and (check or result.exit_code < 0):
            raise _error(rc, {"result": result})
        return result

    def triage(self, timeout: int = 120) -> Triage:
        """The devvm triage (this handle must be the "devvm" target)."""
        out = ctypes.c_void_p()
        _check(_ffi.bg_triage_run(ctypes.byref(out), self, timeout))
        try:
            t = Triage()
            for i in range(_ffi.bg_triage_section_count(out)):
                s = _ffi.bg_triage_section_at(out, i).contents
                t.sections.append(TriageSection(_s(s.name) or "", bool(s.ok), _s(s.output) or "", _s(s.error)))
            for i in range(_ffi.bg_triage_finding_count(out)):
                f = _ffi.bg_triage_finding_at(out, i).contents
                t.findings.append(TriageFinding(_s(f.rule) or "", _ffi.bg_severity_name(f.severity).decode(),
                                                _s(f.summary) or "", _s(f.evidence) or "", _s(f.culprit)))
            return t
        finally:
            _ffi.bg_triage_free(out)


# ---- sessions and the agent --------------------------------------------------


@dataclass
class Event:
    """One event of a session: its id, kind ("tool", "text", …) and fields."""
    id: int
    kind: str
    data: Dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


class Session(_Handle):
    """A reference to one session (its event log)."""
    _free = staticmethod(_ffi.bg_session_release)

    @property
    def id(self) -> str:
        return _ffi.bg_session_id(self).decode()

    @property
    def last_id(self) -> int:
        return _ffi.bg_session_last_id(self)

    def read(self, after: int = -1, timeout_ms: int = 0) -> List[Event]:
        """The events after id `after`; waits up to timeout_ms for one."""
        got: List[Event] = []

        def cb(eid, kind, data, length, _payload):
            doc = json.loads(ctypes.string_at(data, length).decode("utf-8", "replace"))
            got.append(Event(eid, _ffi.bg_event_kind_name(kind).decode(), doc))
            return 0

        _check(_ffi.bg_session_read(self, after, timeout_ms, _ffi.bg_session_event_fn(cb), None))
        return got

    def events(self) -> List[Event]:
        return self.read(-1, 0)


class SessionStore(_Handle):
    """The sessions kept in `directory` (None: in memory only)."""
    _free = staticmethod(_ffi.bg_session_store_free)

    def __init__(self, directory: Optional[str] = None, max_sessions: int = 0):
        out = ctypes.c_void_p()
        _check(_ffi.bg_session_store_open(ctypes.byref(out), _b(directory), max_sessions))
        super().__init__(out)

    def create(self) -> Session:
        out = ctypes.c_void_p()
        _check(_ffi.bg_session_create(ctypes.byref(out), self))
        return Session(out)

    def open(self, session_id: str) -> Session:
        out = ctypes.c_void_p()
        _check(_ffi.bg_session_open(ctypes.byref(out), self, session_id.encode()))
        return Session(out)


@dataclass
class Approval:
    """A mutating step the agent wants to take."""
    tool_use_id: str
    name: str
    input: Dict[str, Any]


# An approval callback returns True/False, or (decision, who decided).
ApproveCallback = Callable[[Approval], Union[bool, Tuple[bool, str]]]
EventCallback = Callable[[Event], None]


class Agent(_Handle):
    """The recovery agent for one session. `approve` decides on mutating
    verbs (called in the turn's thread); without it a turn waits for
    decide() from another thread. An exception in `approve` denies."""
    _free = staticmethod(_ffi.bg_agent_free)

    def __init__(self, cfg: Config, session: Session, ssh_key: Optional[Secret] = None,
                 approve: Optional[ApproveCallback] = None, provider: Optional[str] = None,
                 api_key: Optional[Secret] = None, approval_timeout: int = 0):
        self._approve = approve
        self._by = b""
        self.callback_errors: List[BaseException] = []
        opts = _ffi.bg_agent_options()
        _check(_ffi.bg_agent_options_init(ctypes.byref(opts), _ffi.BG_AGENT_OPTIONS_VERSION))
        opts.ssh_key = ssh_key._as_parameter_ if ssh_key else None
        opts.api_key = api_key._as_parameter_ if api_key else None
        self._approve_cb = _ffi.bg_agent_approve_fn(self._on_approve) if approve else _ffi.bg_agent_approve_fn()
        opts.approve = self._approve_cb
        opts.approval_timeout_s = approval_timeout
        self._provider = _b(provider)
        opts.provider = self._provider
        self._opts = opts  # the agent keeps pointers into it
        self._refs = (cfg, session, ssh_key, api_key)
        out = ctypes.c_void_p()
        _check(_ffi.bg_agent_new(ctypes.byref(out), cfg, session, ctypes.byref(opts)))
        super().__init__(out)
        self.session = session

    def _on_approve(self, tool_use_id, name, input_json, by, _payload):
        try:
            decision = self._approve(Approval(tool_use_id.decode(), name.decode(),  # type: ignore[misc]
                                              json.loads(input_json.decode() or "{}")))
            who = "python"
            if isinstance(decision, tuple):
                decision, who = decision
            self._by = who.encode()
            if by:
                by[0] = self._by
            return 1 if decision else 0
        except BaseException as e:  # noqa: BLE001 - a failing callback denies
            self.callback_errors.append(e)
            return 0

    def run(self, prompt: str, by: str = "python", on_event: Optional[EventCallback] = None) -> List[Event]:
        """Run one turn and return its events (from the prompt to
        turn_end). `on_event` sees each event as it happens, in this
        thread. Raises the error that ended the turn."""
        events: List[Event] = []
        after = self.session.last_id

        def take(timeout_ms: int) -> bool:
            nonlocal after
            got = self.session.read(after, timeout_ms)
            for ev in got:
                after = ev.id
                events.append(ev)
                if on_event:
                    on_event(ev)
            return bool(got)

        _check(_ffi.bg_agent_start(self, prompt.encode(), by.encode()))
        try:
            # until turn_end, or the turn is over without one
            while not any(e.kind == "turn_end" for e in events):
                if not take(200) and not _ffi.bg_session_busy(self.session):
                    break
        except BaseException:
            _ffi.bg_agent_cancel(self)
            _ffi.bg_agent_wait(self)
            raise
        rc = _ffi.bg_agent_wait(self)
        take(0)  # what came between the last read and the end
        _check(rc)
        return events

    def decide(self, nonce: str, verb: str, approved: bool, by: str = "python") -> None:
        """Decide the pending approval named by the `nonce` and `verb` of
        its approval_required event (BreakglassError BG_ENOTFOUND when they
        do not name the request that waits)."""
        _check(_ffi.bg_agent_decide(self, nonce.encode(), verb.encode(), 1 if approved else 0, by.encode()))

    def cancel(self) -> bool:
        return bool(_ffi.bg_agent_cancel(self))
