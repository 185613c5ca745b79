#!/usr/bin/python3
# tests/qemu/hostile-nbd-client.py SOCKET SIZE RAW: an NBD client that breaks
# the protocol in every way it can against smove's NBD server (nbd-serve with
# exports d0, read-write, of SIZE bytes holding what the file RAW holds, and
# d1 read-only of the same size). Each case checks the server's answer: an
# error reply with the NBD error the specification names and the connection
# still usable, or the connection closed, never wrong data. Prints one line
# per case and exits 1 on the first wrong answer.
import os, socket, struct, sys, time

path, size, raw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(raw, "rb").read(1 << 20)
NBDMAGIC, OPTMAGIC, REPMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQMAGIC, REPLYMAGIC = 0x25609513, 0x67446698
ACK, SERVER, INFO = 1, 2, 3
ERR_UNSUP, ERR_INVALID, ERR_UNKNOWN = 2**31 + 1, 2**31 + 3, 2**31 + 6
EPERM, EINVAL, ENOSPC, ENOTSUP = 1, 22, 28, 95
READ, WRITE, DISC, FLUSH, TRIM, CACHE, ZEROES, BLOCK_STATUS = 0, 1, 2, 3, 4, 5, 6, 7
FUA, NO_HOLE, DF, FAST_ZERO = 1, 2, 4, 16


def die(msg):
    print("FAIL:", msg)
    sys.exit(1)


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: a full backlog waits for the acceptor
    s.settimeout(20)
    return s


def recv(s, n):
    b = b""
    while len(b) < n:
        part = s.recv(n - len(b))
        if not part:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += part
    return b


