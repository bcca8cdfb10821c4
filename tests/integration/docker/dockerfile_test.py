#!/usr/bin/python3
"""deploy/docker/Dockerfile without a container engine: its steps carried
out in debootstrap Debian 12 roots, then the image started as its USER.

    dockerfile_test.py SOURCE_DIR [--dockerfile FILE] [--keep DIR] [--build-only]

- `FROM debian:12-slim` is a `debootstrap --variant=minbase bookworm` root
  (cached in /var/cache/breakglass-docker, BG_DOCKER_CACHE), copied per
  stage; RUN runs `/bin/sh -c` in a chroot with /proc and /dev, as root,
  with the stage's ENV and WORKDIR; COPY copies from the context (the
  source tree less .dockerignore) or, with --from, another stage's root;
  ENV, WORKDIR, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD as Docker
  reads them (the subset this Dockerfile uses; anything else fails).
- Then the last stage is checked: a numeric non-root USER; no compiler, no
  -dev package; and, in private mount and network namespaces, with every
  shell removed, the root file system read-only and a tmpfs for the state
  directory (as in Kubernetes): the ENTRYPOINT starts as that user and the
  HEALTHCHECK command, run as that user too, succeeds against /health,
  which answers {"status":"ok","service":"breakglass"}.

Exit 77 when debootstrap or the Debian mirror is missing (a failure under
CI=true).
"""
import argparse
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

