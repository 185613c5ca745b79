#!/usr/bin/python3
"""fake-vm.py RUNDIR NAME REQUESTS: a stand-in for a VM's control socket (no
KVM needed) that `smove move` drives: it registers NAME in RUNDIR as
`smove run` does (NAME.json, held with flock), answers `status`, and for
`migrate` streams the events of a slow migration (docs/control-socket.md)
until it is cancelled (`migrate-cancel`, then a rolled-back result) or, with
"to" ending in ":1", to its end (a done result). Every request line is
appended to REQUESTS. It runs until killed."""
import fcntl
import json
import os
import socket
import sys
import threading
import time

rundir, name, requests = sys.argv[1:4]
os.makedirs(rundir, exist_ok=True)
sock_path = os.path.join(rundir, name + ".sock")
reg = open(os.path.join(rundir, name + ".json"), "w")
fcntl.flock(reg, fcntl.LOCK_EX)
reg.write(json.dumps({"name": name, "pid": os.getpid(), "control": sock_path}))
reg.flush()
cancelled = threading.Event()
t0 = time.monotonic()


def ev(**kw):
    d = {"schema": 1, "t": round(time.monotonic() - t0, 3)}
    d.update(kw)
    return (json.dumps(d, separators=(",", ":")) + "\n").encode()


def migrate(conn, req):
    quick = req.get("to", "").endswith(":1")
    cancelled.clear()
    conn.sendall((json.dumps({"ok": True, "schema": 1, "event": "started", "name": name}) + "\n").encode())
    conn.sendall(ev(event="phase", phase="connect"))
    conn.sendall(ev(event="phase", phase="preflight"))
    conn.sendall(ev(event="phase", phase="storage", detail="1 disk, 64.0 MiB"))
    total = 64 << 20
    steps = 4 if quick else 600
    for i in range(steps + 1):
        if cancelled.is_set():
            conn.sendall(ev(event="phase", phase="rollback", detail="cancelled"))
            conn.sendall(ev(event="result", result="rolled-back", name=name, to=req["to"],
                            error="migration cancelled", total_s=round(time.monotonic() - t0, 3),
                            bytes={"disk": 0, "memory": 0, "state": 0, "total": 0}))
            return
        conn.sendall(ev(event="progress", phase="storage", done=total * i // steps, total=total,
                        dirty=0, rate=50 << 20, disks=1, synced=0))
        time.sleep(0.05)
    conn.sendall(ev(event="phase", phase="memory"))
    for r in range(1, 4):
        conn.sendall(ev(event="round", round=r, bytes=(256 >> r) << 20, elapsed_ms=100 / r,
                        bandwidth=1 << 30, dirty_pages=4096 >> r, deferred_pages=0,
                        dirty_rate=64 << 20, predicted_downtime_ms=40 / r, throttle=10 * (r - 1),
                        memory_sent=(256 - (256 >> r)) << 20, memory_total=256 << 20))
        time.sleep(0.05)
    conn.sendall(ev(event="phase", phase="switchover"))
    time.sleep(0.02)
    conn.sendall(ev(event="phase", phase="commit"))
    conn.sendall(ev(event="result", result="done", name=name, to=req["to"], total_s=0.9,
                    pause_ms=0.5, disks_ms=2, state_sent_ms=8, downtime_ms=12.5, rounds=3,
                    bytes={"disk": total, "memory": 224 << 20, "state": 65536,
                           "total": total + (224 << 20) + 65536}, pages=57344))


def client(conn):
    f = conn.makefile("rb")
    for line in f:
        with open(requests, "a") as out:
            out.write(line.decode())
        req = json.loads(line)
        cmd = req.get("cmd")
        if cmd == "migrate":
            migrate(conn, req)
            break
        if cmd == "migrate-cancel":
            cancelled.set()
            conn.sendall(b'{"ok":true}\n')
        elif cmd == "status":
            conn.sendall(json.dumps({"ok": True, "name": name, "pid": os.getpid(), "state": "running",
                                     "memory": 256 << 20, "cpus": 1, "uptime_s": 1.0,
                                     "disks": []}).encode() + b"\n")
        else:
            conn.sendall(b'{"ok":false,"error":"unknown command"}\n')
    conn.close()


if os.path.exists(sock_path):
    os.unlink(sock_path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(sock_path)
srv.listen(8)
while True:
    c, _ = srv.accept()
    threading.Thread(target=client, args=(c,), daemon=True).start()
