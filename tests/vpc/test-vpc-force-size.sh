#!/bin/sh
# The geometry 65535/16/255 that qemu-img writes with force_size (Azure's
# recipe for fixed VHDs: qemu-img create -f vpc -o subformat=fixed,force_size=on)
# is the marker it is: check finds no problem and info says what it means. Any
# other geometry beyond the size (written with dd, checksum fixed) is still
# reported.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img
cd "$T"

for sub in fixed dynamic; do
	qemu-img create -q -f vpc -o subformat=$sub,force_size=on $sub.vhd 100M
	expect_status 0 "$SMOVE" disk check $sub.vhd
	grep -Fxq "No errors were found on the image." "$T/stdout" || { cat "$T/stdout" >&2; fail "check $sub.vhd"; }
	"$SMOVE" disk info $sub.vhd >info
	grep -Fxq "geometry (CHS):   65535/16/255 (the largest: readers size the disk by its byte count)" info ||
		{ cat info >&2; fail "info $sub.vhd"; }
	grep -q '^virtual size: .*(104857600 bytes)' info || fail "$sub.vhd is not 100 MiB"
	[ "$(qemu-img info -f vpc --output=json $sub.vhd | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" = 104857600 ] ||
		fail "qemu-img does not see 100 MiB in $sub.vhd"
done

# setgeo FILE OFFSET C H S: writes a geometry into the footer at OFFSET with
# dd and fixes the footer's checksum (one's complement of the byte sum).
setgeo() {
	printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($3 >> 8)) $(($3 & 255)) $4 $5)" |
		dd of="$1" bs=1 seek=$(($2 + 56)) conv=notrunc status=none
	/usr/bin/python3 - "$1" "$2" <<'PY'
import struct, sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    foot = bytearray(f.read(512))
    foot[64:68] = b"\0\0\0\0"
    f.seek(off + 64)
    f.write(struct.pack(">I", ~sum(foot) & 0xffffffff))
PY
}
end=$(($(stat -c %s fixed.vhd) - 512))
setgeo fixed.vhd $end 65535 16 254
expect_status 2 "$SMOVE" disk check fixed.vhd
grep -Fxq "corruption: fixed.vhd: the CHS geometry 65535/16/254 describes 136363130880 bytes, more than the virtual size of 104857600" "$T/stdout" ||
	{ cat "$T/stdout" >&2; fail "check of 65535/16/254"; }
setgeo fixed.vhd $end 65535 16 255
expect_status 0 "$SMOVE" disk check fixed.vhd
# A smaller geometry than the size is what CHS rounding gives: no problem.
"$SMOVE" disk create --size 100M s.vhd
expect_status 0 "$SMOVE" disk check s.vhd
echo PASS
