#!/bin/sh
# A migration between two QEMUs of the runtime on this host, stop-and-copy:
# the source (2 vCPUs: one rewriting and verifying a memory pattern, one
# writing checksummed disk records through smove's NBD server) is paused
# first, its disk handed over (copied while paused and drained), then QEMU's
# stream goes through a socketpair (getfd + migrate fd:, migrate-incoming
# fd:) to a destination started with -incoming defer and its disk exported
# without a backend until then. The destination is resumed (the source held
# by a resume block) and its guest goes on to its verdict: every memory pass
# verified, every disk record of the last pass on the destination's image.
# Twice: the destination's disk attached before the stream, and (as
# memsync's switchover does) only once the state is loaded: QEMU reads
# nothing from its disks until it runs. Runs under TCG: no /dev/kvm needed (stop-and-copy does not depend on TCG's
# dirty tracking, which FACTS.md found unreliable for live pre-copy).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
for mode in stop-copy stop-copy-late; do
	rm -f src.vhdx dst.vhdx vm.json.console vm.json.console.dest-console
	"$SMOVE" disk create --size 8M src.vhdx >/dev/null
	vm_config vm.json mover \
		"disk=4M diskpasses=60 mem=16M passes=10 hb=20 hbprint=10 cpu0=disk+mem" \
		"$T/src.vhdx" vhdx
	timeout 900 "$QEMU_VM" migrate vm.json "$T/dst.vhdx" $mode >out 2>err ||
		{ cat out err; tail -n 5 vm.json.console vm.json.console.dest-console; fail "qemu-vm migrate $mode"; }
	cat out
	grep -q "^destination: state paused qemu paused" out || fail "the destination was not paused after the move"
	grep -q "^verdict: ok" vm.json.console.dest-console || fail "no verdict on the destination's console"
	grep -q "^mem 0: 16 MiB x 10 passes" vm.json.console.dest-console ||
		fail "the memory program did not run on the destination"
	! grep -q "verdict" vm.json.console || fail "the source reached a verdict: it ran after the move"
	# The guest went on where it was: no new boot, the disk passes resumed.
	! grep -q "^smove-guest:" vm.json.console.dest-console || fail "the guest booted again"
	first=$(sed -n 's/^disk 0 pass \([0-9]*\) ok$/\1/p' vm.json.console.dest-console | head -n 1)
	[ -n "$first" ] && [ "$first" -ge 3 ] ||
		fail "the destination's first disk pass is '$first', not a later one than the source's"
	check_disk dst.vhdx vhdx 4M 60
done
echo PASS
