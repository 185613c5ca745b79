#!/usr/bin/python3
# bench/migrate.py: the work of bench/migrate.sh, one measurement per call,
# each printing one JSON line (the shell script makes the namespaces, loops
# over the rows and calls `table` at the end).
#   migrate.py link ADDR PORT MIB NAME    TCP throughput of the link, one
#                                         stream, source namespace to
#                                         destination (bytes/s)
#   migrate.py sink ADDR PORT             (the link's receiving end)
#   migrate.py smove ROW-OPTIONS          one smove migration (serve running)
#   migrate.py qemu ROW-OPTIONS           one QEMU migration on the same link
#   migrate.py table RESULTS.jsonl        medians, side by side, with ratios
# Every command in a namespace runs under `ip netns exec NS` (no namespace:
# loopback). The guest is smove's test guest with the same command line in
# both VMMs: it touches mem= bytes flat out, then rewrites them at rate= MiB/s
# (or flat out, or idles), its heartbeat every hb=1 ms. The guest's own view
# of the downtime is the longest gap between two heartbeats while the
# migration ran: it prints every gap of 3 ms or more (gapprint=3) on its
# console. (Under QEMU the guest's kvmclock stands still while QEMU has the VM
# stopped, so QEMU's guests do not see most of their pause; its hosts' view is
# the time from the source's STOP event to the destination's RESUME event,
# both QMP timestamps of this host's clock.)
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time


def ns_cmd(ns, argv):
    return (["ip", "netns", "exec", ns] if ns else []) + argv


def wait_file(path, text, timeout, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path, errors="replace") as f:
                if text in f.read():
                    return
        except FileNotFoundError:
            pass
        if proc and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for %r in %s" % (text, path))


def ctl(sock, line='{"cmd":"status"}'):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(line.encode() + b"\n")
    reply = s.makefile("rb").readline()
    s.close()
    return json.loads(reply)


class Sched:
    """CPU time and run-queue wait (ns) of every thread of some processes,
    sampled while they run (threads come and go), vCPU threads apart."""

    def __init__(self, pids):
        self.pids, self.first, self.last = pids, {}, {}
        self.sample()

    def sample(self):
        for pid in self.pids:
            try:
                tids = os.listdir("/proc/%d/task" % pid)
            except FileNotFoundError:
                continue
            for t in tids:
                try:
                    with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                        comm = f.read().strip()
                    with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                        v = [int(x) for x in f.read().split()[:2]]
                except (FileNotFoundError, ProcessLookupError):
                    continue
                self.first.setdefault((pid, t), v)
                self.last[(pid, t, comm)] = v

    def report(self, res):
        """cpu_ms, wait_ms: the migration's threads; vcpu_ms: the guest's."""
        res.update(cpu_ms=0.0, wait_ms=0.0, vcpu_ms=0.0)
        for (pid, t, comm), v in self.last.items():
            f = self.first[(pid, t)]
            if comm.startswith("vcpu ") or comm.startswith("CPU "):
                res["vcpu_ms"] += (v[0] - f[0]) / 1e6
            else:
                res["cpu_ms"] += (v[0] - f[0]) / 1e6
                res["wait_ms"] += (v[1] - f[1]) / 1e6


def verify(res, failed, console, seconds):
    """The guest goes on checking its pages on the destination for a while
    (a lost or stale page stops it with FAIL): a failure is the run's error."""
    end = time.time() + seconds
    while time.time() < end and not failed():
        time.sleep(0.1)
    try:
        with open(console, errors="replace") as f:
            bad = [l.strip() for l in f if l.startswith("FAIL")]
    except FileNotFoundError:  # the destination discarded a failed VM
        bad = []
    if bad or failed():
        res["error"] = "the guest failed after the move: %s" % (bad[0] if bad else "stopped")


def cmdline(a):
    progs = "passes=1 cpu0=mem+idle" if a.rate == "idle" else "passes=0 rate=%s" % (
        0 if a.rate == "max" else a.rate)
    return "mem=%dM %s verify=1 hb=1 hbprint=0 gapprint=3" % (a.ws, progs)


