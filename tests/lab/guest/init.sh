#!/bin/sh
# /etc/init.d/rcS of the lab guest (busybox init runs it once at boot).
# Ends by printing the ready line on the serial console: the lab waits for
# it before it connects, because slirp accepts connections on the host
# port long before dropbear listens.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
hostname devvm

log() { echo "lab-guest: $*" >/dev/console; }

# Dependency order was worked out at build time (lib/modules/order).
while read -r m; do
	insmod "/lib/modules/$m.ko" 2>/dev/null || log "insmod $m failed"
done </lib/modules/order

# slirp's fixed addresses: guest 10.0.2.15, gateway 10.0.2.2.
ip link set lo up
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do usleep 100000; n=$((n + 1)); done
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

# The small virtio disk: formatted on first boot, then mounted at /data.
# A heartbeat writes to it twice a second so the host's block counters
# move while the guest is healthy (and stop when its I/O is stalled).
n=0
while [ ! -e /dev/vda ] && [ $n -lt 50 ]; do usleep 100000; n=$((n + 1)); done
if [ -e /dev/vda ]; then
	if ! mount -t ext4 /dev/vda /data 2>/dev/null; then
		mke2fs -q -L data /dev/vda >/dev/null 2>&1 && mount -t ext4 /dev/vda /data
	fi
	if grep -q " /data " /proc/mounts; then
		(while :; do date >/data/heartbeat; sync; usleep 500000; done) </dev/null >/dev/null 2>&1 &
	else
		log "cannot mount /dev/vda"
	fi
else
	log "no /dev/vda"
fi

# The login key for this run comes on the kernel command line.
key=$(sed -n 's/.*bg\.key=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$key" ]; then
	echo "ssh-ed25519 $key lab" >/home/breakglass/.ssh/authorized_keys
else
	log "no bg.key= on the kernel command line: nobody can log in"
fi
# sshd-style checks: the home and .ssh belong to the user, not writable
# by others (the image's files are all root's).
chown -R 1000:1000 /home/breakglass
chmod 755 /home/breakglass
chmod 700 /home/breakglass/.ssh
chmod 600 /home/breakglass/.ssh/authorized_keys 2>/dev/null

# Kernel messages stay in dmesg, not on the console: the ready line must
# not be interleaved with them.
echo 1 >/proc/sys/kernel/printk

dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p 22 -s -E 2>>/var/log/dropbear.log
n=0
while ! netstat -ltn 2>/dev/null | grep -q ':22 ' && [ $n -lt 100 ]; do usleep 50000; n=$((n + 1)); done

up=$(cut -d' ' -f1 /proc/uptime)
echo "BREAKGLASS-LAB-READY uptime=$up" >/dev/console
