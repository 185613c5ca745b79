# libvhdi-compare.py IMAGE RAW [PARENT...]: reads IMAGE with libvhdi (pyvhdi),
# with its parent chain if given (nearest parent first), and compares its whole
# virtual disk with RAW (which may be shorter: the rest must be zeros).
# Exit status 0 if equal; 1 with the first differing offset.
import sys

import pyvhdi


def open_chain(paths):
    files = [pyvhdi.file() for _ in paths]
    for f, p in zip(files, paths):
        f.open(p)
    for child, parent in zip(files, files[1:]):
        child.set_parent(parent)
    return files


files = open_chain([sys.argv[1]] + sys.argv[3:])
img = files[0]
size = img.get_media_size()
with open(sys.argv[2], "rb") as raw:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        want = raw.read(n)
        want += bytes(n - len(want))
        got = img.read_buffer(n)
        if got != want:
            i = next(k for k in range(n) if got[k] != want[k])
            sys.exit("libvhdi reads other bytes at offset %d" % (off + i))
        off += n
