#!/usr/bin/python3
"""make-broken.py: VHDX images written from scratch (independently of smove's
writer): a small valid one, images with a log to replay, and broken variants.

  make-broken.py corpus DIR   writes DIR/vhdx-NAME.vhdx for every case below
  make-broken.py one NAME OUT writes one case

Layout: the headers, a 1 MiB log at 1 MiB, the metadata region at 2 MiB, the
BAT at 3 MiB, blocks from 4 MiB; 1 MiB blocks, a 4 MiB disk with data in
blocks 0 and 2 (their first 64 KiB 0x11 and 0x22 bytes). Files are written
sparse.
"""
import os
import struct
import sys
import uuid

KIB, MIB = 1024, 1 << 20


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ CRC_TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def fix_crc(img, off, length):
    img[off + 4:off + 8] = bytes(4)
    img[off + 4:off + 8] = struct.pack("<I", crc32c(img[off:off + length]))


def guid(text):
    return uuid.UUID(text).bytes_le


BAT_GUID = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
META_GUID = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMS = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
DISK_SIZE = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83 = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
LOCATOR = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
LOCATOR_TYPE = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")

H1, H2, R1, R2 = 64 * KIB, 128 * KIB, 192 * KIB, 256 * KIB
LOG, META, BAT, DATA = 1 * MIB, 2 * MIB, 3 * MIB, 4 * MIB
SIZE, BLOCK = 4 * MIB, MIB


def header(seq, data_write, log_guid=bytes(16)):
    h = bytearray(4096)
    struct.pack_into("<4sIQ16s16s16sHHIQ", h, 0, b"head", 0, seq,
                     uuid.uuid4().bytes_le, data_write, log_guid, 0, 1, MIB, LOG)
    fix_crc(h, 0, 4096)
    return h


def region_table(extra=()):
    t = bytearray(64 * KIB)
    entries = [(BAT_GUID, BAT, MIB, 1), (META_GUID, META, MIB, 1)] + list(extra)
    struct.pack_into("<4sIII", t, 0, b"regi", 0, len(entries), 0)
    for i, (g, off, length, req) in enumerate(entries):
        struct.pack_into("<16sQII", t, 16 + 32 * i, g, off, length, req)
    fix_crc(t, 0, 64 * KIB)
    return t


def utf16(s):
    return s.encode("utf-16-le")


def locator(linkage, relative):
    pairs = [("parent_linkage", linkage), ("relative_path", relative)]
    head = bytearray(20 + 12 * len(pairs))
    struct.pack_into("<16sHH", head, 0, LOCATOR_TYPE, 0, len(pairs))
    body = bytearray()
    for i, (k, v) in enumerate(pairs):
        ko = len(head) + len(body)
        body += utf16(k)
        vo = len(head) + len(body)
        body += utf16(v)
        struct.pack_into("<IIHH", head, 20 + 12 * i, ko, vo, len(utf16(k)), len(utf16(v)))
    return bytes(head + body)


def metadata(block=BLOCK, size=SIZE, logical=512, flags=0, loc=None, extra=()):
    items = [(FILE_PARAMS, struct.pack("<II", block, flags), 4),
             (DISK_SIZE, struct.pack("<Q", size), 6),
             (PAGE83, uuid.uuid4().bytes_le, 6),
             (LOGICAL, struct.pack("<I", logical), 6),
             (PHYSICAL, struct.pack("<I", 4096), 6)]
    if loc is not None:
        items.append((LOCATOR, loc, 4))
    items += list(extra)
    m = bytearray(MIB)
    struct.pack_into("<8sHH", m, 0, b"metadata", 0, len(items))
    off = 64 * KIB
    for i, (g, data, flags_) in enumerate(items):
        struct.pack_into("<16sIIII", m, 32 + 32 * i, g, off, len(data), flags_, 0)
        m[off:off + len(data)] = data
        off += len(data)
    return m


def bat_entry(state, offset=0):
    return struct.pack("<Q", offset | state)


def image(meta=None, bat=None, data_write=None, log_guid=bytes(16), regions=None):
    """A valid dynamic image unless told otherwise: blocks 0 and 2 hold data."""
    img = bytearray(DATA + 2 * MIB)
    img[0:8] = b"vhdxfile"
    img[8:8 + 22] = utf16("make-broken")
    data_write = data_write or uuid.uuid4().bytes_le
    img[H1:H1 + 4096] = header(1, data_write, log_guid)
    img[H2:H2 + 4096] = header(2, data_write, log_guid)
    img[R1:R1 + 64 * KIB] = regions or region_table()
    img[R2:R2 + 64 * KIB] = regions or region_table()
    img[META:META + MIB] = meta or metadata()
    for i, e in enumerate(bat or [bat_entry(6, DATA), bat_entry(0), bat_entry(6, DATA + MIB)]):
        img[BAT + 8 * i:BAT + 8 * i + 8] = e
    img[DATA:DATA + 64 * KIB] = b"\x11" * (64 * KIB)
    img[DATA + MIB:DATA + MIB + 64 * KIB] = b"\x22" * (64 * KIB)
    return img


