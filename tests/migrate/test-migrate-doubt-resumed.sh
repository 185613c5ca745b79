#!/bin/sh
# In doubt, settled as resumed: the destination resumes the VM and records it,
# then dies before it can answer RUNNING (the test hook stalls it there and the
# test kills it). `smove move` exits 6: the VM is paused on the source with all
# its files, and refuses to resume there; its status and `smove ps` say
# in-doubt and how to settle it; on the destination it runs (it outlives serve). `smove move --resolve` asks the restarted serve, which
# answers from its record: the source ends its copy and deletes its disk.
# At no moment do two copies run.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
export SMOVE_TEST_STALL=dest-running
start_serve
unset SMOVE_TEST_STALL
fault_vm
move_bg vm1
wait_for "$T/serve.err" "stalling at dest-running"
[ "$(status "$T/src/vm1.sock" 'd["state"]')" = paused ] || fail "the source runs while the destination does"
kill -9 "$SERVE_PID"
move_wait
expect_move 6
[ "$(event 'd["result"]')" = in-doubt ] || fail "result is not in-doubt"
[ "$(event 'd["resolve"]')" = "smove move --resolve vm1" ] || fail "the result does not say how to settle it"
[ "$(status "$T/src/vm1.sock" 'd["state"]')" = in-doubt ] || fail "status does not say in-doubt"
[ "$(status "$T/src/vm1.sock" 'd["migration"]["resolve"]')" = "smove move --resolve vm1" ] ||
	fail "status does not say how to settle it"
[ "$(status "$T/src/vm1.sock" 'd["migration"]["to"]')" = "$DST_ADDR:$PORT" ] || fail "status does not say where it went"
# smove ps: a state of its own, and the command that settles it
src ps >"$T/ps" || fail "smove ps failed"
grep -q "^vm1 .* in-doubt .*'smove move --resolve vm1'" "$T/ps" || { cat "$T/ps"; fail "smove ps does not show vm1 in doubt"; }
[ "$(src ps --json | /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)["vms"][0]; print(v["state"], v["resolve"])')" = \
	"in-doubt smove move --resolve vm1" ] || fail "smove ps --json does not show vm1 in doubt"
ctl "$T/src/vm1.sock" '{"cmd":"resume"}' | grep -q '"ok":false' || fail "the source VM could be resumed"
runs "$T/dst/vm1.sock"
[ -e "$T/disk.raw" ] || fail "the source's disk is gone while in doubt"
start_serve
expect_status 0 src move --resolve vm1
wait "$VM_PID" || fail "the source's smove run did not exit 0"
[ ! -e "$T/disk.raw" ] || fail "the source's disk is still there"
[ ! -e "$T/src-state/vm1.migration" ] || fail "the source's record is still there"
runs "$T/dst/vm1.sock"
guest_goes_on "$T/store/vm1/console.log"
