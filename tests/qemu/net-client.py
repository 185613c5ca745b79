#!/usr/bin/python3
# tests/qemu/net-client.py: the third host of tests/qemu/test-migrate-net.sh,
# run in the client's network namespace.
#   net-client.py stream HOST PORT OUT STOP
#       connects to the Linux test guest's counter service (smove.netport=),
#       writes "connected" to OUT, then reads its lines ("N NS": N counts from
#       1) until the file STOP exists, and writes one JSON line to OUT: how
#       many lines, the first count out of sequence (none if every count came
#       once and in order), how the connection ended (open, closed, reset),
#       the longest gap between two lines and when it was, and every line's
#       arrival time (host CLOCK_REALTIME) for the caller to cut in periods.
#   net-client.py capture MAC OUT STOP
#       records every RARP (0x8035) and ARP (0x0806) frame whose source MAC is
#       MAC, on any interface of this namespace, until STOP exists: one JSON
#       line per frame (time, interface, kind) in OUT.
import json
import os
import select
import socket
import struct
import sys
import time


def stream(host, port, out, stop):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.settimeout(None)
    with open(out, "a") as f:
        f.write("connected\n")
    buf, times, last, bad, end = b"", [], 0, None, "open"
    while not os.path.exists(stop):
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            end = "reset"
            break
        if not chunk:
            end = "closed"
            break
        now = time.time()
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            n = int(line.split()[0])
            if n != last + 1 and bad is None:
                bad = {"after": last, "got": n}
            last = n
            times.append(now)
    s.close()
    gap, at = 0.0, None
    for a, b in zip(times, times[1:]):
        if b - a > gap:
            gap, at = b - a, a
    with open(out, "a") as f:
        f.write(json.dumps({"lines": len(times), "last": last, "out_of_sequence": bad,
                            "end": end, "max_gap_ms": gap * 1e3, "max_gap_at": at,
                            "times": times}) + "\n")


def capture(mac, out, stop):
    want = bytes.fromhex(mac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    with open(out, "a") as f:
        f.write(json.dumps({"capturing": True}) + "\n")
        f.flush()
        while not os.path.exists(stop):
            r, _, _ = select.select([s], [], [], 0.1)
            if not r:
                continue
            frame, addr = s.recvfrom(2048)
            if len(frame) < 14 or frame[6:12] != want:
                continue
            # (ifname, proto, pkttype, ...): PACKET_OUTGOING (4) is this host's own
            if addr[2] == 4:
                continue
            kind = {0x8035: "rarp", 0x0806: "arp"}.get(struct.unpack("!H", frame[12:14])[0])
            if kind:
                f.write(json.dumps({"t": time.time(), "if": addr[0], "kind": kind}) + "\n")
                f.flush()


if __name__ == "__main__":
    {"stream": stream, "capture": capture}[sys.argv[1]](*sys.argv[2:])
