# shellcheck shell=sh disable=SC2154
# The devvm triage, sent in one SSH exec (lib/forensics/triage.c embeds
# this file at build time and puts `N=<nonce>` before it). Every section
# prints between @@$N begin/end markers, each under its own timeout(1)
# when there is one. Sections are named in bg_triage_section_names, in the
# same order (a test checks). Only what both Debian (coreutils, procps) and
# busybox (the lab guest: no `ps --sort`, no systemd) provide; the bodies
# are here-documents run by `sh -s`, so each is checked on its own too.
# /proc/PID files are read with `cat FILES | awk`, never `awk PROG FILES`: busybox
# awk stops at the first file it cannot open, and processes come and go.

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
sec memory 10 <<'S'
free
grep -E '^(MemTotal|MemFree|MemAvailable|Buffers|Cached|Shmem|SwapTotal|SwapFree):' /proc/meminfo
grep -E '^pswp(in|out) ' /proc/vmstat
sleep 1
echo 'after 1 s:'
grep -E '^pswp(in|out) ' /proc/vmstat
echo 'top swap users (kB pid name):'
cat /proc/[0-9]*/status 2>/dev/null | awk '/^Name:/ { n = $2 } /^Pid:/ { p = $2 }
/^VmSwap:/ { if ($2 > 0) print $2, p, n }' | sort -n -r | head -n 5
exit 0
S
sec psi 5 <<'S'
[ -d /proc/pressure ] || { echo 'no PSI (/proc/pressure missing: kernel without CONFIG_PSI)'; exit 0; }
for f in cpu memory io; do [ -r /proc/pressure/$f ] && sed "s/^/$f /" /proc/pressure/$f; done
exit 0
S
sec disk 10 <<'S'
df -P
# Where the space went, on the fullest real filesystems (90 % and more):
# the biggest entries a few levels down, du bounded in time (as root when
# sudo -n allows it, so that no directory hides its size).
lim() { sudo -n true 2>/dev/null && set -- sudo -n "$@"; if command -v timeout >/dev/null 2>&1; then timeout 4 "$@"; else "$@"; fi; }
df -P | awk 'NR > 1 && $1 !~ /^(tmpfs|devtmpfs|overlay|none|udev|shm)$/ && $1 !~ /^\/dev\/loop/ { u = $5; sub("%", "", u); if (u + 0 >= 90) print u, $6 }' |
	sort -n -r | head -n 2 | while read -r _ m; do
	echo "largest under $m:"
	lim du -x -a -k -d 3 "$m" 2>/dev/null | sort -n -r | head -n 8
done
exit 0
S
sec inodes 10 <<'S'
df -P -i
# The directories with the most entries on filesystems 90 % out of inodes.
lim() { sudo -n true 2>/dev/null && set -- sudo -n "$@"; if command -v timeout >/dev/null 2>&1; then timeout 4 "$@"; else "$@"; fi; }
df -P -i | awk 'NR > 1 && $1 !~ /^(devtmpfs|overlay|none|udev)$/ { u = $5; sub("%", "", u); if (u + 0 >= 90) print u, $6 }' |
	sort -n -r | head -n 2 | while read -r _ m; do
	echo "most entries under $m:"
	lim find "$m" -xdev 2>/dev/null | awk '{ sub("/[^/]*$", ""); if ($0 == "") $0 = "/"; c[$0]++ } END { for (d in c) print c[d], d }' |
		sort -n -r | head -n 3
done
exit 0
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
	cat /proc/[0-9]*/status 2>/dev/null | awk '/^Name:/ { if (n != "") print p, r + 0, s, n; n = $2; r = 0 }
	/^State:/ { s = $2 } /^Pid:/ { p = $2 } /^VmRSS:/ { r = $2 }
	END { if (n != "") print p, r + 0, s, n }' | sort -k2 -n -r | head -n 15
