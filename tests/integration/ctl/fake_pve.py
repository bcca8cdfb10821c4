#!/usr/bin/python3
"""A stand-in for breakglass-pve as an sshd forced command: records the
request it got and answers with a recorded --json document and the exit
status breakglass-pve gives in that case."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
request = os.environ.get("SSH_ORIGINAL_COMMAND", "")
with open(os.path.join(here, "requests.log"), "a") as f:
    f.write(request + "\n")
answers = {
    "status --json": ("status-running.json", 0),
    "cycle --json": ("cycle-ok.json", 0),
    "reset --json": ("busy.json", 3),
    "stop --json": ("stop-dstate.json", 4),
}
if request not in answers:
    sys.stderr.write("rejected: allowed verbs are status forensics reset stop start cycle\n")
    sys.exit(2)
name, status = answers[request]
sys.stdout.write(open(os.path.join(here, name)).read())
if status == 3:
    sys.stderr.write("busy: cycle running since 2026-06-11T16:47:42Z from 127.0.0.1\n")
sys.exit(status)
