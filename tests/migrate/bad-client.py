#!/usr/bin/python3
"""tests/migrate/bad-client.py PORT CASE: a misbehaving source talking to
`smove serve` on 127.0.0.1:PORT, framed as docs/protocol.md says (bad_wire.py).
Prints what the server answered ("closed", or "ERROR: reason") and exits 0
when the server refused in the expected way, 1 otherwise.
`bad-client.py --list` prints each case with the pattern (grep -E) that serve's
log must show for it. The cases whose name starts with "go-" first get a real
go: HELLO, a valid PREFLIGHT (VM "bad-CASE", one raw disk) and the disk
exports, and misbehave from there; the destination must discard its copy.
SMOVE_TEST_FRAME_TIMEOUT_MS (serve's frame timeout) bounds the silent cases.
With SMOVE_TEST_RUNTIME=qemu the go is a QEMU VM's (protocol 3, STREAM, the
configuration and runtime_info in the JSON file BAD_CLIENT_QEMU: a running
VM's, without kernel or initrd) and the cases after it are the stream's
(`--list` then lists those instead of the pages' and smove's VM state's).
"""
import os
import socket
import struct
import json
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bad_wire import *  # noqa: E402,F403

TIMEOUT_S = int(os.environ.get("SMOVE_TEST_FRAME_TIMEOUT_MS", "30000")) / 1000


QEMU = os.environ.get("SMOVE_TEST_RUNTIME") == "qemu"


def negotiated(port, features=0, vmax=2):
    """A connection past HELLO/HELLO_ACK: (sock, session id, token)."""
    sock = connect(port)
    session = os.urandom(16)
    sock.sendall(frame(HELLO, hello(vmax=vmax, features=features, session=session)))
    ftype, _, p = read_frame(sock)
    if ftype != HELLO_ACK:
        raise SystemExit("no HELLO_ACK but type %d" % ftype)
    return sock, session, p[28:44]


def qemu_preflight(vm, ndisks, features, channels, mem=None):
    """A QEMU VM's PREFLIGHT that this host's serve answers go: a running
    VM's configuration (BAD_CLIENT_QEMU) renamed, its firmware booting
    nothing, ndisks raw disks of 1 MiB, its memory mem (or the VM's)."""
    base = json.load(open(os.environ["BAD_CLIENT_QEMU"]))
    c = dict(base["config"], name=vm, firmware="bios",
             disks=[{"path": "/src/%d" % i, "format": "raw", "size": 1 << 20}
                    for i in range(ndisks)])
    for k in ("kernel", "initrd", "cmdline", "control", "console"):
        c.pop(k, None)
    if mem:
        c["memory"] = mem
    return preflight(vm, [("d%d.raw" % i, "raw") for i in range(ndisks)], mem=c["memory"],
                     vcpus=c["cpus"], features=features, channels=channels,
                     config=json.dumps(c), runtime="qemu",
                     runtime_info=json.dumps(base["info"]))


def go(port, vm, features=0, channels=0, ndisks=1):
    """A migration past a go and its DISK_EXPORTs: (sock, session, token)."""
    if QEMU:
        features |= FEAT_STREAM
        sock, session, token = negotiated(port, features, vmax=3)
        sock.sendall(frame(PREFLIGHT, qemu_preflight(vm, ndisks, features, channels)))
    else:
        sock, session, token = negotiated(port, features)
        disks = [("d%d.raw" % i, "raw") for i in range(ndisks)]
        sock.sendall(frame(PREFLIGHT, preflight(vm, disks, features=features,
                                                channels=channels)))
    ftype, _, p = read_frame(sock)
    if ftype != PREFLIGHT_REPLY or p[0] != 1:
        raise SystemExit("no go: %d %r" % (ftype, p))
    for _ in range(ndisks):
        ftype, _, p = read_frame(sock)
        if ftype != DISK_EXPORT:
            raise SystemExit("no DISK_EXPORT but type %d" % ftype)
    return sock, session, token


def refused_preflight(vm, disks, config=None, **kw):
    def run(port):
        sock, _, _ = negotiated(port)
        sock.sendall(frame(PREFLIGHT, preflight(vm, disks, config=config, **kw)))
        return sock
    return run


