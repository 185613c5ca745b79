#!/bin/sh
# A cancel before RESUME: the migration of a guest writing memory and disk
# records is stopped after its first memory round (the source waits there, by
# the test hook SMOVE_TEST_STALL=source-memory) with `smove move --cancel`.
# `smove move` exits 5 (rolled back) counting the disk bytes it had sent, the
# VM runs on at the source with its disk, its invariants intact, and the
# destination's partial copy is gone.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
fault_vm source-memory
move_bg vm1
wait_for "$T/move.json" '"event":"round"'
[ -d "$T/store/vm1" ] || fail "the destination has no copy in progress"
src move --cancel vm1 >/dev/null
move_wait
expect_move 5
[ "$(event 'd["result"]')" = rolled-back ] || fail "result is not rolled-back"
event 'd["error"]' | grep -q "cancelled" || fail "the result does not say it was cancelled"
disk=$(event 'd["bytes"]["disk"]')
[ "$disk" -ge 8388608 ] || fail "the report counts $disk disk bytes although the 8 MiB disk was mirrored"
runs "$T/src/vm1.sock"
[ -e "$T/disk.raw" ] || fail "the source's disk is gone"
nothing_on_dest vm1
guest_goes_on "$T/vm1.console"
# The VM can be moved afterwards: nothing is left holding it.
move vm1 --dry-run
expect_move 0
