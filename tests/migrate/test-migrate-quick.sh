#!/bin/sh
# A quick migration (smove move --quick): the disk is mirrored while the guest
# runs, as in a live move, but the memory goes in one pass with the guest
# paused. The guest (its disk a VHDX) finishes on the destination with every
# invariant intact, its records read back equal to a reference, nothing left
# on the source; the events say the memory went with the VM paused, in one
# round, and the pause covers that copy.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
requires qemu-img
start_serve
live_scenario vhdx 1 --quick
grep -q '"phase":"stop-and-copy","detail":"a quick migration' "$T/move.json" ||
	fail "the move did not say it copied the memory with the VM paused"
rounds=$(event 'd["rounds"]')
downtime=$(event 'd["downtime_ms"]')
pause=$(event 'd["pause_ms"]')
echo "quick migration: $rounds round(s), downtime $downtime ms (vCPUs stopped in $pause ms)"
# One pass over the memory: QEMU counts its bitmap syncs (a stopped VM's copy
# takes one or two), smove's VMM sends one round.
[ "$rounds" -le 3 ] || fail "a quick migration took $rounds rounds"
