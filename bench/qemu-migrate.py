#!/usr/bin/python3
# bench/qemu-migrate.py: the work of bench/qemu-migrate.sh (issue 10): one
# live migration of the Linux test guest (qemu/guest/) per call, with its
# disk, by smove's QEMU runtime or by plain QEMU driven as libvirt's `virsh
# migrate --live --copy-storage-all` drives it; one JSON line per call. The
# shell script makes the namespaces and smove serve, interleaves the runs and
# calls `table` at the end.
#   qemu-migrate.py smove OPTIONS    smove run --runtime qemu (VHDX disk), then
#                                    smove move to the serve already running
#   qemu-migrate.py qemu OPTIONS     two qemu-system-x86_64 (raw disk): the
#                                    destination -incoming defer -S with its own
#                                    NBD server (nbd-server-start,
#                                    block-export-add), the source
#                                    blockdev-mirror sync=full to it, READY, then
#                                    migrate with pause-before-switchover; at
#                                    pre-switchover block-job-cancel (a READY
#                                    mirror ends with a consistent copy),
#                                    migrate-continue; at the end nbd-server-stop
#                                    and cont on the destination (libvirt's
#                                    qemuMigrationSrcRun / qemuMigrationDstFinish)
#   qemu-migrate.py table RESULTS.jsonl   medians, spread, ratios smove/QEMU
#
# The same guest both ways: the same kernel, initramfs and command line
# (smove.mem= working set rewritten at smove.rate= MiB/s, O_DIRECT|O_SYNC
# records on the disk), the same machine (pc-q35-7.2, Nehalem-v1, 1 vCPU), the
# same RAM under TCG (the size asked for + 8 KiB, which smove's runtime gives
# QEMU so that 7.2's live pre-copy is right: plain QEMU gets it too), the same
# migration settings (downtime-limit, max-bandwidth 100 GiB/s, auto-converge,
# pause-before-switchover: what smove sets on its QEMU).
#
# A run counts only if the guest is intact after the move: the memory program
# prints "mem pass N ok" for every pass (smove.passes=16), each pass checking
# every page of the previous one, so a pass that ends on the destination after
# the pass under way at the switchover proves every page; the disk program
# likewise ("disk 0 pass N ok" checks the previous pass's records); no FAIL
# line and no kernel complaint. Plain QEMU's guest then gets "finish" on its
# console (smove's runtime has no console input: its guest is judged by the
# passes alone) and must answer "verdict: ok".
import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

KERNEL_COMPLAINTS = ("BUG:", "Oops", "general protection", "list_add corruption",
                     "list_del corruption", "scheduling while atomic", "Kernel panic",
                     "WARNING:", "segfault", "invalid opcode", "stack-protector")


def ns_cmd(ns, argv):
    return (["ip", "netns", "exec", ns] if ns else []) + argv


def read(path, offset=0):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
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
            break
        time.sleep(0.1)
    return None


def cmdline(a):
    return ("console=ttyS0 quiet panic=-1 smove.mem=%s smove.passes=%d smove.rate=%d "
            "smove.disk=%s smove.diskpasses=0 smove.hb=5 smove.hbprint=200 smove.gapprint=%d" %
            (a.ws, a.passes, a.rate, a.guest_disk, a.gapprint))


def ram_kib(a):
    """smove's runtime gives QEMU under TCG 8 KiB more (docs/design.md)."""
    kib = a.memory_mib * 1024
    return kib + 8 if a.accel == "tcg" else kib


def link_bytes(ns, dev):
    """Bytes through the source's end of the link, both ways (0 without one)."""
    if not ns:
        return 0
    try:
        out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev],
                             capture_output=True, text=True, check=True).stdout
        st = json.loads(out)[0]["stats64"]
        return st["tx"]["bytes"] + st["rx"]["bytes"]
    except (subprocess.CalledProcessError, KeyError, IndexError, ValueError):
        return 0


def tcp_bytes_sent(ns, addr, port):
    """bytes_sent of this side's TCP connections to addr:port (the kernel's
    count of payload bytes, NBD's headers included), or None."""
    out = subprocess.run(ns_cmd(ns, ["ss", "-tinH", "dst", "%s:%d" % (addr, port)]),
                         capture_output=True, text=True).stdout
    v = [int(x) for x in re.findall(r"bytes_sent:(\d+)", out)]
    return sum(v) if v else None


