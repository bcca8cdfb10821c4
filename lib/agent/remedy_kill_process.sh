# A remedy of lib/agent/remedy.c, run as `sudo sh -c 'THIS' bg-remedy ARG...`:
# kill-process PID COMM: SIGTERM, then SIGKILL after 5 s, each only while
# /proc/PID/comm is still COMM (pid reuse) and PID is no kernel thread.
# Every message says what was (not) done. Exit 3: refused, nothing done.
set -u
pid=${1:-} want=${2:-}
: "${want:?kill-process: no comm}"
case $pid in '' | 0* | *[!0-9]*) echo "kill-process: \"$pid\" is no pid: nothing killed"; exit 3 ;; esac

# The fields of /proc/PID/stat after "(comm) ": state ppid ... flags (the 7th).
fields() { s=$(cat "/proc/$pid/stat" 2>/dev/null) && echo "${s##*) }"; }

alive() {
	f=$(fields) || return 1
	# shellcheck disable=SC2086 # the fields, split on purpose
	set -- $f
	[ $# -ge 1 ] && [ "$1" != Z ] && [ "$1" != X ]
}

check() {
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || { echo "kill-process: no process $pid: nothing killed"; exit 3; }
	[ "$comm" = "$want" ] || {
		echo "kill-process: pid $pid is now $comm, not $want (the pid was reused): nothing killed"
		exit 3
	}
	f=$(fields) || { echo "kill-process: no process $pid: nothing killed"; exit 3; }
	# shellcheck disable=SC2086 # the fields, split on purpose
	set -- $f
	[ $# -ge 7 ] || { echo "kill-process: /proc/$pid/stat is unreadable: nothing killed"; exit 3; }
	# PF_KTHREAD (0x00200000), or a child of kthreadd
	if [ $(($7 & 2097152)) -ne 0 ] || [ "$2" = 2 ]; then
		echo "kill-process: pid $pid is a kernel thread: nothing killed"
		exit 3
	fi
}

check
echo "ran: kill -TERM $pid ($want)"
env kill -TERM "$pid" || exit $?
i=0
while alive && [ $i -lt 25 ]; do sleep 0.2; i=$((i + 1)); done
if alive; then
	check
	echo "ran: kill -KILL $pid ($want): still there after 5 s"
	env kill -KILL "$pid" || exit $?
	i=0
	while alive && [ $i -lt 10 ]; do sleep 0.2; i=$((i + 1)); done
fi
if alive; then echo "after: $pid ($want) is still there"; exit 1; fi
echo "after: $pid ($want) is gone"
