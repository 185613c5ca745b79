#!/bin/sh
# Broken VHDX images (made by make-broken.py into tests/data/broken, where the
# image fuzzer's replay test finds them too): `smove disk info` refuses each
# one that cannot be used safely and `smove disk check` reports it, both with a
# message naming the problem, never a crash or a hang. Images that open but
# carry damage that check must see are listed apart, and so are those with a
# log to replay. Also run under ASan/UBSan.
. "$abs_top_srcdir/tests/functions.sh"
dir="$abs_top_builddir/tests/data/broken"
mkdir -p "$dir"
/usr/bin/python3 "$abs_top_srcdir/tests/vhdx/make-broken.py" corpus "$dir"

# NAME|what info and check must say
while IFS='|' read -r name msg; do
	[ -n "$name" ] || continue
	img="$dir/vhdx-$name.vhdx"
	expect_status 1 timeout 20 "$SMOVE" disk info "$img"
	expect_stderr "$msg"
	expect_status 2 timeout 20 "$SMOVE" disk check "$img"
	grep -Eq -- "^corruption: .*$msg" "$T/stdout" || {
		cat "$T/stdout" >&2
		fail "check of vhdx-$name.vhdx does not report '$msg'"
	}
done <<'LIST'
truncated-headers|the file is 0x32000 bytes, too short for the headers of a VHDX \(truncated\?\)
truncated|BAT entry 2 points past the end of the file \(offset 0x500000, file size 0x500000\)
header-checksums|no valid header: the one at 0x10000 has a bad checksum .* the one at 0x20000 has a bad checksum
region-checksums|no valid region table: the one at 0x30000 has a bad checksum
region-unknown-required|names region \{5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a\}, which smove does not know and which is marked required
metadata-unknown-required|metadata item \{5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a\} is marked required but smove does not know it
bat-past-eof|BAT entry 2 points past the end of the file \(offset 0x4000000
bat-over-headers|BAT entry 2 points into the header section
bat-over-log|BAT entry 2 points into the log
bat-partial-in-dynamic|BAT entry 2 is partially present, which only a differencing disk may be
block-size-3m|block size 3145728 is not a power of two between 1 MiB and 256 MiB
size-absurd|virtual size 1152921504606846976 is beyond the VHDX limits
size-too-big-for-bat|the BAT region \(0x100000 bytes\) is too small for the 1048831 entries
sector-size-1024|logical sector size 1024 is neither 512 nor 4096
log-bad-entry|the log has no valid sequence to replay: the log entry at 0x0 \(sequence 7\) has a bad checksum
loop-a|vhdx-loop-.\.vhdx: parent chain is deeper than 16 images \(or loops\)
LIST

# These open (info works) but check reports the damage; a read-write open of
# overlapping blocks is refused.
while IFS='|' read -r name msg; do
	[ -n "$name" ] || continue
	img="$dir/vhdx-$name.vhdx"
	expect_status 0 timeout 20 "$SMOVE" disk info "$img"
	expect_status 2 timeout 20 "$SMOVE" disk check "$img"
	grep -Eq -- "^corruption: .*$msg" "$T/stdout" || {
		cat "$T/stdout" >&2
		fail "check of vhdx-$name.vhdx does not report '$msg'"
	}
done <<'LIST'
header-checksum-1|header at 0x10000 has a bad checksum .* \(the other copy is used\)
region-checksum-1|region table at 0x30000 has a bad checksum
bat-overlap|BAT entries 0 and 2 overlap in the file
LIST
cp "$dir/vhdx-bat-overlap.vhdx" "$T/overlap.vhdx"
expect_status 1 "$abs_top_builddir/tests/vhdx/vhdx-tool" write "$T/overlap.vhdx" 0 512 1
expect_stderr 'payload blocks overlap in the file; writing would corrupt them'

# A log to replay is not damage: read-only, it is replayed in memory (block 1
# then holds 0x33) and the file is left as it was; a log whose newest entry is
# torn is replayed up to the entry before.
for name in log-dirty log-dirty-then-torn; do
	cp "$dir/vhdx-$name.vhdx" "$T/l.vhdx"
	sum=$(sha256sum <"$T/l.vhdx")
	"$SMOVE" disk info "$T/l.vhdx" | grep -q '^log: *was dirty, replayed on open' ||
		fail "$name: no replay reported"
	"$SMOVE" disk check "$T/l.vhdx" >/dev/null || fail "$name: check"
	"$SMOVE" disk convert -q --to raw "$T/l.vhdx" "$T/l.raw"
	/usr/bin/python3 - "$T/l.raw" <<'PY' || fail "$name: replayed contents"
import sys
d = open(sys.argv[1], "rb").read()
k = 64 * 1024
assert d[:k] == b"\x11" * k and d[1 << 20:(1 << 20) + k] == b"\x33" * k, "block 0 or 1"
assert d[2 << 20:(2 << 20) + k] == b"\x22" * k and d[(3 << 20):] == bytes(1 << 20), "2, 3"
PY
	[ "$(sha256sum <"$T/l.vhdx")" = "$sum" ] || fail "$name: a read-only open changed the file"
	rm -f "$T/l.raw"
done
echo PASS