def gaps(path, offset=0):
    """The longest heartbeat gap (ms) the guest printed after offset."""
    best = 0.0
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            for line in f:
                if line.startswith("gap ") and line.rstrip().endswith(" us"):
                    best = max(best, int(line.split()[1]) / 1e3)
    except FileNotFoundError:
        return None
    return best


# ---- the link -------------------------------------------------------------------------


def sink(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(1)
    print("listening", flush=True)
    c, _ = ls.accept()
    buf = bytearray(1 << 20)
    n = 0
    while True:
        k = c.recv_into(buf)
        if not k:
            break
        n += k
    c.sendall(str(n).encode())
    c.close()


def link(a):
    s = socket.create_connection((a.addr, a.port), timeout=60)
    buf = os.urandom(1 << 20)
    t0 = time.time()
    for _ in range(a.mib):
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    n = int(s.recv(64))
    dt = time.time() - t0
    print(json.dumps({"kind": "link", "link": a.name, "link_bps": n / dt, "bytes": n,
                      "s": dt}))


# ---- smove ----------------------------------------------------------------------------


def smove(a):
    name = "bench%d" % os.getpid()
    env = dict(os.environ, SMOVE_RUNTIME_DIR=a.src_dir)
    console = os.path.join(a.tmp, name + ".console")
    vm = subprocess.Popen(
        ns_cmd(a.ns_src, [a.smove, "run", "--name", name, "--memory", "%dM" % a.mem,
                          "--dirty-log", a.mode, "--guest", a.guest, "--console", console,
                          "--cmdline", cmdline(a)]),
        env=env, stdout=subprocess.DEVNULL, stderr=open(console + ".err", "w"))
    res = {"tool": "smove-" + a.mode}
    try:
        wait_file(console, "mem pass 1 ok", 300, vm)
        time.sleep(a.settle)
        offset = os.path.getsize(console)
        t0 = time.time()
        sched = Sched([vm.pid, a.serve_pid])
        with open(os.path.join(a.tmp, "move.json"), "w+") as out:
            mv = subprocess.Popen(
                ns_cmd(a.ns_src, [a.smove, "move", name, "--to", "%s:%d" % (a.addr, a.port),
                                  "--json", "--downtime-ms", str(a.downtime)]),
                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
            while mv.poll() is None:
                sched.sample()
                if time.time() - t0 > a.timeout:
                    mv.kill()
                time.sleep(0.05)
            out.seek(0)
            output = out.read()
        res["wall_s"] = time.time() - t0
        sched.report(res)
        events = [json.loads(l) for l in output.splitlines() if l.startswith("{")]
        rounds = [e for e in events if e.get("event") == "round"]
        result = [e for e in events if e.get("event") == "result"]
        if not result or result[-1]["result"] != "done":
            last = rounds[-1] if rounds else {}
            res["error"] = (result[-1].get("error") if result else
                            "no result in %d s (round %s, throttle %s %%)" % (
                                a.timeout, last.get("round"), last.get("throttle")))
            return res
        r = result[-1]
        res.update(total_s=r["total_s"], downtime_ms=r["downtime_ms"], rounds=r["rounds"],
                   pause_ms=r.get("pause_ms"), disks_ms=r.get("disks_ms"),
                   sent_ms=r.get("state_sent_ms"),
                   bytes=r["bytes"]["total"],
                   # round 1 sends the non-zero memory, but for the pages it
                   # defers (rewritten meanwhile: round 2 sends them)
                   touched=rounds[0]["bytes"] + rounds[0].get("deferred_pages", 0) * (4096 + 8),
                   dirtied=sum(e["dirty_pages"] for e in rounds) * 4096,
                   round_log=[[e["round"], e["bytes"], round(e["elapsed_ms"], 1),
                               e["dirty_pages"], round(e["predicted_downtime_ms"], 1),
                               e["throttle"], e.get("deferred_pages", 0)] for e in rounds])
        time.sleep(0.3)  # the destination's heartbeat goes on after the resume
        dsock = os.path.join(a.dst_dir, name + ".sock")
        res["gap_ms"] = gaps(os.path.join(a.store, name, "console.log"), offset)
        def failed():
            try:
                return ctl(dsock)["guest"]["state"] == "failed"
            except (OSError, KeyError, ValueError):
                return True  # the VM process is gone

        verify(res, failed,
               os.path.join(a.store, name, "console.log"), a.verify)
        try:
            ctl(dsock, '{"cmd":"stop"}')
        except OSError:
            pass  # a failed guest's VM is gone already
    finally:
        if "error" in res:  # the destination's word on it, if any
            with open(os.path.join(a.tmp, "serve.err"), errors="replace") as f:
                why = [l.strip() for l in f if name in l and "guest reported a failure" in l]
            if why:
                res["error"] = why[-1]
        if vm.poll() is None:
            vm.kill()
        vm.wait()
        end = time.time() + 10
        while os.path.exists(os.path.join(a.dst_dir, name + ".json")) and time.time() < end:
            time.sleep(0.1)
        subprocess.run(["rm", "-rf", os.path.join(a.store, name)])
    return res


# ---- QEMU -----------------------------------------------------------------------------


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
        self.f = self.s.makefile("rb")
        self.events = []
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.s.sendall(json.dumps({"execute": name, "arguments": args}).encode())
        while True:
            m = json.loads(self.f.readline())
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise RuntimeError("QMP %s: %s" % (name, m["error"]["desc"]))
            if "event" in m:
                self.events.append(m)

    def event_time(self, name, timeout=10):
        """The host time of the first event name (waiting for it)."""
        end = time.time() + timeout
        while True:
            for e in self.events:
                if e["event"] == name:
                    return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6
            if time.time() > end:
                raise RuntimeError("no %s event" % name)
            self.cmd("query-status")  # collects the events that came meanwhile
            time.sleep(0.01)


def qemu_vm(a, ns, tag, extra):
    console = os.path.join(a.tmp, "qemu-%s.console" % tag)
    qmp = os.path.join(a.tmp, "qemu-%s.qmp" % tag)
    for p in (console, qmp):
        if os.path.exists(p):
            os.unlink(p)
    p = subprocess.Popen(
        ns_cmd(ns, ["qemu-system-x86_64", "-accel", "kvm", "-machine", "microvm",
                    "-name", "bench-%s,debug-threads=on" % tag,  # "CPU 0/KVM"
                    "-m", "%dM" % a.mem, "-nodefaults", "-no-reboot", "-display", "none",
                    "-serial", "file:" + console,
                    "-device", "isa-debug-exit,iobase=0x501,iosize=1",
                    "-kernel", a.guest32, "-append", cmdline(a),
                    "-qmp", "unix:%s,server=on,wait=off" % qmp] + extra),
        stdout=subprocess.DEVNULL, stderr=open(console + ".err", "w"))
    return p, console, qmp


def qemu(a):
    res = {"tool": "qemu"}
    port = a.port + 1
    dst, _, dqmp = qemu_vm(a, a.ns_dst, "dst", ["-incoming", "tcp:%s:%d" % (a.addr, port)])
    src, console, sqmp = qemu_vm(a, a.ns_src, "src", [])
    try:
        wait_file(console, "mem pass 1 ok", 300, src)
        time.sleep(a.settle)
        s, d = QMP(sqmp), QMP(dqmp)
        offset = os.path.getsize(console)
        # QEMU's defaults would cap it at 128 MiB/s and aim at 300 ms: the
        # same target as smove, no bandwidth cap (the link shapes), and
        # auto-converge as smove throttles.
        s.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "auto-converge", "state": True}])
        s.cmd("migrate-set-parameters", **{"downtime-limit": a.downtime,
                                          "max-bandwidth": 100 << 30})
        sched = Sched([src.pid, dst.pid])
        s.cmd("migrate", uri="tcp:%s:%d" % (a.addr, port))
        end = time.time() + a.timeout
        while True:
            q = s.cmd("query-migrate")
            if q.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.time() > end:
                s.cmd("migrate_cancel")
                res["error"] = "no convergence in %d s (throttle %s %%)" % (
                    a.timeout, q.get("cpu-throttle-percentage", 0))
                return res
            sched.sample()
            time.sleep(0.05)
        sched.report(res)
        if q["status"] != "completed":
            res["error"] = "migration %s: %s" % (q["status"], q.get("error-desc", ""))
            return res
        ram = q["ram"]
        # QEMU's own downtime ends when the source has sent everything,
        # before the destination has loaded and resumed.
        down = (d.event_time("RESUME") - s.event_time("STOP")) * 1e3
        res.update(total_s=q["total-time"] / 1e3, downtime_ms=down,
                   sent_ms=q["downtime"], rounds=ram["dirty-sync-count"],
                   bytes=ram["transferred"], normal_pages=ram["normal"],
                   zero_pages=ram["duplicate"])
        time.sleep(0.3)
        res["gap_ms"] = max(gaps(console, offset) or 0,
                            gaps(os.path.join(a.tmp, "qemu-dst.console")) or 0)
        verify(res, lambda: dst.poll() is not None, os.path.join(a.tmp, "qemu-dst.console"),
               a.verify)
    finally:
        for p in (src, dst):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return res