def perf_start(a, tool):
    """perf record -a -g over the move (--perf DIR), or None."""
    if not a.perf:
        return None
    out = os.path.join(a.perf, "%s-%d.perf.data" % (tool, a.run))
    ev = ["-g", "-e", "cpu-clock", "-F", "997"]
    if a.perf_events:  # e.g. sched:sched_switch for the vCPUs' pause and resume
        ev = sum((["-e", e] for e in a.perf_events.split(",")), [])
    p = subprocess.Popen(["perf", "record", "-a"] + ev + ["-o", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def perf_stop(p):
    if p:
        p.send_signal(signal.SIGINT)
        p.wait()


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---- CPU: every thread of some process trees ----------------------------------------------


class Sched(threading.Thread):
    """Samples the CPU time of every thread of the process trees under some
    pids (threads and processes come and go) every 250 ms, until stopped."""

    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots, self.first, self.last = list(roots), {}, {}
        self.stop_ev = threading.Event()
        self.sample()

    def pids(self):
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
        out, todo = [], list(self.roots)
        while todo:
            p = todo.pop()
            out.append(p)
            todo += kids.get(p, [])
        return out

    def sample(self):
        for pid in self.pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    pcomm = f.read().strip()
                tids = os.listdir("/proc/%d/task" % pid)
            except OSError:
                continue
            for t in tids:
                try:
                    with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                        comm = f.read().strip()
                    with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                        v = [int(x) for x in f.read().split()[:2]]
                except (OSError, ValueError):
                    continue
                key = (pid, t)
                self.first.setdefault(key, v)
                self.last[key] = (pcomm, comm, v)

    def run(self):
        while not self.stop_ev.wait(0.25):
            self.sample()

    def report(self):
        """cpu_ms: CPU time of the migration (all threads but the vCPUs'),
        vcpu_ms: the vCPUs', wait_ms: time runnable but waiting for a CPU;
        by_proc: the migration's CPU per process name."""
        self.stop_ev.set()
        self.sample()
        res = {"cpu_ms": 0.0, "vcpu_ms": 0.0, "wait_ms": 0.0, "by_proc": {}}
        for key, (pcomm, comm, v) in self.last.items():
            f = self.first[key]
            run_ms, wait_ms = (v[0] - f[0]) / 1e6, (v[1] - f[1]) / 1e6
            if comm.startswith("CPU ") or comm.startswith("vcpu"):
                res["vcpu_ms"] += run_ms
            else:
                res["cpu_ms"] += run_ms
                res["wait_ms"] += wait_ms
                res["by_proc"][pcomm] = round(res["by_proc"].get(pcomm, 0) + run_ms, 1)
        for k in ("cpu_ms", "vcpu_ms", "wait_ms"):
            res[k] = round(res[k], 1)
        return res


# ---- the guest's word ---------------------------------------------------------------------


def gaps(text):
    """The longest heartbeat gap (ms) in console text, or 0."""
    best = 0
    for m in re.finditer(r"^gap (\d+) us$", text, re.M):
        best = max(best, int(m.group(1)))
    return best / 1e3


def last_int(text, pattern):
    v = [int(m.group(1)) for m in re.finditer(pattern, text, re.M)]
    return v[-1] if v else None


def guest_check(res, console, moved_at_mem, moved_at_disk, timeout, alive):
    """After the move: a memory pass and a disk pass that began on the
    destination end there (or the memory program's last pass ends there and
    its final check of every page follows), with no FAIL and no kernel
    complaint. moved_at_*: the last pass the source's console showed when the
    VM stopped there."""
    end = time.time() + timeout
    need_mem = (moved_at_mem or 0) + 2
    need_disk = (moved_at_disk or 0) + 2
    while True:
        t = read(console)
        bad = [l for l in t.splitlines() if l.startswith("FAIL") or
               any(k in l for k in KERNEL_COMPLAINTS)]
        if bad:
            res["error"] = "the guest is damaged after the move: " + bad[0][:200]
            return False
        mem = last_int(t, r"^mem pass (\d+) ok$")
        done = re.search(r"^mem 0: .* passes", t, re.M)
        disk = last_int(t, r"^disk 0 pass (\d+) ok$")
        # Its last pass ended on the destination: then its final check of
        # every page ("mem 0: ...") ran there whole.
        last_there = done and moved_at_mem is not None and (mem or 0) > moved_at_mem
        if ((mem or 0) >= need_mem or last_there) and (disk or 0) >= need_disk:
            res["checked_mem_pass"], res["checked_disk_pass"] = mem, disk
            return True
        if done and not last_there:
            res["error"] = ("unverified: the memory program ended (pass %s) on the source, "
                            "before the move ended" % mem)
            return False
        if time.time() > end or not alive():
            res["error"] = ("no whole memory and disk pass on the destination in %d s "
                            "(mem pass %s, need %d; disk pass %s, need %d)%s" % (
                                timeout, mem, need_mem, disk, need_disk,
                                "" if alive() else "; the VM is gone"))
            return False
        time.sleep(0.2)


def ctl(sock, line='{"cmd":"status"}'):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(line.encode() + b"\n")
    reply = s.makefile("rb").readline()
    s.close()
    return json.loads(reply)


# ---- smove ------------------------------------------------------------------------------


def smove(a):
    name = "qb%d" % a.run
    env = dict(os.environ, SMOVE_RUNTIME_DIR=a.src_dir, SMOVE_STATE_DIR=a.src_dir)
    console = os.path.join(a.tmp, name + ".console")
    disk = os.path.join(a.tmp, name + ".vhdx")
    dconsole = os.path.join(a.store, name, "console.log")
    dsock = os.path.join(a.dst_dir, name + ".sock")
    res = {"tool": a.label or "smove"}
    for p in (console, dconsole):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run(["cp", "--sparse=always", a.vhdx, disk], check=True)
    vm = subprocess.Popen(
        ns_cmd(a.ns_src, [a.smove, "run", "--runtime", "qemu", "--name", name, "--kernel",
                          a.kernel, "--initrd", a.initrd, "--memory", "%dM" % a.memory_mib,
                          "--accel", a.accel, "--disk", disk, "--console", console,
                          "--cmdline", cmdline(a)]),
        env=env, stdout=subprocess.DEVNULL, stderr=open(console + ".err", "w"))
    try:
        if not wait_text(console, ["mem pass 1 ok"], a.boot_timeout, [vm]):
            res["error"] = "the guest did not start: " + read(console + ".err")[-300:]
            return res
        time.sleep(a.settle)
        before = read(console)
        offset = len(before.encode())
        res["gap_before_ms"] = gaps(before[before.find("mem pass 1 ok"):])
        res["load_at_move"] = load()
        wire0 = link_bytes(a.ns_src, a.link_dev)
        sched = Sched([vm.pid, a.serve_pid])
        sched.start()
        perf = perf_start(a, "smove")
        t0 = time.time()
        out = os.path.join(a.tmp, name + ".move.json")
        with open(out, "w") as f:
            mv = subprocess.run(
                ns_cmd(a.ns_src, [a.smove, "move", name, "--to", "%s:%d" % (a.addr, a.port),
                                  "--tls-psk", a.psk, "--json", "--downtime-ms",
                                  str(a.downtime)]
                       + (["--quick"] if a.quick else [])
                       + ([] if a.auto_converge else ["--no-auto-converge"])),
                env=env, stdout=f, stderr=subprocess.STDOUT, timeout=a.timeout)
        res["wall_s"] = round(time.time() - t0, 3)
        perf_stop(perf)
        res["wire_bytes"] = link_bytes(a.ns_src, a.link_dev) - wire0
        res.update(sched.report())
        events = [json.loads(l) for l in open(out) if l.startswith("{")]
        result = [e for e in events if e.get("event") == "result"]
        if not result or result[-1].get("result") != "done":
            res["error"] = "smove move: %s (exit %d)" % (
                result[-1].get("error", result[-1].get("result")) if result else
                read(out)[-300:], mv.returncode)
            return res
        r = result[-1]
        phases = {e["phase"]: e["t"] for e in events if e.get("event") == "phase"}
        rounds = [e for e in events if e.get("event") == "round"]
        res.update(total_s=r["total_s"], downtime_ms=r["downtime_ms"],
                   qemu_downtime_ms=None, pause_ms=r.get("pause_ms"),
                   disks_ms=r.get("disks_ms"), state_sent_ms=r.get("state_sent_ms"),
                   rounds=r.get("rounds"), bytes=r["bytes"]["total"],
                   disk_bytes=r["bytes"]["disk"], mem_bytes=r["bytes"]["memory"],
                   state_bytes=r["bytes"].get("state", 0),
                   max_throttle=max([e.get("throttle", 0) for e in rounds] or [0]))
        order = ["connect", "preflight", "storage", "memory", "switchover", "commit"]
        marks = [(p, phases[p]) for p in order if p in phases] + [("end", r["total_s"])]
        res["phases_s"] = {marks[i][0]: round(marks[i + 1][1] - marks[i][1], 3)
                           for i in range(len(marks) - 1)}
        res["round_log"] = [[e["round"], e["bytes"], round(e["elapsed_ms"], 1),
                             e.get("throttle", 0)] for e in rounds]
        why = [l.strip() for l in read(a.serve_err).splitlines()
               if "%s: migrated in" % name in l]
        if why:
            res["serve_breakdown"] = why[-1].split("migrated in; ", 1)[-1]
        # The guest: its gaps while it moved (the source's console from the
        # move on, then the destination's lines after the source's tail,
        # which travelled with the VM).
        src_after = read(console, offset)
        src_all = before + src_after
        for _ in range(50):
            if os.path.exists(dconsole):
                break
            time.sleep(0.1)
        time.sleep(1)
        dtext = read(dconsole)
        k = dtext.rfind(src_all[-200:]) if len(src_all) >= 200 else -1
        dnew = dtext[k + 200:] if k >= 0 else dtext
        res["gap_src_ms"], res["gap_dst_ms"] = gaps(src_after), gaps(dnew[:4000])
        res["gap_ms"] = max(res["gap_src_ms"], res["gap_dst_ms"])
        moved_mem = last_int(src_all, r"^mem pass (\d+) ok$")
        moved_disk = last_int(src_all, r"^disk 0 pass (\d+) ok$")

        def alive():
            return os.path.exists(dsock)

        guest_check(res, dconsole, moved_mem, moved_disk, a.verify_timeout, alive)
    except subprocess.TimeoutExpired:
        res["error"] = "smove move did not end in %d s" % a.timeout
    finally:
        if vm.poll() is None:
            vm.kill()
        vm.wait()
        try:
            ctl(dsock, '{"cmd":"stop"}')
        except (OSError, ValueError):
            pass
        end = time.time() + 15
        while os.path.exists(os.path.join(a.dst_dir, name + ".json")) and time.time() < end:
            time.sleep(0.1)
        if a.keep and "error" in res:
            res["kept"] = [console, os.path.join(a.store, name)]
        else:
            shutil.rmtree(os.path.join(a.store, name), ignore_errors=True)
            for p in (console, console + ".err", disk):
                if os.path.exists(p):
                    os.unlink(p)
    return res


# ---- plain QEMU, as libvirt drives it ------------------------------------------------------


class QMP:
    def __init__(self, path, timeout=60):
        end = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > end:
                    raise
                time.sleep(0.05)
        self.buf = b""
        self.events = []
        self._line(30)  # greeting
        self.cmd("qmp_capabilities")

    def _line(self, timeout):
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, _cmd, timeout=60, **args):
        self.s.sendall(json.dumps({"execute": _cmd, "arguments": args}).encode() + b"\n")
        while True:
            m = self._line(timeout)
            if m is None:
                raise RuntimeError("QMP %s: no answer in %d s" % (_cmd, timeout))
            if "event" in m:
                m["host_t"] = time.time()
                self.events.append(m)
            elif "error" in m:
                raise RuntimeError("QMP %s: %s" % (_cmd, m["error"].get("desc")))
            elif "return" in m:
                return m["return"]

    def event(self, name, timeout, pred=lambda e: True):
        """The first event name (matching pred) not yet taken, waiting for it."""
        end = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name and pred(e):
                    return self.events.pop(i)
            left = end - time.time()
            if left <= 0:
                raise RuntimeError("no %s event in %d s" % (name, timeout))
            m = self._line(left)
            if m is not None and "event" in m:
                m["host_t"] = time.time()
                self.events.append(m)

    @staticmethod
    def ts(e):
        return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6


def qemu_vm(a, side, ns, disk, extra):
    d = a.tmp
    console = os.path.join(d, "q%d-%s.console" % (a.run, side))
    qmp = os.path.join(d, "q%d-%s.qmp" % (a.run, side))
    sock = os.path.join(d, "q%d-%s.sock" % (a.run, side))
    for p in (console, qmp, sock):
        if os.path.exists(p):
            os.unlink(p)
    argv = ["qemu-system-x86_64", "-name", "qb-%s,debug-threads=on" % side, "-nodefaults",
            "-no-user-config", "-display", "none", "-accel", a.accel, "-machine", a.machine,
            "-cpu", a.cpu, "-m", "%dk" % ram_kib(a), "-smp", "1",
            "-chardev", "socket,id=con,path=%s,server=on,wait=off,logfile=%s" % (sock, console),
            "-serial", "chardev:con", "-qmp", "unix:%s,server=on,wait=off" % qmp,
            "-kernel", a.kernel, "-initrd", a.initrd, "-append", cmdline(a),
            "-blockdev", "driver=file,filename=%s,node-name=file0,discard=unmap" % disk,
            "-blockdev", "driver=raw,file=file0,node-name=disk0,discard=unmap",
            "-device", "virtio-blk-pci,drive=disk0,id=vd0"]
    if a.qemu_tls:
        argv += ["-object", "tls-creds-psk,id=tls0,endpoint=%s,dir=%s%s" % (
            "client" if side == "src" else "server", os.path.dirname(a.psk),
            ",username=smove" if side == "src" else "")]
    p = subprocess.Popen(ns_cmd(ns, argv + extra), stdout=subprocess.DEVNULL,
                         stderr=open(console + ".err", "w"))
    return p, console, qmp, sock


def qemu(a):
    res = {"tool": "qemu"}
    src_disk = os.path.join(a.tmp, "q%d-src.raw" % a.run)
    dst_disk = os.path.join(a.tmp, "q%d-dst.raw" % a.run)
    subprocess.run(["cp", "--sparse=always", a.raw, src_disk], check=True)
    procs = []
    mig_port, nbd_port = a.port + 1, a.port + 2
    try:
        src, console, sqmp_path, _ = qemu_vm(a, "src", a.ns_src, src_disk, [])
        procs.append(src)
        s = QMP(sqmp_path)
        if not wait_text(console, ["mem pass 1 ok"], a.boot_timeout, [src]):
            res["error"] = "the guest did not start: " + read(console + ".err")[-300:]
            return res
        time.sleep(a.settle)
        before = read(console)
        offset = len(before.encode())
        res["gap_before_ms"] = gaps(before[before.find("mem pass 1 ok"):])
        res["load_at_move"] = load()
        wire0 = link_bytes(a.ns_src, a.link_dev)
        sched = Sched([src.pid])
        sched.start()
        perf = perf_start(a, "qemu")
        # libvirt's Prepare: the destination QEMU, paused, its target image
        # (same size, empty), its NBD server exporting it, incoming deferred.
        t0 = time.time()
        with open(dst_disk, "wb") as f:
            f.truncate(os.path.getsize(src_disk))
        dst, dconsole, dqmp_path, dsock = qemu_vm(a, "dst", a.ns_dst, dst_disk,
                                                  ["-incoming", "defer", "-S"])
        procs.append(dst)
        sched.roots.append(dst.pid)
        d = QMP(dqmp_path)
        d.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "events", "state": True},
            {"capability": "late-block-activate", "state": True}])
        nbd = {"addr": {"type": "inet", "data": {"host": a.addr, "port": str(nbd_port)}}}
        if a.qemu_tls:
            nbd["tls-creds"] = "tls0"
            d.cmd("migrate-set-parameters", **{"tls-creds": "tls0"})
        d.cmd("nbd-server-start", **nbd)
        d.cmd("block-export-add", type="nbd", id="exp0", **{"node-name": "disk0"},
              name="disk0", writable=True)
        d.cmd("migrate-incoming", uri="tcp:%s:%d" % (a.addr, mig_port))
        t_prepared = time.time()
        # Perform: the storage first (qemuMigrationSrcNBDStorageCopy).
        tgt = {"driver": "nbd", "node-name": "tgt0", "export": "disk0",
               "server": {"type": "inet", "host": a.addr, "port": str(nbd_port)}}
        if a.qemu_tls:
            tgt["tls-creds"] = "tls0"
        s.cmd("blockdev-add", **tgt)
        s.cmd("blockdev-mirror", **{"job-id": "mirror-disk0", "device": "disk0",
                                    "target": "tgt0", "sync": "full",
                                    "copy-mode": a.copy_mode})
        s.event("BLOCK_JOB_READY", a.timeout)
        t_ready = time.time()
        # Then the memory (qemuMigrationSrcRun): pause-before-switchover is
        # one of libvirt's always-on capabilities on the source.
        caps = [{"capability": "events", "state": True},
                {"capability": "pause-before-switchover", "state": True},
                {"capability": "auto-converge", "state": a.auto_converge}]
        s.cmd("migrate-set-capabilities", capabilities=caps)
        params = {"downtime-limit": a.downtime, "max-bandwidth": 100 << 30}
        if a.qemu_tls:
            params["tls-creds"] = "tls0"
        s.cmd("migrate-set-parameters", **params)
        s.cmd("migrate", uri="tcp:%s:%d" % (a.addr, mig_port))
        s.event("MIGRATION", a.timeout, lambda e: e["data"]["status"] in (
            "pre-switchover", "failed", "cancelled"))
        t_pre = time.time()
        q = s.cmd("query-migrate")
        if q["status"] != "pre-switchover":
            res["error"] = "migration %s: %s" % (q["status"], q.get("error-desc", ""))
            return res
        # The VM is paused: the mirrors end (a READY job cancelled completes
        # with the target consistent), then the device state goes.
        jobs = s.cmd("query-block-jobs")
        s.cmd("block-job-cancel", device="mirror-disk0")
        done = s.event("BLOCK_JOB_COMPLETED", 60)
        res["mirror_offset"] = done["data"].get("offset")
        res["mirror_bytes"] = tcp_bytes_sent(a.ns_src, a.addr, nbd_port)
        t_mirror_done = time.time()
        s.cmd("migrate-continue", state="pre-switchover")
        s.event("MIGRATION", a.timeout, lambda e: e["data"]["status"] in (
            "completed", "failed", "cancelled"))
        t_completed = time.time()
        q = s.cmd("query-migrate")
        if q["status"] != "completed":
            res["error"] = "migration %s: %s" % (q["status"], q.get("error-desc", ""))
            return res
        # Finish on the destination: its migration completed, NBD server
        # stopped, then cont.
        d.event("MIGRATION", 60, lambda e: e["data"]["status"] in ("completed", "failed"))
        d.cmd("nbd-server-stop")
        d.cmd("cont")
        resume = d.event("RESUME", 30)
        t_end = time.time()
        perf_stop(perf)
        stop = next((e for e in s.events if e["event"] == "STOP"), None)
        # QEMU 7.2 says "completed" before its migration thread has worked
        # out the downtime and total time (0 until then): asked again.
        for _ in range(20):
            if q.get("downtime"):
                break
            time.sleep(0.05)
            q = s.cmd("query-migrate")
        res["wall_s"] = round(t_end - t0, 3)
        res["wire_bytes"] = link_bytes(a.ns_src, a.link_dev) - wire0
        res.update(sched.report())
        ram = q["ram"]
        res.update(total_s=round(t_end - t0, 3),
                   # the hosts' view as smove's downtime_ms: the source's
                   # pause to the destination's resume (QMP event times)
                   downtime_ms=round((QMP.ts(resume) - QMP.ts(stop)) * 1e3, 1) if stop else None,
                   qemu_downtime_ms=q.get("downtime"), qemu_total_ms=q.get("total-time"),
                   rounds=ram.get("dirty-sync-count"),
                   mem_bytes=ram["transferred"], disk_bytes=res.get("mirror_bytes") or 0,
                   max_throttle=q.get("cpu-throttle-percentage", 0),
                   phases_s={"prepare": round(t_prepared - t0, 3),
                             "storage": round(t_ready - t_prepared, 3),
                             "memory": round(t_pre - t_ready, 3),
                             "mirror-cancel": round(t_mirror_done - t_pre, 3),
                             "device-state": round(t_completed - t_mirror_done, 3),
                             "finish": round(t_end - t_completed, 3)},
                   mirror_len=jobs[0].get("len") if jobs else None)
        res["bytes"] = res["mem_bytes"] + res["disk_bytes"]
        s.cmd("quit")
        src.wait(30)
        src_after = read(console, offset)
        src_all = before + src_after
        time.sleep(1)
        dtext = read(dconsole)
        res["gap_src_ms"], res["gap_dst_ms"] = gaps(src_after), gaps(dtext[:4000])
        res["gap_ms"] = max(res["gap_src_ms"], res["gap_dst_ms"])
        moved_mem = last_int(src_all, r"^mem pass (\d+) ok$")
        moved_disk = last_int(src_all, r"^disk 0 pass (\d+) ok$")
        if not guest_check(res, dconsole, moved_mem, moved_disk, a.verify_timeout,
                           lambda: dst.poll() is None):
            return res
        # And the guest's own final check, which smove's runtime cannot ask for.
        s2 = socket.socket(socket.AF_UNIX)
        s2.connect(dsock)
        s2.sendall(b"finish\n")
        s2.close()
        got = wait_text(dconsole, ["verdict: ok", "FAIL"], 120, [dst])
        if got != "verdict: ok":
            bad = [l for l in read(dconsole).splitlines() if l.startswith("FAIL")]
            res["error"] = "no verdict after finish: " + (bad[0] if bad else str(got))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        res["error"] = str(e)[:300]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if not (a.keep and "error" in res):
            for f in os.listdir(a.tmp):
                if f.startswith("q%d-" % a.run):
                    os.unlink(os.path.join(a.tmp, f))
    return res


