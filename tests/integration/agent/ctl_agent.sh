#!/usr/bin/env bash
# breakglassctl ask/chat against the e2e world (run by e2e.sh, which sets
# SSHD_*, PVE_PORT, PVE_LOG, MOCK_PORT): what the terminal shows, --json,
# approvals without a terminal, Ctrl-C.
#   ctl_agent.sh CASE
set -euo pipefail
case=$1
ctl=${BG_BINARY_DIR:?}/apps/ctl/breakglassctl
[[ -x $ctl ]] || { echo "ctl_agent.sh: $ctl not built" >&2; exit 1; }
work=$(mktemp -d /tmp/bg-ctl-agent.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "ctl_agent.sh [$case]: $*" >&2; echo "--- stdout ---" >&2; cat "$work/out" >&2; echo "--- stderr ---" >&2; cat "$work/err" >&2; exit 1; }

mutations=confirm provider=anthropic
[[ $case == offline ]] && provider=offline mutations=deny
# The remedies find fake systemctl/kill/mount/rm first (they only record
# what they were asked in $work/calls.log): nothing of this machine is
# touched. The devvm's user must reach them.
chmod 0755 "$work"
mkdir -m 0755 "$work/bin"
for fake in systemctl kill mount rm; do
	# shellcheck disable=SC2016 # $* and $1 belong to the fake
	printf '#!/bin/sh\necho "%s $*" >>%s/calls.log\n[ "$1" = is-active ] && echo active\nexit 0\n' \
		"$fake" "$work" >"$work/bin/$fake"
	chmod 0755 "$work/bin/$fake"
done
: >"$work/calls.log"
chmod 0666 "$work/calls.log"
cat >"$work/conf" <<CONF
[devvm]
host = 127.0.0.1
port = $SSHD_PORT
user = $SSHD_USER
sudo = env PATH=$work/bin:/usr/bin:/bin
[pve]
host = 127.0.0.1
port = $PVE_PORT
user = $SSHD_USER
[ssh]
key_file = $SSHD_CLIENT_KEY
known_hosts = $work/known_hosts
[agent]
provider = $provider
base_url = http://127.0.0.1:$MOCK_PORT
pve_mutations = $mutations
devvm_mutations = confirm
CONF
export ANTHROPIC_API_KEY=sk-test-key
# No controlling terminal, as in CI: approvals must be denied, not hang.
run() { setsid "$ctl" --config "$work/conf" "$@" </dev/null >"$work/out" 2>"$work/err"; }

case $case in
ask_text) # scenario roundtrip
	run ask "is the devvm alive?" || fail "exit $?"
	grep -q '^▸ devvm_exec: echo \$((6\*7))-e2e; id -un$' "$work/out" || fail "no tool line"
	grep -q '✓ exit 0' "$work/out" || fail "no result line"
	grep -q '│ 42-e2e' "$work/out" || fail "the remote output is not shown"
	grep -q 'The devvm answers.' "$work/out" || fail "no answer text"
	;;
ask_json) # scenario roundtrip
	run --json ask "is the devvm alive?" || fail "exit $?"
	/usr/bin/python3 - "$work/out" <<'PY' || fail "stdout is not the events as JSON lines"
import json, sys
kinds = [json.loads(l)["kind"] for l in open(sys.argv[1])]
assert kinds[0] == "user" and kinds[-1] == "turn_end", kinds
assert "tool" in kinds and "tool_result" in kinds, kinds
ids = [json.loads(l)["id"] for l in open(sys.argv[1])]
assert ids == list(range(len(ids))), ids
PY
	;;
no_tty_denied) # scenario cycle
	run ask "fix the devvm" || fail "exit $?"
	grep -q 'no terminal' "$work/err" || fail "no word about the missing terminal"
	grep -q 'not approved' "$work/out" || fail "the denial is not shown"
	! grep -q '^cycle' "$PVE_LOG" || fail "cycle ran without approval"
	;;
ctrl_c) # scenario cancel_tool
	setsid "$ctl" --config "$work/conf" ask "sleep" </dev/null >"$work/out" 2>"$work/err" &
	pid=$!
	for _ in $(seq 100); do grep -q 'sleep 30' "$work/out" 2>/dev/null && break; sleep 0.1; done
	sleep 0.3
	start=$(date +%s%N)
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	[[ $rc -eq 1 ]] || fail "exit $rc after Ctrl-C (want 1)"
	((ms < 3000)) || fail "took $ms ms to stop"
	grep -q 'turn cancelled' "$work/err" || fail "no word about the cancel"
	;;
