#!/bin/sh
# No silent format guesses. A .vhd or .vhdx file whose signature is damaged
# (images made by qemu-img and by smove, damaged with dd) is reported as
# damaged by info, check and nbdkit smove, never opened as a raw disk; an
# empty .vhdx or .vhd is an error; --format raw still reads such a file as
# raw. A destination whose name names no format is refused by create and
# convert unless the format is given.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img
cd "$T"

hint="; the name says %s: name the format to read it as another"
# damaged IMAGE FMT MESSAGE: info exits 1 and check 3, both with MESSAGE.
damaged() {
	h=$(printf "$hint" "$2")
	expect_status 1 "$SMOVE" disk info "$1"
	grep -Fxq "smove disk info: $1: $3$h" "$T/stderr" || { cat "$T/stderr" >&2; fail "info $1"; }
	expect_status 2 "$SMOVE" disk check "$1"
	grep -Fxq "corruption: $1: $3$h" "$T/stdout" || { cat "$T/stdout" >&2; fail "check $1"; }
	grep -Fxq "1 errors were found on the image." "$T/stdout" ||
		fail "check $1 does not say it has problems"
	"$SMOVE" disk info --format raw "$1" | grep -q '^format: *raw' || fail "--format raw $1"
}

vhdx_id='not a VHDX: bad file identifier (the file does not begin with "vhdxfile")'
qemu-img create -q -f vhdx q.vhdx 8M
"$SMOVE" disk create --size 8M s.vhdx
for f in q.vhdx s.vhdx; do
	printf 'vhdxfilX' | dd of=$f conv=notrunc status=none
	damaged $f vhdx "$vhdx_id"
done

# A fixed VHD has its only footer at the end; a dynamic one a copy at 0 too.
qemu-img create -q -f vpc -o subformat=fixed qf.vhd 8M
"$SMOVE" disk create --subformat fixed --size 8M sf.vhd
for f in qf.vhd sf.vhd; do
	printf 'c0nectix' | dd of=$f bs=1 seek=$(($(stat -c %s $f) - 512)) conv=notrunc status=none
	damaged $f vhd 'not a VHD: no valid footer at the end of the file (no "conectix" cookie)'
done
qemu-img create -q -f vpc qd.vhd 8M
printf 'c0nectix' | dd of=qd.vhd conv=notrunc status=none
printf 'c0nectix' | dd of=qd.vhd bs=1 seek=$(($(stat -c %s qd.vhd) - 512)) conv=notrunc status=none
damaged qd.vhd vhd 'not a VHD: no valid footer at the end of the file (no "conectix" cookie)'

# Empty files.
: >e.vhdx
: >e.vhd
damaged e.vhdx vhdx 'not a VHDX: the file is empty'
damaged e.vhd vhd 'not a VHD: the file is empty'

# nbdkit smove refuses to serve the damaged image as raw.
if command -v nbdkit >/dev/null; then
	. "$abs_top_srcdir/tests/storage/servers.sh"
	try_plugin bad "file=$T/q.vhdx" && fail "nbdkit smove served a damaged q.vhdx"
	grep -Fq "error: $T/q.vhdx: $vhdx_id$(printf "$hint" vhdx)" "$T/bad.log" || fail "$(cat "$T/bad.log")"
fi

# Files that claim no format are still probed, raw when nothing else fits.
cp q.vhdx junk.img
"$SMOVE" disk info junk.img | grep -q '^format: *raw' || fail "junk.img is not raw"

# Destinations: the name must say the format, or the format be given.
for name in x.qcow2 noext disk.vmdk; do
	expect_status 2 "$SMOVE" disk create --size 1M $name
	grep -Fxq "smove disk create: cannot tell the format of '$name' from its name (.vhd, .vhdx, .raw or .img): give --format raw, vhd or vhdx" "$T/stderr" ||
		{ cat "$T/stderr" >&2; fail "create $name"; }
	[ ! -e $name ] || fail "create made $name"
	expect_status 2 "$SMOVE" disk convert -q junk.img $name
	grep -Fxq "smove disk convert: cannot tell the format of '$name' from its name (.vhd, .vhdx, .raw or .img): give -O raw, vhd or vhdx" "$T/stderr" ||
		{ cat "$T/stderr" >&2; fail "convert $name"; }
	[ ! -e $name ] || fail "convert made $name"
done
"$SMOVE" disk create --size 1M --format vhdx noext
"$SMOVE" disk info noext | grep -q '^format: *vhdx' || fail "noext is not a VHDX"
"$SMOVE" disk convert -q --to raw noext x.qcow2
[ "$(stat -c %s x.qcow2)" = 1048576 ] || fail "x.qcow2 is not the raw disk"
"$SMOVE" disk create --size 1M a.IMG
"$SMOVE" disk convert -q a.IMG b.raw
echo PASS
