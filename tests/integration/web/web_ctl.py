"""breakglassctl --server against a real breakglass-web, itself with its
real peers (breakglass-pve + qm stand-in under sshd, a devvm sshd, the
mock LLM): pve, triage and ask through the server, from a pod without
the SSH key; exit statuses; bad token; unreachable server."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from webharness import BINARY, SOURCE, TOKEN, Server, check, config, finish, tmpdir, write  # noqa: E402
from world import World  # noqa: E402

pve_bin = sys.argv[1]
CTL = os.path.join(BINARY, "apps", "ctl", "breakglassctl")
base = tmpdir()
world = World(base, pve_bin, scenario=os.path.join(SOURCE, "tests", "fixtures", "web", "turn.json"))
srv = None


def ctl(args, env=None, timeout=180):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("BREAKGLASS_", "API_", "ANTHROPIC"))}
    e.update(env or {})
    p = subprocess.run(["setsid", CTL] + args, capture_output=True, text=True, env=e, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p


try:
    srv = Server(config(base, auth="bearer", **world.conf_args(provider="anthropic")),
                 env={"ANTHROPIC_API_KEY": "sk-test-key"})
    url = "http://127.0.0.1:%d" % srv.port
    tok = {"BREAKGLASS_TOKEN": TOKEN}
    # The pod has no key and no configuration: only the server's URL and the token.
    p = ctl(["--server", url, "pve", "status"], tok)
    check(p.returncode == 0 and "status on VM 102: ok, VM stopped" in p.stdout, "pve status through the server",
          p.stdout + p.stderr)
    p = ctl(["--json", "pve", "status"], dict(tok, BREAKGLASS_SERVER=url))
    doc = json.loads(p.stdout or "{}")
    check(p.returncode == 0 and doc.get("exit_code") == 0 and doc.get("result", {}).get("status") == "stopped",
          "--json pve status via $BREAKGLASS_SERVER: the API's document", p.stdout + p.stderr)
    tf = write(os.path.join(base, "token"), TOKEN + "\n")
    p = ctl(["--server", url, "pve", "status"], {"BREAKGLASS_TOKEN_FILE": tf})
    check(p.returncode == 0, "the token from $BREAKGLASS_TOKEN_FILE", p.stderr)
    p = ctl(["--server", url, "pve", "status"], {"BREAKGLASS_TOKEN": "wrong-wrong-wrong-wrong"})
    check(p.returncode == 1 and "401" in p.stderr, "a wrong token: exit 1, HTTP 401 said", p.stderr)
    before = world.qm_calls()
    p = ctl(["--server", url, "pve", "destroy"], tok)
    check(p.returncode == 2 and world.qm_calls() == before, "pve destroy: exit 2, nothing ran", p.stderr)
    p = ctl(["--server", "http://127.0.0.1:1", "pve", "status"], tok)
    check(p.returncode == 255, "an unreachable server: exit 255", p.stderr)
    p = ctl(["--server", url, "triage"], tok)
    check(p.returncode == 0 and "uptime" in p.stdout, "triage through the server, as text", p.stdout[:300] + p.stderr)
    p = ctl(["--server", url, "--json", "triage"], tok)
    check(p.returncode == 0 and "sections" in json.loads(p.stdout or "{}"), "--json triage through the server",
          p.stderr)
    p = ctl(["--server", url, "ask", "check the devvm"], tok)
    out = p.stdout
    check(p.returncode == 0 and "Looking at the devvm." in out and "▸ devvm_exec: sleep 2; echo web-e2e-$((6*7))"
          in out and "web-e2e-42" in out and "Done: the VM runs." in out, "ask through the server: the turn rendered",
          out + p.stderr)
    check("not approved" in out and "no terminal" in p.stderr and world.qemu_pid() is None,
          "ask without a terminal: the approval is denied through the server, the VM not started",
          out + p.stderr)
    p = ctl(["--server", url, "exec", "--", "true"], tok)
    check(p.returncode == 2, "exec does not go through the server", p.stderr)
finally:
    if srv:
        srv.stop()
    world.stop()
finish()
