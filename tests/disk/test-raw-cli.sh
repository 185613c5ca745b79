#!/bin/sh
# smove disk create/info/map/convert/check on raw images: sizes, sparseness,
# contents, the temporary name of the destination, and the exit statuses.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img

cd "$T"
"$SMOVE" disk create --size 64M a.raw
[ "$(stat -c %s a.raw)" = 67108864 ] || fail "a.raw has the wrong size"
"$SMOVE" disk info a.raw | grep -q '^virtual size: *64.0 MiB (67108864 bytes)' || fail "info size"
"$SMOVE" disk info --json a.raw | grep -q '"virtual-size":67108864' || fail "info --json"

# Data at 1 MiB and at the end; a raw map shows the holes as absent.
pattern_file p1 1048576 1
dd if=p1 of=a.raw bs=1M seek=1 conv=notrunc status=none
dd if=p1 of=a.raw bs=1M seek=63 conv=notrunc status=none
"$SMOVE" disk map --json a.raw >map.json
/usr/bin/python3 - map.json <<'PY' || fail "map of a.raw"
import json, sys
m = json.load(open(sys.argv[1]))
data = [(e["start"], e["length"]) for e in m if e["type"] == "data"]
assert data == [(1 << 20, 1 << 20), (63 << 20, 1 << 20)], data
assert sum(e["length"] for e in m) == 64 << 20
PY

"$SMOVE" disk convert -q a.raw b.raw
qemu-img compare -f raw -F raw a.raw b.raw >/dev/null || fail "b.raw differs from a.raw"
[ "$(du -k b.raw | cut -f1)" -le 4096 ] || fail "b.raw is not sparse"
[ ! -e .b.raw.smove-tmp ] || fail "temporary file left behind"

# A destination that exists is refused, unless --force.
expect_status 1 "$SMOVE" disk convert -q a.raw b.raw
expect_stderr 'b.raw: already exists'
"$SMOVE" disk convert -q --force a.raw b.raw

# To standard output: the whole raw disk.
"$SMOVE" disk convert a.raw - >c.raw
cmp a.raw c.raw || fail "raw on standard output differs"

"$SMOVE" disk check a.raw >/dev/null || fail "check of a raw image"

# Wrong arguments: exit 2 with a message.
expect_status 2 "$SMOVE" disk create a2.raw
expect_stderr 'SIZE is required'
expect_status 2 "$SMOVE" disk create --size 12Q a2.raw
expect_status 2 "$SMOVE" disk convert --to qcow2 a.raw x
expect_stderr "unknown format 'qcow2'"
expect_status 1 "$SMOVE" disk info nonexistent.vhdx
expect_stderr 'nonexistent.vhdx: No such file or directory'
echo PASS
