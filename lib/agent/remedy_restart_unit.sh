# A remedy of lib/agent/remedy.c, run as `sudo sh -c 'THIS' bg-remedy ARG...`:
# restart-unit UNIT: restart a systemd unit and say its state after.
# Every message says what was (not) done. Exit 3: refused, nothing done.
set -u
u=${1:-}
: "${u:?restart-unit: no unit}"
echo "ran: systemctl restart -- $u"
systemctl restart -- "$u"
rc=$?
echo "after: $u is $(systemctl is-active -- "$u" 2>&1)"
exit $rc
