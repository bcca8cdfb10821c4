#!/usr/bin/env bash
# The lab's Debian 12 devvm: `scripts/lab up --guest debian` (building the
# image first when the cache has none), then, on the booted guest:
#   - SSH with the pinned host key as breakglass (uid 1000), sudo -n works;
#   - systemd is PID 1 and `systemctl is-system-running` says running (or
#     degraded, with the failed units printed);
#   - swap is on (/swapfile), /data is the second disk (ext4, from fstab);
#   - the guest agent answers through the host's socket: `qm agent 102
#     ping` of the stand-in, and breakglass-pve's forensics bundle shows
#     its agent-ping section answered (when breakglass-pve is built);
#   - bg-demo.service switched by /etc/bg-demo/mode: crash (the unit ends
#     failed), hang (the watchdog kills it, the restart stays activating),
#     leak (its RSS grows), and back to ok (active) after each;
# then `scripts/lab down` leaves nothing.
#
#   lab_debian_test.sh BINARY_DIR SOURCE_DIR
set -uo pipefail

bin=${1:?binary dir}
src=${2:?source dir}
export BG_LAB_DIR=$bin/lab-debian-test-state
export BG_LAB_BUILD_DIR=$bin
export BG_LAB_WEB=off
lab=$src/scripts/lab
failures=0
t_start=$SECONDS

step() { printf '\n--- %s (%ds)\n' "$*" $((SECONDS - t_start)); }
ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
not_run() {
	if [[ "${CI:-}" == "true" ]]; then
		fail "did not run under CI: $*"
	else
		echo "note: $*"
	fi
}
fatal() {
	echo "FATAL: $*"
	"$lab" down >/dev/null 2>&1
	exit 1
}
cleanup() { "$lab" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || { echo "lab_debian: needs root (debootstrap, sshd as the Proxmox host)"; exit 77; }
for t in qemu-system-x86_64 debootstrap mkfs.ext4; do
	command -v "$t" >/dev/null || { echo "lab_debian: $t missing (scripts/bootstrap)"; exit 77; }
done

step "scripts/lab up --guest debian (builds the image when the cache has none)"
"$lab" down >/dev/null 2>&1
t0=$SECONDS
"$lab" up --guest debian >"$bin/lab-debian-up.log" 2>&1 || { tail -n 60 "$bin/lab-debian-up.log"; fatal "scripts/lab up --guest debian failed"; }
grep -E '^guest-debian: .*(built|cached image)' "$bin/lab-debian-up.log"
grep -E '^lab: VM .* up in' "$bin/lab-debian-up.log"
echo "up took $((SECONDS - t0)) s"
# shellcheck disable=SC1091
. "$BG_LAB_DIR/lab.env"
[[ "$LAB_GUEST" == debian ]] && ok "lab.env says LAB_GUEST=debian" || fail "LAB_GUEST=$LAB_GUEST"
grep -q '^agent: 1$' "$LAB_DIR/qemu-server/$LAB_VMID.conf" && ok "VM config has agent: 1" || fail "no agent: 1 in the VM config"

ssh_opts=(-o BatchMode=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10
	-o ServerAliveInterval=5 -o ServerAliveCountMax=3 -i "$LAB_KEY" -p "$DEVVM_PORT")
devvm() { timeout 90 ssh -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" "${ssh_opts[@]}" breakglass@127.0.0.1 "$@"; }
# Wait (polling over SSH, the guest is slow under TCG) until a remote
# command prints what is expected; prints the last output.
wait_for() { # seconds expected-regex command
	local end=$((SECONDS + $1)) re=$2 out=
	shift 2
	while ((SECONDS < end)); do
		out=$(devvm "$@" 2>&1)
		if [[ "$out" =~ $re ]]; then
			echo "$out"
			return 0
		fi
		sleep 1
	done
	echo "$out"
	return 1
}

step "ssh with the pinned host key: the user, sudo, hostname"
out=$(devvm 'id -u; sudo -n id -u; hostname; cat /etc/debian_version')
echo "$out"
[[ "$(sed -n 1p <<<"$out")" == 1000 ]] && ok "logged in as breakglass (uid 1000)" || fail "breakglass is not uid 1000"
[[ "$(sed -n 2p <<<"$out")" == 0 ]] && ok "sudo -n runs as root" || fail "sudo -n id -u did not print 0"
[[ "$(sed -n 3p <<<"$out")" == devvm ]] && ok "hostname devvm" || fail "wrong hostname"
[[ "$(sed -n 4p <<<"$out")" == 12.* ]] && ok "Debian $(sed -n 4p <<<"$out")" || fail "not Debian 12"

step "systemd: PID 1, the system running"
out=$(devvm 'cat /proc/1/comm; timeout 120 systemctl is-system-running --wait')
echo "$out"
[[ "$(sed -n 1p <<<"$out")" == systemd ]] && ok "PID 1 is systemd" || fail "PID 1 is not systemd"
state=$(sed -n 2p <<<"$out")
case $state in
running) ok "is-system-running: running" ;;
degraded)
	ok "is-system-running: degraded"
	devvm 'systemctl --failed --no-pager'
	;;
*) fail "is-system-running: '$state'" ;;
esac

