#!/usr/bin/python3
# tests/fleet/watch.py SMOVE PSK OUT STOP HOST:PORT=TOTAL...: asks each host
# its inventory (smove ps --host --json) about every 0.3 s until the file
# STOP exists, and writes to OUT one line per host and poll:
#   HOST incoming=N max=M memory=BYTES total=TOTAL vms=a,b
# where memory is what the VMs there take (running, paused or arriving: an
# arriving VM's memory is being filled) and TOTAL the memory the test gave
# the host. At the end a line "max HOST incoming=N memory=BYTES" per host.
# A poll that fails is written as "HOST error ...".
import json
import os
import subprocess
import sys
import time

smove, psk, out, stop = sys.argv[1:5]
hosts = {}
for a in sys.argv[5:]:
    h, total = a.rsplit("=", 1)
    hosts[h] = int(total)
peak = {h: [0, 0] for h in hosts}
with open(out, "w") as f:
    while not os.path.exists(stop):
        for h, total in hosts.items():
            try:
                r = subprocess.run([smove, "ps", "--host", h, "--tls-psk", psk, "--json"],
                                   capture_output=True, text=True, timeout=20)
                d = json.loads(r.stdout)
            except Exception as e:  # a host killed on purpose, or busy
                f.write("%s error %s\n" % (h, e))
                continue
            vms = [v for v in d["vms"] if v["state"] in ("running", "paused", "incoming")]
            mem = sum(v.get("memory", 0) for v in vms)
            inc = d["limits"]["incoming"]
            peak[h][0] = max(peak[h][0], inc)
            peak[h][1] = max(peak[h][1], mem)
            f.write("%s incoming=%d max=%d memory=%d total=%d vms=%s\n" %
                    (h, inc, d["limits"]["max_incoming"], mem, total,
                     ",".join(v["name"] for v in vms)))
        f.flush()
        time.sleep(0.3)
    for h, (inc, mem) in peak.items():
        f.write("max %s incoming=%d memory=%d\n" % (h, inc, mem))
