# A remedy of lib/agent/remedy.c, run as `sudo sh -c 'THIS' bg-remedy ARG...`:
# remove-file PATH file|recursive: remove PATH when it is its own
# canonical path (no symlink on the way, none at the end); a directory
# only when recursive, and never across a mount point.
# Every message says what was (not) done. Exit 3: refused, nothing done.
set -u
p=${1:-} how=${2:-file}
: "${p:?remove-file: no path}"
case $p in
/) echo "remove-file: / is never removed"; exit 3 ;;
/*) ;;
*) echo "remove-file: $p is not an absolute path: nothing removed"; exit 3 ;;
esac
r=$(readlink -f -- "$p") || r=
[ "$r" = "$p" ] || {
	echo "remove-file: $p resolves to ${r:-nothing} (a symlink on the way, or a missing directory): nothing removed"
	exit 3
}
if [ -d "$p" ]; then
	[ "$how" = recursive ] || {
		echo "remove-file: $p is a directory and the request was for a file: nothing removed"
		exit 3
	}
	echo "ran: rm -r --one-file-system -- $p"
	rm -r --one-file-system -- "$p" || exit $?
elif [ -e "$p" ]; then
	echo "ran: rm -f -- $p"
	rm -f -- "$p" || exit $?
else
	echo "remove-file: $p does not exist: nothing removed"
	exit 3
fi
df -P -- "${p%/*}/" 2>/dev/null | tail -n 1 | sed "s/^/after: /"
exit 0