tty_approve) # scenario cycle: asked on the terminal, answered y
	/usr/bin/python3 - "$ctl" "$work/conf" >"$work/out" 2>"$work/err" <<'PY' || fail "no approval on the terminal"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--config", sys.argv[2], "ask", "fix the devvm"])
seen, deadline, answered = b"", time.time() + 60, False
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not answered and b"Allow? [y/N]" in seen:
        os.write(fd, b"y\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(0 if answered and os.WEXITSTATUS(status) == 0 else 1)
PY
	grep -q 'wants to run `pve cycle`' "$work/out" || fail "the question does not name the verb"
	grep -q '^cycle --json$' "$PVE_LOG" || fail "cycle did not run after y"
	;;
chat) # scenario roundtrip: prompts on stdin, /quit leaves
	printf 'is the devvm alive?\n/quit\nnever sent\n' |
		setsid "$ctl" --config "$work/conf" chat >"$work/out" 2>"$work/err" || fail "exit $?"
	grep -q '│ 42-e2e' "$work/out" || fail "the turn's tool output is not shown"
	grep -q 'The devvm answers.' "$work/out" || fail "no answer text"
	;;
remedy_no_tty) # scenario remedy: no terminal, as in CI: denied, nothing ran
	run ask "fix the devvm" || fail "exit $?"
	grep -q 'approval to restart the systemd unit bg-demo.service on the devvm.*denied: no terminal' "$work/err" ||
		fail "no word about the remedy and the missing terminal"
	grep -q 'not approved' "$work/out" || fail "the denial is not shown"
	[[ ! -s $work/calls.log ]] || fail "something ran on the devvm without approval: $(cat "$work/calls.log")"
	;;
remedy_tty_approve | remedy_tty_deny) # scenario remedy: asked on the terminal, answered y / n
	answer=y
	[[ $case == remedy_tty_deny ]] && answer=n
	/usr/bin/python3 - "$ctl" "$work/conf" "$answer" >"$work/out" 2>"$work/err" <<'PY' || fail "no approval on the terminal"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--config", sys.argv[2], "ask", "fix the devvm"])
seen, deadline, answered = b"", time.time() + 60, False
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not answered and b"Allow? [y/N]" in seen:
        os.write(fd, sys.argv[3].encode() + b"\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(0 if answered and os.WEXITSTATUS(status) == 0 else 1)
PY
	grep -q '^▸ devvm_remedy: restart-unit unit:bg-demo.service' "$work/out" || fail "no tool line for the remedy"
	grep -q 'wants to restart the systemd unit bg-demo.service on the devvm (systemctl restart). Allow?' "$work/out" ||
		fail "the question does not say what the remedy will do"
	if [[ $answer == y ]]; then
		[[ $(cat "$work/calls.log") == $'systemctl restart -- bg-demo.service\nsystemctl is-active -- bg-demo.service' ]] ||
			fail "not exactly the approved command ran: $(cat "$work/calls.log")"
		grep -q 'after: bg-demo.service is active' "$work/out" || fail "the remedy's result is not shown"
	else
		[[ ! -s $work/calls.log ]] || fail "something ran after n: $(cat "$work/calls.log")"
		grep -q 'not approved' "$work/out" || fail "the denial is not shown"
	fi
	;;
escapes) # scenario escapes: no escape from the model or the guest reaches the terminal
	run ask "look" || fail "exit $?"
	grep -q 'guest-says-hi' "$work/out" || fail "the devvm's output is not shown"
	! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$work/out" || fail "a control byte reached the terminal"
	! LC_ALL=C grep -q $'\xc2[\x80-\x9f]' "$work/out" || fail "a C1 control reached the terminal"
	grep -q 'Looking?\]0;pwned-by-model? at it?\[2J' "$work/out" || fail "the model's escapes are not shown as ?"
	;;
offline) # no LLM at all: the playbook through the real tools
	run ask "the devvm?" || fail "exit $?"
	grep -q '^▸ pve: status$' "$work/out" || fail "no pve status step"
	grep -q '^▸ devvm_exec: uptime$' "$work/out" || fail "no reachability step"
	grep -q 'Found:' "$work/out" || fail "no report"
	grep -q '^status' "$PVE_LOG" || fail "the PVE host saw no status request"
	;;
*) echo "ctl_agent.sh: unknown case $case" >&2; exit 2 ;;
esac
echo "ok $case"
