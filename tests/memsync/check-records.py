#!/usr/bin/python3
# tests/memsync/check-records.py RAW SIZE GEN [SEED]: every 4 KiB block of the
# first SIZE bytes of the raw image RAW holds the test guest's record for that
# block, written by pass GEN, with a good CRC-32 (memsync/guest/abi.h).
import struct, sys, zlib

path, size, gen = sys.argv[1], sys.argv[2], int(sys.argv[3])
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
units = {"K": 10, "M": 20, "G": 30}
size = int(size[:-1]) << units[size[-1]] if size[-1] in units else int(size)
MAGIC = 0x3130434552564D53
bad = 0
with open(path, "rb") as f:
    for block in range(size // 4096):
        rec = bytearray(f.read(4096))
        magic, blk, g, s, crc = struct.unpack_from("<QQQQI", rec)
        struct.pack_into("<I", rec, 32, 0)
        if magic != MAGIC or blk != block or g != gen or s != seed or zlib.crc32(rec) != crc:
            if bad < 5:
                print(f"block {block}: magic {magic:#x} block {blk} gen {g} crc ok {zlib.crc32(rec) == crc}")
            bad += 1
if bad:
    sys.exit(f"FAIL: {bad} bad records in {path}")
print(f"{size // 4096} records of pass {gen} verified in {path}")
