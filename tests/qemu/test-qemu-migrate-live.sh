#!/bin/sh
# A live migration (pre-copy) between two QEMUs of the runtime on this host,
# run once to prove the primitives: capabilities pause-before-switchover and
# events, getfd + migrate fd: through a socketpair, the wait for
# pre-switchover (the source paused by QEMU, its block layer drained: the
# disk is handed over there), migrate-continue, completed, the destination's
# incoming wait, resume. The guest (2 vCPUs: a memory pattern rewritten at a
# limited rate and verified, disk records) must go on to its verdict on the
# destination, with every record of the last pass on its image. Under TCG
# (FACTS.md: its dirty tracking lost pages with a busy Linux guest; this
# guest dirties 8 MiB/s): a failure here is worth reading before blaming the
# runtime.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
"$SMOVE" disk create --size 8M src.vhdx >/dev/null
vm_config vm.json mover \
	"disk=4M diskpasses=60 mem=16M passes=10 hb=20 hbprint=10 cpu0=disk+mem" \
	"$T/src.vhdx" vhdx
timeout 900 "$QEMU_VM" migrate vm.json "$T/dst.vhdx" live >out 2>err ||
	{ cat out err; tail -n 5 vm.json.console vm.json.console.dest-console; fail "qemu-vm migrate"; }
cat out
grep -q "^pre-switchover after" out || fail "the migration did not stop at pre-switchover"
grep -q "^destination: state paused qemu paused" out || fail "the destination was not paused after the move"
grep -q "^verdict: ok" vm.json.console.dest-console || fail "no verdict on the destination's console"
! grep -q "verdict" vm.json.console || fail "the source reached a verdict: it ran after the move"
# The guest went on where it was: no new boot, the disk passes resumed.
! grep -q "^smove-guest:" vm.json.console.dest-console || fail "the guest booted again"
first=$(sed -n 's/^disk 0 pass \([0-9]*\) ok$/\1/p' vm.json.console.dest-console | head -n 1)
[ -n "$first" ] && [ "$first" -ge 3 ] ||
	fail "the destination's first disk pass is '$first', not a later one than the source's"
check_disk dst.vhdx vhdx 4M 60
echo PASS
