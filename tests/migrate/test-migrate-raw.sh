#!/bin/sh
# A live migration over loopback without TLS: the test guest (1 vCPU) writes
# checksummed records on a raw disk, then rewrites and checks a memory
# pattern; it is moved mid-run. On the destination the guest finishes with
# every invariant intact (no lost or stale page, no lost record, its clock
# never going back), `smove ps` lists it there, the records read back from
# the destination's disk, and nothing is left on the source.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
truncate -s 8M "$T/disk.raw"
start_vm vm1 --memory 128M --disk "$T/disk.raw" \
	--cmdline "mem=32M passes=40 disk=8M diskpasses=3 cpu0=disk+mem hb=5"
wait_for "$T/vm1.console" "disk 0 pass 1 ok"
move vm1
expect_move 0
[ "$(event 'd["result"]')" = done ] || fail "result is not done"
wait $VM_PID || fail "the source's smove run did not exit 0"
grep -q "moved to 127.0.0.1:$PORT" "$T/vm1.run.err" || fail "smove run did not say where the VM went"
[ ! -e "$T/disk.raw" ] || fail "the source's disk is still there"
[ ! -e "$T/src/vm1.json" ] || fail "the source still registers vm1"
dst ps | grep -Eq "^vm1 .* (running|stopped)" || { dst ps; fail "smove ps does not list vm1 on the destination"; }
verdict vm1
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/store/vm1/disk.raw" 8M 3
grep -q "verdict: ok" "$T/store/vm1/console.log"
# The console log travelled with the VM: the source's lines come first.
grep -q "disk 0 pass 1 ok" "$T/store/vm1/console.log" || fail "the console log did not travel"
ls -A "$T/store/vm1" | grep -q smove-tmp && fail "temporary files left in the destination"
exit 0
