# A remedy of lib/agent/remedy.c, run as `sudo sh -c 'THIS' bg-remedy ARG...`:
# remount MOUNTPOINT: remount read-write a mount point of /proc/mounts.
# Every message says what was (not) done. Exit 3: refused, nothing done.
set -u
m=${1:-}
: "${m:?remount: no mount point}"
opts() {
	o=
	while read -r _ mp _ x _; do [ "$mp" = "$m" ] && o=$x; done </proc/mounts
	echo "$o"
}
before=$(opts)
[ -n "$before" ] || { echo "remount: $m is not a mount point (not in /proc/mounts): nothing done"; exit 3; }
echo "before: $m is mounted $before"
echo "ran: mount -o remount,rw -- $m"
mount -o remount,rw -- "$m" || exit $?
echo "after: $m is mounted $(opts)"
