#!/bin/sh
# Differencing chains made by smove (qemu-img cannot make VHDX ones), three
# levels in three directories: contents against a model written alongside,
# cross-checked by libvhdi (set_parent); the parent found by its relative path
# and, when that fails, by its absolute one; a parent written to since (its
# data write GUID no longer the linkage) refused clearly; a missing parent
# reported. (A loop is in test-vhdx-broken.sh.)
. "$abs_top_srcdir/tests/functions.sh"
tool="$abs_top_builddir/tests/vhdx/vhdx-tool"
have_libvhdi=yes
/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null || have_libvhdi=
cd "$T"
mkdir -p a b/c
truncate -s 16M model.raw

# OP IMAGE OFFSET LENGTH [BYTE]: through smove and into the model (sizes
# take K and M suffixes).
op() {
	o=$(numfmt --from=iec "$3") l=$(numfmt --from=iec "$4")
	"$tool" "$1" "$2" $o $l ${5:-} || fail "$*"
	/usr/bin/python3 - "$1" "$2" $o $l ${5:-} <<'PY'
import sys
op, img, off, length = sys.argv[1], sys.argv[2], int(sys.argv[3], 0), int(sys.argv[4], 0)
byte = int(sys.argv[5], 0) if op == "write" else 0
with open("model.raw", "r+b") as f:
    f.seek(off)
    f.write(bytes([byte]) * length)
PY
}

"$SMOVE" disk create --size 16M --block-size 1M a/base.vhdx
op write a/base.vhdx 0 4M 0x11
op write a/base.vhdx 10M 3M 0x12
"$SMOVE" disk create --parent a/base.vhdx b/mid.vhdx
op write b/mid.vhdx 512 4096 0x21
op write b/mid.vhdx 1M 1M 0x22
op write b/mid.vhdx 11M 8192 0x23
"$SMOVE" disk create --parent b/mid.vhdx b/c/top.vhdx
op write b/c/top.vhdx 4096 512 0x31
op write b/c/top.vhdx 1048064 1024 0x32
op write b/c/top.vhdx 15M 1M 0x33

"$SMOVE" disk info --json --backing-chain b/c/top.vhdx >info.json
/usr/bin/python3 - info.json <<'PY' || fail "info of the chain"
import json, sys
chain = json.load(open(sys.argv[1]))
assert [c["subformat"] for c in chain] == ["differencing", "differencing", "dynamic"], chain
# Each child's parent id is its parent's id (the data write GUID).
assert chain[0]["parent-id"] == chain[1]["id"] and chain[1]["parent-id"] == chain[2]["id"]
PY
"$SMOVE" disk info b/c/top.vhdx | grep -q '^parent: *\.\./mid.vhdx' || fail "top's locator"
"$SMOVE" disk convert -q --to raw b/c/top.vhdx top.raw
cmp top.raw model.raw || fail "the chain reads other bytes than the model"
"$SMOVE" disk check b/c/top.vhdx >/dev/null || fail "check of the chain"
if [ -n "$have_libvhdi" ]; then
	/usr/bin/python3 "$abs_top_srcdir/tests/vhdx/libvhdi-compare.py" b/c/top.vhdx model.raw \
		b/mid.vhdx a/base.vhdx || fail "libvhdi reads the chain differently"
fi

# Zero and trim in the top layer: a whole zeroed block hides the parents; a
# trimmed one shows them again (what vhd.h promises of a trim).
op zero b/c/top.vhdx 10M 1M trim
"$tool" trim b/c/top.vhdx 15728640 1048576
/usr/bin/python3 -c "
f = open('model.raw', 'r+b'); f.seek(15 << 20); f.write(bytes(1 << 20))"
"$SMOVE" disk convert -q --force --to raw b/c/top.vhdx top.raw
cmp top.raw model.raw || fail "after zero and trim"
"$SMOVE" disk map --layer --json b/c/top.vhdx | grep -q '"type":"zero"' || fail "no zero block"

# Moved as a tree: found by the relative paths. The top alone elsewhere: by
# its absolute path.
mv b b2
"$SMOVE" disk convert -q --force --to raw b2/c/top.vhdx top.raw
cmp top.raw model.raw || fail "after moving the tree"
mv b2 b
mkdir elsewhere && cp b/c/top.vhdx elsewhere/
"$SMOVE" disk info elsewhere/top.vhdx | grep -q "image: *$T/b/mid.vhdx" ||
	fail "the absolute path was not used"

# A parent that was written to since is not the one the child was made from.
cp a/base.vhdx base.save
"$tool" write a/base.vhdx 0 512 0x99
expect_status 1 "$SMOVE" disk info b/c/top.vhdx
expect_stderr "parent .*base.vhdx is not the image this disk was made from: its data write GUID is \{.*\}, the parent linkage says \{.*\}"
expect_status 2 "$SMOVE" disk check b/c/top.vhdx
grep -q "^corruption: .*is not the image this disk was made from" "$T/stdout" || fail "check"
cp base.save a/base.vhdx

# A missing parent.
mv b/mid.vhdx mid.away
expect_status 1 "$SMOVE" disk info b/c/top.vhdx
expect_stderr 'top.vhdx: cannot open parent image "../mid.vhdx"'
expect_status 2 "$SMOVE" disk check b/c/top.vhdx
mv mid.away b/mid.vhdx
"$SMOVE" disk check b/c/top.vhdx >/dev/null || fail "the restored chain"
echo PASS