# ---- the table ----------------------------------------------------------------------------


def median(v):
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def spread(v, f):
    v = sorted(x for x in v if x is not None)
    return "-" if not v else (f % v[0]) + ".." + (f % v[-1])


def table(a):
    rows = [json.loads(l) for l in open(a.results) if l.startswith("{")]
    runs = [r for r in rows if r.get("kind") == "run"]
    info = [r for r in rows if r.get("kind") == "info"]
    for i in info:
        print("# " + i["text"])
    cols = [("total_s", "total s", "%.2f"), ("downtime_ms", "down ms", "%.0f"),
            ("qemu_downtime_ms", "qemu-dt", "%.0f"), ("gap_ms", "gap ms", "%.0f"),
            ("gap_before_ms", "gap0 ms", "%.0f"), ("bytes", "MB", "%.0f"),
            ("wire_bytes", "wire MB", "%.0f"), ("cpu_ms", "cpu s", "%.1f"),
            ("load_at_move", "load", "%.1f")]
    scale = {"bytes": 1e-6, "wire_bytes": 1e-6, "cpu_ms": 1e-3}
    by = {}
    for r in runs:
        by.setdefault(r["tool"], []).append(r)
    tools = sorted(by, key=lambda t: (t == "qemu", t))
    print("%-9s %5s  " % ("tool", "ok") + "  ".join("%-17s" % c[1] for c in cols))
    meds = {}
    for tool in tools:
        rs = by.get(tool, [])
        ok = [r for r in rs if "error" not in r]
        line = "%-9s %5s  " % (tool, "%d/%d" % (len(ok), len(rs)))
        meds[tool] = {}
        for k, _, f in cols:
            v = [r.get(k) * scale.get(k, 1) if r.get(k) is not None else None for r in ok]
            m = median(v)
            meds[tool][k] = m
            line += "%-17s  " % ("-" if m is None else (f % m) + " (" + spread(v, f) + ")")
        print(line.rstrip())
    print("  (median (min..max) of the runs whose guest was intact after the move; down ms: the")
    print("  source's pause to the destination's resume, smove's downtime_ms and QEMU's QMP STOP")
    print("  to RESUME; qemu-dt: QEMU's own query-migrate downtime (pause to the last byte sent);")
    print("  gap: the guest's longest heartbeat gap during the move (its clock stands still while")
    print("  QEMU has the VM stopped: the pause itself does not show), gap0: the same before it)")
    qm = meds.get("qemu", {})
    qruns = {r["run"]: r for r in by.get("qemu", []) if "error" not in r}
    for tool in tools:
        if tool == "qemu":
            continue
        sm = meds[tool]

        def ratio(k, qk=None):
            x, y = sm.get(k), qm.get(qk or k)
            return "-" if not x or not y else "%.2f" % (x / y)

        def paired(k, qk=None):
            v = [r[k] / qruns[r["run"]][qk or k] for r in by[tool]
                 if "error" not in r and r["run"] in qruns and r.get(k) and
                 qruns[r["run"]].get(qk or k)]
            return "-" if not v else "%.2f (%s, %d pairs)" % (median(v), spread(v, "%.2f"),
                                                               len(v))

        print("%s/QEMU, ratio of the medians: total time %s, downtime %s (against QEMU's own "
              "downtime: %s), longest guest gap %s, bytes %s, wire bytes %s, migration CPU %s" % (
                  tool, ratio("total_s"), ratio("downtime_ms"),
                  ratio("downtime_ms", "qemu_downtime_ms"), ratio("gap_ms"), ratio("bytes"),
                  ratio("wire_bytes"), ratio("cpu_ms")))
        print("%s/QEMU, median of each run's ratio to the QEMU run next to it: total time %s, "
              "downtime %s, CPU %s" % (tool, paired("total_s"), paired("downtime_ms"),
                                       paired("cpu_ms")))
    for tool in tools:
        ok = [r for r in by.get(tool, []) if "error" not in r]
        if not ok:
            continue
        names = list(ok[0].get("phases_s", {}))
        print("%s phases (median s): " % tool + ", ".join(
            "%s %.2f" % (n, median([r["phases_s"].get(n) for r in ok])) for n in names))
        extra = []
        for k in ("pause_ms", "disks_ms", "state_sent_ms", "rounds", "max_throttle",
                  "disk_bytes", "mem_bytes", "vcpu_ms", "wait_ms"):
            m = median([r.get(k) for r in ok])
            if m is not None:
                extra.append("%s %s" % (k, ("%.0f" % (m / 1e6) + "MB") if k.endswith("bytes")
                                        else "%.0f" % m))
        print("%s (median): %s" % (tool, ", ".join(extra)))
        cpu = {}
        for r in ok:
            for p, v in r.get("by_proc", {}).items():
                cpu.setdefault(p, []).append(v)
        print("%s migration CPU by process (median ms): %s" % (tool, ", ".join(
            "%s %.0f" % (p, median(v)) for p, v in sorted(cpu.items()))))
    print("every run (load: 1-minute load average before and after the run):")
    for r in sorted(runs, key=lambda r: (r.get("run", 0), r["tool"])):
        head = "  %-5s %2s load %4.1f -> %4.1f: " % (r["tool"], r.get("run"),
                                                  r.get("load_before", 0), r.get("load_after", 0))
        if "error" in r:
            print(head + "FAILED: " + r["error"])
            continue
        print(head + "total %.2f s, downtime %.0f ms%s, gap %.0f ms (src %.0f, dst %.0f), "
              "%.0f MB, wire %.0f MB, throttle %s %%, CPU %.1f s (wait %.1f s)" % (
                  r["total_s"], r["downtime_ms"],
                  " (QEMU's %s)" % r["qemu_downtime_ms"] if r.get("qemu_downtime_ms") else "",
                  r["gap_ms"], r.get("gap_src_ms", 0), r.get("gap_dst_ms", 0), r["bytes"] / 1e6,
                  r["wire_bytes"] / 1e6, r.get("max_throttle"), r["cpu_ms"] / 1e3,
                  r["wait_ms"] / 1e3))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for c in ("smove", "qemu"):
        q = sub.add_parser(c)
        q.add_argument("--run", type=int, required=True)
        q.add_argument("--smove")
        q.add_argument("--label", help="the tool's name in the table (smove)")
        q.add_argument("--quick", action="store_true", help="smove move --quick")
        q.add_argument("--kernel", required=True)
        q.add_argument("--initrd", required=True)
        q.add_argument("--vhdx", help="the source disk for smove (copied per run)")
        q.add_argument("--raw", help="the same disk, raw, for QEMU (copied per run)")
        q.add_argument("--memory-mib", type=int, default=1024)
        q.add_argument("--ws", default="256M")
        q.add_argument("--rate", type=int, default=64)
        q.add_argument("--passes", type=int, default=16)
        q.add_argument("--guest-disk", default="16M")
        q.add_argument("--gapprint", type=int, default=20)
        q.add_argument("--accel", default="tcg")
        q.add_argument("--machine", default="pc-q35-7.2")
        q.add_argument("--cpu", default="Nehalem-v1")
        q.add_argument("--downtime", type=int, default=300)
        q.add_argument("--auto-converge", type=int, default=1)
        q.add_argument("--copy-mode", default="background")
        q.add_argument("--qemu-tls", type=int, default=0)
        q.add_argument("--psk")
        q.add_argument("--addr", required=True)
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--ns-src", default="")
        q.add_argument("--ns-dst", default="")
        q.add_argument("--link-dev", default="va")
        q.add_argument("--tmp", required=True)
        q.add_argument("--src-dir")
        q.add_argument("--dst-dir")
        q.add_argument("--store")
        q.add_argument("--serve-pid", type=int, default=0)
        q.add_argument("--serve-err")
        q.add_argument("--settle", type=float, default=3)
        q.add_argument("--boot-timeout", type=int, default=300)
        q.add_argument("--verify-timeout", type=int, default=90)
        q.add_argument("--timeout", type=int, default=300)
        q.add_argument("--keep", action="store_true")
        q.add_argument("--perf", help="perf record -a -g each move into this directory")
        q.add_argument("--perf-events", default="",
                       help="record these events (comma-separated) instead of a profile")
    q = sub.add_parser("table")
    q.add_argument("results")
    a = p.parse_args()
    if a.cmd == "table":
        return table(a)
    a.auto_converge = bool(a.auto_converge)
    try:
        r = smove(a) if a.cmd == "smove" else qemu(a)
    except Exception as e:  # one broken run is that run's error, not the bench's
        r = {"tool": a.label or a.cmd, "error": "%s: %s" % (type(e).__name__, e)}
    r.update(kind="run", run=a.run)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    sys.exit(main())
