#!/usr/bin/python3
"""tests/migrate/bad-dest.py PORTFILE CASE: a misbehaving destination (a fake
`smove serve`) for `smove move`, framed as docs/protocol.md says
(bad_wire.py). It listens on 127.0.0.1, writes its port to PORTFILE, takes
one migration and plays CASE; it prints what it saw and exits when the source
has gone. `bad-dest.py --list RUNTIME` prints each case for a source VM of
RUNTIME (memsync or qemu) with the exit status that `smove move` must end
with, a pattern (grep -E) its error must match, and which VM it is for
("disk": a VM with a disk, "mem": one without, whose migration reaches the
memory rounds, or the runtime's stream, and the switchover at once).
The fake speaks the highest version both sides know (3) and grants STREAM
when the source asks for it (a QEMU VM's memory goes as a stream), unless a
case says otherwise; it speaks in the clear (the source moves without TLS).
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bad_wire import *  # noqa: E402,F403


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.seen = []

    def recv(self):
        """The next frame that is not a PING (PINGs are answered)."""
        while True:
            ftype, flags, payload = read_frame(self.sock, check_max=4096)
            self.seen.append(ftype)
            if ftype != PING:
                return ftype, payload
            self.sock.sendall(frame(PONG, payload))

    def until(self, want):
        while True:
            ftype, payload = self.recv()
            if ftype == want:
                return payload
            if ftype == ERROR:
                raise SystemExit("the source sent ERROR: " + reason_text(payload))

    def send(self, data):
        self.sock.sendall(data)

    def hello(self, version=None, token=None, stream=True):
        """HELLO_ACK: version (default: the source's highest, at most 3) and
        the features the source asked for that the fake knows (STREAM from
        version 3, unless stream is False)."""
        p = self.until(HELLO)
        vmin, vmax, role, _, channel, want = struct.unpack(">HHBBHQ", p[:16])
        if version is None:
            version = min(vmax, 3)
        features = want & FEAT_STREAM if version >= 3 and stream else 0
        self.send(frame(HELLO_ACK, hello_ack(version, features, p[16:32], token)))

    def go(self, exports=()):
        self.hello()
        self.until(PREFLIGHT)
        self.send(frame(PREFLIGHT_REPLY, preflight_reply(1)))
        for i, (host, port, name) in enumerate(exports):
            self.send(frame(DISK_EXPORT, disk_export(i, host, port, name)))


def closed_port():
    """A loopback port that nobody listens on."""
    sk = socket.socket()
    sk.bind(("127.0.0.1", 0))
    port = sk.getsockname()[1]
    sk.close()
    return port


def garbage_server():
    """A loopback port where something that is not NBD answers."""
    sk = socket.socket()
    sk.bind(("127.0.0.1", 0))
    sk.listen(8)

    def answer_garbage():
        while True:
            c, _ = sk.accept()
            c.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + os.urandom(256))
            c.close()
    threading.Thread(target=answer_garbage, daemon=True).start()
    return sk.getsockname()[1]


def export_then_error(p):
    """A real export (nbdkit's memory plugin, TLS with the key sent), then,
    once the source mirrors to it, ERROR and the export killed, in that
    order, as serve does when it fails and discards its copy: the source must
    report the ERROR's reason, not the lost NBD connection."""
    import subprocess
    d = os.path.dirname(os.path.abspath(sys.argv[1]))
    key = os.urandom(32)
    with open(os.path.join(d, "fake-export.psk"), "w") as f:
        f.write("bad-peer:" + key.hex() + "\n")
    port = closed_port()
    nbd = subprocess.Popen(["nbdkit", "--foreground", "--exit-with-parent", "-i", "127.0.0.1",
                            "-p", str(port), "--tls=require",
                            "--tls-psk=" + os.path.join(d, "fake-export.psk"), "memory", "64M"])
    for _ in range(200):  # until nbdkit listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    p.go([])
    p.send(frame(DISK_EXPORT, disk_export(0, "127.0.0.1", port, key=key)))

    def drain():  # what the source sends meanwhile (a QEMU VM's files), unread
        try:
            while p.sock.recv(1 << 20):
                pass
        except OSError:
            pass
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    time.sleep(1.5)  # the source mirrors
    p.send(frame(ERROR, reason(28, "the destination's disk is full")))
    time.sleep(0.05)
    nbd.kill()
    reader.join(30)


def memory_then(action):
    """A go without disks; the first round's ROUND_END (or, from a runtime
    with its own stream, its first STREAM frame); then action."""
    def run(p):
        p.go()
        while p.recv()[0] not in (ROUND_END, STREAM):
            pass
        action(p)
    return run


def switchover_then(action):
    """A go without disks, every round, the VM's state; at STATE_END, action."""
    def run(p):
        p.go()
        p.until(STATE_END)
        action(p)
    return run


def error(p):
    p.send(frame(ERROR, reason(5, "the destination's disk is on fire")))


def close(p):
    p.sock.close()


def garbage(p):
    p.send(os.urandom(100))


def huge(p):
    p.send(header(PING, b"", length=3 << 30))


def stop_reading(p):
    time.sleep(120)  # the source's sends block until its frame timeout


def silent_hello(p):
    p.until(HELLO)
    time.sleep(120)


def ack_then(data):
    def run(p):
        p.hello()
        p.send(data)
    return run


def go_then(data=b"", exports=(), shut=False):
    def run(p):
        p.go(exports() if callable(exports) else exports)
        p.send(data)
        if shut:
            p.sock.close()
    return run


def preflight_then(data, shut=False):
    def run(p):
        p.hello()
        p.until(PREFLIGHT)
        p.send(data)
        if shut:
            p.sock.close()
    return run


FAILED, ROLLED_BACK = 1, 5
ERR = "reported an error: the destination's disk is on fire"
# name: (run, exit status, error pattern, VM)
CASES = {
    "hello-garbage": (ack_then(os.urandom(64)), FAILED, "bad frame magic", "disk"),
    "hello-version": (lambda p: p.hello(version=9), FAILED, "chose protocol version 9", "disk"),
    "hello-huge": (ack_then(header(PREFLIGHT_REPLY, b"", length=3 << 30)), FAILED,
                   "larger than the limit", "disk"),
    "hello-silent": (silent_hello, FAILED, "timed out", "disk"),
    "preflight-error": (preflight_then(frame(ERROR, reason(5, "the destination's disk is on "
                                                               "fire"))), FAILED, ERR, "disk"),
    "preflight-close": (preflight_then(b"", shut=True), FAILED, "connection closed", "disk"),
    "preflight-silent": (preflight_then(b""), FAILED, "sent nothing for 4.0 s", "disk"),
    "preflight-reply-bad": (preflight_then(frame(PREFLIGHT_REPLY, preflight_reply(2))), FAILED,
                            "go is 2", "disk"),
    "preflight-export": (preflight_then(frame(DISK_EXPORT, disk_export(0, "127.0.0.1", 1))),
                         FAILED, "DISK_EXPORT, out of order", "disk"),
    "go-close": (go_then(shut=True), ROLLED_BACK, "connection closed", "disk"),
    "go-error": (go_then(frame(ERROR, reason(5, "the destination's disk is on fire"))),
                 ROLLED_BACK, ERR, "disk"),
    "go-huge": (go_then(header(DISK_EXPORT, b"", length=3 << 30)), ROLLED_BACK,
                "larger than the limit", "disk"),
    "go-garbage": (go_then(os.urandom(64)), ROLLED_BACK, "bad frame magic", "disk"),
    "go-export-index": (go_then(frame(DISK_EXPORT, disk_export(7, "127.0.0.1", 1))), ROLLED_BACK,
                        "unexpected DISK_EXPORT", "disk"),
    "go-export-closed": (go_then(exports=lambda: [("127.0.0.1", closed_port(), "")]),
                         ROLLED_BACK, "refused|connect", "disk"),
    "go-export-garbage": (go_then(exports=lambda: [("127.0.0.1", garbage_server(), "")]),
                          ROLLED_BACK, "NBD magic|handshake", "disk"),
    "go-export-uri": (go_then(exports=lambda: [("127.0.0.1", closed_port(),
                                                "x?tls-certificates=/nonexistent-certs")]),
                      ROLLED_BACK, "does not take plain", "disk"),
    "go-export-host": (go_then(exports=lambda: [("127.0.0.1/x?socket=/tmp/s", closed_port(),
                                                 "")]),
                       ROLLED_BACK, "not a host name", "disk"),
    # The disks go only over TLS, to the host the source authenticated.
    "go-export-socket": (go_then(frame(DISK_EXPORT, disk_export(0, "", 0,
                                                                socket="/tmp/smove-evil.sock"))),
                         ROLLED_BACK, r"^the destination named a Unix socket \(/tmp/smove-evil"
                         r"\.sock\) for disk 0: refused, disks go only over TLS to the "
                         r"destination itself$", "disk"),
    "go-export-notls": (go_then(frame(DISK_EXPORT, disk_export(0, "127.0.0.1", closed_port(),
                                                               tls=False))),
                        ROLLED_BACK, r"^the destination offered disk 0 without TLS: refused$",
                        "disk"),
    "go-ready": (go_then(frame(SWITCHOVER_READY)), ROLLED_BACK, "SWITCHOVER_READY", "disk"),
    "storage-error": (export_then_error, ROLLED_BACK,
                      "^the destination reported an error: the destination's disk is full$",
                      "disk"),
    "memory-error": (memory_then(error), ROLLED_BACK, ERR, "mem"),
    "memory-close": (memory_then(close), ROLLED_BACK, "closed|reset|broken|Broken", "mem"),
    "memory-garbage": (memory_then(garbage), ROLLED_BACK, "bad frame magic", "mem"),
    "memory-huge": (memory_then(huge), ROLLED_BACK, "larger than the limit", "mem"),
    "memory-running": (memory_then(lambda p: p.send(frame(RUNNING, struct.pack(">IQ", 1, 1)))),
                       ROLLED_BACK, "RUNNING", "mem"),
    # The source times out in a send, or, when what is left after round 1
    # fits the sockets' buffers (a guest that dirtied little: a loaded
    # machine, deferred pages), waiting for SWITCHOVER_READY.
    "memory-stop-reading": (memory_then(stop_reading), ROLLED_BACK,
                            "timed out|sent nothing for", "mem"),
    "switchover-error": (switchover_then(error), ROLLED_BACK, ERR, "mem"),
    "switchover-close": (switchover_then(close), ROLLED_BACK, "closed|reset", "mem"),
    "switchover-resuming": (switchover_then(lambda p: p.send(frame(RESUMING))), ROLLED_BACK,
                            "RESUMING", "mem"),
}
# A QEMU VM's source needs protocol 3 and STREAM: an older destination is
# refused before the preflight.
QEMU_CASES = {
    "hello-v2": (lambda p: p.hello(version=2), FAILED,
                 r"^the destination speaks protocol 2 and cannot take a qemu VM \(it needs an "
                 r"smove that speaks protocol 3\)$", "disk"),
    "hello-nostream": (lambda p: p.hello(stream=False), FAILED,
                       r"^the destination cannot take a qemu VM: it does not grant STREAM "
                       r"\(no runtime there takes a migration stream\)$", "disk"),
}


def main():
    if sys.argv[1] == "--list":
        cases = dict(CASES)
        if sys.argv[2] == "qemu":
            cases.update(QEMU_CASES)
        for name, (_, status, pattern, vm) in cases.items():
            print("%s\t%d\t%s\t%s" % (name, status, pattern, vm))
        return 0
    CASES.update(QEMU_CASES)
    port_file, case = sys.argv[1], sys.argv[2]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    ls.settimeout(60)
    sock, _ = ls.accept()
    sock.settimeout(60)
    p = Peer(sock)
    try:
        CASES[case][0](p)
        while p.sock.fileno() >= 0:  # until the source goes
            p.recv()
    except (Closed, OSError, ValueError) as e:
        print("the source went:", e)
    print("frames seen:", " ".join(str(t) for t in p.seen))
    return 0


sys.exit(main())