# ---- the table ------------------------------------------------------------------------


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[(len(v) - 1) // 2] if v else None


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def table(a):
    rows = [json.loads(l) for l in open(a.results) if l.startswith("{")]
    runs = {}
    for r in rows:
        if r.get("kind") == "link":
            runs.setdefault(r["link"], []).append(r["link_bps"])
    links = {k: max(v) for k, v in runs.items()}  # load only ever slows a run down
    groups = {}
    for r in rows:
        if r.get("kind") == "run":
            groups.setdefault((r["mem"], r["rate"], r["link"]), {}).setdefault(
                r["tool"], []).append(r)
    print("link limits (one TCP stream over the same link, best of %s): " % (
        "/".join(str(len(v)) for v in runs.values())) + ", ".join(
            "%s %.0f MB/s (%s)" % (k, v / 1e6, " ".join("%.0f" % (x / 1e6) for x in runs[k]))
            for k, v in links.items()))
    print("ratios: time = total / (touched / link), bytes = sent / (touched + re-dirtied);")
    print("  touched = smove's round 1 and the pages it deferred (the guest's non-zero memory);")
    print("  re-dirtied = the pages")
    print("  KVM's dirty log reported, summed over the rounds (exact here; smove rows, and")
    print("  idle rows: none); QEMU's bytes are compared with smove's below instead;")
    print("  down = the hosts' view, source pause to destination resume (QEMU: its QMP")
    print("  events STOP to RESUME); sent = pause to the last byte sent (QEMU's own downtime);")
    print("  gap = the guest's longest heartbeat gap while it moved (QEMU's guest clock")
    print("  stands still while QEMU has it stopped: most of its pause is not seen);")
    print("  cpu_ms, wait = CPU time of both sides' threads while it moved (vCPUs apart:")
    print("  vcpu), and their time waiting for a CPU (run queue: the machine's load)")
    print("  vs QEMU = smove / QEMU (below 1 is better for time, downtime, bytes)")
    hdr = ("%-5s %-5s %-9s %-12s %3s %7s %7s %7s %7s %6s %7s %6s %6s %6s %6s %6s" %
           ("guest", "rate", "link", "tool", "n", "total_s", "down_ms", "sent_ms", "gap_ms",
            "rounds", "MB_sent", "time", "bytes", "cpu_ms", "wait", "vcpu"))
    print(hdr)
    qemu_by = {}
    order = {"idle": -1, "max": 1e9}
    for key in sorted(groups, key=lambda k: (k[0], order.get(k[1]) or float(k[1]), k[2])):
        mem, rate, ln = key
        tools = groups[key]
        touched = median([r.get("touched") for t in tools for r in tools[t]
                          if t.startswith("smove")])
        for tool in sorted(tools, key=lambda t: (t == "qemu", t)):
            rs = tools[tool]
            ok = [r for r in rs if "error" not in r]
            errs = [r["error"] for r in rs if "error" in r]
            m = {k: median([r.get(k) for r in ok]) for k in
                 ("total_s", "downtime_ms", "gap_ms", "sent_ms", "rounds", "bytes", "cpu_ms",
                  "wait_ms", "vcpu_ms")}
            tr = br = None
            if ok and touched:
                tr = m["total_s"] / (touched / links[ln])
                if rate == "idle":
                    red = 0
                elif tool.startswith("smove"):
                    red = median([r["dirtied"] for r in ok])
                else:
                    red = None
                br = None if red is None else m["bytes"] / (touched + red)
            print("%-5s %-5s %-9s %-12s %3s %7s %7s %7s %7s %6s %7s %6s %6s %6s %6s %6s" % (
                "%dG" % (mem // 1024), rate, ln, tool, "%d/%d" % (len(ok), len(rs)),
                fmt(m["total_s"], "%.2f"), fmt(m["downtime_ms"], "%.1f"),
                fmt(m["sent_ms"], "%.1f"), fmt(m["gap_ms"], "%.1f"), fmt(m["rounds"]),
                fmt(m["bytes"] and m["bytes"] / 1e6), fmt(tr, "%.2f"), fmt(br, "%.3f"),
                fmt(m["cpu_ms"]), fmt(m["wait_ms"]), fmt(m["vcpu_ms"])))
            for e in sorted(set(errs)):
                print("      %s: %s" % (tool, e))
            if tool == "qemu":
                qemu_by[key] = m
            else:
                m["_tool"] = tool
                qemu_by.setdefault(("s",) + key, []).append(m)
        q = qemu_by.get(key)
        for m in qemu_by.get(("s",) + key, []):
            if q and q["total_s"]:
                print("      %s vs QEMU: total %.2f, downtime %s, gap %s, bytes %.2f, cpu %s" % (
                    m["_tool"], m["total_s"] / q["total_s"] if m["total_s"] else 0,
                    fmt(m["downtime_ms"] / q["downtime_ms"] if m["downtime_ms"] and
                        q["downtime_ms"] else None, "%.2f"),
                    fmt(m["gap_ms"] / q["gap_ms"] if m["gap_ms"] and q["gap_ms"] else None,
                        "%.2f"),
                    m["bytes"] / q["bytes"] if m["bytes"] else 0,
                    fmt(m["cpu_ms"] / q["cpu_ms"] if m["cpu_ms"] and q["cpu_ms"] else None,
                        "%.2f")))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for c in ("link", "sink"):
        q = sub.add_parser(c)
        q.add_argument("addr")
        q.add_argument("port", type=int)
        if c == "link":
            q.add_argument("mib", type=int)
            q.add_argument("name")
    for c in ("smove", "qemu"):
        q = sub.add_parser(c)
        q.add_argument("--smove")
        q.add_argument("--guest")
        q.add_argument("--guest32")
        q.add_argument("--mode", default="bitmap")
        q.add_argument("--mem", type=int, required=True, help="MiB")
        q.add_argument("--ws", type=int, required=True, help="working set, MiB")
        q.add_argument("--rate", required=True, help="idle, MiB/s, or max")
        q.add_argument("--downtime", type=int, default=20)
        q.add_argument("--addr", required=True)
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--ns-src", default="")
        q.add_argument("--ns-dst", default="")
        q.add_argument("--tmp", required=True)
        q.add_argument("--src-dir")
        q.add_argument("--dst-dir")
        q.add_argument("--store")
        q.add_argument("--settle", type=float, default=2)
        q.add_argument("--serve-pid", type=int, default=0)
        q.add_argument("--verify", type=float, default=2,
                       help="seconds the guest goes on checking on the destination")
        q.add_argument("--timeout", type=int, default=120)
        q.add_argument("--link", required=True, help="the link's name in the table")
    q = sub.add_parser("table")
    q.add_argument("results")
    a = p.parse_args()
    if a.cmd in ("smove", "qemu"):
        try:
            r = smove(a) if a.cmd == "smove" else qemu(a)
        except Exception as e:  # one failed run is a row's error, not the bench's
            r = {"tool": "smove-" + a.mode if a.cmd == "smove" else "qemu", "error": str(e)}
        r.update(kind="run", mem=a.mem, rate=a.rate, link=a.link)
        print(json.dumps(r), flush=True)
    else:
        {"link": link, "sink": sink, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
