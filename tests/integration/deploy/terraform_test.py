#!/usr/bin/python3
"""deploy/terraform: every .tf file parsed with an HCL parser from the npm
registry (@cdktf/hcl2json under .tools/node, installed by scripts/bootstrap),
then the module's resources and variables asserted: the same objects as
deploy/kubernetes/base with the same hardening, the site's values as
variables (hosts, image, node to avoid, priority class), the Vault policy
that denies the break-glass path to every other role, and the checksum
annotation that rolls the emergency auth proxy when its password changes.
The breakglass.conf it renders loads with the library (BREAKGLASS_LIBRARY).

    terraform_test.py SOURCE_DIR
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys


def _preload_sanitizer():
    """Under a sanitized build (BG_TEST_PRELOAD), run this interpreter with
    the ASan runtime preloaded, and keep it out of every child's LD_PRELOAD."""
    want = os.environ.get("BG_TEST_PRELOAD")
    if want and want not in os.environ.get("LD_PRELOAD", ""):
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, LD_PRELOAD=want))
    os.environ.pop("LD_PRELOAD", None)


_preload_sanitizer()

src = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
TF = os.path.join(src, "deploy", "terraform")
modules = os.path.join(src, ".tools", "node", "node_modules")
failures = []


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what + ("" if cond or not detail else "\n     " + str(detail)[:2000]))
    if not cond:
        failures.append(what)


if not shutil.which("node") or not os.path.isdir(os.path.join(modules, "@cdktf", "hcl2json")):
    print("terraform_test: the HCL parser (npm @cdktf/hcl2json in .tools/node) is missing: run scripts/bootstrap")
    sys.exit(1)
files = sorted(glob.glob(os.path.join(TF, "*.tf")))
p = subprocess.run(["node", os.path.join(here, "hcl2json.mjs")] + files, capture_output=True, text=True,
                   env=dict(os.environ, BG_NODE_MODULES=modules))
check(p.returncode == 0, "every .tf file parses (%d files)" % len(files), p.stderr)
if p.returncode != 0:
    sys.exit(1)
parsed = json.loads(p.stdout)

res, var, loc = {}, {}, {}
for f, doc in parsed.items():
    for rtype, byname in doc.get("resource", {}).items():
        for name, body in byname.items():
            check((rtype, name) not in res, "resource %s.%s defined once" % (rtype, name))
            res[(rtype, name)] = body[0]
    for name, body in doc.get("variable", {}).items():
        var[name] = body[0]
    for body in doc.get("locals", []):
        loc.update(body)


def first(v):
    return v[0] if isinstance(v, list) and v else (v if not isinstance(v, list) else {})


# ---- variables
for v in ("namespace", "image", "devvm_host", "pve_host", "avoid_node", "priority_class_name", "sessions_storage",
          "emergency_htpasswd", "denied_roles", "trusted_proxies", "ingress_host", "auth_url"):
    check(v in var, "variable %s" % v)
check(var.get("priority_class_name", {}).get("default") == "tier-0-core", "priority_class_name defaults to tier-0-core")
check(var.get("emergency_htpasswd", {}).get("sensitive") is True, "emergency_htpasswd is sensitive")
check(var.get("sessions_storage", {}).get("default") == "emptyDir", "sessions default to an emptyDir")
for v in ("devvm_host", "pve_host", "image"):
    check("validation" in var.get(v, {}), "variable %s is validated" % v)

# ---- the same objects as deploy/kubernetes/base
want = {"kubernetes_namespace_v1", "kubernetes_service_account_v1", "kubernetes_config_map_v1",
        "kubernetes_deployment_v1", "kubernetes_service_v1", "kubernetes_network_policy_v1", "kubernetes_ingress_v1",
        "kubernetes_manifest", "kubernetes_persistent_volume_claim_v1", "vault_policy",
        "vault_kubernetes_auth_backend_role", "kubernetes_secret_v1"}
check(want <= {t for t, _ in res}, "resources: %s" % sorted(want), sorted({t for t, _ in res}))