fi
S
sec top_cpu 15 <<'S'
# CPU over the last two seconds, per process (ps's %CPU is the average over the
# process's life: a runaway that started late, or shares the CPU with this
# triage, hides in it): two readings of /proc/PID/stat ("comm) " then
# utime 12, stime 13, in USER_HZ = 100) two seconds apart, so that the
# readings' own work weighs little on a one-CPU guest (a process that
# was not there at the first reading counts 0). TIME is the
# process's whole CPU time. The same on Debian and busybox.
r() { cat /proc/[0-9]*/stat 2>/dev/null | awk '{ c = $0; sub(/^[^(]*[(]/, "", c); n = c; sub(/[)][^)]*$/, "", n)
x = c; sub(/^.*[)] /, "", x); split(x, f, " "); print $1, f[12] + f[13], n }'; }
u0=$(cut -d' ' -f1 /proc/uptime); a=$(r); sleep 2; u1=$(cut -d' ' -f1 /proc/uptime)
echo '  PID  %CPU     TIME COMMAND'
r | { printf '%s\n' "$a"; echo @; cat; } | awk -v dt="$(awk -v a="$u0" -v b="$u1" 'BEGIN { print b - a }')" '
$0 == "@" { new = 1; next } !new { t0[$1] = $2; next }
{ d = ($1 in t0) ? $2 - t0[$1] : 0; n = $0; sub(/^[^ ]* [^ ]* /, "", n); s = int($2 / 100)
printf "%5d %5.1f %02d:%02d:%02d %s\n", $1, (dt > 0 ? d / dt : 0), s / 3600, (s % 3600) / 60, s % 60, n }' |
	sort -k2 -n -r | head -n 15
S
sec dstate 10 <<'S'
if ps -eo pid,wchan:32 >/dev/null 2>&1; then
	ps -eo pid,stat,wchan:32,comm | awk 'NR == 1 || $2 ~ /^D/'
else
	echo '  PID STAT WCHAN                            COMMAND'
	cat /proc/[0-9]*/status 2>/dev/null | awk '/^Name:/ { n = $2 } /^State:/ { s = $2 }
	/^Pid:/ { if (s == "D") print $2, n }' | head -n 30 | while read -r p n; do
		w=$(sudo -n cat "/proc/$p/wchan" 2>/dev/null || cat "/proc/$p/wchan" 2>/dev/null)
		printf '%5s D    %-32s %s\n' "$p" "${w:--}" "$n"
	done
fi
S
sec kernel_log 15 <<'S'
# The kernel's ring (dmesg) when it can be read at all, even empty: an
# operator's `dmesg -c` clears what is dealt with (the journal would keep
# an OOM kill of hours ago for the whole boot); journalctl -k only when
# dmesg cannot be read.
if k=$(dmesg 2>/dev/null); then src=dmesg
elif k=$(sudo -n dmesg 2>/dev/null); then src='sudo dmesg'
elif k=$(journalctl -k -b -q --no-pager 2>/dev/null) && [ -n "$k" ]; then src='journalctl -k'
else echo 'cannot read the kernel log: dmesg is restricted (kernel.dmesg_restrict) and sudo -n dmesg, journalctl -k gave nothing'; exit 1
fi
printf 'kernel log from %s: %s lines; the worrying ones follow\n' "$src" "$(printf '%s\n' "$k" | wc -l | tr -d ' ')"
printf '%s\n' "$k" | grep -iE 'out of memory|oom-kill|oom_reaper|killed process|blocked for more than|hung_task|i/o error|buffer i/o|ext4-fs error|xfs.*(error|corrupt)|read-only|aborting journal|fork rejected|segfault|general protection|call trace|soft lockup|rcu.*stall' | tail -n 60
exit 0
S
sec tmpfs 10 <<'S'
# RAM held by files in memory: Shmem counts tmpfs and shared memory.
lim() { sudo -n true 2>/dev/null && set -- sudo -n "$@"; if command -v timeout >/dev/null 2>&1; then timeout 4 "$@"; else "$@"; fi; }
grep -E '^(MemTotal|Shmem):' /proc/meminfo
df -P -t tmpfs 2>/dev/null || df -P | awk 'NR == 1 || $1 == "tmpfs"'
m=$(df -P -t tmpfs 2>/dev/null | awk 'NR > 1 && $3 > 0 { print $3, $6 }' | sort -n -r | head -n 1 | cut -d' ' -f2-)
if [ -n "$m" ]; then
	echo "largest under $m:"
	lim du -x -a -k -d 3 "$m" 2>/dev/null | sort -n -r | head -n 6