step "swap on, /data mounted from the second disk"
out=$(devvm 'tail -n +2 /proc/swaps; findmnt -n -o SOURCE,FSTYPE /data; grep -c data /etc/fstab')
echo "$out"
grep -qE '^/swapfile +file ' <<<"$out" && ok "swap on /swapfile" || fail "no swap file active"
grep -qE '^/dev/vdb +ext4$' <<<"$out" && ok "/data is /dev/vdb (ext4)" || fail "/data is not the ext4 data disk"

step "the guest agent answers through the host's socket"
[[ -S "$LAB_RUN_DIR/$LAB_VMID.qga" ]] && ok "socket $LAB_RUN_DIR/$LAB_VMID.qga" || fail "no guest agent socket"
devvm 'systemctl is-active qemu-guest-agent' | grep -qx active && ok "qemu-guest-agent active in the guest" ||
	fail "qemu-guest-agent not active in the guest"
if timeout 30 "$LAB_QM" agent "$LAB_VMID" ping; then ok "qm agent $LAB_VMID ping"; else fail "qm agent $LAB_VMID ping failed"; fi
if [[ -x "$BG_PVE" ]]; then
	if [[ -x "$BG_CTL" ]]; then
		out=$(timeout 300 "$BG_CTL" --config "$LAB_CONF" pve forensics 2>&1)
	else
		out=$(timeout 300 ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
			-o UserKnownHostsFile="$LAB_KNOWN_HOSTS" -i "$LAB_KEY" -p "$PVE_PORT" root@127.0.0.1 forensics 2>&1)
	fi
	echo "$out" | grep -iE 'verdict|agent' | head -5
	bundle=$(ls -1dt "$PVE_STATE"/forensics/*/ 2>/dev/null | head -n 1)
	if [[ -n "$bundle" && -f "$bundle/agent-ping.txt" ]]; then
		cat "$bundle/agent-ping.txt"
		grep -q '^guest-ping answered' "$bundle/agent-ping.txt" && ok "forensics bundle: the agent answered" ||
			fail "forensics bundle: the agent did not answer ($bundle/agent-ping.txt)"
	else
		fail "no forensics bundle with agent-ping.txt under $PVE_STATE/forensics"
	fi
else
	not_run "breakglass-pve not built: forensics of the agent did not run"
fi

step "bg-demo.service: ok"
demo_state() { devvm 'systemctl show -p ActiveState -p SubState -p Result -p NRestarts bg-demo | tr "\n" " "'; }
set_mode() { devvm "echo $1 | sudo tee /etc/bg-demo/mode >/dev/null"; }
demo_state_cmd='systemctl show -p ActiveState -p SubState -p Result -p NRestarts bg-demo | tr "\n" " "'
wait_demo() { # seconds regex
	wait_for "$1" "$2" "$demo_state_cmd"
}
back_to_ok() { # what
	set_mode ok
	devvm 'sudo systemctl reset-failed bg-demo; sudo systemctl restart bg-demo' >/dev/null 2>&1
	if wait_demo 60 'ActiveState=active SubState=running' >/dev/null; then
		ok "back to ok after $1: active"
	else
		fail "bg-demo not active again after $1: $(demo_state)"
	fi
}
out=$(wait_demo 60 'ActiveState=active SubState=running') && ok "active: $out" || fail "bg-demo not active: $out"

step "bg-demo crash: the unit ends failed"
set_mode crash
out=$(wait_demo 90 'ActiveState=failed') && ok "failed: $out" || fail "bg-demo did not fail: $out"
devvm 'systemctl --failed --no-legend --plain' | grep -q '^bg-demo.service' && ok "listed by systemctl --failed" ||
	fail "bg-demo not in systemctl --failed"
back_to_ok crash

step "bg-demo hang: the watchdog kills it, the restart stays activating"
set_mode hang
out=$(wait_demo 120 'ActiveState=activating .*NRestarts=[1-9]') && ok "stuck activating after a restart: $out" ||
	fail "bg-demo did not hang in activating: $out"
devvm 'sudo journalctl -u bg-demo -b --no-pager' | grep -q 'Watchdog timeout' && ok "the journal has the watchdog timeout" ||
	fail "no watchdog timeout in bg-demo's journal"
back_to_ok hang

step "bg-demo leak: its memory grows"
rss() { devvm 'p=$(systemctl show -p MainPID --value bg-demo); awk "/^VmRSS:/ {print \$2}" /proc/$p/status'; }
r0=$(rss)
set_mode leak
sleep 8
r1=$(rss)
echo "VmRSS ${r0:-?} kB -> ${r1:-?} kB after 8 s"
[[ -n "$r0" && -n "$r1" ]] && ((r1 - r0 >= 24 * 1024)) && ok "RSS grew by $(((r1 - r0) / 1024)) MiB" ||
	fail "RSS did not grow by 24 MiB in 8 s (${r0:-?} -> ${r1:-?} kB)"
back_to_ok leak
r2=$(rss)
[[ -n "$r2" ]] && ((r2 < r1)) && ok "RSS back to $((r2 / 1024)) MiB" || fail "RSS still ${r2:-?} kB after the restart"

step "down leaves nothing behind"
qemu_pid=$(cat "$LAB_PIDFILE")
"$lab" down || fail "down failed"
kill -0 "$qemu_pid" 2>/dev/null && fail "QEMU $qemu_pid still running"
[[ -e "$BG_LAB_DIR" ]] && fail "$BG_LAB_DIR still exists"
((failures == 0)) && ok "nothing left"

echo
echo "lab_debian: $failures failure(s) in $((SECONDS - t_start)) s"
((failures == 0))
