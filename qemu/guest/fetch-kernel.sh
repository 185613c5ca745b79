#!/bin/sh
# qemu/guest/fetch-kernel.sh CACHE OUT: Debian's cloud kernel for the Linux
# test guest, never installed on the host. The package that the metapackage
# linux-image-cloud-amd64 depends on is fetched with `apt-get download` into
# CACHE (kept there: a rebuild finds it and downloads nothing) and unpacked
# with `dpkg-deb -x`; OUT receives vmlinuz, the virtio modules with every
# module they depend on (modules/NAME.ko) and modules.order, the order in
# which to load them (dependencies first, FACTS.md's order).
#
# Where the kernel cannot be had (no apt-get, no package lists, no network)
# it writes the reason to OUT/kernel.missing and exits 0: the build goes on
# and the tests that need the kernel skip with that reason.
set -eu
cache=$1
out=$2
mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd)
out=$(cd "$out" && pwd)
rm -f "$out/kernel.missing"

missing() {
	echo "$*" >"$out/kernel.missing"
	echo "fetch-kernel: $*" >&2
	exit 0
}

command -v dpkg-deb >/dev/null 2>&1 || missing "dpkg-deb not found (Debian's dpkg)"
# The package the metapackage names now; the newest cached one otherwise.
pkg=
if command -v apt-cache >/dev/null 2>&1; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1)
fi
deb=
if [ -n "$pkg" ]; then
	deb=$(ls "$cache/${pkg}_"*_amd64.deb 2>/dev/null | tail -n 1 || true)
	if [ -z "$deb" ]; then
		command -v apt-get >/dev/null 2>&1 || missing "apt-get not found"
		# apt's sandbox user may not write here; the warning says so, harmlessly.
		(cd "$cache" && apt-get download "$pkg" >"$out/apt.log" 2>&1) ||
			missing "apt-get download $pkg failed: $(tail -n 1 "$out/apt.log")"
		deb=$(ls "$cache/${pkg}_"*_amd64.deb 2>/dev/null | tail -n 1 || true)
	fi
else
	deb=$(ls "$cache"/linux-image-*-cloud-amd64_*_amd64.deb 2>/dev/null | tail -n 1 || true)
fi
[ -n "$deb" ] || missing "no linux-image-cloud-amd64 package: apt-cache does not know it (run apt-get update) and $cache holds none"

tmp="$out/unpack.tmp"
rm -rf "$tmp"
if ! dpkg-deb -x "$deb" "$tmp"; then
	rm -f "$deb"
	missing "dpkg-deb -x $deb failed (removed from the cache: the next make downloads it again)"
fi
vmlinuz=$(ls "$tmp"/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || missing "$deb holds no /boot/vmlinuz-*"
kdir=$(ls -d "$tmp"/lib/modules/* | head -n 1)

# A module's dependencies, from its .modinfo section (the package has no
# modules.dep: depmod makes it on install).
depends() {
	objcopy -O binary --only-section=.modinfo "$1" /dev/stdout |
		tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}
path() {
	p=$(find "$kdir/kernel" -name "$1.ko" | head -n 1)
	[ -n "$p" ] || missing "$deb has no module $1"
	echo "$p"
}
order=
add() { # add MODULE: its dependencies first, then itself, once
	case " $order " in *" $1 "*) return ;; esac
	for d in $(depends "$(path "$1")"); do
		add "$d"
	done
	order="$order $1"
}
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
	virtio_net; do
	add "$m"
done
rm -rf "$out/modules"
mkdir -p "$out/modules"
: >"$out/modules.order.tmp"
for m in $order; do
	cp "$(path "$m")" "$out/modules/$m.ko"
	echo "$m" >>"$out/modules.order.tmp"
done
mv "$out/modules.order.tmp" "$out/modules.order"
basename "$kdir" >"$out/kernel-version"
cp "$vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
rm -rf "$tmp"
echo "fetch-kernel: $(cat "$out/kernel-version") from $deb"
