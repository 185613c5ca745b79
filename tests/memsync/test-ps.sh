#!/bin/sh
# `smove ps` lists the running VMs (name, pid, state, memory, vCPUs, disks) by
# asking their control sockets; the entry of a VM whose process was killed is
# reported as stale and removed; a second VM of the same name is refused.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
export SMOVE_RUNTIME_DIR="$T/run"
guest="$abs_top_builddir/memsync/guest/guest.elf"
truncate -s 4M "$T/d.raw"
"$SMOVE" run --name alpha --memory 64M --guest "$guest" --cmdline cpu0=idle \
	--console /dev/null --disk "$T/d.raw" &
a=$!
"$SMOVE" run --name beta --memory 96M --cpus 2 --guest "$guest" --cmdline cpu0=idle \
	--console /dev/null --dirty-log ring &
b=$!
on_exit "kill $a $b 2>/dev/null || true"
for i in $(seq 100); do [ -S "$T/run/alpha.sock" ] && [ -S "$T/run/beta.sock" ] && break; sleep 0.1; done
expect_status 0 "$SMOVE" ps
grep -Eq "^alpha +$a +running +64.0 MiB +1 +1 " "$T/stdout" || { cat "$T/stdout"; fail "alpha not listed"; }
grep -Eq "^beta +$b +running +96.0 MiB +2 +0 " "$T/stdout" || { cat "$T/stdout"; fail "beta not listed"; }
expect_status 1 "$SMOVE" run --name alpha --memory 64M --guest "$guest" --console /dev/null
expect_stderr "a VM named 'alpha' is already running"
kill -9 $b
wait $b 2>/dev/null || true
expect_status 0 "$SMOVE" ps --json
/usr/bin/python3 - "$T/stdout" "$a" <<'PY' || fail "ps --json is wrong"
import json, sys
vms = {v["name"]: v for v in json.load(open(sys.argv[1]))["vms"]}
assert vms["alpha"]["pid"] == int(sys.argv[2]) and vms["alpha"]["state"] == "running", vms
assert vms["alpha"]["memory"] == 64 << 20 and vms["alpha"]["disks"][0].endswith("d.raw"), vms
assert vms["beta"]["stale"] is True, vms
PY
expect_status 0 "$SMOVE" ps
grep -q beta "$T/stdout" && fail "the stale entry was not removed"
kill $a
wait $a || fail "alpha exited $? on SIGTERM"
expect_status 0 "$SMOVE" ps
[ "$(wc -l <"$T/stdout")" = 1 ] || fail "VMs still listed after they stopped"