def log_entry(seq, tail, log_guid, writes, flushed=6 * MIB, last=6 * MIB):
    """A log entry writing (file offset, 4 KiB of data) pairs."""
    n = len(writes)
    e = bytearray(4096 * (1 + n))
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, len(e), tail, seq, n, 0,
                     log_guid, flushed, last)
    for i, (off, data) in enumerate(writes):
        struct.pack_into("<4s4s8sQQ", e, 64 + 32 * i, b"desc", data[4092:4096], data[0:8], off,
                         seq)
        s = 4096 * (1 + i)
        struct.pack_into("<4sI", e, s, b"data", seq >> 32)
        e[s + 8:s + 4092] = data[8:4092]
        struct.pack_into("<I", e, s + 4092, seq & 0xFFFFFFFF)
    fix_crc(e, 0, len(e))
    return e


def dirty(bad_crc=False, second_bad=False):
    """Block 1 is not present in the BAT; the log's entry makes it fully
    present at 6 MiB (which holds 0x33 bytes). second_bad: a second entry
    (block 3 at 6 MiB too) whose checksum is bad follows."""
    g = uuid.uuid4().bytes_le
    img = image(log_guid=g)
    img += b"\x33" * (64 * KIB) + bytes(MIB - 64 * KIB)
    sector = bytearray(img[BAT:BAT + 4096])
    sector[8:16] = bat_entry(6, 6 * MIB)
    e = log_entry(7, 0, g, [(BAT, bytes(sector))], flushed=7 * MIB, last=7 * MIB)
    if bad_crc:
        e[5000] ^= 1
    img[LOG:LOG + len(e)] = e
    if second_bad:
        sector[24:32] = bat_entry(6, 6 * MIB)
        e2 = log_entry(8, len(e), g, [(BAT, bytes(sector))], flushed=7 * MIB, last=7 * MIB)
        e2[5000] ^= 1
        img[LOG + len(e):LOG + len(e) + len(e2)] = e2
    return img


def set_bat(n, entry):
    img = image()
    img[BAT + 8 * n:BAT + 8 * n + 8] = entry
    return img


def corrupt(img, *offsets):
    for off in offsets:
        img[off + 40] ^= 1
    return img


def loop(other, my_dw, other_dw):
    """A differencing image whose parent is `other`, whose parent is it."""
    link = "{%s}" % uuid.UUID(bytes_le=other_dw)
    return image(meta=metadata(flags=2, loc=locator(link, other)), data_write=my_dw, bat=[])


def cases():
    dw_a, dw_b = uuid.uuid4().bytes_le, uuid.uuid4().bytes_le
    unknown = guid("5A5A5A5A-5A5A-5A5A-5A5A-5A5A5A5A5A5A")
    trunc = image()
    return {
        "valid": image(),
        "log-dirty": dirty(),
        "log-dirty-then-torn": dirty(second_bad=True),
        "log-bad-entry": dirty(bad_crc=True),
        "truncated-headers": image()[:200 * KIB],
        "truncated": trunc[:DATA + MIB],
        "header-checksums": corrupt(image(), H1, H2),
        "header-checksum-1": corrupt(image(), H1),
        "region-checksums": corrupt(image(), R1, R2),
        "region-checksum-1": corrupt(image(), R1),
        "region-unknown-required": image(regions=region_table([(unknown, 8 * MIB, MIB, 1)])),
        "metadata-unknown-required": image(meta=metadata(extra=[(unknown, b"x" * 8, 4)])),
        "bat-past-eof": set_bat(2, bat_entry(6, 64 * MIB)),
        "bat-over-headers": set_bat(2, bat_entry(6, 0)),
        "bat-over-log": set_bat(2, bat_entry(6, LOG)),
        "bat-overlap": set_bat(2, bat_entry(6, DATA)),
        "bat-partial-in-dynamic": set_bat(2, bat_entry(7, DATA)),
        "block-size-3m": image(meta=metadata(block=3 * MIB)),
        "size-absurd": image(meta=metadata(size=1 << 60)),
        "size-too-big-for-bat": image(meta=metadata(size=1 << 40)),
        "sector-size-1024": image(meta=metadata(logical=1024)),
        "loop-a": loop("vhdx-loop-b.vhdx", dw_a, dw_b),
        "loop-b": loop("vhdx-loop-a.vhdx", dw_b, dw_a),
    }


def write_sparse(path, img):
    """Writes img sparse; the file appears whole (written beside the
    directory, then renamed): tests that run in parallel may be reading it."""
    tmp = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))),
                       ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "wb") as f:
        for off in range(0, len(img), 64 * KIB):
            chunk = img[off:off + 64 * KIB]
            if chunk.count(0) != len(chunk):
                f.seek(off)
                f.write(chunk)
        f.truncate(len(img))
    os.replace(tmp, path)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "corpus":
        for name, img in cases().items():
            write_sparse("%s/vhdx-%s.vhdx" % (sys.argv[2], name), img)
    elif len(sys.argv) == 4 and sys.argv[1] == "one":
        write_sparse(sys.argv[3], cases()[sys.argv[2]])
    else:
        sys.exit(__doc__)


main()
