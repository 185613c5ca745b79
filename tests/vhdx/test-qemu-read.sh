#!/bin/sh
# VHDX images made and written by qemu-img and qemu-io (dynamic and fixed,
# block sizes 1M, 8M and 32M, odd virtual sizes, data across block boundaries,
# zero writes) read by smove: the same bytes as `qemu-img convert -O raw`, a
# map whose data covers every non-zero byte, and a clean check.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
cd "$T"

n=0
for spec in dynamic:1M:5M dynamic:8M:67109376 dynamic:32M:200000256 fixed:1M:3145728 \
	fixed:8M:20971520; do
	sub=${spec%%:*} rest=${spec#*:}
	bs=${rest%%:*} size=${rest#*:}
	n=$((n + 1))
	img=q$n.vhdx
	qemu-img create -q -f vhdx -o subformat=$sub,block_size=$bs $img $size
	vsize=$(qemu-img info --output=json $img | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
	# Writes at the start, across the first block boundary, in the middle, a
	# zero write inside written data, and the last sector.
	b=$((${bs%M} * 1048576))
	qemu-io -f vhdx -c "write -P 0x11 0 64k" -c "write -P 0x22 $((b - 4096)) 12k" \
		-c "write -P 0x33 $((vsize / 2 / 512 * 512)) 100k" \
		-c "write -z $((vsize / 2 / 512 * 512 + 4096)) 8k" \
		-c "write -P 0x44 $((vsize - 512)) 512" $img >/dev/null
	qemu-img convert -f vhdx -O raw $img want.raw
	"$SMOVE" disk convert -q --to raw $img got.raw
	cmp want.raw got.raw || fail "$img ($spec): smove reads other bytes than qemu-img"
	"$SMOVE" disk check $img >/dev/null || fail "$img: check found problems"
	"$SMOVE" disk info --json $img >info.json
	grep -q "\"virtual-size\":$vsize" info.json || fail "$img: virtual size"
	grep -q "\"subformat\":\"$sub\"" info.json || fail "$img: subformat"
	"$SMOVE" disk map --json $img >map.json
	/usr/bin/python3 - map.json got.raw <<'PY' || fail "$img: the map misses data"
import json, sys
m = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
assert sum(e["length"] for e in m) == len(raw)
for e in m:
    if e["type"] != "data":
        chunk = raw[e["start"]:e["start"] + e["length"]]
        assert chunk.count(0) == len(chunk), e
PY
	[ $sub = fixed ] || grep -Eq '"type":"(zero|absent)"' map.json ||
		fail "$img: a dynamic image whose map is all data"
	rm -f want.raw got.raw
done
echo PASS
