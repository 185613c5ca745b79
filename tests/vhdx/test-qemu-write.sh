#!/bin/sh
# VHDX images written by smove (dynamic and fixed, 512 and 4096-byte logical
# sectors, several block sizes), by `smove disk convert` from a raw disk and by
# direct writes, zeroes and trims: qemu-img checks and compares them against
# the source (QEMU reads only 512-byte sectors), libvhdi reads the same bytes
# from every one, and smove's own check is clean.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img
tool="$abs_top_builddir/tests/vhdx/vhdx-tool"
libvhdi() { /usr/bin/python3 "$abs_top_srcdir/tests/vhdx/libvhdi-compare.py" "$@"; }
have_libvhdi=yes
/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null && command -v vhdiinfo >/dev/null || have_libvhdi=
cd "$T"

# A sparse 40 MiB raw disk with data at the start, across the 1 MiB and 8 MiB
# boundaries, in the middle and in the last sector.
truncate -s 40M src.raw
pattern_file p 3145728 7
for at in 0:64K 1044480:8K 8384512:16K 20M:3M 41942528:512; do
	off=${at%%:*} len=${at#*:}
	dd if=p of=src.raw bs=$len count=1 seek=$(($(numfmt --from=iec $off))) oflag=seek_bytes \
		conv=notrunc status=none
done

verify() { # IMAGE SECTOR SOURCE
	"$SMOVE" disk check "$1" >/dev/null || fail "$1: smove check"
	if [ "$2" = 512 ]; then
		qemu-img check -q -f vhdx "$1" || fail "$1: qemu-img check"
		qemu-img compare -q -f raw -F vhdx "$3" "$1" || fail "$1: qemu-img compare"
	fi
	if [ -n "$have_libvhdi" ]; then
		vhdiinfo "$1" >/dev/null || fail "$1: vhdiinfo"
		libvhdi "$1" "$3" || fail "$1: libvhdi"
	fi
}

for sub in dynamic fixed; do
	for sector in 512 4096; do
		for bs in 1M 8M 32M; do
			img=$sub-$sector-$bs.vhdx
			"$SMOVE" disk convert -q --to vhdx --subformat $sub --sector-size $sector \
				--block-size $bs src.raw $img
			"$SMOVE" disk info --json $img | grep -q "\"subformat\":\"$sub\"" ||
				fail "$img: subformat"
			verify $img $sector src.raw
		done
	done
done
# A fixed image holds every block; a dynamic one only those with data.
[ "$(stat -c %s fixed-512-1M.vhdx)" -ge 41943040 ] || fail "the fixed image is too small"
[ "$(stat -c %s dynamic-512-1M.vhdx)" -lt 20000000 ] || fail "the dynamic image is not sparse"

# An odd size is rounded up to whole sectors.
head -c 1000000 src.raw >odd.raw
"$SMOVE" disk convert -q --to vhdx odd.raw odd.vhdx
"$SMOVE" disk info --json odd.vhdx | grep -q '"virtual-size":1000448' || fail "odd size"
verify odd.vhdx 512 odd.raw

# Direct writes, zeroes and trims, mirrored into a raw model.
for sector in 512 4096; do
	img=direct-$sector.vhdx
	cp src.raw model.raw
	"$SMOVE" disk convert -q --force --to vhdx --block-size 1M --sector-size $sector src.raw $img
	while read -r op off len byte; do
		"$tool" $op $img $off $len $byte || fail "$op $off $len"
		case $op in
		write) /usr/bin/python3 -c "import sys
f = open('model.raw', 'r+b'); f.seek($off); f.write(bytes([$byte]) * $len)" ;;
		*) /usr/bin/python3 -c "import sys
f = open('model.raw', 'r+b'); f.seek($off); f.write(bytes($len))" ;;
		esac
	done <<-OPS
		write 0 4096 0x61
		write 1044480 16384 0x62
		zero 2097152 1048576
		zero 20971520 3145728 trim
		trim 8388608 1048576
		write 8392704 4096 0x63
		write 33554432 2097152 0x64
		zero 33558528 8192
		write 41938944 4096 0x65
	OPS
	verify $img $sector model.raw
	"$SMOVE" disk map --json $img | grep -q '"type":"zero"' || fail "$img: no zero blocks"
done
echo PASS
