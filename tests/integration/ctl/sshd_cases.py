"""breakglassctl against a real OpenSSH sshd on loopback: exec (status,
stderr, --json, timeout), triage of this very machine, doctor (pass lines,
and a fail line for an unreachable PVE port), unreachable targets (255),
authorized-keys accepted by sshd, and pve through a forced command that
answers with recorded breakglass-pve documents (status mapping)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from ctlharness import FIXTURES, SOURCE, check, finish, free_port, run, tmpdir, write  # noqa: E402

ctl = sys.argv[1]
fixture = os.path.join(SOURCE, "tests", "lab", "sshd-fixture")
base = tmpdir()
os.chmod(base, 0o755)
started = []


def start_sshd(name, authorized_keys=None, key_from=None):
    d = os.path.join(base, name)
    os.makedirs(d)
    if key_from:  # both targets take the same client key, as in production
        for f in ("id_ed25519", "id_ed25519.pub"):
            shutil.copy(os.path.join(key_from, f), d)
    args = [fixture, "start", d]
    if authorized_keys:
        args += ["--authorized-keys", authorized_keys]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode == 77:
        print(p.stderr)
        sys.exit(77)
    if p.returncode != 0:
        print("sshd-fixture failed:", p.stdout, p.stderr)
        sys.exit(1)
    started.append(d)
    return dict(line.split("=", 1) for line in p.stdout.split())


def stop_all():
    for d in started:
        subprocess.run([fixture, "stop", d])


try:
    devvm = start_sshd("devvm")
    # the fake forced command, with its recorded answers, readable by the test user
    pvedir = os.path.join(base, "pvecmd")
    os.makedirs(pvedir)
    os.chmod(pvedir, 0o777)
    for f in ("status-running.json", "cycle-ok.json", "busy.json", "stop-dstate.json"):
        shutil.copy(os.path.join(FIXTURES, "pve", f), pvedir)
    shutil.copy(os.path.join(os.path.dirname(__file__), "fake_pve.py"), pvedir)
    os.chmod(os.path.join(pvedir, "fake_pve.py"), 0o755)
    pub = open(devvm["SSHD_CLIENT_KEY"] + ".pub").read().strip()
    ak = write(os.path.join(base, "pve_authorized_keys"),
               'command="/usr/bin/python3 %s/fake_pve.py",restrict %s\n' % (pvedir, pub))
    pve = start_sshd("pve", authorized_keys=ak, key_from=devvm["SSHD_DIR"])

    # a devvm whose df reports one filesystem 99% full (its forced command
    # puts a fake df first in PATH): the findings it must give are known
    fakebin = os.path.join(base, "fakebin")
    os.makedirs(fakebin)
    write(os.path.join(fakebin, "df"), """#!/bin/sh
if [ "$2" = "-i" ]; then
    printf 'Filesystem      Inodes  IUsed   IFree IUse%% Mounted on\\n/dev/vdb1      1000000  10000  990000    1%% /srv/full\\n'
else
    printf 'Filesystem     1024-blocks      Used Available Capacity Mounted on\\n'
    printf '/dev/vdb1          1000000    990000     10000      99%% /srv/full\\n'
    printf '/dev/vdc1          1000000    910000     90000      91%% /srv/half\\n'
fi
""", 0o755)
    wrap = write(os.path.join(fakebin, "wrap.sh"),
                 'PATH=%s:/usr/bin:/bin; export PATH; exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n' % fakebin, 0o755)
    fak = write(os.path.join(base, "full_authorized_keys"),
                'command="/bin/sh %s",no-port-forwarding,no-pty %s\n' % (wrap, pub))
    full = start_sshd("devvm-full", authorized_keys=fak, key_from=devvm["SSHD_DIR"])

    def config(name, devvm_port=None, pve_port=None, pin=True, dv=None):
        dv = dv or devvm
        return write(os.path.join(base, name), """[devvm]
