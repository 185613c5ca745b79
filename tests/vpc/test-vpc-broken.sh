#!/bin/sh
# Broken VHD images (made by make-broken.py into tests/data/broken, where the
# image fuzzer's replay test finds them too): `smove disk info` refuses each
# one that cannot be used safely and `smove disk check` reports it, both with a
# message naming the problem, never a crash or a hang. Images that open but
# have damage that check must see are listed apart. Also run under ASan/UBSan.
. "$abs_top_srcdir/tests/functions.sh"
dir="$abs_top_builddir/tests/data/broken"
/usr/bin/python3 "$abs_top_srcdir/tests/vpc/make-broken.py" corpus "$dir"

# NAME|what info and check must say
while IFS='|' read -r name msg; do
	[ -n "$name" ] || continue
	img="$dir/vpc-$name.vhd"
	expect_status 1 timeout 20 "$SMOVE" disk info "$img"
	expect_stderr "$msg"
	expect_status 2 timeout 20 "$SMOVE" disk check "$img"
	grep -Eq -- "^corruption: .*$msg" "$T/stdout" || {
		cat "$T/stdout" >&2
		fail "check of vpc-$name.vhd does not report '$msg'"
	}
done <<'LIST'
truncated|BAT entry 5 points past the end of the file
tiny|file is too small for a VHD image \(300 bytes
footer-checksum|no valid VHD footer: at the end of the file, bad checksum 0x00000001 .*copy at offset 0 is unusable: bad checksum
fixed-checksum|not a VHD: no valid footer at the end of the file \(bad checksum 0xdeadbeef
header-checksum|dynamic header at 0x200: bad checksum 0x00000001
header-cookie|dynamic header at 0x200: no "cxsparse" cookie
header-past-eof|the dynamic header \[0x10000000000, \+0x400\) lies past the end of the file
bat-past-eof|BAT entry 3 points past the end of the file \(block \[0x2000000
bat-over-header|BAT entry 3 \(block at 0x200\) overlaps the dynamic header
bat-over-bat|BAT entry 3 \(block at 0x600\) overlaps the block table
block-size-3000|block size 3000 is not a power of two
block-size-1g|block size 1073741824 is not a power of two between 512 bytes and 256 MiB
size-absurd|virtual size 1152921504606846976 bytes is beyond the VHD maximum of 2040 GiB
size-odd|virtual size 65539 is not a multiple of 512 bytes
entries-absurd|the block table has 2147483647 entries, more than a VHD of at most 2040 GiB can use
entries-too-few|the block table has 3 entries, too few for the virtual size of 65536 bytes
disk-type-7|unknown VHD disk type 7
locator-outside|parent locator 0's data \[0x40000000, \+0x20\) lies past the end of the file
locator-utf16|parent locator 0 is not a valid path \(bad UTF-16\)
loop-a|vpc-loop-.\.vhd: parent chain is deeper than 16 images \(or loops\)
LIST

# These open (info works) but check reports the damage.
while IFS='|' read -r name msg; do
	[ -n "$name" ] || continue
	img="$dir/vpc-$name.vhd"
	expect_status 0 timeout 20 "$SMOVE" disk info "$img"
	expect_status 2 timeout 20 "$SMOVE" disk check "$img"
	grep -Eq -- "^corruption: .*$msg" "$T/stdout" || {
		cat "$T/stdout" >&2
		fail "check of vpc-$name.vhd does not report '$msg'"
	}
done <<'LIST'
footer-copy-bad|the footer copy at offset 0 is invalid \(bad checksum
footer-missing|the footer at the end of the file is invalid \(no "conectix" cookie\); using its copy at offset 0
overlap|the blocks of BAT entries 2 and 4 overlap
LIST
# Leaked space is a leak, not a corruption: exit 3, as qemu-img check's.
expect_status 3 "$SMOVE" disk check "$dir/vpc-leak.vhd"
grep -q '^leak: .*vpc-leak.vhd: 4608 bytes of the file (the first at 0x3e00) belong to no block' \
	"$T/stdout" || fail "check does not note the leaked space"
# info says when it used the footer copy.
"$SMOVE" disk info "$dir/vpc-footer-missing.vhd" | grep -q '^warning: *the footer at the end' ||
	fail "info does not warn about the missing footer"
echo PASS
