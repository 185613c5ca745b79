#!/bin/sh
# The destination killed (`smove serve`, SIGKILL) at every phase of a
# migration of a guest writing memory and disk; the test hooks
# (SMOVE_TEST_STALL, docs/migration.md) hold one side at the phase (lib.sh's
# fault_move lists them). At every moment at most one copy runs and nothing is
# lost:
#   preflight        `smove move` exits 1 (failed, nothing changed): vm1 runs here
#   storage          (bulk copy, --bandwidth 4) exit 5, rolled back: vm1 runs here
#   synced           (disks mirrored synchronously) exit 5, rolled back
#   round-1, round-3 (memory pre-copy) exit 5, rolled back
#   switchover       (the source paused, before the last round) exit 5: vm1
#                    resumes here
#   ready-wait       (the source paused, the state sent) exit 5: vm1 resumes here
#   before-resume    (destination ready, RESUME not sent) exit 5: vm1 resumes here
#   after-resume     (RESUME received, nothing done) exit 6, in doubt: vm1 paused
#                    here; `smove move --resolve` against the restarted serve
#                    settles it as never resumed (exit 5): vm1 resumes here
#   before-running   (resumed there, RUNNING not sent) exit 6, in doubt: vm1 runs
#                    there (it outlives serve); --resolve settles it as resumed
#                    (exit 0): the source ends and deletes its disk
#   after-running    (RUNNING received, COMMIT not sent) exit 0, done: vm1 runs
#                    there, the source has ended and deleted its disk
# After a rollback a serve started anew discards what the killed one left.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
[ $# = 1 ] || fault_cases "$0" preflight storage synced round-1 round-3 switchover \
	ready-wait before-resume after-resume before-running after-running
[ $# = 1 ] || exit 0

fault_move "$1"
# The phase the source is in when the destination dies.
case $1 in
switchover | ready-wait | before-resume | after-resume | before-running | after-running)
	[ "$(ps_state src vm1)" = paused ] || fail "the source runs while it switches over" ;;
*) runs "$T/src/vm1.sock" ;;
esac
kill -9 "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
move_wait
grep '"result"' "$T/move.json"
case $1 in
preflight)
	expect_result 1 failed "closed"
	on_source
	[ ! -e "$T/store/.smove-sessions" ] || [ -z "$(ls -A "$T/store/.smove-sessions")" ] ||
		fail "a preflight left a record"
	;;
after-resume)
	in_doubt
	start_serve
	expect_status 5 src move --resolve vm1
	grep -q "rolled back; the VM runs here: the destination never resumed" "$T/stdout" ||
		fail "--resolve does not say the migration was rolled back: $(cat "$T/stdout")"
	on_source
	;;
before-running)
	in_doubt
	runs "$T/dst/vm1.sock"
	start_serve
	expect_status 0 src move --resolve vm1
	grep -q "settled: the VM runs there" "$T/stdout" ||
		fail "--resolve does not say where the VM runs: $(cat "$T/stdout")"
	on_destination
	;;
after-running)
	expect_result 0 done
	grep -q '"phase":"warning"' "$T/move.json" || fail "no warning that COMMIT went unanswered"
	on_destination
	;;
*)
	expect_result 5 rolled-back "closed by peer|reset|broken pipe|to the destination failed"
	on_source
	;;
esac
