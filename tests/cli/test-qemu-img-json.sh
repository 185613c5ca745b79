#!/bin/sh
# The JSON of smove disk info, map and check is qemu-img's, field by field, on
# the same images: every member qemu-img info/map/check --output=json prints
# is in smove's with the same value (smove's own are added beside them).
# Maps are compared for VHD and raw only (QEMU 7.2 maps a VHDX as all data,
# FACTS.md). check's exit statuses are qemu-img check's: 0 clean, 2
# corruptions, 3 leaks only, 1 could not check.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
cd "$T"

# same_members QEMU.json SMOVE.json: every member of qemu-img's object (or
# of each object of an array, in order) is in smove's with the same value.
same_members() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
q, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
if isinstance(q, dict):
    q, s = [q], [s]
assert len(q) == len(s), f"{len(q)} entries from qemu-img, {len(s)} from smove:\n{q}\n{s}"
for a, b in zip(q, s):
    for k, v in a.items():
        if k == "format-specific":
            continue
        assert k in b, f"member {k!r} ({v!r}) missing: qemu-img {a}, smove {b}"
        assert b[k] == v, f"member {k!r}: qemu-img {v!r}, smove {b[k]!r}"
print(f"{sum(len(a) for a in q)} members agree")
PY
}

# info: images made by qemu-img and by smove, every format.
qemu-img create -q -f vpc q.vhd 64M
qemu-io -f vpc -c 'write -P 1 0 2M' -c 'write -P 2 8M 2M' -c 'write -P 3 62M 2M' q.vhd >/dev/null
qemu-img create -q -f vpc -o subformat=fixed qf.vhd 32M
qemu-img create -q -f vhdx -o block_size=8M q.vhdx 64M
qemu-io -f vhdx -c 'write -P 1 1M 3M' q.vhdx >/dev/null
truncate -s 16M q.raw
dd if=/dev/urandom of=q.raw bs=1M seek=2 count=1 conv=notrunc status=none
"$SMOVE" disk create -f vpc -o force_size=off s.vhd 64M
"$SMOVE" disk create -o block_size=8M s.vhdx 64M
"$SMOVE" disk create -f raw s.raw 16M
for img in q.vhd:vpc qf.vhd:vpc q.vhdx:vhdx q.raw:raw s.vhd:vpc s.vhdx:vhdx s.raw:raw; do
	f=${img#*:}
	img=${img%:*}
	qemu-img info -f $f --output=json $img >q.json
	"$SMOVE" disk info -f $f --output=json $img >s.json
	same_members q.json s.json >/dev/null || fail "info $img"
	# -U (--force-share) as qemu-img takes it; the format probed the same
	# (but QEMU probes a fixed VHD as raw, FACTS.md).
	fopt=
	[ $img = qf.vhd ] && fopt="-f vpc"
	qemu-img info $fopt -U --output=json $img >q.json
	"$SMOVE" disk info $fopt -U --json $img >s.json
	same_members q.json s.json || fail "info -U $img"
done
# qemu-img's format names: vpc for VHD.
grep -q '"format":"vpc"' s.json && fail "s.raw is not vpc"
"$SMOVE" disk info --json q.vhd | grep -q '"format":"vpc"' || fail "VHD is not 'vpc'"

# A chain (smove's; qemu-img cannot make VHD/VHDX ones): backing-filename as
# qemu-img names it, the parent nested, or --backing-chain's array.
"$SMOVE" disk create -b s.vhdx -F vhdx c.vhdx
"$SMOVE" disk info --json c.vhdx >c.json
"$SMOVE" disk info --json --backing-chain c.vhdx >chain.json
"$SMOVE" disk info --json --no-parent c.vhdx >np.json
/usr/bin/python3 - c.json chain.json np.json <<'PY' || fail "info of a chain"
import json, sys
c, chain, np = (json.load(open(p)) for p in sys.argv[1:])
assert c["backing-filename"].endswith("s.vhdx") and c["full-backing-filename"].endswith("s.vhdx"), c
assert c["backing-filename-format"] == "vhdx" and c["backing-image"]["filename"].endswith("s.vhdx"), c
assert [x["subformat"] for x in chain] == ["differencing", "dynamic"], chain
assert "backing-image" not in chain[0] and "full-backing-filename" not in np, np
assert np["backing-filename"].endswith("s.vhdx"), np
PY

# map: VHD (whole blocks written, as QEMU maps whole blocks) and raw.
for img in q.vhd:vpc q.raw:raw; do
	f=${img#*:}
	img=${img%:*}
	qemu-img map -f $f --output=json $img >q.json
	"$SMOVE" disk map -f $f --output=json $img >s.json
	same_members q.json s.json || fail "map $img"
	qemu-img map -f $f --output=json --start-offset 8M --max-length 4M $img >q.json
	"$SMOVE" disk map -f $f --json --start-offset 8M --max-length 4M $img >s.json
	same_members q.json s.json || fail "map --start-offset --max-length $img"
done
# offset is where the data is in the file: read it there.
"$SMOVE" disk map --json q.vhd >s.json
/usr/bin/python3 - s.json q.vhd <<'PY' || fail "map offsets"
import json, sys
m = json.load(open(sys.argv[1]))
f = open(sys.argv[2], "rb")
pat = {0: 1, 8 << 20: 2, 62 << 20: 3}
for e in m:
    if e["data"]:
        f.seek(e["offset"])
        assert f.read(e["length"]) == bytes([pat[e["start"]]]) * e["length"], e
PY
# A chain: depth is the layer that holds the data; absent data reads as zero
# and is present in no layer.
qemu-io -f vhdx -c 'write -P 7 0 1M' s.vhdx >/dev/null
"$SMOVE" disk create -b s.vhdx c2.vhdx
qemu-io -f vhdx -c 'write -P 8 16M 1M' c2.vhdx 2>/dev/null >/dev/null ||
	"$SMOVE" disk map c2.vhdx >/dev/null
"$SMOVE" disk map --json c2.vhdx >s.json
/usr/bin/python3 - s.json <<'PY' || fail "map of a chain: $(cat s.json)"
import json, sys
m = json.load(open(sys.argv[1]))
first = m[0]
assert first["start"] == 0 and first["depth"] == 1 and first["data"] and "offset" in first, first
absent = [e for e in m if e["type"] == "absent"]
assert absent and all(not e["present"] and e["zero"] and e["depth"] == 1 for e in absent), absent
PY

# check: qemu-img's members on a clean VHDX, and its exit statuses.
qemu-img check --output=json q.vhdx >q.json
"$SMOVE" disk check --output=json q.vhdx >s.json
same_members q.json s.json || fail "check q.vhdx"
grep -q '"corruptions":0,"leaks":0' s.json || fail "check: $(cat s.json)"
dir="$abs_top_builddir/tests/data/broken"
/usr/bin/python3 "$abs_top_srcdir/tests/vpc/make-broken.py" corpus "$dir"
expect_status 3 "$SMOVE" disk check --json "$dir/vpc-leak.vhd"
grep -q '"check-errors":0,"corruptions":0,"leaks":1' "$T/stdout" || fail "leak: $(cat "$T/stdout")"
expect_status 2 "$SMOVE" disk check --json "$dir/vpc-overlap.vhd"
grep -q '"corruptions":[1-9]' "$T/stdout" || fail "corruption: $(cat "$T/stdout")"
expect_status 1 "$SMOVE" disk check --json missing.vhdx
grep -q '^{"error":"missing.vhdx: No such file or directory","exit-status":1}$' "$T/stdout" ||
	fail "check of a missing file: $(cat "$T/stdout")"
expect_status 1 qemu-img check missing.vhdx
expect_status 0 "$SMOVE" disk check -q q.vhdx
[ ! -s "$T/stdout" ] || fail "check -q printed"
echo PASS
