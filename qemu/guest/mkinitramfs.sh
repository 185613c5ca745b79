#!/bin/sh
# qemu/guest/mkinitramfs.sh OUT KERNEL-DIR CHECKER INIT BUSYBOX: the Linux test
# guest's initramfs (an uncompressed newc cpio archive: nothing for the
# emulated guest to decompress): BUSYBOX (statically linked) as /bin/busybox
# with a link per applet, the modules and modules.order that fetch-kernel.sh
# left in KERNEL-DIR under /lib/modules, CHECKER as /bin/smove-checker and INIT
# as /init. Needs no root: the archive holds no device node (/init mounts
# devtmpfs and opens the console itself).
set -eu
out=$1
kdir=$2
checker=$3
init=$4
busybox=$5
if readelf -l "$busybox" 2>/dev/null | grep -q INTERP; then
	echo "mkinitramfs: $busybox is dynamically linked: install busybox-static" >&2
	exit 1
fi
root="$out.root"
rm -rf "$root"
mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
cp "$kdir"/modules/*.ko "$kdir/modules.order" "$root/lib/modules/"
cp "$checker" "$root/bin/smove-checker"
cp "$init" "$root/init"
chmod 755 "$root/init" "$root/bin/smove-checker"
(cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0) >"$out.tmp" 2>/dev/null
rm -rf "$root"
mv "$out.tmp" "$out"