def closed(s):
    """True if the server closes the connection (reads EOF) within 20 s."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def greet(s, flags=3):
    magic, opt, hflags = struct.unpack(">QQH", recv(s, 18))
    if magic != NBDMAGIC or opt != OPTMAGIC or hflags != 3:
        die("bad greeting")
    s.sendall(struct.pack(">I", flags))


def option(s, opt, payload=b""):
    s.sendall(struct.pack(">QII", OPTMAGIC, opt, len(payload)) + payload)


def opt_reply(s):
    magic, opt, typ, length = struct.unpack(">QIII", recv(s, 20))
    if magic != REPMAGIC:
        die("bad option reply magic %#x" % magic)
    return opt, typ, recv(s, length)


def go_payload(name=b"d0", infos=(3,)):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def go(s, name=b"d0"):
    option(s, 7, go_payload(name))
    while True:
        opt, typ, body = opt_reply(s)
        if typ == ACK:
            return
        if typ != INFO:
            die("GO %r answered %#x %r" % (name, typ, body))


def request(s, typ, off, length, flags=0, cookie=7, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQMAGIC, flags, typ, cookie, off, length) + payload)


def reply(s, cookie=7, length=0):
    magic, err, c = struct.unpack(">IIQ", recv(s, 16))
    if magic != REPLYMAGIC or c != cookie:
        die("bad reply: magic %#x cookie %d (wanted %d)" % (magic, c, cookie))
    return err, (recv(s, length) if err == 0 and length else b"")


def expect_err(s, want, what, typ, off, length, flags=0, payload=b""):
    request(s, typ, off, length, flags, payload=payload)
    err, _ = reply(s)
    if err != want:
        die("%s: error %d, expected %d" % (what, err, want))
    alive(s, what)
    print("ok:", what, "-> error", err)


def alive(s, what):
    request(s, READ, 4096, 4096, cookie=99)
    err, body = reply(s, 99, 4096)
    if err or body != data[4096:8192]:
        die("%s: the connection is not usable afterwards" % what)


def expect_close(what, fn):
    s = connect()
    fn(s)
    if not closed(s):
        die("%s: the server did not close the connection" % what)
    s.close()
    print("ok:", what, "-> closed")


def transmission():
    s = connect()
    greet(s)
    go(s)
    return s


# ---- the handshake ------------------------------------------------------------
expect_close("client without fixed newstyle", lambda s: greet(s, 0))
expect_close("unknown client flags", lambda s: greet(s, 0x81))
expect_close("option with bad magic", lambda s: (greet(s), s.sendall(struct.pack(">QII", 1, 7, 0))))
expect_close("option of 4 GiB", lambda s: (greet(s), s.sendall(struct.pack(">QII", OPTMAGIC, 42, 0xFFFFFFFF))))
expect_close("export name that does not exist", lambda s: (greet(s), option(s, 1, b"nope")))
expect_close("hang up inside an option", lambda s: (greet(s), s.sendall(struct.pack(">QII", OPTMAGIC, 7, 100) + b"x"), s.shutdown(socket.SHUT_WR)))

s = connect()
greet(s)
for opt, payload, want, what in [
    (42, b"0123456789", ERR_UNSUP, "unknown option"),
    (8, b"", ERR_UNSUP, "structured replies"),
    (5, b"", ERR_UNSUP, "STARTTLS"),
    (10, b"\0" * 8, ERR_UNSUP, "set meta context"),
    (7, struct.pack(">I", 1000) + b"d0\0\0", ERR_INVALID, "GO with a name longer than its option"),
    (7, go_payload(b"d0", (3, 0))[:-1], ERR_INVALID, "GO with a truncated request list"),
    (7, go_payload(b"d\0"), ERR_INVALID, "GO with a NUL in the name"),
    (7, go_payload(b"nope"), ERR_UNKNOWN, "GO for an unknown export"),
    (6, go_payload(b"x" * 5000), ERR_INVALID, "INFO with a name over 4096 bytes"),
    (3, b"junk", ERR_INVALID, "LIST with data"),
]:
    option(s, opt, payload)
    o, typ, body = opt_reply(s)
    if o != opt or typ != want:
        die("%s: reply %#x to option %d, expected %#x" % (what, typ, o, want))
    print("ok:", what, "->", hex(typ), body.decode(errors="replace"))
option(s, 6, go_payload(b"d1"))
infos = {}
while True:
    o, typ, body = opt_reply(s)
    if typ == ACK:
        break
    infos[struct.unpack(">H", body[:2])[0]] = body
exp = infos.get(0)
if not exp or struct.unpack(">QH", exp[2:])[0] != size or not struct.unpack(">QH", exp[2:])[1] & 2:
    die("INFO d1: no export info, wrong size or not read-only: %r" % infos)
option(s, 3)
names = []
while True:
    o, typ, body = opt_reply(s)
    if typ == ACK:
        break
    names.append(body[4:])
if names != [b"d0", b"d1"]:
    die("LIST: %r" % names)
print("ok: INFO and LIST after errors")
go(s)
alive(s, "GO after errors")
s.close()

s = connect()
greet(s)
option(s, 2)
o, typ, body = opt_reply(s)
if typ != ACK or not closed(s):
    die("ABORT: no ACK or not closed")
print("ok: ABORT -> ACK, closed")

s = connect()
greet(s)
n = 0
try:
    for n in range(300):
        option(s, 42)
        opt_reply(s)
    die("300 options before transmission were all answered")
except (EOFError, ConnectionResetError, BrokenPipeError):
    print("ok: closed after", n, "options")

# ---- transmission ------------------------------------------------------------
s = transmission()
expect_err(s, EINVAL, "read past the end", READ, size - 4096, 8192)
expect_err(s, EINVAL, "read at offset 2^64-512", READ, 2**64 - 512, 1024)
expect_err(s, EINVAL, "read of 0 bytes", READ, 0, 0)
expect_err(s, EINVAL, "read of 4 GiB - 1", READ, 0, 0xFFFFFFFF)
expect_err(s, EINVAL, "read of 32 MiB + 1", READ, 0, (32 << 20) + 1)
expect_err(s, EINVAL, "read with FUA", READ, 0, 512, FUA)
expect_err(s, EINVAL, "read with DF (not advertised)", READ, 0, 512, DF)
expect_err(s, ENOSPC, "write past the end", WRITE, size - 512, 1024, payload=b"w" * 1024)
expect_err(s, EINVAL, "write with unknown flags", WRITE, 0, 512, 0x8000, payload=b"w" * 512)
expect_err(s, EINVAL, "unknown command 99", 99, 0, 512)
expect_err(s, EINVAL, "CACHE (not advertised)", CACHE, 0, 512)
expect_err(s, EINVAL, "BLOCK_STATUS (no structured replies)", BLOCK_STATUS, 0, 512)
expect_err(s, EINVAL, "flush with a length", FLUSH, 0, 512)
expect_err(s, ENOSPC, "write zeroes past the end", ZEROES, size, 512)
expect_err(s, ENOTSUP, "fast zero", ZEROES, 0, 512, FAST_ZERO)
expect_err(s, EINVAL, "trim past the end", TRIM, size - 512, 4096)
expect_err(s, EINVAL, "trim with NO_HOLE", TRIM, 0, 512, NO_HOLE)
# A write zeroes far larger than a payload is legal and costs no memory.
request(s, ZEROES, size - (1 << 20), 1 << 20, NO_HOLE)
if reply(s)[0] != 0:
    die("write zeroes of the last MiB failed")
alive(s, "big write zeroes")
print("ok: write zeroes of 1 MiB (no payload)")

# Pipelined: 64 reads sent before any reply is read; the server's queue is
# bounded, so it stops reading and this client must read to go on.
for i in range(64):
    request(s, READ, (i % 16) * 65536, 65536, cookie=1000 + i)
got = {}
for i in range(64):
    magic, err, c = struct.unpack(">IIQ", recv(s, 16))
    if magic != REPLYMAGIC or err or not 1000 <= c < 1064 or c in got:
        die("pipelined reads: bad reply (cookie %d, error %d)" % (c, err))
    got[c] = recv(s, 65536)
for c, body in got.items():
    off = ((c - 1000) % 16) * 65536
    if body != data[off:off + 65536]:
        die("pipelined read %d: wrong data" % c)
print("ok: 64 pipelined reads, every one answered once with the right data")

request(s, DISC, 0, 0)
if not closed(s):
    die("DISC: not closed")
print("ok: DISC -> closed")

expect_close("request with bad magic", lambda s: (greet(s), go(s), s.sendall(b"\xde\xad\xbe\xef" + b"\0" * 24)))
expect_close("write of 4 GiB - 1", lambda s: (greet(s), go(s), request(s, WRITE, 0, 0xFFFFFFFF)))
expect_close("write whose payload never comes", lambda s: (greet(s), go(s), request(s, WRITE, 0, 1 << 20, payload=b"x" * 100), s.shutdown(socket.SHUT_WR)))
expect_close("half a request header", lambda s: (greet(s), go(s), s.sendall(b"\x25\x60\x95\x13\0\0"), s.shutdown(socket.SHUT_WR)))

# The read-only export.
s = connect()
greet(s)
go(s, b"d1")
expect_err(s, EPERM, "write to a read-only export", WRITE, 0, 512, payload=b"w" * 512)
expect_err(s, EPERM, "trim on a read-only export", TRIM, 0, 512)
expect_err(s, EPERM, "write zeroes on a read-only export", ZEROES, 0, 512)
request(s, FLUSH, 0, 0)
if reply(s)[0]:
    die("flush of a read-only export failed")
s.close()

# More connections than the server takes: the surplus is closed at once, the
# others keep working.
conns = []
for i in range(20):
    c = connect()
    conns.append(c)
time.sleep(0.5)
alive_count = 0
for c in conns:
    try:
        greet(c)
        go(c)
        alive(c, "connection flood")
        alive_count += 1
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
for c in conns:
    c.close()
if not 1 <= alive_count <= 16:
    die("%d of 20 connections served (the limit is 16)" % alive_count)
print("ok: %d of 20 connections served, the rest closed" % alive_count)

# A client that connects and says nothing does not hold up the others. (The
# flood's connections end asynchronously: until they have, a new one may be
# refused as the 17th.)
idle = connect()
for attempt in range(100):
    try:
        s = transmission()
        break
    except (EOFError, ConnectionResetError, BrokenPipeError):
        time.sleep(0.1)
else:
    die("no connection served after the flood ended")
alive(s, "beside an idle client")
s.close()
idle.close()
print("ok: an idle client holds nobody up")
print("PASS")
