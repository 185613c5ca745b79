#!/bin/sh
# VHD images made and written by QEMU (qemu-img create, qemu-io), fixed and
# dynamic, CHS-exact and odd sizes, data across block boundaries: smove reads
# them exactly as `qemu-img convert -O raw` does, and its map agrees with
# `qemu-img map`.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
cd "$T"

# One image per subformat and size; the writes straddle 2 MiB block edges,
# start and end inside sectors, and touch the last sector.
n=0
for sub in dynamic fixed; do
	for size in 10485760 33554432 5000000; do
		n=$((n + 1))
		img=q$n.vhd
		qemu-img create -q -f vpc -o subformat=$sub $img $size
		vsize=$(qemu-img info --output=json -f vpc $img |
			/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
		qemu-io -f vpc \
			-c 'write -P 0x11 0 4k' \
			-c 'write -P 0x22 2096640 1024' \
			-c 'write -P 0x33 2095616 2100000' \
			-c "write -P 0x44 $((vsize - 512)) 512" \
			-c "write -P 0x55 $((vsize / 2 + 77)) 3000" \
			$img >/dev/null
		qemu-img convert -f vpc -O raw $img q$n.raw
		"$SMOVE" disk convert -q $img s$n.raw
		cmp q$n.raw s$n.raw || fail "$img ($sub, $size bytes): smove reads other data than qemu-img"
		"$SMOVE" disk info --json $img >info.json
		/usr/bin/python3 - info.json "$vsize" "$sub" <<'PY' || fail "$img: info"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["format"] == "vpc" and c["subformat"] == sys.argv[3], c
assert c["virtual-size"] == int(sys.argv[2]), c
assert c["creator"].startswith("qemu "), c
g = c["geometry"]
assert g["cylinders"] * g["heads"] * g["sectors-per-track"] * 512 == c["virtual-size"], g
PY
		if [ $sub = dynamic ]; then
			"$SMOVE" disk map --json $img >s.map
			qemu-img map --output=json -f vpc $img >q.map
			/usr/bin/python3 "$abs_top_srcdir/tests/vpc/compare-maps.py" s.map q.map exact ||
				fail "$img: maps differ"
		fi
		"$SMOVE" disk check $img >/dev/null || fail "$img: check found problems"
	done
done

# A fixed VHD is probed by its footer (QEMU itself takes it for raw).
"$SMOVE" disk info q4.vhd | grep -q 'format: *vhd (fixed)' || fail "fixed VHD not recognised"
echo PASS