fi
exit 0
S
sec mounts 5 <<'S'
# Real filesystems with their options and the kernel's name of the device
# (dm-0 for /dev/mapper/x: the kernel log uses it), and what /etc/fstab
# asks for. ext4 switched read-only by an error still says rw here.
echo 'mounts (device mount type options kernel-name):'
awk '$3 ~ /^(ext[234]|xfs|btrfs|f2fs|vfat|jfs|reiserfs)$/ { print $1, $2, $3, $4 }' /proc/mounts | head -n 40 |
	while read -r dv mp ty op; do k=$(readlink -f "$dv" 2>/dev/null); echo "$dv $mp $ty $op ${k##*/}"; done
echo 'fstab:'
[ -r /etc/fstab ] && grep -v '^[[:space:]]*#' /etc/fstab | awk 'NF >= 4 { print $1, $2, $3, $4 }'
exit 0
S
sec procs 12 <<'S'
# Processes and threads against their limits, the parents with the most
# children (a fork storm's source), pids cgroups near pids.max. The
# parents come before the cgroups, and the cgroup walk reads with the
# shell's own `read` (no fork a file): during a storm on a systemd guest,
# a `cat` per cgroup ran the section out of time before the parents.
printf 'pid_max: '; cat /proc/sys/kernel/pid_max
printf 'threads_max: '; cat /proc/sys/kernel/threads-max
printf 'threads: '; cut -d' ' -f4 /proc/loadavg | cut -d/ -f2
set -- /proc/[0-9]*; echo "processes: $#"
echo 'top parents (children ppid name):'
cat /proc/[0-9]*/status 2>/dev/null | awk '/^PPid:/ { print $2 }' | sort | uniq -c | sort -n -r | head -n 3 |
	while read -r n p; do c='?'; read -r c 2>/dev/null <"/proc/$p/comm"; printf '%s %s %s\n' "$n" "$p" "$c"; done
echo 'cgroups near pids.max (current max path):'
for f in /sys/fs/cgroup/*/pids.max /sys/fs/cgroup/*/*/pids.max /sys/fs/cgroup/*/*/*/pids.max; do
	[ -r "$f" ] || continue
	d=${f%/pids.max}
	x=; c=; read -r x 2>/dev/null <"$f"; read -r c 2>/dev/null <"$d/pids.current"
	[ "$x" = max ] || [ -z "$x" ] || [ -z "$c" ] || [ $((c * 10)) -lt $((x * 8)) ] || echo "$c $x ${d#/sys/fs/cgroup}"
done
exit 0
S
sec units 8 <<'S'
# systemd units stuck starting or stopping (since when, in monotonic microseconds)
# and the journal's last 15 minutes of hangs, watchdogs and fork failures.
if ! [ -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
	echo 'no systemd on this host'
	exit 0
fi
printf 'uptime_s: '; cut -d' ' -f1 /proc/uptime
echo 'stuck units:'
systemctl list-units --no-legend --plain --no-pager --state=activating,deactivating,reloading 2>/dev/null | head -n 10 |
	while read -r u _; do
		systemctl show -p Id -p ActiveState -p SubState -p StateChangeTimestampMonotonic "$u" 2>/dev/null | tr '\n' ' '
		echo
	done
echo 'journal:'
lim() { sudo -n true 2>/dev/null && set -- sudo -n "$@"; if command -v timeout >/dev/null 2>&1; then timeout 5 "$@"; else "$@"; fi; }
lim journalctl -b -q --no-pager -o short-monotonic --since=-15min -n 3000 2>/dev/null |
	grep -iE 'watchdog timeout|operation timed out|timed out\. (killing|terminating)|state stop-sigterm timed out|fork: retry|resource temporarily unavailable|fork rejected' | tail -n 20
exit 0
S
