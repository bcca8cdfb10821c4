#!/bin/sh
# /init of the Debian guest's initramfs (busybox): load the modules the
# root disk and the network need, set the address, mount the root disk and
# hand over to systemd. The module order was
# worked out at build time from the kernel's modules.dep (lib/modules/order).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
	echo "initramfs: $*; the devvm cannot boot" >/dev/console
	exec sleep 2147483647
}

while read -r m; do
	insmod "/lib/modules/$m.ko" 2>/dev/null || echo "initramfs: insmod $m failed" >/dev/console
done </lib/modules/order

# The network, before systemd: slirp's fixed addresses (guest 10.0.2.15,
# gateway 10.0.2.2, DNS 10.0.2.3), static, kept across switch_root. A
# network service in the guest would put udev and itself on the path to
# sshd, a minute or more under TCG on a loaded machine. net.ifnames=0 on
# the kernel command line keeps the name eth0.
ip link set lo up
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do
	usleep 100000
	n=$((n + 1))
done
if [ -e /sys/class/net/eth0 ]; then
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
else
	echo "initramfs: no eth0: the devvm has no network" >/dev/console
fi

root=LABEL=devvm-root
for a in $(cat /proc/cmdline); do
	case $a in root=*) root=${a#root=} ;; esac
done
n=0
dev=
while [ $n -lt 100 ]; do
	case $root in
	LABEL=* | UUID=*) dev=$(findfs "$root" 2>/dev/null) ;;
	*) dev=$root ;;
	esac
	[ -n "$dev" ] && [ -b "$dev" ] && break
	usleep 100000
	n=$((n + 1))
done
[ -n "$dev" ] && [ -b "$dev" ] || fail "no root disk $root"
mkdir -p /newroot
mount -t ext4 -o rw "$dev" /newroot || fail "cannot mount $dev ($root)"
# /sbin/init is a symlink into the new root (absolute, merged /usr):
# look for it, not through it.
[ -L /newroot/sbin/init ] || [ -x /newroot/sbin/init ] || fail "no /sbin/init on $dev"
for d in dev proc sys; do
	mount --move "/$d" "/newroot/$d"
done
exec switch_root /newroot /sbin/init
