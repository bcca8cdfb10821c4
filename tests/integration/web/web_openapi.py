"""docs/openapi.yaml against the server: the same routes as it registers
(breakglass-web --routes), and the bodies it answers match the documented
schemas, for every status this test can provoke without peers."""
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from webharness import SOURCE, WEB, Server, check, config, finish, tmpdir  # noqa: E402

spec = yaml.safe_load(open(os.path.join(SOURCE, "docs", "openapi.yaml")))
check(spec.get("openapi", "").startswith("3.1"), "OpenAPI 3.1")
routes = set()
for line in subprocess.run([WEB, "--routes"], capture_output=True, text=True, check=True).stdout.splitlines():
    method, pattern, _ = line.split()
    routes.add((method.lower(), pattern))
documented = set((m, p) for p, ops in spec["paths"].items() for m in ops if m in ("get", "post", "put", "delete"))
check(routes == documented, "the documented routes are the registered routes",
      "only registered: %r\nonly documented: %r" % (sorted(routes - documented), sorted(documented - routes)))
for p, ops in spec["paths"].items():
    for m, op in ops.items():
        auth = ("none" if op.get("security") == [] else "auth")
        reg = [line for line in subprocess.run([WEB, "--routes"], capture_output=True, text=True).stdout.splitlines()
               if line.split()[:2] == [m.upper(), p]]
        check(reg and reg[0].split()[2] == auth, "%s %s: documented auth %s" % (m.upper(), p, auth), reg)


node_stack = []


def node_ref(n):
    return n["$ref"].lstrip("#/").split("/")


def deref(n):
    while isinstance(n, dict) and "$ref" in n:
        node_stack.append(n)
        target = spec
        for part in node_ref(n):
            target = target[part]
        n = target
    return n


TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def validate(value, schema, where="$"):
    schema = deref(schema)
    errs = []
    if "const" in schema and value != schema["const"]:
        errs.append("%s: want %r, got %r" % (where, schema["const"], value))
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: want one of %r, got %r" % (where, schema["enum"], value))
    t = schema.get("type")
    if t:
        types = t if isinstance(t, list) else [t]
        ok = False
        for x in types:
            if x == "integer":
                ok = ok or (isinstance(value, int) and not isinstance(value, bool))
            elif x == "number":
                ok = ok or (isinstance(value, (int, float)) and not isinstance(value, bool))
            else:
                ok = ok or (isinstance(value, TYPES[x]) and not (x != "boolean" and isinstance(value, bool)))
        if not ok:
            return ["%s: want %s, got %r" % (where, t, value)]
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errs.append("%s: %s missing" % (where, k))
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errs += validate(value[k], sub, where + "." + k)
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value[:50]):
            errs += validate(v, schema["items"], "%s[%d]" % (where, i))
    return errs


def conforms(method, pattern, r):
    op = spec["paths"][pattern][method.lower()]
    resp = op["responses"].get(str(r.status))
    if resp is None:
        return ["status %d is not documented for %s %s" % (r.status, method, pattern)]
    resp = deref(resp)
    if "content" not in resp:  # 204, 304: no body, no type
        return [] if r.body == b"" and "content-type" not in r.headers else ["a body where none is documented"]
    ctype = r.headers.get("content-type", "").split(";")[0]
    content = resp.get("content", {})
    if ctype not in content:
        return ["content type %s is not documented (%s)" % (ctype, list(content))]
    schema = content[ctype].get("schema")
    if not schema:
        return []
    try:
        doc = json.loads(r.body)
    except ValueError:
        return ["not JSON: %r" % r.body[:100]]
    return validate(doc, schema)


BUILD = subprocess.run([WEB, "--assets"], capture_output=True, text=True, check=True).stdout.strip().split("/ui/")[-1]
BUILD = BUILD.rstrip("/")
base = tmpdir()
srv = Server(config(base, auth="bearer"))
try:
    sid = srv.request("POST", "/api/session", body={}).doc["session_id"]
    unknown = "f" * 32
    calls = [
        ("GET", "/health", "/health", None, {}),
        ("GET", "/", "/", None, {}),
        ("GET", "/", "/", None, {"token": None}),
        ("POST", "/api/session", "/api/session", {}, {}),
        ("POST", "/api/session", "/api/session", {}, {"headers": {"Origin": "http://evil.example"}}),
        ("GET", "/api/sessions", "/api/sessions", None, {}),
        ("GET", "/api/session/{id}/stream", "/api/session/%s/stream" % unknown, None, {}),
        ("GET", "/api/session/{id}/stream", "/api/session/%s/stream" % sid, None,
         {"headers": {"Last-Event-ID": "x"}}),
        ("POST", "/api/session/{id}/prompt", "/api/session/%s/prompt" % sid, "{", {}),
        ("POST", "/api/session/{id}/prompt", "/api/session/%s/prompt" % unknown, {"prompt": "hi"}, {}),
        ("POST", "/api/session/{id}/prompt", "/api/session/%s/prompt" % sid, json.dumps({"prompt": "x" * 70000}), {}),
        ("POST", "/api/session/{id}/cancel", "/api/session/%s/cancel" % sid, {}, {}),
        ("POST", "/api/session/{id}/cancel", "/api/session/%s/cancel" % unknown, {}, {}),
        ("POST", "/api/session/{id}/approve", "/api/session/%s/approve" % sid,
         {"nonce": "t", "verb": "stop", "approved": False}, {}),
        ("POST", "/api/session/{id}/approve", "/api/session/%s/approve" % sid, {"nonce": "t"}, {}),
        ("GET", "/api/pve/verbs", "/api/pve/verbs", None, {}),
        ("POST", "/api/pve/{verb}", "/api/pve/destroy", {}, {}),
        ("POST", "/api/pve/{verb}", "/api/pve/status", {}, {}),
        ("POST", "/api/devvm/triage", "/api/devvm/triage", {}, {}),
        ("GET", "/api/audit", "/api/audit", None, {}),
        ("GET", "/api/audit", "/api/audit?limit=0", None, {}),
        ("GET", "/api/audit", "/api/audit?kind=session,pve&limit=5", None, {}),
        ("GET", "/api/audit", "/api/audit?kind=Bad!", None, {}),
        ("GET", "/api/whoami", "/api/whoami", None, {}),
        ("GET", "/api/whoami", "/api/whoami", None, {"token": None}),
        ("GET", "/api/health/deps", "/api/health/deps", None, {}),
        ("GET", "/ui/{build}/{path}", "/ui/%s/index.html" % BUILD, None, {}),
        ("GET", "/ui/{build}/{path}", "/ui/%s/nothing.js" % BUILD, None, {}),
        ("GET", "/ui/{build}/{path}", "/ui/%s/index.html" % BUILD, None, {"token": None}),
        ("GET", "/favicon.ico", "/favicon.ico", None, {"token": None}),
        ("GET", "/metrics", "/metrics", None, {}),
        ("GET", "/metrics", "/metrics", None, {"token": None}),
    ]
    for method, pattern, path, body, kw in calls:
        r = srv.request(method, path, body=body, timeout=60, **kw)
        errs = conforms(method, pattern, r)
        check(not errs, "%s %s -> %d matches the description" % (method, path[:60], r.status),
              "\n".join(errs) + "\n" + repr(r))
finally:
    srv.stop()
finish()
