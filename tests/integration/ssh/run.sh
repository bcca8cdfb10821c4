#!/usr/bin/env bash
# Starts the loopback sshd fixture, runs ssh_itest against it, stops it.
#   run.sh PATH/TO/ssh_itest [CASE…]
set -euo pipefail
itest=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
fixture=${BG_SOURCE_DIR:-$here/../../..}/tests/lab/sshd-fixture
dir=$(mktemp -d /tmp/bg-ssh-itest.XXXXXX)
cleanup() {
	"$fixture" stop "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
rc=0
"$fixture" start "$dir" >"$dir/start.out" 2>&1 || rc=$?
if [[ $rc -ne 0 ]]; then
	cat "$dir/start.out" >&2
	exit "$rc"
fi
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
rc=0
"$itest" "$@" || rc=$?
if [[ $rc -ne 0 ]]; then
	echo "--- sshd log (tail) ---" >&2
	tail -n 30 "$dir/sshd.log" >&2 || true
fi
exit "$rc"
