#!/bin/sh
# The arguments that smove disk info, map and check share (one parser,
# cmd/disk.c): --format forces the format, --json, one IMAGE; --layer only for
# map and --no-parent only for check; a wrong argument exits 2 naming the
# command. A VHDX child over a parent shows the difference.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-io
cd "$T"
"$SMOVE" disk create --size 8M base.vhdx
qemu-io -f vhdx -c 'write -P 0x5a 2M 1M' base.vhdx >/dev/null
"$SMOVE" disk create --parent base.vhdx child.vhdx
size=$(stat -c %s child.vhdx)

for cmd in info map check; do
	# --format: forced raw, the container is read as plain bytes.
	"$SMOVE" disk "$cmd" --json --format raw child.vhdx >"$cmd.json" || fail "$cmd --format raw"
	expect_status 2 "$SMOVE" disk "$cmd" --format qcow2 child.vhdx
	expect_stderr "^smove disk $cmd: unknown format 'qcow2'"
	expect_status 2 "$SMOVE" disk "$cmd"
	expect_stderr "^smove disk $cmd: expected one IMAGE"
	expect_status 2 "$SMOVE" disk "$cmd" child.vhdx base.vhdx
	expect_stderr "^smove disk $cmd: expected one IMAGE"
	expect_status 0 "$SMOVE" disk "$cmd" --help
	grep -q "^Usage: smove disk $cmd " "$T/stdout" || fail "$cmd --help"
done
grep -q "\"virtual-size\":$size" info.json || fail "info --format raw: $(cat info.json)"
grep -q '"format":"raw"' info.json || fail "info --format raw: $(cat info.json)"
/usr/bin/python3 -c 'import json,sys; m=json.load(open("map.json")); assert sum(e["length"] for e in m) == int(sys.argv[1]), m' "$size" ||
	fail "map --format raw does not cover the file"

# The chain by default; --layer (map) and --no-parent (check) this layer alone.
"$SMOVE" disk info --json child.vhdx | grep -q 'base.vhdx' || fail "info does not show the parent"
"$SMOVE" disk map --json child.vhdx | grep -q '"type":"data"' || fail "map of the chain shows no data"
"$SMOVE" disk map --layer --json child.vhdx | grep -q '"type":"data"' && fail "map --layer shows the parent's data"
mv base.vhdx gone.vhdx
expect_status 2 "$SMOVE" disk check child.vhdx
grep -q "errors were found on the image" "$T/stdout" || fail "check does not miss the parent"
"$SMOVE" disk check --no-parent child.vhdx >/dev/null || fail "check --no-parent needs the parent"
mv gone.vhdx base.vhdx

# Options of one command are not another's.
expect_status 2 "$SMOVE" disk info --layer child.vhdx
expect_stderr "^smove disk info: unrecognized option '--layer'"
expect_status 2 "$SMOVE" disk map --no-parent child.vhdx
expect_stderr "^smove disk map: unrecognized option '--no-parent'"
expect_status 2 "$SMOVE" disk check --layer child.vhdx
expect_stderr "^smove disk check: unrecognized option '--layer'"
echo PASS
