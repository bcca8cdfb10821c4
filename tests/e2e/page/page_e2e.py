"""The page in a real browser: sets up the real peers (tests/integration/web/
world.py: sshd as the devvm, sshd + breakglass-pve + the qm stand-in as the
Proxmox host, the mock LLM) and a real breakglass-web on a fixed loopback
port (so a restart keeps the page's origin), then runs tests/e2e/page/page.mjs
(playwright-core driving the Debian chromium) and answers its requests on
a line protocol: the script writes `CTRL {"op": ...}` on stdout, this
fixture does it and writes one JSON line to the script's stdin.

    page_e2e.py PATH-TO-breakglass-pve
Screenshots go to BG_BINARY_DIR/e2e-screenshots/."""
import json
import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration", "web"))
from webharness import SOURCE, BINARY, Server, config, tmpdir  # noqa: E402
from world import World, bglab  # noqa: E402

CHROMIUM = "/usr/lib/chromium/chromium"
NODE_MODULES = os.path.join(SOURCE, ".tools", "node", "node_modules")


def need(cond, what):
    if not cond:
        print("page_e2e: cannot run: %s (run scripts/bootstrap)" % what)
        sys.exit(77)


need(shutil.which("node"), "node is missing")
need(os.access(CHROMIUM, os.X_OK), CHROMIUM + " is missing (Debian package chromium)")
for mod in ("playwright-core", "axe-core"):
    need(os.path.isdir(os.path.join(NODE_MODULES, mod)), "npm %s is missing in .tools/node" % mod)

pve_bin = sys.argv[1]
base = tmpdir()
shots = os.path.join(BINARY or base, "e2e-screenshots")
os.makedirs(shots, exist_ok=True)
world = World(base, pve_bin, scenario=os.path.join(SOURCE, "tests", "fixtures", "web", "page.json"))
srv = None
node = None
rc = 1
reports = []  # what a sanitizer said about each breakglass-web that ran
try:
    port = bglab.free_port()
    conf = config(base, auth="proxy", extra="trusted_proxies = 127.0.0.1/32\n",
                  **world.conf_args(provider="anthropic"))
    text = open(conf).read().replace("listen = 127.0.0.1:0", "listen = 127.0.0.1:%d" % port)
    open(conf, "w").write(text)
    env = {"ANTHROPIC_API_KEY": "sk-test-key"}
    srv = Server(conf, env=env)
    node_env = dict(os.environ, BG_PAGE_URL="http://127.0.0.1:%d/" % port, BG_E2E_SHOTS=shots,
                    BG_E2E_USER="alice", BG_NODE_MODULES=NODE_MODULES, BG_CHROMIUM=CHROMIUM)
    node = subprocess.Popen(["node", os.path.join(HERE, "page.mjs")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=node_env, text=True, bufsize=1)
    for line in node.stdout:
        if not line.startswith("CTRL "):
            sys.stdout.write(line)
            sys.stdout.flush()
            continue
        req = json.loads(line[5:])
        op = req.get("op")
        ans = {"ok": True}
        try:
            if op == "restart":
                ans["exit"] = srv.stop()
                reports.append(srv.sanitizer_report())
                srv = Server(conf, env=env)
                ans["port"] = srv.port
            elif op == "offline":  # the same server, with no LLM configured
                srv.stop()
                reports.append(srv.sanitizer_report())
                text = open(conf).read().replace("provider = anthropic", "provider = offline")
                open(conf, "w").write(text)
                srv = Server(conf, env=env)
            elif op == "qemu":
                ans["pid"] = world.qemu_pid()
            elif op == "signal":
                pid = world.qemu_pid()
                os.kill(pid, getattr(signal, req["signal"]))
                ans["pid"] = pid
            elif op == "qm_calls":
                ans["calls"] = world.qm_calls()
            else:
                ans = {"ok": False, "error": "unknown op %r" % op}
        except Exception as e:  # the script reports it as a failed check
            ans = {"ok": False, "error": repr(e)}
        node.stdin.write(json.dumps(ans) + "\n")
        node.stdin.flush()
    rc = node.wait()
    print("screenshots: %s" % shots)
    if rc != 0:
        print("breakglass-web %s; its stderr (tail):\n%s" % (
            "runs" if srv.proc.poll() is None else "exited with %s" % srv.proc.returncode, srv.stderr()[-6000:]))
finally:
    if node and node.poll() is None:
        node.kill()
    if srv:
        srv.stop()
        reports.append(srv.sanitizer_report())
    world.stop()
bad = [r for r in reports if r]
if bad:
    print("FAIL breakglass-web: a sanitizer report\n     " + bad[0].replace("\n", "\n     "))
    rc = 1
else:
    print("ok   no sanitizer report from breakglass-web (%d runs)" % len(reports))
bglab.tmpdirs_done(rc == 0)  # its directories go when it passed
sys.exit(rc)