def dry_run(port, vm, mem):
    """`--preflight NAME MEM`: a dry-run PREFLIGHT of a VM of MEM bytes (this
    runtime's, one raw disk of 1 MiB): "GO" or "NO-GO: reasons"."""
    features = FEAT_DRY_RUN
    if QEMU:
        features |= FEAT_STREAM
        sock, _, _ = negotiated(port, features, vmax=3)
        p = qemu_preflight(vm, 1, features, 0, mem)
    else:
        sock, _, _ = negotiated(port, features)
        p = preflight(vm, [("d0.raw", "raw")], mem=mem, features=features)
    sock.sendall(frame(PREFLIGHT, p))
    ftype, _, reply = read_frame(sock)
    if ftype == PREFLIGHT_REPLY and reply[:1] == b"\1":
        sock.sendall(frame(CANCEL, reason(125, "dry run")))
        return "GO"
    if ftype == PREFLIGHT_REPLY:
        n, off, reasons = struct.unpack(">I", reply[1:5])[0], 5, []
        for _ in range(n):
            r, off = str_at(reply, off)
            reasons.append(r)
        return "NO-GO: " + "; ".join(reasons)
    return "type %d" % ftype


def raw(data, close=False):
    def run(port):
        sock = connect(port)
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)
        return sock
    return run


def after_hello(data):
    def run(port):
        sock, _, _ = negotiated(port)
        sock.sendall(data)
        return sock
    return run


def after_go(*frames):
    def run(port):
        sock, _, _ = go(port, "bad-" + CASE)
        for f in frames:
            sock.sendall(f)
        return sock
    return run


def channel(token_ok, index=1, known=True):
    """A migration with one channel; a second connection joins it."""
    def run(port):
        main, session, token = go(port, "bad-" + CASE, FEAT_CHANNELS, channels=1)
        sock = connect(port)
        sock.sendall(frame(HELLO, hello(role=ROLE_CHANNEL, channel=index,
                                        features=FEAT_CHANNELS,
                                        session=session if known else os.urandom(16),
                                        token=token if token_ok else os.urandom(16))))
        KEEP.append(main)
        return sock
    return run


def silent(data):
    """Sends data, then nothing: serve must give up after its frame timeout."""
    def run(port):
        sock = connect(port, timeout=TIMEOUT_S + 20)
        sock.sendall(data)
        return sock
    return run


def vm_state(*sections):
    """A state blob framed as memsync/blob.c frames the VM's state (magic,
    version 1, type 3, length, CRC-32) around the given (tag, bytes)."""
    payload = b"".join(struct.pack("<II", tag, len(data)) + data for tag, data in sections)
    blob = b"SMVSTATE" + struct.pack("<IIQ", 1, 3, len(payload)) + payload
    return blob + struct.pack("<I", zlib.crc32(blob))


def send_state(*sections):
    """A go, round 1, then a well-framed VM state blob with these sections."""
    return after_go(frame(ROUND_END, round_end(1)),
                    frame(DEVICE_STATE, device_state("vm", vm_state(*sections))),
                    frame(STATE_END, state_end(0, 1)))


