#!/usr/bin/python3
"""compare-maps.py SMOVE_MAP.json QEMU_MAP.json MODE: compares the data ranges
of `smove disk map --json` with those of `qemu-img map --output=json`.
MODE "exact": the same byte ranges; "within": every range smove calls data is
data for QEMU too (QEMU reports whole VHD blocks, smove the sectors whose
bitmap bit is set), and every QEMU data block holds some smove data."""
import json
import sys


def ranges(items, start_key, is_data):
    out = []
    for e in items:
        if not is_data(e):
            continue
        s, n = e[start_key], e["length"]
        if out and out[-1][1] == s:
            out[-1][1] = s + n
        else:
            out.append([s, s + n])
    return out


def inside(r, rs):
    return any(a <= r[0] and r[1] <= b for a, b in rs)


smove = ranges(json.load(open(sys.argv[1])), "start", lambda e: e["type"] == "data")
qemu = ranges(json.load(open(sys.argv[2])), "start", lambda e: e["data"])
mode = sys.argv[3]
if mode == "exact":
    assert smove == qemu, f"smove data {smove} != qemu data {qemu}"
else:
    for r in smove:
        assert inside(r, qemu), f"smove data {r} is not data for qemu {qemu}"
    for a, b in qemu:
        assert any(a < y and x < b for x, y in smove), f"qemu data {[a, b]} has no smove data"
print(f"maps agree ({mode}): {len(smove)} smove data ranges, {len(qemu)} qemu ones")
