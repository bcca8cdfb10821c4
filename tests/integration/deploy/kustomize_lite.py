"""A small kustomize for machines without kubectl: the subset that
deploy/kubernetes uses, and nothing more (anything else is an error, so
the manifests cannot drift past what this renders).

    render(dir) -> list of objects

Supported: resources (files and directories), components, namespace,
labels (pairs, includeSelectors: false, includeTemplates), images
(name, newName, newTag), patches (a strategic-merge file with a
kind/name target). Where kubectl is installed the test compares the two
renderings, so this one stays honest.
"""
import copy
import os

import yaml

KNOWN = {"apiVersion", "kind", "resources", "components", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding", "ClusterSecretStore"}
# strategic merge: lists merged by key (Kubernetes' patchMergeKey); others are replaced whole
MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "volumeMounts": "mountPath",
              "env": "name", "tolerations": None}


class Unsupported(Exception):
    pass


def load_yaml(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, patch, field=None):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = merge(out[k], v, k)
            else:
                out[k] = strip_nulls(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and MERGE_KEYS.get(field):
        key = MERGE_KEYS[field]
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            i = next((n for n, x in enumerate(out) if x.get(key) == item.get(key)), None)
            if i is None:
                out.append(strip_nulls(item))
            else:
                out[i] = merge(out[i], item, None)
        return out
    return strip_nulls(copy.deepcopy(patch))


def strip_nulls(v):
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_nulls(x) for x in v]
    return v


def apply_patches(objs, k, here):
    for p in k.get("patches", []):
        if set(p) - {"path", "target"} or set(p.get("target", {})) - {"kind", "name"}:
            raise Unsupported("patch form %r" % p)
        (patch,) = load_yaml(os.path.join(here, p["path"]))
        t = p["target"]
        hits = [o for o in objs if o["kind"] == t["kind"] and o["metadata"]["name"] == t["name"]]
        if not hits:
            raise Unsupported("patch %s: no %s/%s" % (p["path"], t["kind"], t["name"]))
        for o in hits:
            patched = merge(o, {k2: v for k2, v in patch.items() if k2 not in ("apiVersion", "kind", "metadata")})
            o.clear()
            o.update(patched)


def render(here):
    path = os.path.join(here, "kustomization.yaml")
    (k,) = load_yaml(path)
    if set(k) - KNOWN:
        raise Unsupported("%s: %s" % (path, sorted(set(k) - KNOWN)))
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(here, r))
        objs += render(p) if os.path.isdir(p) else load_yaml(p)
    for c in k.get("components", []):
        p = os.path.normpath(os.path.join(here, c))
        (ck,) = load_yaml(os.path.join(p, "kustomization.yaml"))
        if ck.get("kind") != "Component" or set(ck) - {"apiVersion", "kind", "resources", "patches"}:
            raise Unsupported("component %s" % p)
        for r in ck.get("resources", []):
            objs += load_yaml(os.path.join(p, r))
        apply_patches(objs, ck, p)
    apply_patches(objs, k, here)
    if "namespace" in k:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    for lab in k.get("labels", []):
        if lab.get("includeSelectors") or set(lab) - {"pairs", "includeSelectors", "includeTemplates"}:
            raise Unsupported("labels form %r" % lab)
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab["pairs"])
            tmpl = o.get("spec", {}).get("template") if lab.get("includeTemplates") else None
            if tmpl is not None:
                tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    for img in k.get("images", []):
        for o in objs:
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                name = c["image"].split("@")[0].rsplit(":", 1)[0] if ":" in c["image"].split("/")[-1] else c["image"]
                if name == img["name"]:
                    c["image"] = "%s:%s" % (img.get("newName", name), img.get("newTag", "latest"))
    return objs
