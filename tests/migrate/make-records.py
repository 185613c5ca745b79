#!/usr/bin/python3
# tests/migrate/make-records.py OUT SIZE BYTES GEN [SEED]: the raw image the
# test guest leaves after pass GEN of its disk program over the first BYTES of
# a SIZE-byte disk: a record per 4 KiB block (memsync/guest/abi.h, filled as
# memsync/guest/disk.c's record_fill does), zeros after BYTES. Written from the
# ABI alone, apart from smove, as the reference a migrated disk must equal.
import struct, sys, zlib

MAGIC = 0x3130434552564D53
M64 = (1 << 64) - 1
HEADER = 40  # magic, block, gen, seed, crc, pad
out, size, nbytes, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
assert nbytes % 4096 == 0 and nbytes <= size


def record(block):
    s = (block * 0x9E3779B97F4A7C15 + gen + seed) & M64
    words = []
    for _ in range((4096 - HEADER) // 8):
        s ^= (s << 13) & M64
        s ^= s >> 7
        s ^= (s << 17) & M64
        words.append(s)
    rec = bytearray(struct.pack("<QQQQII", MAGIC, block, gen, seed, 0, 0))
    rec += struct.pack("<%dQ" % len(words), *words)
    struct.pack_into("<I", rec, 32, zlib.crc32(rec))
    return rec


with open(out, "wb") as f:
    for block in range(nbytes // 4096):
        f.write(record(block))
    f.truncate(size)