CACHE = os.environ.get("BG_DOCKER_CACHE", "/var/cache/breakglass-docker")
MIRROR = os.environ.get("BG_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def die(msg, code=1):
    print("dockerfile_test: " + msg, file=sys.stderr)
    sys.exit(code)


def sh(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        die("%s failed (%d):\n%s%s" % (" ".join(map(shlex.quote, argv))[:300], p.returncode, p.stdout[-4000:],
                                       p.stderr[-4000:]))
    return p


# ---- the Dockerfile ---------------------------------------------------------

def instructions(path):
    """(INSTRUCTION, rest) pairs: comments dropped, continuations joined."""
    out, cur = [], ""
    for line in open(path):
        s = line.rstrip("\n")
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if cur and s.lstrip().startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def exec_form(text):
    v = json.loads(text)
    if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        die("not an exec-form array: " + text)
    return v


class Stage:
    def __init__(self, name, root):
        self.name, self.root = name, root
        self.env = {"PATH": PATH}
        self.workdir = "/"
        self.user = None
        self.healthcheck = None
        self.entrypoint, self.cmd, self.expose = [], [], []

    def chroot_argv(self, argv, user=None):
        """argv in this root with /proc and /dev, in a mount namespace of its own."""
        env = ["%s=%s" % kv for kv in self.env.items()]
        spec = ["--userspec=%s" % user] if user else []
        return (["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$@"', self.root] +
                spec + [self.root, "/usr/bin/env", "-i"] + env + argv)


def context_ignored(src):
    pats = []
    p = os.path.join(src, ".dockerignore")
    if os.path.exists(p):
        pats = [l.strip() for l in open(p) if l.strip() and not l.startswith("#")]

    def ignore(d, names):
        rel = os.path.relpath(d, src)
        out = []
        for n in names:
            r = n if rel == "." else os.path.join(rel, n)
            if any(fnmatch.fnmatch(r, pat) or fnmatch.fnmatch(n, pat.replace("**/", "")) for pat in pats):
                out.append(n)
        return out

    return ignore


def copy_into(src, root, dst, ignore=None):
    target = os.path.join(root, dst.lstrip("/"))
    if os.path.isdir(src):
        shutil.copytree(src, target, symlinks=True, ignore=ignore, dirs_exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target)


def base_root():
    """A cached debootstrap minbase bookworm root: what debian:12-slim is."""
    root = os.path.join(CACHE, "bookworm-minbase")
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    if not shutil.which("debootstrap"):
        die("debootstrap missing (scripts/bootstrap)", 77)
    os.makedirs(CACHE, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=CACHE, prefix="debootstrap-")
    p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", tmp, MIRROR], capture_output=True, text=True)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        die("debootstrap from %s failed (no mirror reachable?):\n%s" % (MIRROR, p.stderr[-2000:]), 77)
    open(os.path.join(tmp, ".complete"), "w").close()
    try:
        os.rename(tmp, root)
    except OSError:  # another run got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def build(dockerfile, src, work):
    stages, cur = {}, None
    base = None
    for n, (ins, rest) in enumerate(instructions(dockerfile)):
        if ins == "FROM":
            words = rest.split()
            if words[0] != "debian:12-slim":
                die("FROM %s: only debian:12-slim is carried out here" % words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            base = base or base_root()
            root = os.path.join(work, "stage-" + name)
            sh(["cp", "-a", base, root])
            os.chmod(root, 0o755)  # an image's / (base_root's came from mkdtemp, 0700)
            shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
            cur = stages[name] = Stage(name, root)
            print("== stage %s" % name, flush=True)
        elif cur is None:
            die("%s before FROM" % ins)
        elif ins == "ENV":
            k, _, v = rest.partition("=")
            cur.env[k.strip()] = v.strip()
        elif ins == "WORKDIR":
            cur.workdir = rest
            os.makedirs(os.path.join(cur.root, rest.lstrip("/")), exist_ok=True)
        elif ins == "RUN":
            print("RUN %s" % rest[:100], flush=True)
            t0 = time.monotonic()
            sh(cur.chroot_argv(["/bin/sh", "-c", "cd %s && %s" % (shlex.quote(cur.workdir), rest)]))
            print("    (%.0f s)" % (time.monotonic() - t0), flush=True)
        elif ins == "COPY":
            words = rest.split()
            if words[0].startswith("--from="):
                origin = stages[words[0][len("--from="):]]
                copy_into(os.path.join(origin.root, words[1].lstrip("/")), cur.root, words[2])
            else:
                s = os.path.normpath(os.path.join(src, words[0]))
                copy_into(s, cur.root, os.path.join(cur.workdir, words[1]), ignore=context_ignored(src))
        elif ins == "USER":
            cur.user = rest
        elif ins == "EXPOSE":
            cur.expose = rest.split()
        elif ins == "HEALTHCHECK":
            words = rest.split(" CMD ", 1)
            cur.healthcheck = exec_form(words[1])
        elif ins == "ENTRYPOINT":
            cur.entrypoint = exec_form(rest)
        elif ins == "CMD":
            cur.cmd = exec_form(rest)
        else:
            die("instruction %s is not carried out here: add it to dockerfile_test.py" % ins)
    return cur


# ---- the image ----------------------------------------------------------------

RUN_SCRIPT = r'''
set -eu
root=$1 user=$2 conf=$3
ip link set lo up
# read-only root file system, a tmpfs for the state directory and /tmp
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o "mode=0700,uid=${user%:*},gid=${user#*:}" tmpfs "$root/var/lib/breakglass"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount --bind "$conf" "$root/etc/breakglass/breakglass.conf"
shift 3
n_entry=$1; shift
entry=()
for _ in $(seq "$n_entry"); do entry+=("$1"); shift; done
n_env=$1; shift
env=()
for _ in $(seq "$n_env"); do env+=("$1"); shift; done
health=("$@")
chroot --userspec="$user" "$root" /usr/bin/env -i "${env[@]}" "${entry[@]}" >"$LOGDIR/web.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 150); do
	if chroot --userspec="$user" "$root" /usr/bin/env -i "${env[@]}" "${health[@]}" >/dev/null 2>&1; then ok=1; break; fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.2
done
echo "healthy=$ok"
echo "uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)"
echo "body=$(chroot --userspec="$user" "$root" /usr/bin/curl -fsS --max-time 4 http://127.0.0.1:8080/health 2>&1)"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
'''


def check_image(st, work):
    fails = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            fails.append(what)

    user = st.user or ""
    uid, _, gid = user.partition(":")
    check(uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit()), "USER is numeric and not root: %r" % user)
    check(st.healthcheck is not None and "/health" in " ".join(st.healthcheck or []), "HEALTHCHECK on /health")
    check(st.entrypoint[:1] == ["/usr/sbin/breakglass-web"], "ENTRYPOINT is breakglass-web (exec form)")
    for f in ("usr/sbin/breakglass-web", "usr/bin/breakglassctl"):
        check(os.access(os.path.join(st.root, f), os.X_OK), "/" + f + " installed")
    check(not os.path.exists(os.path.join(st.root, "usr/bin/cc")) and
          not os.path.exists(os.path.join(st.root, "usr/bin/gcc")), "no compiler in the runtime image")
    pkgs = sh(["chroot", st.root, "dpkg-query", "-W", "-f", "${Package}\n"]).stdout.split()
    dev = [p for p in pkgs if p.endswith("-dev")]
    check(not dev, "no -dev package in the runtime image: %s" % dev)
    check("breakglass-pve" not in pkgs, "breakglass-pve (the host's program) is not in the image")
    if fails:
        return fails

    # no shell at run time: every shell removed from the image
    for s in ("usr/bin/sh", "usr/bin/dash", "usr/bin/bash", "bin/sh", "bin/dash", "bin/bash"):
        p = os.path.join(st.root, s)
        if os.path.lexists(p):
            os.unlink(p)
    conf = os.path.join(work, "breakglass.conf")
    with open(conf, "w") as f:
        f.write("[devvm]\nhost = 127.0.0.1\n[pve]\nhost = 127.0.0.1\n[agent]\nprovider = offline\n")
    os.chmod(conf, 0o644)
    os.makedirs(os.path.join(st.root, "etc/breakglass"), exist_ok=True)
    open(os.path.join(st.root, "etc/breakglass/breakglass.conf"), "a").close()
    # as `docker run -e`: the page's bearer token (the Kubernetes Secret's)
    env = ["%s=%s" % kv for kv in st.env.items() if kv[0] != "DEBIAN_FRONTEND"]
    env.append("API_BEARER_TOKEN=" + os.urandom(24).hex())
    entry = st.entrypoint + st.cmd
    argv = (["unshare", "--mount", "--net", "--propagation", "private", "--", "bash", "-c", RUN_SCRIPT, "run",
             st.root, user if gid else user + ":" + uid, conf, str(len(entry))] + entry + [str(len(env))] + env +
            st.healthcheck)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ, LOGDIR=work))
    out = dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)
    log = open(os.path.join(work, "web.log")).read() if os.path.exists(os.path.join(work, "web.log")) else ""
    check(p.returncode == 0 and out.get("healthy") == "1",
          "the HEALTHCHECK passes, run as %s, without a shell, read-only root%s" %
          (user, "" if out.get("healthy") == "1" else ":\n" + p.stderr[-2000:] + log[-2000:]))
    check(out.get("uid") == uid, "breakglass-web runs as uid %s (got %r)" % (uid, out.get("uid")))
    try:
        body = json.loads(out.get("body", ""))
    except ValueError:
        body = None
    check(body == {"status": "ok", "service": "breakglass"}, "GET /health: %r" % out.get("body"))
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--dockerfile")
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one, removed)")
    ap.add_argument("--build-only", action="store_true", help="carry out the steps, do not check the image")
    a = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root (chroot, namespaces)", 77)
    for tool in ("unshare", "chroot", "ip"):
        if not shutil.which(tool):
            die(tool + " missing", 77)
    dockerfile = a.dockerfile or os.path.join(a.source, "deploy", "docker", "Dockerfile")
    work = a.keep or tempfile.mkdtemp(prefix="bg-docker-", dir=os.environ.get("BG_DOCKER_WORK", "/var/tmp"))
    os.makedirs(work, exist_ok=True)
    try:
        st = build(dockerfile, a.source, work)
        if a.build_only:
            print("dockerfile_test: steps carried out (image not checked)")
            return 0
        fails = check_image(st, work)
        if fails:
            print("%d check(s) failed" % len(fails))
            return 1
        print("dockerfile_test: all checks passed")
        return 0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
