#!/usr/bin/env bash
# The agent end to end: tests/lab/mock-llm as the Anthropic API (scenario
# tests/fixtures/agent/CASE.json), a loopback sshd as the devvm, a second
# one as the Proxmox host whose forced command is fake-pve (it logs every
# request, so a test can show what ran and what did not).
#   e2e.sh PATH/TO/agent_e2e CASE [SCENARIO]   (SCENARIO defaults to CASE)
set -euo pipefail
harness=$1 case=$2 scen=${3:-$2}
here=$(cd "$(dirname "$0")" && pwd)
src=${BG_SOURCE_DIR:-$here/../../..}
fixture=$src/tests/lab/sshd-fixture
mock=$src/tests/lab/mock-llm
scenario=$src/tests/fixtures/agent/$scen.json
[[ -x $mock ]] || { echo "e2e.sh: $mock missing" >&2; exit 77; }
[[ -f $scenario ]] || { echo "e2e.sh: no scenario $scenario" >&2; exit 2; }
work=$(mktemp -d /tmp/bg-agent-e2e.XXXXXX)
mock_pid=
cleanup() {
	[[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null
	"$fixture" stop "$work/devvm" >/dev/null 2>&1 || true
	"$fixture" stop "$work/pve" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

start_fixture() { # NAME
	local rc=0
	"$fixture" start "$work/$1" >"$work/$1.out" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]]; then cat "$work/$1.out" >&2; exit "$rc"; fi
}
start_fixture devvm
start_fixture pve
# The PVE host: the client's key is allowed only through fake-pve.
pve_keys=$(. "$work/pve/env" && echo "$SSHD_AUTHORIZED_KEYS")
pve_run=$(dirname "$pve_keys")
install -m 0755 "$here/fake-pve" "$pve_run/fake-pve"
: >"$pve_run/requests.log"
chmod 0666 "$pve_run/requests.log"
# The client is the devvm fixture's key, the one the configuration names.
echo "command=\"$pve_run/fake-pve $pve_run/requests.log\",restrict $(cat "$work/devvm/id_ed25519.pub")" >"$pve_keys"

"$mock" --scenario "$scenario" --record "$work/record.jsonl" --port-file "$work/mock.port" --max-life 120 \
	>"$work/mock.out" 2>"$work/mock.err" &
mock_pid=$!
for _ in $(seq 100); do [[ -s $work/mock.port ]] && break; sleep 0.05; done
[[ -s $work/mock.port ]] || { echo "e2e.sh: mock-llm did not start" >&2; cat "$work/mock.err" >&2; exit 1; }

set -a
. "$work/devvm/env"
PVE_PORT=$(. "$work/pve/env" && echo "$SSHD_PORT")
PVE_LOG=$pve_run/requests.log
MOCK_PORT=$(cat "$work/mock.port")
MOCK_RECORD=$work/record.jsonl
set +a
rc=0
"$harness" "$case" || rc=$?
if [[ $rc -ne 0 ]]; then
	echo "--- mock record ---" >&2; cut -c1-600 "$work/record.jsonl" >&2 || true
	echo "--- mock stderr ---" >&2; tail -n 20 "$work/mock.err" >&2 || true
	echo "--- pve requests ---" >&2; cat "$PVE_LOG" >&2 || true
fi
exit "$rc"
