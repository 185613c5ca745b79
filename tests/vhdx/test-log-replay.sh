#!/bin/sh
# The log, end to end: a crash injected into smove's own writer (vhdx-tool
# crash N: the file keeps only the first N writes) leaves images with a log to
# replay. A read-only open replays it in memory, returns the new data and
# leaves the file byte for byte as it was (qemu-img would refuse such a file
# read-only, libvhdi would return the old data); a read-write open replays it
# into the file and clears it, after which qemu-img checks and reads the image.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img
tool="$abs_top_builddir/tests/vhdx/vhdx-tool"
cd "$T"

"$SMOVE" disk create --size 8M --block-size 1M base.vhdx
"$tool" write base.vhdx 0 1048576 0x11
dirty=0
n=0
while [ $n -lt 16 ]; do
	n=$((n + 1))
	cp base.vhdx c.vhdx
	"$tool" crash $n c.vhdx 3149824 8192 0x22
	"$SMOVE" disk info c.vhdx >info.txt || fail "crash after write $n: the image does not open"
	grep -q '^log: *was dirty' info.txt || continue
	dirty=$((dirty + 1))
	# Read-only: the new data, the file untouched.
	sum=$(sha256sum <c.vhdx)
	"$SMOVE" disk convert -q --force --to raw c.vhdx c.raw
	[ "$(sha256sum <c.vhdx)" = "$sum" ] || fail "crash after write $n: read-only open wrote"
	/usr/bin/python3 - c.raw <<'PY' || fail "crash after write $n: replayed contents"
import sys
d = open(sys.argv[1], "rb").read()
assert d[:1 << 20] == b"\x11" * (1 << 20)
assert d[3149824:3149824 + 8192] == b"\x22" * 8192
assert d.count(0) == len(d) - (1 << 20) - 8192
PY
	# Read-write: replayed into the file, the log cleared; qemu-img agrees.
	"$tool" write c.vhdx 6291456 4096 0x33
	"$SMOVE" disk info c.vhdx | grep -q '^log: *clean' || fail "crash after write $n: log kept"
	qemu-img check -q -f vhdx c.vhdx || fail "crash after write $n: qemu-img check"
	dd if=/dev/zero bs=4096 count=1 status=none | tr '\0' '\063' |
		dd of=c.raw bs=4096 seek=1536 conv=notrunc status=none
	qemu-img compare -q -f raw -F vhdx c.raw c.vhdx || fail "crash after write $n: qemu-img"
done
[ $dirty -gt 0 ] || fail "no crash point left a log to replay"
echo "$dirty of $n crash points left a log to replay"

# A log written by another writer (make-broken.py): replayed read-write, then
# qemu-img sees block 1 that only the log made present.
/usr/bin/python3 "$abs_top_srcdir/tests/vhdx/make-broken.py" one log-dirty other.vhdx
qemu-img info other.vhdx >/dev/null 2>&1 && echo "note: qemu-img opened a dirty log read-only"
"$tool" write other.vhdx 3145728 512 0x44
qemu-img check -q -f vhdx other.vhdx || fail "the replayed image fails qemu-img check"
qemu-img convert -f vhdx -O raw other.vhdx q.raw
"$SMOVE" disk convert -q --to raw other.vhdx s.raw
cmp q.raw s.raw || fail "qemu-img and smove read the replayed image differently"
/usr/bin/python3 - q.raw <<'PY' || fail "the replayed image's contents"
import sys
d = open(sys.argv[1], "rb").read()
assert d[1 << 20:(1 << 20) + 65536] == b"\x33" * 65536
assert d[3 << 20:(3 << 20) + 512] == b"\x44" * 512
PY
echo PASS