sa = res.get(("kubernetes_service_account_v1", "breakglass"), {})
check(sa.get("automount_service_account_token") is False, "ServiceAccount automount_service_account_token false")

es = res.get(("kubernetes_manifest", "external_secret"), {}).get("manifest", {})
check(es.get("kind") == "ExternalSecret" and sorted(d["secretKey"] for d in es.get("spec", {}).get("data", [])) ==
      ["anthropic-api-key", "api-bearer-token", "ssh-key"] and "dataFrom" not in es.get("spec", {}),
      "ExternalSecret syncs only the SSH key and the tokens")

dep = res.get(("kubernetes_deployment_v1", "breakglass"), {})
spec = first(dep.get("spec"))
pod = first(first(spec.get("template")).get("spec"))
check(spec.get("replicas") == 1 and first(spec.get("strategy")).get("type") == "Recreate", "1 replica, Recreate")
check(pod.get("priority_class_name") == "${var.priority_class_name}", "priority class from the variable")
check(pod.get("automount_service_account_token") is False, "no service account token in the pod")
tol = {(t.get("key"), t.get("effect"), t.get("toleration_seconds")) for t in pod.get("toleration", [])}
check(tol == {("node.kubernetes.io/memory-pressure", "NoSchedule", None),
              ("node.kubernetes.io/disk-pressure", "NoSchedule", None),
              ("node.kubernetes.io/not-ready", "NoExecute", 300), ("node.kubernetes.io/unreachable", "NoExecute", 300)},
      "the four tolerations", tol)
na = first(first(pod.get("affinity")).get("node_affinity"))
pref = first(na.get("preferred_during_scheduling_ignored_during_execution"))
expr = first(first(pref.get("preference")).get("match_expressions"))
check(expr.get("operator") == "NotIn" and expr.get("values") == ["${var.avoid_node}"] and
      "required_during_scheduling_ignored_during_execution" not in na, "preferred anti-affinity away from var.avoid_node")
psc = first(pod.get("security_context"))
check(psc.get("run_as_non_root") is True and psc.get("run_as_user", 0) > 0 and
      first(psc.get("seccomp_profile")).get("type") == "RuntimeDefault", "non-root, seccomp RuntimeDefault")
c = first(pod.get("container"))
csc = first(c.get("security_context"))
check(csc.get("read_only_root_filesystem") is True and csc.get("allow_privilege_escalation") is False and
      first(csc.get("capabilities")).get("drop") == ["ALL"], "read-only root, no escalation, capabilities dropped")
for probe in ("startup_probe", "readiness_probe", "liveness_probe"):
    check(first(first(c.get(probe)).get("http_get")).get("path") == "/health", probe + " on /health")
r = first(c.get("resources"))
check(r.get("requests") == {"cpu": "100m", "memory": "64Mi"} and r.get("limits") == {"memory": "128Mi"},
      "requests 100m/64Mi, limit 128Mi (bench/web's figures)", r)
check(c.get("image") == "${var.image}", "image from the variable")
vols = {v["name"]: v for v in pod.get("volume", [])}
mounts = {m["name"]: m for m in c.get("volume_mount", [])}
key = first(vols.get("ssh-key", {}).get("secret"))
check(key.get("default_mode") == "0440" and [i["key"] for i in key.get("items", [])] == ["ssh-key"] and
      mounts.get("ssh-key", {}).get("read_only") is True, "the key mounted read-only, mode 0440, key only")
sess = vols.get("sessions", {})
dyn = sess.get("dynamic", {})
check(set(dyn) == {"empty_dir", "persistent_volume_claim"} and
      'var.sessions_storage == "emptyDir"' in first(dyn["empty_dir"]).get("for_each", "") and
      'var.sessions_storage == "pvc"' in first(dyn["persistent_volume_claim"]).get("for_each", ""),
      "sessions: emptyDir or PersistentVolumeClaim, as var.sessions_storage chooses", sess)

