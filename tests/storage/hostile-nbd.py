#!/usr/bin/python3
# tests/storage/hostile-nbd.py MODE FILE SOCKET: a minimal NBD server
# (fixed newstyle, structured replies, base:allocation) that serves FILE
# read-only on the Unix socket SOCKET with one kind of misbehaviour, for the
# NBD backend's robustness tests. It serves one connection at a time, forever.
#   good             correct answers (the control)
#   empty-extent     block status answers an extent of length 0
#   beyond-extent    block status claims one extent to the end of time
#   short-read       a read is answered with only half of its data
#   error-read       reads fail with EIO
#   garbage          a read is answered with bytes that are not a reply
#   hangup           the connection closes on the first read
import os, socket, struct, sys

mode, path, sockpath = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
OPTMAGIC, REPMAGIC = 0x49484156454F5054, 0x3E889045565A9
REQMAGIC, CHUNKMAGIC = 0x25609513, 0x668E33EF
CTX_ID = 1


def recv(c, n):
    b = b""
    while len(b) < n:
        part = c.recv(n - len(b))
        if not part:
            raise EOFError
        b += part
    return b


def reply(c, opt, typ, payload=b""):
    c.sendall(struct.pack(">QIII", REPMAGIC, opt, typ, len(payload)) + payload)


def chunk(c, handle, typ, payload, done=True):
    c.sendall(struct.pack(">IHHQI", CHUNKMAGIC, 1 if done else 0, typ, handle, len(payload)) + payload)


def negotiate(c):
    c.sendall(b"NBDMAGIC" + struct.pack(">QH", OPTMAGIC, 3))
    recv(c, 4)  # client flags
    while True:
        magic, opt, length = struct.unpack(">QII", recv(c, 16))
        body = recv(c, length)
        if opt == 8:  # STRUCTURED_REPLY
            reply(c, opt, 1)
        elif opt == 10:  # SET_META_CONTEXT: grant base:allocation
            name = b"base:allocation"
            if name in body:
                reply(c, opt, 4, struct.pack(">I", CTX_ID) + name)
            reply(c, opt, 1)
        elif opt in (6, 7):  # INFO, GO
            # HAS_FLAGS | READ_ONLY
            reply(c, opt, 3, struct.pack(">HQH", 0, len(data), 1 | 2))
            reply(c, opt, 1)
            if opt == 7:
                return
        elif opt == 2:  # ABORT
            raise EOFError
        else:
            reply(c, opt, (1 << 31) | 1)  # ERR_UNSUP


def serve(c):
    negotiate(c)
    while True:
        magic, flags, typ, handle, off, length = struct.unpack(">IHHQQI", recv(c, 28))
        if typ == 2:  # DISC
            return
        if typ == 0:  # READ
            if mode == "hangup":
                return
            if mode == "garbage":
                c.sendall(b"\xde\xad\xbe\xef" * 16)
                continue
            if mode == "error-read":
                chunk(c, handle, 32769, struct.pack(">IH", 5, 0))  # ERROR, EIO
                continue
            n = length // 2 if mode == "short-read" else length
            chunk(c, handle, 1, struct.pack(">Q", off) + data[off : off + n])
        elif typ == 7:  # BLOCK_STATUS
            if mode == "empty-extent":
                ext = struct.pack(">II", 0, 0)
            elif mode == "beyond-extent":
                ext = struct.pack(">II", 0xFFFFF000, 0)
            else:
                ext = struct.pack(">II", length, 0)
            chunk(c, handle, 5, struct.pack(">I", CTX_ID) + ext)
        else:
            chunk(c, handle, 32769, struct.pack(">IH", 22, 0))  # EINVAL


s = socket.socket(socket.AF_UNIX)
s.bind(sockpath)
s.listen(4)
while True:
    c, _ = s.accept()
    try:
        serve(c)
    except (EOFError, ConnectionError, struct.error):
        pass
    c.close()
