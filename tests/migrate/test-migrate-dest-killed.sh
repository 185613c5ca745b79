#!/bin/sh
# The destination killed (SIGKILL) in the middle of the memory pre-copy: the
# source notices, rolls back (`smove move` exits 5) and the VM runs on there.
# The serve that starts next on the same storage removes the partial copy.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
fault_vm source-memory
move_bg vm1
wait_for "$T/move.json" '"event":"round"'
kill -9 "$SERVE_PID"
move_wait
expect_move 5
[ "$(event 'd["result"]')" = rolled-back ] || fail "result is not rolled-back"
runs "$T/src/vm1.sock"
[ -e "$T/disk.raw" ] || fail "the source's disk is gone"
# The incoming VM process ended with serve; the next serve cleans up.
for i in $(seq 100); do [ -e "$T/dst/vm1.json" ] || break; sleep 0.1; done
start_serve
grep -q "removed the partial copy" "$T/serve.err" || fail "serve did not clean up at start"
nothing_on_dest vm1
guest_goes_on "$T/vm1.console"
