#!/bin/sh
# A source process that dies while its migration is in doubt leaves its record
# (RUNDIR/NAME.migration): `smove ps` and `smove run` report it, the VM cannot
# be started again by mistake, and `smove move --resolve NAME` settles it from
# the record alone. Here the destination never resumed: the record goes and the
# VM may be started again (its memory state is lost with its process).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
export SMOVE_TEST_STALL=dest-resume
start_serve
unset SMOVE_TEST_STALL
truncate -s 8M "$T/disk.raw"
start_vm vm1 --memory 128M --disk "$T/disk.raw" --cmdline "mem=8M passes=0 hb=5"
move_bg vm1
wait_for "$T/serve.err" "stalling at dest-resume"
kill -9 "$SERVE_PID"
move_wait
expect_move 6
kill -9 "$VM_PID"
wait "$VM_PID" || true
[ -e "$T/src-state/vm1.migration" ] || fail "no record of the migration in doubt"
[ "$(ps_state src vm1)" = in-doubt ] || { src ps; fail "smove ps does not report the migration in doubt"; }
src ps | grep -q "'smove move --resolve vm1'" || fail "smove ps does not say how to settle it"
expect_status 1 src run --name vm1 --guest "$GUEST" --disk "$T/disk.raw" --console "$T/c2"
expect_stderr "was in doubt.*--resolve vm1"
start_serve
expect_status 5 src move --resolve vm1
[ ! -e "$T/src-state/vm1.migration" ] || fail "the record is still there"
[ -e "$T/disk.raw" ] || fail "the disk is gone"
nothing_on_dest vm1
