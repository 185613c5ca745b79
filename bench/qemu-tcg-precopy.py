#!/usr/bin/python3
# bench/qemu-tcg-precopy.py: the work of bench/qemu-tcg-precopy.sh: plain
# QEMU live migrations under TCG of the Linux test guest (qemu/guest/), each
# judged by the guest's own checker after the move, one JSON line per run.
#
# One run: a source and a destination qemu-system-x86_64 -machine q35 -accel
# tcg on this host, one shared raw disk, the destination `-incoming defer -S`.
# The guest rewrites and checks a memory pattern and (unless --no-disk) writes
# and checks O_DIRECT|O_SYNC records on virtio-blk, for ever. Once its disk
# pass 1 is done (memory pass 1 without a disk), QMP `migrate` over a Unix
# socket (after `stop` with --mode stop: stop-and-copy), `cont` on the
# destination when it has everything; there the guest runs on for --after
# seconds, then "finish" on its console asks for the final check of memory
# and disk. Outcome: ok (verdict: ok, no kernel complaint, and the host's
# check-records.py agrees), fail-mem / fail-disk (the checker's FAIL line),
# oops (the guest kernel's BUG/Oops/corruption report), hang (no verdict in
# time), error (the migration itself failed).
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

KERNEL_COMPLAINTS = ("BUG:", "Oops", "general protection", "list_add corruption",
                     "list_del corruption", "scheduling while atomic", "Kernel panic",
                     "WARNING:", "segfault", "invalid opcode")


class QMP:
    def __init__(self, path, timeout=30):
        end = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP connection closed during " + name)
            r = json.loads(line)
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error'].get('desc')}")
            return r.get("return")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_text(path, texts, timeout, procs=()):
    end = time.time() + timeout
    while time.time() < end:
        t = read(path)
        for x in texts:
            if x in t:
                return x
        if any(p.poll() is not None for p in procs):
            t = read(path)
            return next((x for x in texts if x in t), None)
        time.sleep(0.1)
    return None


def send_console(sock, line):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(line.encode() + b"\n")
    s.close()


def qemu_argv(a, d, side):
    append = (f"console=ttyS0 quiet panic=-1 smove.mem={a.mem} smove.memthreads={a.memthreads} "
              f"smove.rate={a.rate} smove.passes=0 smove.hb=5 smove.hbprint=0 smove.gapprint=50")
    if not a.no_disk:
        append += " smove.disk=8M smove.diskpasses=0"
    argv = ["qemu-system-x86_64", "-machine", "q35", "-accel", a.accel, "-smp", str(a.smp),
            "-m", a.memory, "-nodefaults", "-no-reboot", "-display", "none",
            "-chardev", f"socket,id=con,path={d}/{side}.sock,server=on,wait=off,"
            f"logfile={d}/{side}.console",
            "-serial", "chardev:con", "-qmp", f"unix:{d}/{side}.qmp,server=on,wait=off",
            "-kernel", a.kernel, "-initrd", a.initramfs, "-append", append,
            "-drive", f"file={d}/disk.raw,format=raw,if=none,id=d0,cache={a.cache}",
            "-device", "virtio-blk-pci,drive=d0"]
    if a.cpu:
        argv += ["-cpu", a.cpu]
    for g in a.global_:
        argv += ["-global", g]
    if side == "dst":
        argv += ["-incoming", "defer", "-S"]
    return argv


