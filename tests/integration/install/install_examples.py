"""The examples (examples/*.c) built against the INSTALLED library, with
pkg-config and with find_package, then run against the lab peers: a real
sshd as the devvm, the real breakglass-pve under a second sshd driving a
real QEMU through the qm stand-in (bindings/python/tests/lab.py).

    install_examples.py BUILD_DIR SOURCE_DIR BREAKGLASS_PVE
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

build, src, pve_bin = sys.argv[1:4]
sys.path.insert(0, os.path.join(src, "bindings", "python", "tests"))
from lab import start_lab, write  # noqa: E402

EXAMPLES = ("pve_verb", "devvm_exec", "agent_turn")
failures = []


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what + ("" if cond or not detail else "\n     " + detail[:3000]))
    if not cond:
        failures.append(what)


def sh(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        print("command failed:", argv, p.stdout[-3000:], p.stderr[-3000:])
        sys.exit(1)
    return p


if os.geteuid() != 0 or not os.path.exists("/usr/sbin/sshd") or not shutil.which("qemu-system-x86_64"):
    print("install_examples: needs root, sshd and qemu-system-x86_64 (scripts/bootstrap)")
    sys.exit(77)

work = tempfile.mkdtemp(prefix="bg-examples-")
prefix = os.path.join(work, "prefix")
lab = None
try:
    # A sanitized library needs the sanitizer runtime in the program that loads it.
    sanitize = ""
    for line in open(os.path.join(build, "CMakeCache.txt")):
        if line.startswith("BG_SANITIZE:STRING="):
            sanitize = line.split("=", 1)[1].strip()
    san = ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer"] if sanitize else []

    sh(["cmake", "--install", build, "--prefix", prefix])
    pc = glob.glob(os.path.join(prefix, "**", "breakglass.pc"), recursive=True)[0]
    libdir = os.path.dirname(glob.glob(os.path.join(prefix, "**", "libbreakglass.so"), recursive=True)[0])
    text = open(pc).read().splitlines()
    write(pc, "\n".join("prefix=" + prefix if l.startswith("prefix=") else l for l in text) + "\n")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), LD_LIBRARY_PATH=libdir)
    env = {k: v for k, v in env.items() if not k.startswith("BREAKGLASS_") and k != "SSH_AUTH_SOCK"}

    # pkg-config
    flags = sh(["pkg-config", "--cflags", "--libs", "breakglass"], env=env).stdout.split()
    pc_bin = {}
    for ex in EXAMPLES:
        pc_bin[ex] = os.path.join(work, ex + "-pc")
        sh(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"] + san +
           ["-o", pc_bin[ex], os.path.join(src, "examples", ex + ".c")] + flags, env=env)
    # find_package
    eb = os.path.join(work, "examples-build")
    sh(["cmake", "-S", os.path.join(src, "examples"), "-B", eb, "-DCMAKE_PREFIX_PATH=" + prefix,
        "-DCMAKE_C_FLAGS=" + " ".join(["-Wall", "-Wextra", "-Werror"] + san)], env=env)
    sh(["cmake", "--build", eb], env=env)
    fp_bin = {ex: os.path.join(eb, ex) for ex in EXAMPLES}
    for ex in EXAMPLES:
        needed = sh(["readelf", "-d", fp_bin[ex]]).stdout
        check("libbreakglass.so.1" in needed, ex + " (find_package) links libbreakglass.so.1")

    lab = start_lab(pve_bin)
    conf = write(os.path.join(work, "breakglass.conf"), lab.config_text(provider="offline", pve_mutations="confirm"))

    def run(binary, *args, stdin=""):
        p = subprocess.run([binary, conf] + list(args), input=stdin, capture_output=True, text=True, env=env,
                           timeout=240)
        return p, "argv=%r rc=%d\nstdout=%s\nstderr=%s" % (args, p.returncode, p.stdout, p.stderr)

    for kind, bins in (("pkg-config", pc_bin), ("find_package", fp_bin)):
        p, d = run(bins["devvm_exec"], "echo hello; echo oops >&2; exit 3")
        check(p.returncode == 3 and p.stdout == "hello\n" and "oops" in p.stderr,
              "devvm_exec (%s): output streamed, exit status passed" % kind, d)
        p, d = run(bins["pve_verb"], "status")
        check(p.returncode == 0 and "status on VM 102: ok, VM stopped" in p.stdout,
              "pve_verb status (%s): the stopped VM" % kind, d)

    b = fp_bin
    before = lab.qm_calls()
    p, d = run(b["pve_verb"], "destroy")
    check(p.returncode == 1 and "destroy" in p.stderr and lab.qm_calls() == before,
          "pve_verb destroy: refused before anything ran", d)

    # the agent: the VM is stopped, so the offline playbook asks for `pve start`
    p, d = run(b["agent_turn"], "the devvm does not answer", stdin="n\n")
    check(p.returncode == 0 and "approve pve" in p.stdout and '"start"' in p.stdout and "approved: false" in p.stdout
          and "[turn ended" in p.stdout, "agent_turn: asks on stdin, 'n' denies", d)
    check(lab.qemu_pid() is None and not any(c.startswith("start") for c in lab.qm_calls()),
          "agent_turn: a denied start did not run", repr(lab.qm_calls()))
    p, d = run(b["agent_turn"], "the devvm does not answer", stdin="y\n")
    check(p.returncode == 0 and "approved: true" in p.stdout, "agent_turn: 'y' approves", d)
    check(lab.qemu_pid() is not None and "start 102" in lab.qm_calls(), "agent_turn: the approved start ran",
          repr(lab.qm_calls()))
    p, d = run(b["pve_verb"], "stop")
    check(p.returncode == 0 and "VM stopped" in p.stdout and lab.qemu_pid() is None, "pve_verb stop", d)
finally:
    if lab:
        lab.down()
    shutil.rmtree(work, ignore_errors=True)

if failures:
    print("%d check(s) failed: %s" % (len(failures), ", ".join(failures)))
    sys.exit(1)
print("install_examples: all checks passed")
