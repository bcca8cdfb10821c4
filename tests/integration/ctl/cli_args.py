"""breakglassctl's bad arguments and configuration: each gives a clear
message, the usage text on stderr, nothing on stdout, exit status 2 —
and contacts nothing. authorized-keys prints exactly the lines ssh-keygen
agrees with."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from ctlharness import Listener, check, finish, run, tmpdir, write  # noqa: E402

ctl = sys.argv[1]
d = tmpdir()
listener = Listener()
key = os.path.join(d, "id_ed25519")
subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ctl-test", "-f", key], check=True)
conf = write(os.path.join(d, "ok.conf"), """[devvm]
host = 127.0.0.1
port = %d
[pve]
host = 127.0.0.1
port = %d
[ssh]
key_file = %s
connect_timeout = 2
""" % (listener.port, listener.port, key))


def usage_error(args, needle, what, env=None):
    r = run(ctl, ["--config", conf] + args, env=env)
    ok = r.rc == 2 and "usage: breakglassctl" in r.err and needle in r.err and r.out == ""
    check(ok, what, str(r))


usage_error(["frobnicate"], "unknown command 'frobnicate'", "unknown command")
usage_error([], "no command given", "no command")
usage_error(["--nope", "version"], "unknown or incomplete option '--nope'", "unknown global option")
usage_error(["pve"], "which verb?", "pve without a verb")
usage_error(["pve", "destroy"], "'destroy' is not a verb", "pve destroy")
usage_error(["--json", "pve", "destroy"], "'destroy' is not a verb", "pve destroy --json: nothing on stdout")
usage_error(["pve", "STATUS"], "'STATUS' is not a verb", "pve STATUS (case matters)")
usage_error(["pve", "status", "102"], "one verb only", "pve with a VMID")
usage_error(["exec", "ls"], "put the command after `--`", "exec without --")
usage_error(["exec", "--"], "no command after `--`", "exec with nothing after --")
usage_error(["exec"], "the command goes after `--`", "exec alone")
usage_error(["exec", "--timeout", "abc", "--", "true"], "--timeout wants whole seconds", "exec --timeout abc")
usage_error(["exec", "--timeout", "0", "--", "true"], "--timeout wants whole seconds", "exec --timeout 0")
usage_error(["exec", "--timeout=-5", "--", "true"], "--timeout wants whole seconds", "exec --timeout=-5")
usage_error(["exec", "--timeout"], "--timeout wants whole seconds", "exec --timeout without value")
usage_error(["triage", "now"], "unexpected argument 'now'", "triage with an argument")
usage_error(["authorized-keys", "--key", key], "where do the connections come from?", "authorized-keys without --from")
usage_error(["authorized-keys", "--from", "1.2.3.4\" evil"], "want addresses, CIDRs", "authorized-keys with a quote in --from")
check(listener.accepted == 0, "no connection was made by any bad invocation", "accepted=%d" % listener.accepted)

# Bad configuration: exit 2, file and line named, nothing contacted.
bad = write(os.path.join(d, "bad.conf"), "[devvm]\nhost = 127.0.0.1\nport = %d\ncolour = blue\n" % listener.port)
for args in (["exec", "--", "true"], ["pve", "status"], ["triage"], ["doctor"]):
    r = run(ctl, ["--config", bad] + args)
    check(r.rc == 2 and "bad.conf:4" in r.err and "colour" in r.err, "bad config (unknown key): " + args[0], str(r))
r = run(ctl, ["--config", os.path.join(d, "missing.conf"), "exec", "--", "true"])
check(r.rc == 2 and "missing.conf" in r.err, "a --config file that does not exist", str(r))
r = run(ctl, ["--config", conf, "exec", "--", "true"], env={"BREAKGLASS_DEVVM_PORT": "abc"})
check(r.rc == 2 and "BREAKGLASS_DEVVM_PORT" in r.err, "bad number in the environment", str(r))
nohost = write(os.path.join(d, "nohost.conf"), "[ssh]\nkey_file = %s\n" % key)
r = run(ctl, ["--config", nohost, "exec", "--", "true"])
check(r.rc == 2 and "host" in r.err, "missing required [devvm] host", str(r))
r = run(ctl, ["--config", conf, "--server", "http://127.0.0.1:%d" % listener.port, "exec", "--", "true"])
check(r.rc == 2 and "does not go through --server" in r.err and r.out == "", "exec refuses --server", str(r))
r = run(ctl, ["--config", conf, "exec", "--", "true"], env={"BREAKGLASS_SERVER": "ftp://127.0.0.1:1"})
check(r.rc == 2 and "--server" in r.err, "$BREAKGLASS_SERVER too", str(r))
r = run(ctl, ["--config", conf, "--server", "https://127.0.0.1:%d" % listener.port, "pve", "status"])
check(r.rc == 2 and "http://" in r.err, "--server wants http:// (TLS is the proxy's)", str(r))
check(listener.accepted == 0, "no connection was made with a bad configuration", "accepted=%d" % listener.accepted)

# version, help
r = run(ctl, ["version"])
check(r.rc == 0 and r.out.startswith("breakglassctl "), "version", str(r))
r = run(ctl, ["--json", "version"])
check(r.rc == 0 and r.out.startswith('{"program":"breakglassctl","version":"') and r.out.count("\n") == 1,
      "version --json is one JSON document", str(r))
r = run(ctl, ["--help"])
check(r.rc == 0 and "authorized-keys" in r.out and "--server URL" in r.out and "BREAKGLASS_TOKEN" in r.out,
      "--help on stdout, exit 0", str(r))

# authorized-keys: the public half must be what ssh-keygen -y derives.
for ktype, extra in (("ed25519", []), ("ecdsa", ["-b", "256"])):
    kf = os.path.join(d, "k_" + ktype)
    subprocess.run(["ssh-keygen", "-q", "-t", ktype, "-N", ""] + extra + ["-C", "who@where", "-f", kf], check=True)
    pub = subprocess.run(["ssh-keygen", "-y", "-f", kf], capture_output=True, text=True, check=True).stdout.split()
    r = run(ctl, ["--config", conf, "authorized-keys", "--key", kf, "--devvm-from", "10.0.10.0/24",
                  "--pve-from", "192.168.1.2"])
    lines = r.out.splitlines()
    want_devvm = ('from="10.0.10.0/24",no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s %s who@where'
                  % (pub[0], pub[1]))
    want_pve = ('command="/usr/sbin/breakglass-pve --config /etc/breakglass/pve.conf",restrict,'
                'from="192.168.1.2" %s %s who@where' % (pub[0], pub[1]))
    check(r.rc == 0 and lines == [want_devvm, want_pve], "authorized-keys (%s) matches ssh-keygen -y" % ktype,
          str(r) + "\nwant:\n" + want_devvm + "\n" + want_pve)
    # sshd itself must accept the lines: ssh-keygen -l parses authorized_keys
    ak = write(os.path.join(d, "ak_" + ktype), r.out)
    p = subprocess.run(["ssh-keygen", "-l", "-f", ak], capture_output=True, text=True)
    check(p.returncode == 0 and len(p.stdout.splitlines()) == 2, "ssh-keygen -lf reads both lines (%s)" % ktype,
          p.stdout + p.stderr)

# the key from $BREAKGLASS_SSH_KEY and [ssh] source_address as from=
src = write(os.path.join(d, "src.conf"), "[ssh]\nsource_address = 10.9.8.7\n")
r = run(ctl, ["--config", src, "--json", "authorized-keys"], env={"BREAKGLASS_SSH_KEY": open(key).read()})
check(r.rc == 0 and r.out.startswith('{"key_type":"ssh-ed25519","devvm":"from=\\"10.9.8.7\\"') and
      r.out.count("\n") == 1, "authorized-keys --json, key from the environment", str(r))
# the environment wins over the file, also for a key whose name holds `_`
# (BREAKGLASS_SSH_SOURCE_ADDRESS is [ssh] source_address, not [ssh_source] address)
r = run(ctl, ["--config", src, "--json", "authorized-keys"],
        env={"BREAKGLASS_SSH_KEY": open(key).read(), "BREAKGLASS_SSH_SOURCE_ADDRESS": "10.1.2.3"})
check(r.rc == 0 and r.out.startswith('{"key_type":"ssh-ed25519","devvm":"from=\\"10.1.2.3\\"') and
      "10.9.8.7" not in r.out, "$BREAKGLASS_SSH_SOURCE_ADDRESS wins over the file's [ssh] source_address", str(r))
# a passphrase-protected key: its public half is stored in clear
enc = os.path.join(d, "k_enc")
subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-pass", "-C", "hidden", "-f", enc], check=True)
encpub = open(enc + ".pub").read().split()
r = run(ctl, ["--config", conf, "authorized-keys", "--key", enc, "--from", "10.0.0.1"])
check(r.rc == 0 and r.out.splitlines()[0].endswith("no-X11-forwarding %s %s" % (encpub[0], encpub[1])),
      "authorized-keys from a passphrase-protected key", str(r))
rsa = os.path.join(d, "k_rsa")
subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa], check=True)
r = run(ctl, ["--config", conf, "authorized-keys", "--key", rsa, "--from", "10.0.0.1"])
check(r.rc == 2 and "ssh-rsa" in r.err and "ed25519" in r.err and r.out == "", "authorized-keys refuses RSA", str(r))
r = run(ctl, ["--config", conf, "authorized-keys", "--key", key + ".pub", "--from", "10.0.0.1"])
check(r.rc == 2 and "not an OpenSSH private key" in r.err, "authorized-keys given a public key", str(r))

listener.close()
check(listener.accepted == 0, "nothing was contacted at all", "accepted=%d" % listener.accepted)
finish()
