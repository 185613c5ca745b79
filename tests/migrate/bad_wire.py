"""tests/migrate/bad_wire.py: smove's migration protocol written from
docs/protocol.md alone (not from proto/), for the bad-peer tests
(bad-client.py plays a hostile source, bad-dest.py a hostile destination).
Encoding real messages from the document also checks that it is accurate."""
import os
import socket
import struct

MAGIC = 0x534D4F56
(HELLO, HELLO_ACK, PREFLIGHT, PREFLIGHT_REPLY, DISK_EXPORT, MEM_BATCH, ROUND_END,
 VCPU_STATE, DEVICE_STATE, STATE_END, SWITCHOVER_READY, RESUME, RESUMING, RUNNING,
 COMMIT, DONE, CANCEL, ERROR, PING, PONG, RESOLVE, RESOLVE_REPLY, STREAM) = range(1, 24)
ROLE_MIGRATE, ROLE_CHANNEL, ROLE_RESOLVE = 1, 2, 3
FEAT_COMPRESS, FEAT_CHANNELS, FEAT_DRY_RUN, FEAT_STREAM = 1, 2, 4, 8
PAGE = 4096

_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def header(ftype, payload, flags=0, length=None, crc=None, hcrc_xor=0):
    """The 20-byte frame header; length/crc/hcrc_xor lie when given."""
    n = len(payload) if length is None else length
    c = crc32c(payload) if crc is None else crc
    head = struct.pack(">IHHII", MAGIC, ftype, flags, n, c)
    return head + struct.pack(">I", crc32c(head) ^ hcrc_xor)


def frame(ftype, payload=b"", **kw):
    return header(ftype, payload, **kw) + payload


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">I", len(b)) + b


# ---- messages (version 2) -------------------------------------------------------

def hello(vmin=2, vmax=2, role=ROLE_MIGRATE, channel=0, features=0, session=None,
          token=bytes(16)):
    return struct.pack(">HHBBHQ", vmin, vmax, role, 0, channel, features) + \
        (session or os.urandom(16)) + token + s("bad-peer")


def hello_ack(version, features, session, token=None):
    return struct.pack(">HHQ", version, 0, features) + session + \
        (token or os.urandom(16)) + s("bad-peer")


def preflight(vm, disks=(("d.raw", "raw"),), mem=16 << 20, vcpus=1, vendor="",
              features=0, channels=0, config=None, runtime=None, runtime_info="",
              disk_size=1 << 20, disk_allocated=0):
    """A PREFLIGHT that a destination with KVM answers go (unless the names
    are bad): no CPUID entries, raw disks of 1 MiB (disk_size, of which
    disk_allocated allocated). With runtime (version 3), the runtime's name
    and runtime_info follow."""
    if config is None:
        config = '{"name":"%s","guest":"/nonexistent/guest.elf","memory":%d,' \
                 '"cpus":%d,"disks":[%s]}' % (
                     vm, mem, vcpus, ",".join('{"path":"/src/%d","format":"raw"}' % i
                                              for i in range(len(disks))))
    p = s(vm) + s(config) + struct.pack(">QI", mem, vcpus) + s(vendor)
    p += struct.pack(">I", 0) + struct.pack(">I", len(disks))
    for name, fmt in disks:
        p += s(name) + s(fmt) + struct.pack(">QQI", disk_size, disk_allocated, 0)
    p += struct.pack(">QI", features, channels)
    if runtime is not None:
        p += s(runtime) + s(runtime_info)
    return p


def stream(offset, data, flags=0):
    """A STREAM payload (version 3): flags 0x1 END."""
    return struct.pack(">QI", offset, flags) + data


def preflight_reply(go, reasons=()):
    return struct.pack(">BI", go, len(reasons)) + b"".join(s(r) for r in reasons)


def disk_export(disk, host, port, name="", key=None, socket="", tls=True):
    """An export at host:port or (host "", port 0) a Unix socket path; without
    tls, no identity and no key."""
    key = (key or os.urandom(32)) if tls else b""
    return struct.pack(">I", disk) + s(host) + struct.pack(">H", port) + s(socket) + s(name) + \
        struct.pack(">B", 1 if tls else 0) + s("bad-peer" if tls else "") + \
        struct.pack(">I", len(key)) + key


def mem_batch(round_, pages, channel=0):
    """pages: [(gpa, flags, data or None)]: flags 0x1 ZERO carries no data."""
    data = [d for _, f, d in pages if not f & 1]
    p = struct.pack(">IHHII", round_, channel, 0, len(pages), len(data))
    p += b"".join(struct.pack(">Q", gpa | flags) for gpa, flags, _ in pages)
    return p + b"".join(data)


def round_end(round_, pages=0, zero=0, batches=(0,), flags=0):
    return struct.pack(">IIQQQQQH", round_, flags, pages, zero, pages * PAGE, 0, 1000,
                       len(batches)) + b"".join(struct.pack(">I", b) for b in batches)


def device_state(name, blob, length=None):
    return s(name) + struct.pack(">I", len(blob) if length is None else length) + blob


def state_end(vcpus, devices):
    return struct.pack(">II", vcpus, devices)


def reason(code, text):
    return struct.pack(">I", code) + s(text)


# ---- reading -----------------------------------------------------------------------

class Closed(Exception):
    pass


def recv_exact(sock, n):
    b = bytearray()  # not bytes: += would copy it all for each chunk
    while len(b) < n:
        try:
            chunk = sock.recv(min(n - len(b), 1 << 20))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("closed after %d of %d bytes" % (len(b), n))
        b += chunk
    return bytes(b)


def read_frame(sock, check_max=1 << 20):
    """(type, flags, payload) of one well-formed frame; raises Closed at the
    end of the stream, ValueError on a malformed frame. The payload CRC is
    checked up to check_max bytes (this CRC-32C in Python is slow)."""
    head = recv_exact(sock, 20)
    magic, ftype, flags, n, crc, hcrc = struct.unpack(">IHHIII", head)
    if magic != MAGIC or crc32c(head[:16]) != hcrc:
        raise ValueError("bad frame header %r" % head)
    payload = recv_exact(sock, n)
    if n <= check_max and crc32c(payload) != crc:
        raise ValueError("bad payload CRC in a frame of type %d" % ftype)
    return ftype, flags, payload


def str_at(payload, off):
    n = struct.unpack(">I", payload[off:off + 4])[0]
    return payload[off + 4:off + 4 + n].decode(errors="replace"), off + 4 + n


def reason_text(payload):
    return str_at(payload, 4)[0]


def answer(sock):
    """What the peer says until it ERRORs or closes: "ERROR: text",
    "NO-GO: reasons" or "closed" (PINGs are answered, other frames skipped)."""
    while True:
        try:
            ftype, _, payload = read_frame(sock)
        except (Closed, socket.timeout):
            return "closed"
        if ftype == ERROR:
            return "ERROR: " + reason_text(payload)
        if ftype == PREFLIGHT_REPLY and payload[:1] == b"\0":
            n, off, reasons = struct.unpack(">I", payload[1:5])[0], 5, []
            for _ in range(n):
                r, off = str_at(payload, off)
                reasons.append(r)
            return "NO-GO: " + "; ".join(reasons)
        if ftype == PING:
            sock.sendall(frame(PONG, payload))


def connect(port, timeout=20):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)