def run(a, n):
    d = tempfile.mkdtemp(prefix="smove-tcg-precopy.", dir=a.tmp)
    res = {"run": n, "mode": a.mode, "accel": a.accel, "smp": a.smp, "memory": a.memory,
           "disk": not a.no_disk, "cache": a.cache, "cpu": a.cpu or "default",
           "caps": a.cap, "params": a.param, "globals": a.global_}
    procs = []
    try:
        with open(f"{d}/disk.raw", "wb") as f:
            f.truncate(16 << 20)
        for side in ("src", "dst"):
            err = open(f"{d}/{side}.err", "w")
            procs.append(subprocess.Popen(qemu_argv(a, d, side), stdout=err, stderr=err))
        src, dst = QMP(f"{d}/src.qmp"), QMP(f"{d}/dst.qmp")
        ready = "disk 0 pass 1 ok" if not a.no_disk else "mem pass 1 ok"
        if not wait_text(f"{d}/src.console", [ready], 120, procs):
            res["outcome"] = "error"
            res["why"] = "the guest did not start: " + read(f"{d}/src.err")[-300:]
            return res
        time.sleep(a.before)
        caps = [{"capability": c.split("=")[0], "state": c.split("=")[1] != "off"}
                for c in a.cap]
        if caps:
            src.cmd("migrate-set-capabilities", capabilities=caps)
            dst.cmd("migrate-set-capabilities", capabilities=caps)
        for p in a.param:
            k, v = p.split("=")
            src.cmd("migrate-set-parameters", **{k: int(v) if v.isdigit() else v})
        dst.cmd("migrate-incoming", uri=f"unix:{d}/mig.sock")
        t0 = time.time()
        if a.mode == "stop":
            src.cmd("stop")
        src.cmd("migrate", uri=f"unix:{d}/mig.sock")
        while True:
            info = src.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.time() - t0 > a.timeout:
                res["outcome"] = "error"
                res["why"] = "no convergence in %d s" % a.timeout
                return res
            time.sleep(0.05)
        res["total_ms"] = info.get("total-time")
        res["downtime_ms"] = info.get("downtime")
        res["ram_mb"] = round(info.get("ram", {}).get("transferred", 0) / 1e6, 1)
        res["rounds"] = info.get("ram", {}).get("dirty-sync-count")
        if info["status"] != "completed":
            res["outcome"] = "error"
            res["why"] = "migration " + info["status"] + ": " + str(info.get("error-desc"))
            return res
        while dst.cmd("query-status")["status"] == "inmigrate":
            time.sleep(0.02)
        dst.cmd("cont")
        src.cmd("quit")
        # The guest goes on at the destination, then checks everything.
        time.sleep(a.after)
        try:
            send_console(f"{d}/dst.sock", "finish")
        except OSError:
            pass  # the destination is gone already (a guest panic): judged below
        got = wait_text(f"{d}/dst.console", ["verdict: ok", "FAIL"], a.verdict_timeout,
                        procs[1:])
        con = read(f"{d}/dst.console")
        complaints = [l for l in con.splitlines() if any(k in l for k in KERNEL_COMPLAINTS)]
        gaps = [int(l.split()[1]) for l in con.splitlines()
                if l.startswith("gap ") and l.split()[1].isdigit()]
        res["max_gap_ms"] = round(max(gaps) / 1000, 1) if gaps else None
        if complaints:
            res["outcome"] = "oops"
            res["why"] = complaints[0][:160]
        elif got == "FAIL":
            line = next(l for l in con.splitlines() if l.startswith("FAIL"))
            res["outcome"] = "fail-disk" if line.startswith("FAIL disk") else "fail-mem"
            res["why"] = line[:200]
        elif got is None:
            res["outcome"] = "hang"
            res["why"] = "no verdict %d s after the finish request" % a.verdict_timeout
        else:
            res["outcome"] = "ok"
            if not a.no_disk:
                procs[1].wait(timeout=60)
                last = [l for l in con.splitlines() if l.startswith("disk 0: 8 MiB x ")]
                gen = last[-1].split()[5]
                chk = subprocess.run(["/usr/bin/python3", a.check_records, f"{d}/disk.raw", "8M",
                                      gen], capture_output=True, text=True)
                if chk.returncode:
                    res["outcome"] = "fail-disk"
                    res["why"] = "host: " + (chk.stdout + chk.stderr).strip()[-200:]
        return res
    except Exception as e:  # a run that breaks is counted, not fatal
        res["outcome"] = "error"
        res["why"] = str(e)[:200]
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if a.keep and res.get("outcome") != "ok":
            res["kept"] = d
        else:
            shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kernel", required=True)
    p.add_argument("--initramfs", required=True)
    p.add_argument("--check-records", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--mode", choices=("live", "stop"), default="live")
    p.add_argument("--accel", default="tcg")
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--memory", default="256M")
    p.add_argument("--mem", default="32M", help="the guest's memory pattern")
    p.add_argument("--memthreads", type=int, default=1)
    p.add_argument("--rate", type=int, default=0, help="MiB/s the pattern is rewritten at (0: flat out)")
    p.add_argument("--no-disk", action="store_true")
    p.add_argument("--cache", default="writeback")
    p.add_argument("--cpu", default="")
    p.add_argument("--cap", action="append", default=[], help="CAPABILITY=on|off")
    p.add_argument("--param", action="append", default=[], help="PARAMETER=VALUE")
    p.add_argument("--global", dest="global_", action="append", default=[])
    p.add_argument("--before", type=float, default=1.0)
    p.add_argument("--after", type=float, default=3.0)
    p.add_argument("--timeout", type=int, default=120)
    p.add_argument("--verdict-timeout", type=int, default=60)
    p.add_argument("--tmp", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--label", default="")
    a = p.parse_args()
    counts = {}
    for n in range(1, a.runs + 1):
        r = run(a, n)
        r["label"] = a.label
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        print(json.dumps(r), flush=True)
    bad = a.runs - counts.get("ok", 0)
    print(f"# {a.label or a.mode}: {bad} of {a.runs} not clean " +
          json.dumps(counts, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.exit(main())
