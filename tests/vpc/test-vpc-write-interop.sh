#!/bin/sh
# VHD images written by smove (convert from a sparse raw pattern into every
# subformat and several block sizes, then writes through the library into
# allocated and new blocks) read the same in qemu-img (compare, map) and in
# libvhdi (vhdiinfo, pyvhdi), and pass smove's own check.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io vhdiinfo
/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null || skip "python3-libvhdi not installed"
vhdio="$abs_top_builddir/tests/vpc/vhd-io"
cd "$T"

# About 42 MiB and CHS-exact (1011 cylinders, 5 heads, 17 sectors per
# track), so that QEMU sizes it as smove does (checked below).
size=43998720
pattern_file p 1048576 7
qemu-img create -q -f raw src.raw $size
for at in 0 1 2047 2049 4096 20000 42966; do # KiB offsets: block edges, the end
	dd if=p of=src.raw bs=1k seek=$at count=$((at == 42966 ? 1 : 700)) conv=notrunc status=none
done
qemu-io -f raw -c 'write -P 0 300k 64k' src.raw >/dev/null # zeros inside data: not copied

check_image() { # IMAGE MODEL
	qemu-img compare -q -f raw -F vpc "$2" "$1" || fail "$1: qemu-img sees other contents"
	vhdiinfo "$1" >vhdi.txt || fail "$1: vhdiinfo failed"
	grep -q "Media size.*($(stat -c %s "$2") bytes)" vhdi.txt || fail "$1: vhdiinfo size"
	/usr/bin/python3 "$abs_top_srcdir/tests/vpc/read-pyvhdi.py" vhdi.raw "$1" ||
		fail "$1: pyvhdi cannot read it"
	cmp "$2" vhdi.raw || fail "$1: libvhdi sees other contents"
	"$SMOVE" disk check "$1" >/dev/null || fail "$1: smove check found problems"
	if ! "$SMOVE" disk info "$1" | grep -q 'vhd (fixed)'; then
		"$SMOVE" disk map --json "$1" >s.map
		qemu-img map --output=json -f vpc "$1" >q.map
		/usr/bin/python3 "$abs_top_srcdir/tests/vpc/compare-maps.py" s.map q.map within ||
			fail "$1: maps disagree"
	fi
}

for spec in fixed:0 dynamic:512K dynamic:2M dynamic:64M; do
	sub=${spec%:*} bs=${spec#*:}
	img=$sub-$bs.vhd
	if [ $sub = fixed ]; then
		"$SMOVE" disk convert -q --subformat fixed src.raw $img
	else
		"$SMOVE" disk convert -q --subformat $sub --block-size $bs src.raw $img
	fi
	[ "$(qemu-img info --output=json -f vpc $img | grep -o '"virtual-size": [0-9]*')" = \
		"\"virtual-size\": $size" ] || fail "$img: QEMU sees another size"
	check_image $img src.raw

	# Writes into allocated blocks (partial: bits to set), new blocks, across
	# edges, unaligned; then zero and trim. The model gets the same by qemu-io.
	[ $sub = fixed ] && continue
	cp src.raw model.raw
	"$vhdio" $img write:0x61:1536:1000 write:0x62:$((2048 * 1024 - 700)):5000 \
		write:0x63:$((30 << 20)):$((3 << 20)) write:0x64:$((20000 * 1024 + 700 * 1024)):4096 \
		zero:$((2049 * 1024)):8192 zero-trim:$((8 << 20)):$((4 << 20)) flush \
		write:0x65:$((31 << 20)):512 ||
		fail "$img: writes failed"
	qemu-io -f raw -c 'write -P 0x61 1536 1000' -c "write -P 0x62 $((2048 * 1024 - 700)) 5000" \
		-c "write -P 0x63 $((30 << 20)) $((3 << 20))" \
		-c "write -P 0x64 $((20000 * 1024 + 700 * 1024)) 4096" \
		-c "write -z $((2049 * 1024)) 8192" -c "write -z $((8 << 20)) $((4 << 20))" \
		-c "write -P 0x65 $((31 << 20)) 512" model.raw >/dev/null
	check_image $img model.raw
done
echo PASS