host = 127.0.0.1
port = %s
user = %s
host_key = %s
command_timeout = 30
[pve]
host = 127.0.0.1
port = %s
user = %s
verb_timeout = 30
[ssh]
key_file = %s
connect_timeout = 3
known_hosts = %s
[agent]
provider = offline
""" % (devvm_port or dv["SSHD_PORT"], dv["SSHD_USER"], dv["SSHD_HOST_KEY_FPR"] if pin else "",
            pve_port or pve["SSHD_PORT"], pve["SSHD_USER"], devvm["SSHD_CLIENT_KEY"],
            os.path.join(base, "known_hosts")))

    conf = config("ok.conf")
    closed = free_port()
    down = config("down.conf", devvm_port=closed, pve_port=closed)
    pve_down = config("pvedown.conf", pve_port=closed)

    # ---- exec
    r = run(ctl, ["--config", conf, "exec", "--", "echo hello; echo oops >&2; exit 7"])
    check(r.rc == 7 and r.out == "hello\n" and "oops" in r.err, "exec passes the remote status, stdout, stderr", str(r))
    r = run(ctl, ["--config", conf, "exec", "--", "id", "-un"])
    check(r.rc == 0 and r.out.strip() == devvm["SSHD_USER"], "exec joins the words: id -un", str(r))
    r = run(ctl, ["--config", conf, "--json", "exec", "--", "printf 'a\\tb\\n'; echo e >&2; exit 3"])
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    check(r.rc == 3 and r.out.count("\n") == 1 and doc.get("exit_code") == 3 and doc.get("stdout") == "a\tb\n"
          and doc.get("stderr") == "e\n", "exec --json: one document, status passed through", str(r))
    t0 = time.time()
    r = run(ctl, ["--config", conf, "exec", "--timeout", "2", "--", "sleep 30"])
    check(r.rc == 124 and time.time() - t0 < 20, "exec --timeout 2 ends a sleep 30 with 124", str(r))
    r = run(ctl, ["--config", down, "exec", "--", "true"])
    check(r.rc == 255, "exec against a closed port: 255", str(r))
    r = run(ctl, ["--config", down, "triage"])
    check(r.rc == 255, "triage against a closed port: 255", str(r))
    r = run(ctl, ["--config", down, "pve", "status"])
    check(r.rc == 255, "pve against a closed port: 255", str(r))

    # ---- triage of this machine (a real Debian)
    r = run(ctl, ["--config", conf, "--json", "triage"], timeout=120)
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    sections = {s["name"]: s for s in doc.get("sections", [])}
    want = {"uptime", "memory", "psi", "disk", "inodes", "failed_units", "top_mem", "top_cpu", "dstate",
            "kernel_log", "tmpfs", "mounts", "procs", "units"}
    check(r.rc == 0 and set(sections) == want, "triage --json: the fourteen sections, by name",
          f"rc={r.rc} got={sorted(sections)}")
    cpus = open("/proc/cpuinfo").read().count("processor\t:")
    up = sections.get("uptime", {})
    check(up.get("ok") and ("cpus: %d" % cpus) in up.get("output", ""), "triage: uptime section tells the CPUs",
          str(up))
    disk = sections.get("disk", {})
    check(disk.get("ok") and any(line.split()[-1] == "/" for line in disk.get("output", "").splitlines()[1:]),
          "triage: disk section lists /", str(disk))
    mem = sections.get("memory", {})
    check(mem.get("ok") and "MemTotal:" in mem.get("output", ""), "triage: memory section", str(mem))
    check(all(sections.get(n, {}).get("ok") for n in ("psi", "inodes", "top_mem", "top_cpu", "dstate")),
          "triage: psi, inodes, top_mem, top_cpu, dstate ran", json.dumps(sections)[:3000])
    findings = doc.get("findings")
    check(isinstance(findings, list) and all(f.get("rule") and f.get("severity") in ("info", "warn", "critical") and
                                             f.get("summary") and f.get("evidence") for f in findings),
          "triage: findings listed, each with rule, severity, summary and evidence", str(r))
    # the devvm with a full disk: exactly one disk finding, critical (the
    # fullest filesystem decides), naming both, and no inode finding
    r = run(ctl, ["--config", config("full.conf", dv=full), "--json", "triage"], timeout=120)
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    fs = [f for f in doc.get("findings", []) if f.get("rule") in ("disk_full", "inodes_full")]
    check(r.rc == 0 and len(fs) == 1 and fs[0]["rule"] == "disk_full" and fs[0]["severity"] == "critical" and
          "/srv/full 99%, /srv/half 91%" in fs[0]["summary"] and "/dev/vdb1" in fs[0]["evidence"],
          "triage of a full disk: one critical disk_full finding naming both filesystems", str(r))
    r = run(ctl, ["--config", conf, "triage"], timeout=120)
    check(r.rc == 0 and r.out.startswith("findings: ") and "\n== kernel_log" in r.out, "triage as text", str(r))

    # ---- pve through the forced command
    log = os.path.join(pvedir, "requests.log")
    r = run(ctl, ["--config", conf, "pve", "status"])
    check(r.rc == 0 and "status on VM 102: ok, VM running" in r.out, "pve status: 0 and the VM state", str(r))
    sent = open(log).read().splitlines() if os.path.exists(log) else []
    check(sent == ["status --json"], "pve status sent exactly 'status --json'", repr(sent))
    r = run(ctl, ["--config", conf, "pve", "reset"])
    check(r.rc == 3 and "busy" in r.err, "pve reset while busy: exit 3 passed through", str(r))
    r = run(ctl, ["--config", conf, "--json", "pve", "stop"])
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    res = doc.get("result") or {}
    check(r.rc == 4 and doc.get("exit_code") == 4 and res.get("forensics", {}).get("verdict") == "qemu-uninterruptible",
          "pve stop --json: exit 4 and the verdict", str(r))
    r = run(ctl, ["--config", conf, "pve", "cycle"])
    check(r.rc == 0 and "block-io-stalled" in r.out and "kill" in r.out, "pve cycle: steps and verdict shown", str(r))
    r = run(ctl, ["--config", conf, "pve", "destroy"])
    sent = open(log).read().splitlines()
    check(r.rc == 2 and "destroy" not in " ".join(sent), "pve destroy never reaches the host", repr(sent))

    # ---- doctor
    r = run(ctl, ["--config", conf, "doctor"], timeout=120)
    lines = r.out.splitlines()
    for name in ("config", "key", "devvm", "pve"):
        check(any(line.startswith("PASS " + name) for line in lines), "doctor: PASS " + name, str(r))
    check("(pinned)" in r.out and devvm["SSHD_HOST_KEY_FPR"] in r.out, "doctor: devvm host key shown as pinned", str(r))
    check("(NOT pinned)" in r.out and "host_key = SHA256:" in r.out, "doctor: pve host key not pinned, with a hint",
          str(r))
    # which policy each host uses, and what it made of the key (known_hosts
    # already holds the pve host's key from the commands above)
    pve_line = [line for line in lines if line.startswith("PASS pve ")]
    check(len(pve_line) == 1 and "host_key_policy = accept-new: known (" in pve_line[0] and
          os.path.join(base, "known_hosts") in pve_line[0] and pve["SSHD_HOST_KEY_FPR"] in pve_line[0],
          "doctor: pve host key known from known_hosts, policy shown", str(r))
    check(any(line.startswith("PASS devvm") and "(pinned), host_key_policy = accept-new" in line for line in lines),
          "doctor: devvm pinned, policy shown", str(r))
    check(any(line.startswith("PASS pve-vm") and "no config lock; not HA-managed; pve-manager/8.2.4" in line
              for line in lines), "doctor: PASS pve-vm with lock, HA and versions from status --json", str(r))
    check(any(line.startswith("PASS llm") for line in lines), "doctor: PASS llm (offline provider)", str(r))
    check(r.rc == 0 and lines[-1] == "doctor: all checks passed", "doctor: exit 0 when all pass", str(r))
    # the pve host's key "changed": known_hosts holds another key for it
    other_pub = open(devvm["SSHD_CLIENT_KEY"] + ".pub").read().split()
    changed_kh = write(os.path.join(base, "known_hosts_changed"),
                       "[127.0.0.1]:%s %s %s\n" % (pve["SSHD_PORT"], other_pub[0], other_pub[1]))
    os.chmod(changed_kh, 0o600)
    changed = write(os.path.join(base, "changed.conf"), open(conf).read().replace(
        os.path.join(base, "known_hosts"), changed_kh))
    r = run(ctl, ["--config", changed, "doctor"], timeout=120)
    fail_pve = [line for line in r.out.splitlines() if line.startswith("FAIL pve")]
    check(r.rc == 1 and len(fail_pve) == 1 and "HOST KEY CHANGED" in fail_pve[0] and changed_kh + " line 1" in
          fail_pve[0] and pve["SSHD_HOST_KEY_FPR"] in fail_pve[0],
          "doctor: FAIL pve for a changed host key, naming the file, the line and the key", str(r))
    sent_before = open(log).read().splitlines()
    r = run(ctl, ["--config", changed, "pve", "status"])
    check(r.rc == 255 and "HOST KEY CHANGED" in r.err and open(log).read().splitlines() == sent_before,
          "pve status refused on a changed host key, nothing sent", str(r))
    llm_down = write(os.path.join(base, "llmdown.conf"), open(conf).read().replace(
        "provider = offline", "provider = openai\nbase_url = http://127.0.0.1:%d" % closed))
    r = run(ctl, ["--config", llm_down, "doctor"], timeout=120,
                 env={"OPENAI_API_KEY": "sk-test-not-a-key"})
    check(r.rc == 1 and any(line.startswith("FAIL llm") for line in r.out.splitlines()),
          "doctor: FAIL llm for an endpoint that does not answer", str(r))
    r = run(ctl, ["--config", pve_down, "doctor"], timeout=120)
    check(r.rc == 1 and any(line.startswith("FAIL pve") for line in r.out.splitlines())
          and any(line.startswith("PASS devvm") for line in r.out.splitlines()) and "hint:" in r.out,
          "doctor: FAIL pve for a closed port, exit 1", str(r))
    r = run(ctl, ["--config", pve_down, "--json", "doctor"], timeout=120)
    try:
        doc = json.loads(r.out)
    except ValueError:
        doc = {}
    check(r.rc == 1 and doc.get("ok") is False and any(c["name"] == "pve" and not c["ok"] for c in doc.get("checks", [])),
          "doctor --json", str(r))

    # ---- authorized-keys lines that sshd accepts: the devvm line lets us in
    r = run(ctl, ["--config", conf, "authorized-keys", "--from", "127.0.0.1"])
    lines = r.out.splitlines()
    check(r.rc == 0 and len(lines) == 2, "authorized-keys: two lines", str(r))
    write(devvm["SSHD_AUTHORIZED_KEYS"], lines[0] + "\n")
    r = run(ctl, ["--config", conf, "exec", "--", "echo in"])
    check(r.rc == 0 and r.out == "in\n", "the devvm line lets the key in from 127.0.0.1", str(r))
    write(devvm["SSHD_AUTHORIZED_KEYS"], lines[0].replace('from="127.0.0.1"', 'from="127.0.0.2"') + "\n")
    r = run(ctl, ["--config", conf, "exec", "--", "echo in"])
    check(r.rc == 255, "and from= keeps it out from elsewhere (255)", str(r))

    # ---- triage with the lab guest's tools: busybox only (ps without
    # --sort, busybox top/df/timeout/sh), forced by the authorized_keys line
    if os.path.exists("/bin/busybox"):
        bbdir = os.path.join(base, "bb")
        os.makedirs(bbdir)
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split()
        for a in applets:
            os.symlink("/bin/busybox", os.path.join(bbdir, a))
        wrap = write(os.path.join(pvedir, "bbwrap"),
                     '#!/bin/sh\nexec /usr/bin/env -i PATH=%s %s/sh -c "$SSH_ORIGINAL_COMMAND"\n' % (bbdir, bbdir),
                     0o755)
        write(devvm["SSHD_AUTHORIZED_KEYS"], 'command="%s" %s\n' % (wrap, pub))
        r = run(ctl, ["--config", conf, "exec", "--", "ps --sort=-rss >/dev/null 2>&1 || echo busybox-ps"])
        check(r.rc == 0 and r.out == "busybox-ps\n", "busybox: ps there has no --sort", str(r))
        r = run(ctl, ["--config", conf, "--json", "triage"], timeout=120)
        try:
            doc = json.loads(r.out)
        except ValueError:
            doc = {}
        sections = {s["name"]: s for s in doc.get("sections", [])}
        bad = [n for n in ("uptime", "memory", "psi", "disk", "inodes", "failed_units", "top_mem", "top_cpu",
                           "dstate") if not sections.get(n, {}).get("ok")]
        check(r.rc == 0 and not bad, "busybox: every section but the kernel log ran", "failed: %r\n%s" % (bad, r))
        check("RSS_KB" in sections.get("top_mem", {}).get("output", ""), "busybox: top_mem through /proc, sorted",
              str(sections.get("top_mem")))
        check("%CPU" in sections.get("top_cpu", {}).get("output", ""), "busybox: top_cpu through top -b",
              str(sections.get("top_cpu")))
        check("no systemd" in sections.get("failed_units", {}).get("output", ""), "busybox: no systemd tolerated",
              str(sections.get("failed_units")))
    else:
        check(False, "busybox-static is installed (scripts/bootstrap)")
finally:
    stop_all()
finish()
