#!/usr/bin/python3
"""deploy/kubernetes: rendered (kubectl kustomize when installed, and the
small renderer kustomize_lite.py always; the two must agree), then every
property the deployment promises is checked on the base and the example
overlay; the breakglass.conf in the ConfigMap loads with the library
(BREAKGLASS_LIBRARY) and its SSH targets are exactly the NetworkPolicy's;
yamllint passes; every object validates against the Kubernetes schemas
(npm kubernetes-models, installed by scripts/bootstrap under .tools/node).

    kubernetes_test.py SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import yaml


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
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(src, "bindings", "python"))
import kustomize_lite  # noqa: E402

K8S = os.path.join(src, "deploy", "kubernetes")
failures = []


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what + ("" if cond or not detail else "\n     " + str(detail)[:2000]))
    if not cond:
        failures.append(what)


def canonical(v):
    """Lists of named things compared without their order."""
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        items = [canonical(x) for x in v]
        if items and all(isinstance(x, dict) and "name" in x for x in items):
            items.sort(key=lambda x: x["name"])
        return items
    return v


def by_kind(objs):
    out = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def one(objs, kind):
    xs = by_kind(objs).get(kind, [])
    check(len(xs) == 1, "exactly one %s" % kind, [o["metadata"]["name"] for o in xs])
    return xs[0] if xs else {}


def render(d):
    mine = kustomize_lite.render(os.path.join(K8S, d))
    if shutil.which("kubectl"):
        p = subprocess.run(["kubectl", "kustomize", os.path.join(K8S, d)], capture_output=True, text=True)
        check(p.returncode == 0, "kubectl kustomize %s" % d, p.stderr)
        theirs = [x for x in yaml.safe_load_all(p.stdout) if x]
        key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
        a = {key(o): canonical(o) for o in mine}
        b = {key(o): canonical(o) for o in theirs}
        check(a == b, "%s: kustomize_lite renders what kubectl kustomize renders" % d,
              [k for k in set(a) | set(b) if a.get(k) != b.get(k)])
    else:
        print("note: kubectl not installed; rendered with kustomize_lite.py only")
    return mine


def ini(text):
    sec, out = None, {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            sec = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            k, v = (x.strip() for x in line.split("=", 1))
            out[(sec, k)] = v
    return out


def check_rendering(name, objs, sessions):
    ns = one(objs, "Namespace")
    namespace = ns.get("metadata", {}).get("name")
    for o in objs:
        if o["kind"] != "Namespace":
            check(o["metadata"].get("namespace") == namespace, "%s: %s/%s in namespace %s" %
                  (name, o["kind"], o["metadata"]["name"], namespace))

    sa = one(objs, "ServiceAccount")
    check(sa.get("automountServiceAccountToken") is False, name + ": ServiceAccount automountServiceAccountToken false")

    es = one(objs, "ExternalSecret")
    keys = sorted(d["secretKey"] for d in es.get("spec", {}).get("data", []))
    check(keys == ["anthropic-api-key", "api-bearer-token", "ssh-key"],
          name + ": the ExternalSecret syncs only the SSH key and the tokens", keys)
    check("dataFrom" not in es.get("spec", {}), name + ": the ExternalSecret syncs no whole path (dataFrom)")
    secret_name = es.get("spec", {}).get("target", {}).get("name")

    dep = one(objs, "Deployment")
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    check(spec.get("replicas") == 1, name + ": 1 replica")
    check(spec.get("strategy", {}).get("type") == "Recreate", name + ": strategy Recreate")
    check(str(pod.get("priorityClassName", "")).startswith("tier-0"), name + ": a tier-0 priority class",
          pod.get("priorityClassName"))
    check(pod.get("serviceAccountName") == sa.get("metadata", {}).get("name") and
          pod.get("automountServiceAccountToken") is False, name + ": the pod uses the SA, no token mounted")
    tol = {(t.get("key"), t.get("effect"), t.get("tolerationSeconds")) for t in pod.get("tolerations", [])}
    for want in (("node.kubernetes.io/memory-pressure", "NoSchedule", None),
                 ("node.kubernetes.io/disk-pressure", "NoSchedule", None),
                 ("node.kubernetes.io/not-ready", "NoExecute", 300),
                 ("node.kubernetes.io/unreachable", "NoExecute", 300)):
        check(want in tol, name + ": toleration %s %s %s" % want, sorted(tol, key=str))
    pref = pod.get("affinity", {}).get("nodeAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution", [])
    avoid = [e for p in pref for e in p.get("preference", {}).get("matchExpressions", [])
             if e.get("key") == "kubernetes.io/hostname" and e.get("operator") == "NotIn" and e.get("values")]
    check(len(avoid) == 1 and not pod.get("affinity", {}).get("nodeAffinity", {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"), name + ": preferred (not required) anti-affinity to a node",
        pref)
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and int(psc.get("runAsUser", 0)) > 0,
          name + ": runAsNonRoot, a non-root uid", psc)
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name + ": seccompProfile RuntimeDefault")
    (c,) = pod.get("containers", [{}])
    csc = c.get("securityContext", {})
    check(csc.get("readOnlyRootFilesystem") is True, name + ": read-only root filesystem")
    check(csc.get("allowPrivilegeEscalation") is False, name + ": no privilege escalation")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"] and not csc.get("capabilities", {}).get("add"),
          name + ": all capabilities dropped")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        check(c.get(probe, {}).get("httpGet", {}).get("path") == "/health", "%s: %s on /health" % (name, probe))
    res = c.get("resources", {})
    check(res.get("requests", {}).get("cpu") == "100m" and res.get("requests", {}).get("memory") == "64Mi" and
          res.get("limits", {}).get("memory") == "128Mi", name + ": requests 100m/64Mi, limit 128Mi (bench/web)", res)
    check(c.get("image", "").count(":") == 1 and not c.get("image", "").endswith(":latest"),
          name + ": a pinned image tag", c.get("image"))
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    keyvol = [v for v in vols.values() if v.get("secret", {}).get("secretName") == secret_name]
    check(len(keyvol) == 1 and [i["key"] for i in keyvol[0]["secret"].get("items", [])] == ["ssh-key"] and
          keyvol[0]["secret"].get("defaultMode") == 0o440, name + ": the key secret mounted with mode 0440, key only",
          keyvol)
    check(keyvol and mounts.get(keyvol[0]["name"], {}).get("readOnly") is True, name + ": the key mounted read-only")
    check(mounts.get("config", {}).get("readOnly") is True, name + ": the config mounted read-only")
    sess = vols.get("sessions", {})
    check(mounts.get("sessions", {}).get("mountPath") == "/var/lib/breakglass", name + ": sessions at /var/lib/breakglass")
    if sessions == "emptyDir":
        check("emptyDir" in sess and "persistentVolumeClaim" not in sess, name + ": sessions on an emptyDir", sess)
    else:
        claim = sess.get("persistentVolumeClaim", {}).get("claimName")
        pvcs = [p["metadata"]["name"] for p in by_kind(objs).get("PersistentVolumeClaim", [])]
        check("emptyDir" not in sess and claim in pvcs, name + ": sessions on the PersistentVolumeClaim", sess)
    envs = {e["name"] for e in c.get("env", [])}
    check({"API_BEARER_TOKEN", "ANTHROPIC_API_KEY"} <= envs and not any("SSH" in e for e in envs),
          name + ": tokens from the secret; the key as a file, not an env var", envs)

    # the configuration
    cm = one(objs, "ConfigMap")
    conf_text = cm.get("data", {}).get("breakglass.conf", "")
    conf = ini(conf_text)
    check(conf.get(("ssh", "key_file"), "").startswith(mounts.get(keyvol[0]["name"] if keyvol else "", {}).get(
        "mountPath", "?") + "/"), name + ": [ssh] key_file is the mounted key", conf.get(("ssh", "key_file")))
    hosts = [conf.get(("devvm", "host")), conf.get(("pve", "host"))]
    check(all(h and all(p.isdigit() for p in h.split(".")) for h in hosts),
          name + ": SSH targets are IP addresses (no DNS dependency)", hosts)
    check(conf.get(("web", "sessions_dir"), "").startswith("/var/lib/breakglass/"), name + ": sessions_dir on the volume")
    if os.environ.get("BREAKGLASS_LIBRARY"):
        import breakglass
        try:
            with breakglass.Config.from_string(conf_text, name=name + ":breakglass.conf") as cfg:
                ok = cfg.get("devvm", "host") == hosts[0]
            check(ok, name + ": breakglass.conf loads with the library")
        except breakglass.BreakglassError as e:
            check(False, name + ": breakglass.conf loads with the library", e.message)

    # the network
    np_ = one(objs, "NetworkPolicy")
    nps = np_.get("spec", {})
    check(set(nps.get("policyTypes", [])) == {"Ingress", "Egress"}, name + ": NetworkPolicy restricts both ways")
    check(nps.get("podSelector", {}).get("matchLabels") == spec.get("selector", {}).get("matchLabels"),
          name + ": NetworkPolicy selects the pod")
    ssh_cidrs, dns, https = [], False, False
    for rule in nps.get("egress", []):
        ports = {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports", [])}
        peers = rule.get("to", [])
        if ports == {("TCP", 22)}:
            ssh_cidrs += [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p and not p["ipBlock"].get("except")]
            check(all("ipBlock" in p for p in peers), name + ": SSH egress by address only")
        elif ports == {("UDP", 53), ("TCP", 53)}:
            sel = [p.get("podSelector", {}).get("matchLabels") for p in peers]
            dns = sel == [{"k8s-app": "kube-dns"}]
            check(dns, name + ": DNS egress to kube-dns, selector untouched", sel)
        elif ports == {("TCP", 443)}:
            blocks = [p.get("ipBlock", {}) for p in peers]
            https = len(blocks) == 1 and blocks[0].get("cidr") == "0.0.0.0/0" and \
                {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(blocks[0].get("except", []))
            check(https, name + ": LLM API egress: HTTPS to public addresses only", blocks)
        else:
            check(False, name + ": no other egress", rule)
    check(sorted(ssh_cidrs) == sorted(h + "/32" for h in hosts),
          name + ": SSH egress exactly to the configured targets", (ssh_cidrs, hosts))
    check(dns and https, name + ": egress has DNS and the LLM API")

    svc = one(objs, "Service")
    check(svc.get("spec", {}).get("selector") == spec.get("selector", {}).get("matchLabels"),
          name + ": the Service selects the pod")
    ing = one(objs, "Ingress")
    ann = ing.get("metadata", {}).get("annotations", {})
    check(ann.get("nginx.ingress.kubernetes.io/auth-url") and ann.get("nginx.ingress.kubernetes.io/auth-response-headers")
          == conf.get(("web", "proxy_header")), name + ": Ingress behind the auth proxy, its header is proxy_header",
          ann)
    backend = ing.get("spec", {}).get("rules", [{}])[0].get("http", {}).get("paths", [{}])[0].get("backend", {})
    check(backend.get("service", {}).get("name") == svc.get("metadata", {}).get("name"), name + ": Ingress to the Service")
    return objs


def yamllint():
    files = []
    for d, _, names in os.walk(K8S):
        files += [os.path.join(d, n) for n in names if n.endswith((".yaml", ".yml"))]
    conf = os.path.join(src, "deploy", ".yamllint")
    if not shutil.which("yamllint"):
        check(False, "yamllint installed (scripts/bootstrap)")
        return
    p = subprocess.run(["yamllint", "-s", "-c", conf] + sorted(files), capture_output=True, text=True)
    check(p.returncode == 0, "yamllint: %d files" % len(files), p.stdout + p.stderr)


def schemas(renderings):
    node_dir = os.path.join(src, ".tools", "node")
    script = os.path.join(here, "k8s_validate.mjs")
    if not (shutil.which("node") and os.path.isdir(os.path.join(node_dir, "node_modules", "kubernetes-models"))):
        check(False, "the Kubernetes schema validator is installed (npm kubernetes-models in .tools/node: "
              "scripts/bootstrap)")
        return
    for name, objs in renderings:
        p = subprocess.run(["node", script], input=json.dumps(objs), capture_output=True, text=True,
                           env=dict(os.environ, BG_NODE_MODULES=os.path.join(node_dir, "node_modules")))
        check(p.returncode == 0, "%s: every object valid against the Kubernetes schemas" % name, p.stdout + p.stderr)
        print(p.stdout.strip())


base = check_rendering("base", render("base"), "emptyDir")
overlay = check_rendering("overlays/example", render("overlays/example"), "pvc")
dep = lambda objs: one(objs, "Deployment")["spec"]["template"]["spec"]  # noqa: E731
check(dep(base)["affinity"] != dep(overlay)["affinity"], "the overlay names its own node to avoid")
check(one(base, "ConfigMap")["data"] != one(overlay, "ConfigMap")["data"], "the overlay sets its own targets")
yamllint()
schemas([("base", base), ("overlays/example", overlay)])
if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("kubernetes_test: all checks passed")
