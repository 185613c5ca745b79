#!/bin/sh
# smove disk create for VHD: the size choice (exact by default, CHS-rounded
# with --chs-round) as smove, QEMU and libvhdi see it, block sizes, and the
# refusals.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img vhdiinfo
cd "$T"

vsize() { # IMAGE: the virtual size qemu-img reports
	qemu-img info --output=json -f vpc "$1" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}
ssize() { "$SMOVE" disk info --json "$1" | grep -o '"virtual-size":[0-9]*' | cut -d: -f2; }

# 100 MiB is not CHS-exact. By default smove keeps it, and QEMU, which sizes
# disks of unknown creators by their geometry, sees less; libvhdi sees it all.
for sub in dynamic fixed; do
	"$SMOVE" disk create --subformat $sub --size 100M exact-$sub.vhd
	[ "$(ssize exact-$sub.vhd)" = 104857600 ] || fail "$sub: smove size"
	q=$(vsize exact-$sub.vhd)
	[ "$q" -lt 104857600 ] && [ "$q" -gt 104000000 ] || fail "$sub: QEMU sees $q bytes"
	vhdiinfo exact-$sub.vhd | grep -q '(104857600 bytes)' || fail "$sub: libvhdi size"
	# ... and QEMU too when told to use the footer's size (docs/formats.md).
	qemu-img info --image-opts driver=vpc,force_size_calc=current_size,file.filename=exact-$sub.vhd |
		grep -q '(104857600 bytes)' || fail "$sub: QEMU with force_size_calc"
	"$SMOVE" disk info exact-$sub.vhd | grep -q '^creator: *smov 1.0' || fail "$sub: creator"

	# --chs-round: the next CHS-exact size, the same for every reader.
	"$SMOVE" disk create --subformat $sub --chs-round --size 100M round-$sub.vhd
	s=$(ssize round-$sub.vhd)
	[ "$s" -ge 104857600 ] && [ "$s" -lt 105000000 ] || fail "$sub: rounded to $s"
	[ "$(vsize round-$sub.vhd)" = "$s" ] || fail "$sub: QEMU sees $(vsize round-$sub.vhd), not $s"
	vhdiinfo round-$sub.vhd | grep -q "($s bytes)" || fail "$sub: libvhdi rounded size"
done
# qemu-img itself rounds up the same way.
qemu-img create -q -f vpc q.vhd 100M
[ "$(vsize q.vhd)" = "$(ssize round-dynamic.vhd)" ] || fail "qemu-img rounds to $(vsize q.vhd)"

# A fixed image is sparse: data area plus footer.
[ "$(stat -c %s exact-fixed.vhd)" = $((104857600 + 512)) ] || fail "fixed file size"
[ "$(du -k exact-fixed.vhd | cut -f1)" -lt 100 ] || fail "fixed image is not sparse"

# Above what CHS can describe (about 127 GiB) the geometry is the largest one
# and every reader uses the footer's size: the exact size is kept.
"$SMOVE" disk create --chs-round --size 200G big.vhd
[ "$(ssize big.vhd)" = $((200 << 30)) ] && [ "$(vsize big.vhd)" = $((200 << 30)) ] ||
	fail "200 GiB: smove $(ssize big.vhd), QEMU $(vsize big.vhd)"
"$SMOVE" disk info big.vhd | grep -q 'geometry (CHS): *65535/16/255' || fail "largest geometry"

# Block sizes: powers of two from 512 KiB to 256 MiB.
"$SMOVE" disk create --block-size 512K --size 10M b512k.vhd
"$SMOVE" disk create --block-size 256M --size 1G b256m.vhd
"$SMOVE" disk info b256m.vhd | grep -q 'block size: *256 MiB' || fail "block size 256M"
for bs in 256K 3M 512M; do
	expect_status 1 "$SMOVE" disk create --block-size $bs --size 10M bad.vhd
	expect_stderr 'block size must be a power of two from 512 KiB to 256 MiB'
	[ ! -e bad.vhd ] || fail "a refused create left bad.vhd"
done
expect_status 1 "$SMOVE" disk create --size 3T huge.vhd
expect_stderr 'a VHD holds from 512 bytes to 2040 GiB'
echo PASS
