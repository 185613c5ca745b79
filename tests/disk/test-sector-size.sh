#!/bin/sh
# Nothing the guest sees changes in a convert: a VHDX's logical sector size
# (4096 stays 4096) and physical sector size are kept; a destination that
# cannot record 4096-byte sectors (VHD, raw) is refused with the reason,
# unless --sector-size 512 asks for the change. create refuses a sector size
# that VHD and raw cannot record instead of ignoring it.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img
cd "$T"

sectors() { "$SMOVE" disk info "$1" | sed -n 's/^sector size: *//p'; }
pattern_file p.raw 8388608 3
"$SMOVE" disk convert -q --to vhdx --sector-size 4096 p.raw 4k.vhdx
[ "$(sectors 4k.vhdx)" = "4096 logical, 4096 physical" ] || fail "4k.vhdx: $(sectors 4k.vhdx)"

# VHDX to VHDX keeps both sizes, made by smove or by qemu-img.
"$SMOVE" disk convert -q 4k.vhdx c.vhdx
[ "$(sectors c.vhdx)" = "4096 logical, 4096 physical" ] || fail "c.vhdx: $(sectors c.vhdx)"
"$SMOVE" disk convert -q --sector-size 512 c.vhdx c.raw
cmp p.raw c.raw || fail "the 4096-byte-sector copy differs"
"$SMOVE" disk create --size 8M --physical-sector-size 512 p512.vhdx
"$SMOVE" disk convert -q p512.vhdx c512.vhdx
[ "$(sectors c512.vhdx)" = "512 logical, 512 physical" ] || fail "c512.vhdx: $(sectors c512.vhdx)"
qemu-img create -q -f vhdx q.vhdx 8M
"$SMOVE" disk convert -q q.vhdx cq.vhdx
[ "$(sectors cq.vhdx)" = "$(sectors q.vhdx)" ] || fail "cq.vhdx: $(sectors cq.vhdx), q.vhdx: $(sectors q.vhdx)"

# VHD and raw cannot record 4096: refused, nothing left behind.
for dst in c.vhd c2.raw; do
	fmt=${dst#*.}
	[ "$fmt" = vhd ] || fmt=raw
	expect_status 1 "$SMOVE" disk convert -q 4k.vhdx $dst
	grep -Fxq "smove disk convert: 4k.vhdx: has 4096-byte logical sectors, which a $fmt image cannot record: convert to VHDX to keep them, or give --sector-size 512 to change what the guest sees" "$T/stderr" ||
		{ cat "$T/stderr" >&2; fail "convert to $dst"; }
	[ ! -e $dst ] && [ ! -e .$dst.smove-tmp ] || fail "convert left $dst behind"
done
expect_status 1 "$SMOVE" disk convert 4k.vhdx -
expect_stderr "^smove disk convert: 4k.vhdx: has 4096-byte logical sectors, which a raw image cannot record"
[ ! -s "$T/stdout" ] || fail "convert wrote to standard output"
# ... unless the change is asked for.
"$SMOVE" disk convert -q --sector-size 512 4k.vhdx c.vhd
"$SMOVE" disk convert -q c.vhd c3.raw
cmp p.raw c3.raw || fail "the VHD copy differs"

# create: a sector size VHD or raw cannot record is refused, not ignored.
for img in x.vhd x.raw; do
	fmt=${img#*.}
	for opt in --sector-size --physical-sector-size; do
		expect_status 2 "$SMOVE" disk create --size 8M $opt 4096 $img
		grep -Fxq "smove disk create: $opt 4096: a $fmt image records no sector size (512 only); use VHDX" "$T/stderr" ||
			{ cat "$T/stderr" >&2; fail "create $opt $img"; }
		[ ! -e $img ] || fail "create made $img"
	done
	expect_status 2 "$SMOVE" disk convert -q --sector-size 4096 p.raw $img
	expect_stderr "^smove disk convert: --sector-size 4096: a $fmt image records no sector size"
done
"$SMOVE" disk create --size 8M --sector-size 512 x.vhd
echo PASS
