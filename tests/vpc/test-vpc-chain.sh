#!/bin/sh
# Differencing VHD chains made by smove (qemu-img cannot make them): three
# levels in two directories, written at unaligned offsets and block edges,
# zeroed over the parent's data and trimmed back to it; contents equal a raw
# model and what libvhdi reads through the same chain. Then the parent links:
# relative and absolute locators, a missing parent, a replaced parent (another
# unique id) and a loop, each refused with a clear message.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-io vhdiinfo
/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null || skip "python3-libvhdi not installed"
vhdio="$abs_top_builddir/tests/vpc/vhd-io"
pyread="$abs_top_srcdir/tests/vpc/read-pyvhdi.py"
M=1048576
cd "$T"
mkdir -p tree/base tree/layers
cd tree

# The model: raw files that get the same writes through qemu-io.
model() { # FILE qemu-io commands...
	f=$1
	shift
	for c in "$@"; do set -- "$@" -c "$c"; shift; done
	qemu-io -f raw "$@" "$f" >/dev/null
}

"$SMOVE" disk create --size 12M --block-size 512K base/base.vhd
"$vhdio" base/base.vhd write:0x11:0:$((3 * M)) write:0x12:$((5 * M)):100000 \
	write:0x13:$((12 * M - 512)):512
qemu-img create -q -f raw m0.raw 12M
model m0.raw "write -P 0x11 0 $((3 * M))" "write -P 0x12 $((5 * M)) 100000" \
	"write -P 0x13 $((12 * M - 512)) 512"

# Level 1, in another directory: unaligned writes inside the parent's data
# (the partial sectors come from the parent), a block edge, zeros over data.
"$SMOVE" disk create --parent base/base.vhd layers/mid.vhd
"$vhdio" layers/mid.vhd write:0x21:1000:3000 write:0x22:$((2 * M - 512)):1024 \
	zero:$((M + 4096)):8192 write:0x23:$((5 * M + 50000)):1 zero-trim:$((2 * M + 524288)):524288
cp m0.raw m1.raw
model m1.raw "write -P 0x21 1000 3000" "write -P 0x22 $((2 * M - 512)) 1024" \
	"write -z $((M + 4096)) 8192" "write -P 0x23 $((5 * M + 50000)) 1" \
	"write -z $((2 * M + 524288)) 524288"

# Level 2: a whole block written then trimmed (the parent shows again), a
# write past the parent's data, zeros in a block the chain never allocated.
"$SMOVE" disk create --parent layers/mid.vhd layers/top.vhd
"$vhdio" layers/top.vhd write:0x31:$((6 * M)):$M trim:$((6 * M)):524288 \
	write:0x32:$((9 * M + 7)):70000 zero:$((10 * M)):4096 write:0x33:0:512
cp m1.raw m2.raw
model m2.raw "write -P 0x31 $((6 * M + 524288)) 524288" "write -P 0x32 $((9 * M + 7)) 70000" \
	"write -P 0x33 0 512"

for level in mid:m1 top:m2; do
	img=layers/${level%:*}.vhd want=${level#*:}.raw
	"$SMOVE" disk convert -q --force $img got.raw
	cmp $want got.raw || fail "$img: smove reads other contents than the model"
	if [ $img = layers/top.vhd ]; then
		/usr/bin/python3 "$pyread" lib.raw $img layers/mid.vhd base/base.vhd
	else
		/usr/bin/python3 "$pyread" lib.raw $img base/base.vhd
	fi
	cmp $want lib.raw || fail "$img: libvhdi reads other contents than the model"
	st=0
	"$SMOVE" disk check $img >/dev/null || st=$?
	[ $st = 0 ] || [ $st = 3 ] || fail "$img: check found corruptions (exit $st)"
done
vhdiinfo layers/top.vhd >vi.txt
mid_id=$("$SMOVE" disk info --json layers/mid.vhd | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
grep -q "Parent identifier.*: $mid_id" vi.txt || fail "libvhdi sees another parent id"
grep -q "Parent filename.*: mid.vhd" vi.txt || fail "libvhdi sees another parent name"
"$SMOVE" disk info layers/top.vhd | grep -q "^parent: *layers/mid.vhd (id $mid_id)" ||
	fail "info does not show the parent"

# The block top trimmed is leaked space: a leak (exit 3), not a corruption.
expect_status 3 "$SMOVE" disk check layers/top.vhd
grep -q '^leak: .*belong to no block' "$T/stdout" ||
	fail "check does not note the space trim left"

# The map of the chain: data where any layer holds it.
"$SMOVE" disk map layers/top.vhd >/dev/null
"$SMOVE" disk map --json layers/mid.vhd | grep -q '"type":"data"' || fail "map of mid"

# The locators: W2ru relative, W2ku absolute. A moved tree opens by the
# relative path; a child moved away by the absolute one.
cd "$T"
mv tree moved
"$SMOVE" disk convert -q --force moved/layers/top.vhd got.raw && cmp moved/m2.raw got.raw ||
	fail "the relative parent locator is not followed"
mkdir elsewhere
cp moved/layers/top.vhd elsewhere/
expect_status 1 "$SMOVE" disk info elsewhere/top.vhd
expect_stderr "cannot open parent image \"mid.vhd\""
mv moved tree
"$SMOVE" disk convert -q --force elsewhere/top.vhd got.raw && cmp tree/m2.raw got.raw ||
	fail "the absolute parent locator is not followed"

# A missing parent.
mv tree/base/base.vhd tree/base/gone.vhd
expect_status 1 "$SMOVE" disk info tree/layers/top.vhd
expect_stderr 'mid.vhd: cannot open parent image "../base/base.vhd": .*No such file'
expect_status 2 "$SMOVE" disk check tree/layers/mid.vhd
grep -q '^corruption: .*cannot open parent image' "$T/stdout" || fail "check: missing parent"

# A parent replaced by another image (another unique id) under the same name.
"$SMOVE" disk create --size 12M tree/base/base.vhd
expect_status 1 "$SMOVE" disk info tree/layers/top.vhd
expect_stderr "mid.vhd: parent tree/layers/../base/base.vhd has unique id [0-9a-f-]{36}, but this image was made from a parent with id"
expect_status 2 "$SMOVE" disk check tree/layers/mid.vhd
grep -q '^corruption: .*was made from a parent with id' "$T/stdout" || fail "check: parent id"
"$SMOVE" disk check --no-parent tree/layers/mid.vhd >/dev/null || fail "check --no-parent"
rm tree/base/base.vhd
mv tree/base/gone.vhd tree/base/base.vhd

# A loop: mid made to name top as its parent (id and locators).
/usr/bin/python3 "$abs_top_srcdir/tests/vpc/make-broken.py" relink tree/layers/mid.vhd tree/layers/top.vhd
expect_status 1 "$SMOVE" disk info tree/layers/top.vhd
expect_stderr 'parent chain is deeper than 16 images \(or loops\)'
expect_status 2 "$SMOVE" disk check tree/layers/top.vhd
grep -q '^corruption: .*(or loops)' "$T/stdout" || fail "check: loop"
echo PASS
