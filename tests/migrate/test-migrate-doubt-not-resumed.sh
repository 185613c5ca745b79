#!/bin/sh
# In doubt, settled as not resumed: the destination dies right after RESUME
# arrives, before it recorded anything (test hook dest-resume). `smove move`
# exits 6 and the VM stays paused on the source; the incoming VM ended with
# serve, and the next serve removes the partial copy and records that it was
# never resumed. `smove move --resolve` then resumes the VM on the source
# (exit 5, rolled back); its guest goes on with every invariant intact.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
export SMOVE_TEST_STALL=dest-resume
start_serve
unset SMOVE_TEST_STALL
fault_vm
move_bg vm1
wait_for "$T/serve.err" "stalling at dest-resume"
kill -9 "$SERVE_PID"
move_wait
expect_move 6
[ "$(status "$T/src/vm1.sock" 'd["state"]')" = in-doubt ] || fail "the source VM is not held in doubt"
start_serve
nothing_on_dest vm1
expect_status 5 src move --resolve vm1
grep -q "rolled back" "$T/stdout" || fail "--resolve does not say the migration was rolled back"
runs "$T/src/vm1.sock"
[ -e "$T/disk.raw" ] || fail "the source's disk is gone"
[ ! -e "$T/src-state/vm1.migration" ] || fail "the source's record is still there"
guest_goes_on "$T/vm1.console"
