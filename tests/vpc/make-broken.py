#!/usr/bin/python3
"""make-broken.py: VHD images built byte by byte from the specification, for
the broken-image tests and the fuzzer's seeds. Independent of smove's code.

  make-broken.py corpus DIR         broken images DIR/vpc-*.vhd (see CORPUS)
  make-broken.py seeds DIR          small valid images DIR/vpc-*.vhd (< 64 KiB)
  make-broken.py relink CHILD NEW   makes the differencing image CHILD name NEW
                                    as its parent (id, name, both locators)
"""
import os
import struct
import sys
import uuid as uuidlib

SECTOR = 512
UNUSED = 0xFFFFFFFF


def checksum(buf, at):
    b = bytearray(buf)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def with_checksum(buf, at):
    b = bytearray(buf)
    struct.pack_into(">I", b, at, checksum(b, at))
    return bytes(b)


def chs(sectors):
    sectors = min(sectors, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return cth // heads, heads, spt


def footer(dtype, size, data_offset, uid, creator=b"pyvh"):
    c, h, s = chs(size // SECTOR)
    f = struct.pack(">8sIIQI4sI4sQQHBBII16sB", b"conectix", 2, 0x10000, data_offset, 0,
                    creator, 0x10000, b"Wi2k", size, size, c, h, s, dtype, 0, uid, 0)
    return with_checksum(f.ljust(512, b"\0"), 64)


def header(table_offset, entries, block_size, parent_uuid=b"\0" * 16, parent_name="",
           locators=()):
    h = struct.pack(">8sQQIIII16sII", b"cxsparse", 0xFFFFFFFFFFFFFFFF, table_offset,
                    0x10000, entries, block_size, 0, parent_uuid, 0, 0)
    h += parent_name.encode("utf-16-be").ljust(512, b"\0")
    for code, space, length, offset in locators:
        h += struct.pack(">4sIIIQ", code, space, length, 0, offset)
    return with_checksum(h.ljust(1024, b"\0"), 36)


def dynamic(size=64 << 10, block=4096, blocks=None, dtype=3, parent=None, uid=None):
    """A dynamic (or differencing) image: blocks maps block index to (bitmap
    bytes, data byte value). parent = (uuid, name, [(code, path bytes)])."""
    uid = uid or uuidlib.uuid4().bytes
    entries = -(-size // block)
    bat_len = -(-entries * 4 // SECTOR) * SECTOR
    bitmap_len = -(-(block // SECTOR // 8) // SECTOR) * SECTOR
    end = 1536 + bat_len
    locs, locdata = [], b""
    if parent:
        for code, data in parent[2]:
            space = -(-len(data) // SECTOR) * SECTOR
            locs.append((code, space, len(data), end + len(locdata)))
            locdata += data.ljust(space, b"\0")
        end += len(locdata)
    bat = [UNUSED] * entries
    body = b""
    for i, (bm, value) in sorted((blocks or {}).items()):
        bat[i] = (end + len(body)) // SECTOR
        body += bm.ljust(bitmap_len, b"\0") + bytes([value]) * block
    foot = footer(dtype, size, 512, uid)
    hdr = header(1536, entries, block, parent[0] if parent else b"\0" * 16,
                 parent[1] if parent else "", locs)
    batb = struct.pack(">%dI" % entries, *bat).ljust(bat_len, b"\xff")
    return foot + hdr + batb + locdata + body + foot


def fixed(size=8192, fill=0x5A):
    return bytes([fill]) * size + footer(2, size, 0xFFFFFFFFFFFFFFFF, uuidlib.uuid4().bytes)


def patch(img, at, data):
    b = bytearray(img)
    b[at:at + len(data)] = data
    return bytes(b)


def fix_header(img, at=512):
    return patch(img, at, with_checksum(img[at:at + 1024], 36))


def fix_footers(img):
    img = patch(img, 0, with_checksum(img[:512], 64))
    return patch(img, len(img) - 512, with_checksum(img[:512], 64))


def bat_set(img, index, value):
    return patch(img, 1536 + 4 * index, struct.pack(">I", value))


def sample():
    """Blocks 0 (all sectors), 2 (half) and 5 (two sectors) of a 64 KiB disk."""
    return dynamic(blocks={0: (b"\xff", 0x11), 2: (b"\xf0", 0x22), 5: (b"\x81", 0x33)})


def locator(code, path):
    return (code, path.encode("utf-16-le"))


def differencing(parent_uuid, name, uid=None):
    return dynamic(dtype=4, uid=uid, blocks={1: (b"\x0f", 0x44)},
                   parent=(parent_uuid, name, [locator(b"W2ru", ".\\" + name),
                                               locator(b"W2ku", "\\nonexistent\\" + name)]))


# name: the image's bytes. The test (test-vpc-broken.sh) says what smove must
# answer for each.
def corpus():
    s = sample()
    foot_at = len(s) - 512
    out = {
        "truncated": s[:len(s) - 2560],
        "tiny": s[:300],
        "footer-checksum": patch(patch(s, 64, b"\0\0\0\1"), foot_at + 64, b"\0\0\0\1"),
        "fixed-checksum": patch(fixed(), 8192 + 64, b"\xde\xad\xbe\xef"),
        "header-checksum": patch(s, 512 + 36, b"\0\0\0\1"),
        "header-cookie": fix_header(patch(s, 512, b"cxspars!")),
        "bat-past-eof": bat_set(s, 3, 0x10000),
        "bat-over-header": bat_set(s, 3, 1),
        "bat-over-bat": bat_set(s, 3, 3),
        "block-size-3000": fix_header(patch(s, 512 + 32, struct.pack(">I", 3000))),
        "block-size-1g": fix_header(patch(s, 512 + 32, struct.pack(">I", 1 << 30))),
        "size-absurd": fix_footers(patch(s, 48, struct.pack(">Q", 1 << 60))),
        "size-odd": fix_footers(patch(s, 48, struct.pack(">Q", (64 << 10) + 3))),
        "entries-absurd": fix_header(patch(s, 512 + 28, struct.pack(">I", 0x7FFFFFFF))),
        "entries-too-few": fix_header(patch(s, 512 + 28, struct.pack(">I", 3))),
        "disk-type-7": fix_footers(patch(s, 60, struct.pack(">I", 7))),
        "header-past-eof": fix_footers(patch(s, 16, struct.pack(">Q", 1 << 40))),
        # Problems that do not stop an open, which check reports.
        "footer-copy-bad": patch(s, 64, b"\0\0\0\1"),
        "footer-missing": s[:foot_at],
        "overlap": bat_set(s, 4, struct.unpack(">I", s[1536 + 8:1536 + 12])[0]),
        "leak": s[:foot_at] + b"\x77" * 4608 + s[foot_at:],
    }
    parent = uuidlib.uuid4().bytes
    d = differencing(parent, "vpc-parent.vhd")
    out["locator-outside"] = fix_header(patch(d, 512 + 576 + 16, struct.pack(">Q", 1 << 30)))
    out["locator-utf16"] = d  # patched below: an unpaired surrogate
    loc_at = struct.unpack(">Q", d[512 + 576 + 16:512 + 576 + 24])[0]
    out["locator-utf16"] = patch(d, loc_at, b"\x00\xd8\x41\x00")
    # A loop: each names the other as its parent, with the right ids.
    a, b = uuidlib.uuid4().bytes, uuidlib.uuid4().bytes
    out["loop-a"] = differencing(b, "vpc-loop-b.vhd", uid=a)
    out["loop-b"] = differencing(a, "vpc-loop-a.vhd", uid=b)
    return out


def seeds():
    parent = uuidlib.uuid4().bytes
    return {
        "seed-dynamic": sample(),
        "seed-differencing": differencing(parent, "seed-parent.vhd"),
        "seed-fixed": fixed(),
    }


def relink(child_path, new_parent_path):
    """Points the differencing image child at new_parent: its id, its file
    name, and W2ru/W2ku locators rewritten in their existing space."""
    child = bytearray(open(child_path, "rb").read())
    par = open(new_parent_path, "rb").read()
    par_uuid = par[-512 + 68:-512 + 84]
    rel = os.path.relpath(os.path.realpath(new_parent_path),
                          os.path.dirname(os.path.realpath(child_path)))
    paths = {b"W2ru": ".\\" + rel.replace("/", "\\"),
             b"W2ku": os.path.realpath(new_parent_path).replace("/", "\\")}
    h = bytearray(child[512:1536])
    h[40:56] = par_uuid
    h[64:576] = os.path.basename(new_parent_path).encode("utf-16-be").ljust(512, b"\0")
    for i in range(8):
        at = 576 + 24 * i
        code, space, length, _, offset = struct.unpack(">4sIIIQ", h[at:at + 24])
        if code in paths:
            data = paths[code].encode("utf-16-le")
            room = space if space >= 512 else space * 512
            assert len(data) <= room, "new path does not fit the locator's space"
            child[offset:offset + room] = data.ljust(room, b"\0")
            struct.pack_into(">I", h, at + 8, len(data))
    child[512:1536] = with_checksum(h, 36)
    open(child_path, "wb").write(child)


def main():
    cmd = sys.argv[1]
    if cmd == "relink":
        relink(sys.argv[2], sys.argv[3])
        return
    images = corpus() if cmd == "corpus" else seeds()
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    # Each file appears whole (written beside the directory, then renamed):
    # tests that run in parallel may be reading the directory.
    parent = os.path.dirname(os.path.abspath(out))
    for name, data in images.items():
        tmp = os.path.join(parent, ".vpc-%s.%d.tmp" % (name, os.getpid()))
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(out, "vpc-%s.vhd" % name))


if __name__ == "__main__":
    main()