H = hello()
HF = frame(HELLO, H)
GARBAGE_STATE = b"SMVM" + os.urandom(4000)
# name: (run, what the answer must contain ("" = a close will do), serve's log)
CASES = {
    "garbage": (raw(os.urandom(64) + b"GET / HTTP/1.0\r\n\r\n"), "", "bad frame magic"),
    "version": (raw(frame(HELLO, hello(9, 9))), "no common protocol version",
                "no common protocol version"),
    "huge": (raw(header(HELLO, b"", length=3 << 30)), "larger than the limit",
             "HELLO frame of 3221225472 bytes is larger than the limit"),
    "header-close": (raw(HF[:20], close=True), "closed",
                     r"closed by peer in the middle of a frame \(0 of %d" % len(H)),
    "half-close": (raw(HF[:20 + len(H) // 2], close=True), "closed",
                   r"middle of a frame \(%d of %d" % (len(H) // 2, len(H))),
    "half-silent": (silent(HF[:20 + len(H) // 2]), "closed",
                    "a peer was refused: receive: timed out"),
    "silent": (silent(b""), "closed", "a peer was refused: receive: timed out"),
    "silent-after-hello": (silent(HF), "closed", "session [0-9a-f]+: receive: timed out"),
    "crc": (raw(frame(HELLO, H, crc=0x12345678)), "payload checksum mismatch",
            "HELLO frame of [0-9]+ bytes: payload checksum mismatch"),
    "header-crc": (raw(frame(HELLO, H, hcrc_xor=1)), "header checksum mismatch",
                   "frame header checksum mismatch"),
    "type": (raw(frame(99)), "unknown frame type 99", "unknown frame type 99"),
    "flags": (raw(frame(HELLO, H, flags=1)), "unknown flags", "HELLO frame with unknown flags"),
    "batch-first": (raw(frame(MEM_BATCH, mem_batch(1, [(0, 1, None)]))),
                    "MEM_BATCH, out of order in state start",
                    "MEM_BATCH, out of order in state start"),
    "resume-first": (raw(frame(RESUME)), "RESUME, out of order", "RESUME, out of order"),
    "hello-trailing": (raw(frame(HELLO, H + b"x")), "unexpected bytes after the last field",
                       "HELLO: 1 unexpected bytes"),
    "batch-early": (after_hello(frame(MEM_BATCH, mem_batch(1, [(0, 1, None)]))),
                    "out of order in state negotiated",
                    "session [0-9a-f]+: .*MEM_BATCH, out of order in state negotiated"),
    "go-resume": (after_go(frame(RESUME)), "RESUME, out of order in state storage",
                  "bad-go-resume: migration failed, copy discarded: .*RESUME, out of order"),
    "channel-unknown": (channel(token_ok=True, known=False),
                        "no migration with this session",
                        "channel 1 refused: no migration with this session"),
    "dotdot-disk": (refused_preflight("vmx", [("../evil", "raw")]), "../evil",
                    r'disk name "\.\./evil" is not a plain file name'),
    "absolute-disk": (refused_preflight("vmx", [("/tmp/evil", "raw")]), "/tmp/evil",
                      r'disk name "/tmp/evil" is not a plain file name'),
    "empty-disk": (refused_preflight("vmx", [("", "raw")]), "disk name",
                   r'disk name "" is not a plain file name'),
    "long-disk": (refused_preflight("vmx", [("d" * 300, "raw")]), "limit of 255",
                  "is 300 bytes long, more than the limit of 255"),
    "dup-disk": (refused_preflight("vmx", [("a.raw", "raw"), ("a.raw", "raw")]), "a.raw",
                 "a.raw"),
    "format-disk": (refused_preflight("vmx", [("a.qcow2", "qcow2")]), "qcow2", "qcow2"),
    "dotdot-vm": (refused_preflight("../../etc", [("disk.raw", "raw")]), "../../etc",
                  r'VM name "\.\./\.\./etc" is not a plain name'),
    "absolute-vm": (refused_preflight("/etc", [("disk.raw", "raw")]), "/etc",
                    r'VM name "/etc" is not a plain name'),
    "empty-vm": (refused_preflight("", [("disk.raw", "raw")]), "VM name",
                 r'VM name "" is not a plain name'),
    # Sizes no disk has: a no-go about the space (the sums saturate), not a crash.
    "absurd-disk": (refused_preflight("vmz", [("a.raw", "raw"), ("b.raw", "raw")],
                                      disk_size=(1 << 64) - 1, disk_allocated=(1 << 64) - 1),
                    "the disks hold 17179869184.0 GiB",
                    "  the disks hold 17179869184.0 GiB"),
    "config-vm": (refused_preflight("vmy", [("disk.raw", "raw")],
                                    config='{"name":"../y","guest":"g","memory":16777216}'),
                  "", "vmy: .*no-go"),
}
# After a go for smove's own VMM: pages, extra channels (a QEMU VM's stream
# has none) and its VM state.
MEMSYNC_CASES = {
    "go-channel-token": (channel(token_ok=False), "does not match",
                         "channel 1 of bad-go-channel-token refused: .*does not match"),
    "go-channel-index": (channel(token_ok=True, index=5), "channels 1..1",
                         "channel 5 of bad-go-channel-index refused: .*channels 1..1"),
    "go-gpa-end": (after_go(frame(MEM_BATCH, mem_batch(1, [(16 << 20, 0, bytes(PAGE))]))),
                   "outside guest memory",
                   "bad-go-gpa-end: migration failed.*gpa 0x1000000 is outside guest memory"),
    "go-gpa-far": (after_go(frame(MEM_BATCH, mem_batch(1, [(0, 1, None),
                                                           (0xFFFFFFFFFFFFF000, 1, None)]))),
                   "outside guest memory", "bad-go-gpa-far: .*outside guest memory"),
    "go-gpa-flags": (after_go(frame(MEM_BATCH, mem_batch(1, [(PAGE, 0x2, bytes(PAGE))]))),
                     "unknown page flags", "bad-go-gpa-flags: .*unknown page flags 0x2"),
    "go-batch-ndata": (after_go(frame(MEM_BATCH, mem_batch(1, [(0, 0, bytes(PAGE))])[:-PAGE])),
                       "page data", "bad-go-batch-ndata: .*page data"),
    "go-compressed": (after_go(frame(MEM_BATCH, mem_batch(1, [(0, 0, b"x" * 100)]), flags=1)),
                      "compress", "bad-go-compressed: .*compress"),
    "go-batch-future": (after_go(frame(MEM_BATCH, mem_batch(7, [(0, 1, None)]))),
                        "round 7 on the main connection before ROUND_END 1",
                        "bad-go-batch-future: .*round 7 on the main connection"),
    "go-round-count": (after_go(frame(MEM_BATCH, mem_batch(1, [(0, 1, None)])),
                                frame(ROUND_END, round_end(1, batches=(3,)))),
                       "counts 3 batches on the main connection, 1 came",
                       "bad-go-round-count: .*counts 3 batches on the main connection"),
    "go-round-skip": (after_go(frame(ROUND_END, round_end(3))), "ROUND_END 3 out of order",
                      "bad-go-round-skip: .*ROUND_END 3 out of order"),
    "go-batch-crc": (after_go(frame(MEM_BATCH, mem_batch(1, [(0, 0, b"\x5a" * PAGE)]),
                                    crc=1)),
                     "checksum mismatch", "bad-go-batch-crc: .*checksum mismatch"),
    "go-state-length": (after_go(frame(ROUND_END, round_end(1)),
                                 frame(DEVICE_STATE, device_state("vm", b"x" * 10, 1000))),
                        "truncated", "bad-go-state-length: .*DEVICE_STATE: truncated"),
    "go-state-device": (after_go(frame(ROUND_END, round_end(1)),
                                 frame(DEVICE_STATE, device_state("../../x", b"x"))),
                        "unknown device state", "bad-go-state-device: .*unknown device state"),
    "go-state-missing": (after_go(frame(ROUND_END, round_end(1)),
                                  frame(DEVICE_STATE, device_state("file:console", b"x\n")),
                                  frame(STATE_END, state_end(0, 1))),
                         "without the VM's state", "bad-go-state-missing: .*without the VM's state"),
    "go-state-garbage": (after_go(frame(ROUND_END, round_end(1)),
                                  frame(DEVICE_STATE, device_state("vm", GARBAGE_STATE)),
                                  frame(STATE_END, state_end(0, 1))),
                         "ERROR", "bad-go-state-garbage: migration failed, copy discarded"),
    "go-state-vcpus": (send_state((1, struct.pack("<I", 64))), "another vCPU count",
                       "bad-go-state-vcpus: .*saved with another vCPU count"),
    "go-state-vcpu": (send_state((1, struct.pack("<I", 1)), (3, struct.pack("<II", 1, 8) + bytes(8))), "ERROR",
                      "bad-go-state-vcpu: migration failed, copy discarded"),
    "go-state-section": (send_state((1, struct.pack("<I", 1)),
                                    (2, struct.pack("<II", 1, 0xFFFFFFF0) + b"x" * 16)),
                         "ERROR", "bad-go-state-section: migration failed, copy discarded"),
    "go-state-devices": (send_state((1, struct.pack("<I", 1)), (4, b"\xff" * 300)), "ERROR",
                         "bad-go-state-devices: migration failed, copy discarded"),
    "go-state-count": (after_go(frame(ROUND_END, round_end(1)),
                                frame(DEVICE_STATE, device_state("vm", GARBAGE_STATE)),
                                frame(STATE_END, state_end(0, 5))),
                       "STATE_END counts 5", "bad-go-state-count: .*STATE_END counts 5"),
}
# After a go for a QEMU VM: its stream, checked by proto (docs/protocol.md
# §7) and by QEMU.
QEMU_CASES = {
    "go-batch": (after_go(frame(MEM_BATCH, mem_batch(1, [(0, 1, None)]))),
                 "MEM_BATCH for a qemu VM", "bad-go-batch: .*MEM_BATCH for a qemu VM"),
    "go-round-end": (after_go(frame(ROUND_END, round_end(1))), "ROUND_END for a qemu VM",
                     "bad-go-round-end: .*ROUND_END for a qemu VM"),
    "go-stream-gap": (after_go(frame(STREAM, stream(10, b"x" * 10))),
                      "STREAM at offset 10, expected 0: a gap of 10 bytes",
                      "bad-go-stream-gap: .*STREAM at offset 10, expected 0: a gap of 10 bytes"),
    "go-stream-repeat": (after_go(frame(STREAM, stream(0, b"x" * 10)),
                                  frame(STREAM, stream(5, b"y" * 10))),
                         "STREAM at offset 5, expected 10: a repeat of 5 bytes",
                         "bad-go-stream-repeat: .*a repeat of 5 bytes"),
    "go-stream-after-end": (after_go(frame(STREAM, stream(0, b"x", flags=1)),
                                     frame(STREAM, stream(1, b"y"))),
                            "STREAM after the stream's END (1 bytes)",
                            "bad-go-stream-after-end: .*STREAM after the stream's END"),
    "go-stream-empty": (after_go(frame(STREAM, stream(0, b""))),
                        "an empty frame that is not the stream's END",
                        "bad-go-stream-empty: .*an empty frame that is not the stream's END"),
    "go-stream-flags": (after_go(frame(STREAM, stream(0, b"x", flags=2))), "unknown flags 0x2",
                        "bad-go-stream-flags: .*unknown flags 0x2"),
    "go-stream-crc": (after_go(frame(STREAM, stream(0, b"x" * 100), crc=1)),
                      "checksum mismatch", "bad-go-stream-crc: .*checksum mismatch"),
    "go-state-early": (after_go(frame(DEVICE_STATE, device_state("../../x", b"x"))),
                       "before the memory", "bad-go-state-early: .*'../../x' before the memory "
                       r"\(only files that never change come then\)"),
    "go-state-device": (after_go(frame(STREAM, stream(0, b"x", flags=1)),
                                 frame(DEVICE_STATE, device_state("../../x", b"x"))),
                        "unknown device state", "bad-go-state-device: .*unknown device state"),
    "go-stream-open": (after_go(frame(STREAM, stream(0, b"x" * 100)),
                                frame(STATE_END, state_end(0, 0))),
                       "STATE_END before the STREAM's END (100 bytes received)",
                       "bad-go-stream-open: .*STATE_END before the STREAM's END"),
    # QEMU reads a stream that is not its own: the VM process fails, the
    # copy is discarded.
    "go-stream-garbage": (after_go(frame(STREAM, stream(0, os.urandom(4096), flags=1)),
                                   frame(STATE_END, state_end(0, 0))),
                          "ERROR", "bad-go-stream-garbage: migration failed, copy discarded"),
}
CASES.update(QEMU_CASES if QEMU else MEMSYNC_CASES)
KEEP = []


def main():
    global CASE
    if sys.argv[1] == "--list":
        for name, (_, _, log) in CASES.items():
            print("%s\t%s" % (name, log))
        return 0
    if sys.argv[2] == "--preflight":
        print(dry_run(int(sys.argv[1]), sys.argv[3], int(sys.argv[4])))
        return 0
    port, CASE = int(sys.argv[1]), sys.argv[2]
    run, want, _ = CASES[CASE]
    t0 = time.monotonic()
    sock = run(port)
    got = answer(sock)
    took = time.monotonic() - t0
    print(got, "(after %.1f s)" % took)
    if "silent" in CASE and not TIMEOUT_S * 0.8 <= took <= TIMEOUT_S + 10:
        print("the silent peer was not dropped after serve's frame timeout (%.1f s)" % TIMEOUT_S)
        return 1
    if want == "closed":
        return 0 if got == "closed" else 1
    return 0 if want in got else 1


sys.exit(main())
