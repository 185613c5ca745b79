#!/usr/bin/python3
"""sparse-seed.py IMAGE OUT: writes IMAGE in the fuzz harness's sparse form
(see unsparse() in fuzz-image.c): "SPARSE01", the size, then (offset, length,
bytes) records for its non-zero 64-byte granules, so that a VHDX of several
MiB (whose structures sit at 1 MiB multiples) makes a seed of a few KiB."""
import struct
import sys

G, MAX = 64, 32768
data = open(sys.argv[1], "rb").read()
out = bytearray(b"SPARSE01" + struct.pack("<I", len(data)))
start = None
for off in range(0, len(data) + G, G):
    used = off < len(data) and data[off:off + G].count(0) != len(data[off:off + G])
    if start is not None and (not used or off - start == MAX):
        end = min(off, len(data))
        out += struct.pack("<IH", start, end - start) + data[start:end]
        start = None
    if used and start is None:
        start = off
open(sys.argv[2], "wb").write(out)