np_ = first(res.get(("kubernetes_network_policy_v1", "breakglass"), {}).get("spec"))
check(np_.get("policy_types") == ["Ingress", "Egress"], "NetworkPolicy restricts both ways")
ssh, dns, https = [], False, False
for e in np_.get("egress", []):
    ports = {(p.get("protocol"), p.get("port")) for p in e.get("ports", [])}
    to = first(e.get("to"))
    if ports == {("TCP", "22")}:
        ssh.append(first(to.get("ip_block")).get("cidr"))
    elif ports == {("UDP", "53"), ("TCP", "53")}:
        dns = first(to.get("pod_selector")).get("match_labels") == {"k8s-app": "kube-dns"}
    elif ports == {("TCP", "443")}:
        ib = first(to.get("ip_block"))
        https = ib.get("cidr") == "0.0.0.0/0" and ib.get("except") == "${local.private_ranges}"
    else:
        check(False, "no other egress", e)
check(sorted(ssh) == ["${var.devvm_host}/32", "${var.pve_host}/32"], "SSH egress only to the two hosts", ssh)
check(dns and https, "egress to kube-dns and HTTPS to public addresses")
ing = res.get(("kubernetes_ingress_v1", "breakglass"), {})
ann = first(ing.get("metadata")).get("annotations", {})
check(ann.get("nginx.ingress.kubernetes.io/auth-url") == "${var.auth_url}" and
      ann.get("nginx.ingress.kubernetes.io/auth-response-headers") == "${var.proxy_header}",
      "Ingress behind the auth proxy")

# ---- Vault
deny = res.get(("vault_policy", "breakglass_deny"), {}).get("policy", "")
stanzas = re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', deny)
check(len(stanzas) == 2 and all(caps.strip() == '"deny"' for _, caps in stanzas) and
      {p for p, _ in stanzas} == {"${local.kv_paths[0]}", "${local.kv_paths[1]}"},
      "breakglass-deny denies the key's data and metadata paths", stanzas)
read = res.get(("vault_policy", "breakglass_read"), {}).get("policy", "")
rs = re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', read)
check(rs == [("${local.kv_paths[0]}", '"read"')], "breakglass-read reads the data path only", rs)
role = res.get(("vault_kubernetes_auth_backend_role", "denied"), {})
check(role.get("for_each") == "${var.denied_roles}" and
      "vault_policy.breakglass_deny.name" in role.get("token_policies", ""),
      "every other role carries breakglass-deny", role.get("token_policies"))

# ---- the emergency proxy rolls when its password changes
ap = first(res.get(("kubernetes_deployment_v1", "auth_proxy"), {}).get("spec"))
tmeta = first(first(ap.get("template")).get("metadata"))
check(tmeta.get("annotations", {}).get("checksum/htpasswd") == "${sha256(var.emergency_htpasswd)}",
      "auth proxy pod template: checksum/htpasswd = sha256(var.emergency_htpasswd)")
apc = first(first(first(ap.get("template")).get("spec")).get("container"))
check(any(m.get("sub_path") == "htpasswd" for m in apc.get("volume_mount", [])),
      "the htpasswd is a subPath mount (hence the checksum)")

# ---- the breakglass.conf it renders loads with the library
conf = loc.get("config", "")
example = {"var.devvm_host": "10.0.10.10", "var.pve_host": "192.168.1.10", "var.pve_vmid": "102",
           "var.llm_provider": "anthropic", "var.proxy_header": "X-authentik-username",
           'join(" ", var.trusted_proxies)': "10.42.0.0/16"}
rendered = re.sub(r"\$\{([^}]+)\}", lambda m: example.get(m.group(1), "UNKNOWN:" + m.group(1)), conf)
check("UNKNOWN:" not in rendered and "[devvm]" in rendered, "the config template uses known variables only", rendered)
if os.environ.get("BREAKGLASS_LIBRARY"):
    sys.path.insert(0, os.path.join(src, "bindings", "python"))
    import breakglass
    try:
        with breakglass.Config.from_string(rendered, name="terraform:breakglass.conf") as cfg:
            check(cfg.get("pve", "host") == "192.168.1.10", "the rendered breakglass.conf loads with the library")
    except breakglass.BreakglassError as e:
        check(False, "the rendered breakglass.conf loads with the library", e.message)

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("terraform_test: all checks passed")
