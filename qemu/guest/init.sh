#!/bin/sh
# qemu/guest/init.sh: /init of the Linux test guest's initramfs (busybox sh).
# Mounts proc, sys and dev, loads the virtio modules in modules.order's order
# (dependencies first), gives eth0 the address of smove.ip=ADDR/LEN if the
# command line has one, runs the checker, and powers off when it ends, so
# that QEMU exits. The checker's console lines and verdict are the guest's.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel found no /dev/console in the archive: the console is opened here.
exec </dev/console >/dev/console 2>&1
# Lines end in \n alone (no \r added) and input is not echoed: the console
# log is the tests' to read.
stty -onlcr -echo 2>/dev/null
for m in $(cat /lib/modules/modules.order); do
	insmod "/lib/modules/$m.ko" || echo "init: cannot load module $m"
done
addr=
for w in $(cat /proc/cmdline); do
	case $w in
	smove.ip=*) addr=${w#smove.ip=} ;;
	esac
done
if [ -n "$addr" ]; then
	ip link set lo up
	if ip addr add "$addr" dev eth0 && ip link set eth0 up; then
		echo "init: eth0 $addr"
	else
		echo "init: cannot give eth0 the address $addr (no virtio-net device?)"
	fi
fi
/bin/smove-checker
echo "init: checker exited $?"
sync
poweroff -f
