#!/usr/bin/python3
"""tests/migrate/bad-client.py PORT CASE: a misbehaving source talking to
`smove serve` on 127.0.0.1:PORT, framed as docs/protocol.md says. Prints what
the server answered ("closed", or "ERROR: reason") and exits 0 when the server
refused in the expected way, 1 otherwise. CASE:
  garbage    bytes that are no frame at all
  version    a HELLO speaking only protocol version 9
  huge       a frame header announcing a 3 GiB payload
  diskname   a proper HELLO, then a PREFLIGHT with the disk name "../evil"
  vmname     the same with the VM name "../../etc"
"""
import os, socket, struct, sys

POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def frame(ftype, payload, length=None):
    n = len(payload) if length is None else length
    head = struct.pack(">IHHII", 0x534D4F56, ftype, 0, n, crc32c(payload))
    return head + struct.pack(">I", crc32c(head)) + payload


def s(text):
    b = text.encode()
    return struct.pack(">I", len(b)) + b


def hello(vmin, vmax):
    return frame(1, struct.pack(">HHBBHQ", vmin, vmax, 1, 0, 0, 0) + os.urandom(16) +
                 bytes(16) + s("bad-client"))


def preflight(vm, disk):
    cfg = '{"name":"%s"}' % vm
    p = s(vm) + s(cfg) + struct.pack(">QI", 64 << 20, 1) + s("AuthenticAMD")
    p += struct.pack(">I", 0) + struct.pack(">I", 1)
    p += s(disk) + s("raw") + struct.pack(">QQI", 1 << 20, 0, 0)
    p += struct.pack(">QI", 0, 0)
    return frame(3, p)


def read_frame(sock):
    head = b""
    while len(head) < 20:
        chunk = sock.recv(20 - len(head))
        if not chunk:
            return None, None
        head += chunk
    _, ftype, _, n, _, _ = struct.unpack(">IHHIII", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            break
        body += chunk
    return ftype, body


def answer(sock):
    """Frames until ERROR or the end: "closed" or "ERROR: text"."""
    while True:
        try:
            ftype, body = read_frame(sock)
        except (ConnectionResetError, socket.timeout):
            return "closed"
        if ftype is None:
            return "closed"
        if ftype == 18:
            n = struct.unpack(">I", body[4:8])[0]
            return "ERROR: " + body[8:8 + n].decode(errors="replace")


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    if case == "garbage":
        sock.sendall(os.urandom(64) + b"GET / HTTP/1.0\r\n\r\n")
        want = ""
    elif case == "version":
        sock.sendall(hello(9, 9))
        want = "no common protocol version"
    elif case == "huge":
        sock.sendall(frame(1, b"", length=3 << 30))
        want = ""
    else:
        sock.sendall(hello(2, 2))
        ftype, _ = read_frame(sock)
        if ftype != 2:
            print("no HELLO_ACK:", ftype)
            return 1
        if case == "diskname":
            sock.sendall(preflight("vmx", "../evil"))
            want = "../evil"
        else:
            sock.sendall(preflight("../../etc", "disk.raw"))
            want = "../../etc"
    got = answer(sock)
    print(got)
    return 0 if got.startswith("ERROR") and want in got or not want else 1


sys.exit(main())
