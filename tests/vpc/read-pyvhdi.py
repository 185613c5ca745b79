#!/usr/bin/python3
"""read-pyvhdi.py OUT IMAGE [PARENT...]: reads a VHD's whole virtual disk with
libvhdi (python3-libvhdi) into the raw file OUT. A differencing image's
parents follow, nearest first; each is opened and set as the parent."""
import sys

import pyvhdi

out, paths = sys.argv[1], sys.argv[2:]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
top = files[0]
size = top.get_media_size()
# Chunks of 512 KiB, the smallest block size smove creates: libvhdi 20210425
# returns zeros for data in a read that spans a block whose sector bitmap is
# partly clear and then more blocks (reads within one block are right).
with open(out, "wb") as o:
    off = 0
    while off < size:
        n = min(512 << 10, size - off)
        data = top.read_buffer_at_offset(n, off)
        assert len(data) == n, (off, n, len(data))
        o.write(data)
        off += n
for f in reversed(files):
    f.close()
