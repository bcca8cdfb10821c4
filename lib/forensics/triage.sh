# shellcheck shell=sh disable=SC2154
# The devvm triage, sent in one SSH exec (lib/forensics/triage.c embeds
# this file at build time and puts `N=<nonce>` before it). Every section
# prints between @@$N begin/end markers, each under its own timeout(1)
# when there is one. Sections are named in bg_triage_section_names, in the
# same order (a test checks). Only what both Debian (coreutils, procps) and
# busybox (the lab guest: no `ps --sort`, no systemd) provide; the bodies
# are here-documents run by `sh -s`, so each is checked on its own too.

# `sec NAME SECONDS` runs its here-document under timeout(1) when there is
# one and frames the output with the markers; the newline before the end
# marker guarantees it starts a line (parse_output drops it again).
T=; command -v timeout >/dev/null 2>&1 && T=timeout
sec() { printf '@@%s begin %s\n' "$N" "$1"; if [ -n "$T" ]; then timeout "$2" sh -s 2>&1; else sh -s 2>&1; fi; r=$?; printf '\n@@%s end %s %s\n' "$N" "$1" "$r"; }
sec uptime 5 <<'S'
uptime
printf 'loadavg: '; cat /proc/loadavg
printf 'cpus: '; grep -c '^processor' /proc/cpuinfo
S
sec memory 5 <<'S'
free
grep -E '^(MemTotal|MemFree|MemAvailable|Buffers|Cached|SwapTotal|SwapFree):' /proc/meminfo
grep -E '^pswp(in|out) ' /proc/vmstat
sleep 1
echo 'after 1 s:'
grep -E '^pswp(in|out) ' /proc/vmstat
S
sec psi 5 <<'S'
[ -d /proc/pressure ] || { echo 'no PSI (/proc/pressure missing: kernel without CONFIG_PSI)'; exit 0; }
for f in cpu memory io; do [ -r /proc/pressure/$f ] && sed "s/^/$f /" /proc/pressure/$f; done
exit 0
S
sec disk 10 <<'S'
df -P
S
sec inodes 10 <<'S'
df -P -i
S
sec failed_units 10 <<'S'
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --failed --no-legend --plain --no-pager
else
	echo 'no systemd on this host'
fi
S
sec top_mem 10 <<'S'
if ps -eo pid= --sort=-rss >/dev/null 2>&1; then
	ps -eo pid,user,rss,vsz,pmem,pcpu,stat,comm --sort=-rss | head -n 16
else
	echo '  PID   RSS_KB STAT NAME'
	awk 'FNR==1 { if (n != "") print p, r + 0, s, n; n = ""; r = 0; p = FILENAME; sub("^/proc/", "", p); sub("/status$", "", p) }
	/^Name:/ { n = $2 } /^State:/ { s = $2 } /^VmRSS:/ { r = $2 }
	END { if (n != "") print p, r + 0, s, n }' /proc/[0-9]*/status 2>/dev/null | sort -k2 -n -r | head -n 15
fi
S
sec top_cpu 10 <<'S'
if ps -eo pid= --sort=-pcpu >/dev/null 2>&1; then
	ps -eo pid,user,pcpu,pmem,rss,stat,time,comm --sort=-pcpu | head -n 16
else
	top -b -n 1 | head -n 20 | cut -c 1-160
fi
S
sec dstate 10 <<'S'
{ ps -eo pid,stat,wchan:32,comm 2>/dev/null || ps -o pid,stat,comm; } | awk 'NR == 1 || $2 ~ /^D/'
S
sec kernel_log 15 <<'S'
if k=$(dmesg 2>/dev/null) && [ -n "$k" ]; then src=dmesg
elif k=$(sudo -n dmesg 2>/dev/null) && [ -n "$k" ]; then src='sudo dmesg'
elif k=$(journalctl -k -b -q --no-pager 2>/dev/null) && [ -n "$k" ]; then src='journalctl -k'
else echo 'cannot read the kernel log: dmesg is restricted (kernel.dmesg_restrict) and sudo -n dmesg, journalctl -k gave nothing'; exit 1
fi
printf 'kernel log from %s: %s lines; the worrying ones follow\n' "$src" "$(printf '%s\n' "$k" | wc -l | tr -d ' ')"
printf '%s\n' "$k" | grep -iE 'out of memory|oom-kill|oom_reaper|killed process|blocked for more than|hung_task|i/o error|buffer i/o|ext4-fs error|xfs.*(error|corrupt)|segfault|general protection|call trace|soft lockup|rcu.*stall' | tail -n 60
exit 0
S
