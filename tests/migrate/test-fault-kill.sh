#!/bin/sh
# A side killed (SIGKILL) at every phase of a migration of a guest writing
# memory and disk; the test hooks (SMOVE_TEST_STALL, docs/migration.md) hold
# one side at the phase (lib.sh's fault_move lists them). Each case ends with
# exactly one running VM whose guest then re-verifies its memory and every
# disk record (on_source, on_destination), or, where a person must decide,
# none running and both copies intact; nothing is lost.
# The destination (`smove serve`) killed:
#   preflight        `smove move` exits 1 (failed, nothing changed): vm1 runs here
#   storage          (bulk copy, --bandwidth 4) exit 5, rolled back: vm1 runs here
#   synced           (disks mirrored synchronously) exit 5, rolled back
#   round-1, round-3 (memory pre-copy) exit 5, rolled back
#   switchover       (the source paused, before the last round) exit 5: vm1
#                    resumes here
#   ready-wait       (the source paused, the state sent) exit 5: vm1 resumes here
#   before-resume    (destination ready, RESUME not sent) exit 5: vm1 resumes here
#   after-resume     (RESUME received, nothing done) exit 6, in doubt: vm1 paused
#                    here, its copy there never runs (its process ends with
#                    serve); `smove move --resolve` against the restarted
#                    serve settles it as never resumed (exit 5): vm1 resumes here
#   resume-sent      (the VM's process there asked to resume, its answer not
#                    read) exit 6, in doubt: vm1 runs there all the same (its
#                    own process decided); --resolve settles it as resumed,
#                    while 20 connections that say nothing wait at serve
#   before-running   (resumed there, RUNNING not sent) exit 6, in doubt: vm1 runs
#                    there (it outlives serve); --resolve settles it as resumed
#                    (exit 0): the source ends and deletes its disk
#   after-running    (RUNNING received, COMMIT not sent) exit 0, done: vm1 runs
#                    there, the source has ended and deleted its disk
#   after-commit     (COMMIT received, not recorded) exit 0, done, as above;
#                    the copy there, stopped, does not start again by `smove
#                    run` without --force (its migration was never committed)
# The incoming VM's process killed between its record "resuming" and the
# resume (resuming): exit 6, in doubt, and --resolve cannot settle it (the
# guest might have run there): vm1 runs nowhere, the source's copy and the
# destination's are both kept, identical. A person decides: `smove move
# --abandon vm1 --force` runs it here again, and the copy there does not
# start without --force.
# The source (the VM's own process) killed, at every phase (src-PHASE):
#   src-preflight .. src-round-3 (before the switchover) the VM ends with its
#                    process: the destination discards its copy; the source's
#                    disk holds every write the guest completed; `smove run`
#                    starts it again
#   src-switchover, src-ready-wait, src-before-resume, src-after-resume
#                    (its record of the switchover written; RESUME not sent,
#                    or not acted on there) `smove ps` says in doubt and
#                    `smove run` refuses it; --resolve: never resumed (exit 5);
#                    it starts again
#   src-resume-sent, src-before-running, src-after-running (resumed there)
#                    vm1 runs there; --resolve, from another directory (the
#                    disk was given by a relative path; a file of that name
#                    there is not touched) settles it as resumed: the
#                    source's disk is deleted
#   src-cleanup      (RUNNING received, the disk deleted, the record not yet)
#                    vm1 runs there; --resolve completes the cleanup
# After a rollback a serve started anew discards what the killed one left.
# A QEMU VM takes tens of seconds a case here: outside check-full
# (SMOVE_TEST_FULL=1) it runs the cases that no other test covers
# (test-migrate-dest-killed, -doubt-resumed, -doubt-not-resumed and
# test-fault-cancel kill serve in the pre-copy, before running and after
# RESUME; test-migrate-doubt-crashed kills the source in doubt).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
cases="preflight storage synced round-1 round-3 switchover ready-wait before-resume after-resume
	resume-sent before-running after-running after-commit resuming src-preflight src-storage
	src-synced src-round-1 src-round-3 src-switchover src-ready-wait src-before-resume
	src-after-resume src-resume-sent src-before-running src-after-running src-cleanup"
[ "$RUNTIME" = qemu ] && [ "${SMOVE_TEST_FULL:-0}" = 0 ] &&
	cases="resume-sent resuming after-commit src-before-running src-cleanup"
# shellcheck disable=SC2086
[ $# = 1 ] || fault_cases "$0" $cases
[ $# = 1 ] || exit 0

case $1 in
src-*)
	fault_move "${1#src-}"
	kill_source
	move_wait
	;;
resuming)
	fault_move resuming
	# (the hook's line names the incoming VM's process)
	pid=$(sed -n 's/.*stalling at incoming-resuming (pid \([0-9]*\)).*/\1/p' "$T/serve.err")
	[ -n "$pid" ] || fail "no pid of the incoming VM's process"
	grep -q '"resuming"' "$T"/store/.smove-sessions/*.json || fail "the record does not say resuming"
	[ "$(ps_state src vm1)" = paused ] || fail "the source runs while the destination resumes"
	kill -9 "$pid"
	move_wait
	;;
*)
	fault_move "$1"
	# The phase the source is in when the destination dies.
	case $1 in
	switchover | ready-wait | before-resume | after-resume | resume-sent | before-running | \
		after-running | after-commit)
		[ "$(ps_state src vm1)" = paused ] || [ "$(ps_state src vm1)" = none ] ||
			fail "the source runs while it switches over: $(ps_state src vm1)"
		;;
	*) runs "$T/src/vm1.sock" ;;
	esac
	kill -9 "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	move_wait
	grep '"result"' "$T/move.json" || true
	;;
esac

# the_copy_there: the destination's image of vm1 (its final or temporary name).
the_copy_there() {
	for f in "$T/store/vm1/disk.raw" "$T/store/vm1/.disk.raw.smove-tmp"; do
		[ -e "$f" ] && echo "$f" && return 0
	done
	ls -la "$T/store/vm1" >&2 || true
	fail "the destination has no copy of vm1's disk"
}
# not_started_there DISK: `smove run` on the destination refuses vm1's copy.
not_started_there() {
	# shellcheck disable=SC2046
	expect_status 1 dst run --name vm1 $(runtime_args --memory 128M --disk "$1")
	expect_stderr "arrived by a migration that was never committed"
}

case $1 in
preflight)
	expect_result 1 failed "closed"
	on_source
	[ ! -e "$T/store/.smove-sessions" ] || [ -z "$(ls -A "$T/store/.smove-sessions")" ] ||
		fail "a preflight left a record"
	;;
after-resume)
	in_doubt
	# Its process there ended with serve, never resumed.
	for i in $(seq 100); do [ "$(ps_state dst vm1)" = none ] && break; sleep 0.1; done
	[ "$(ps_state dst vm1)" = none ] || fail "the copy there still runs: $(ps_state dst vm1)"
	! grep -q '"resuming"\|"resumed"' "$T"/store/.smove-sessions/*.json ||
		fail "the destination's record says it resumed"
	start_serve
	expect_status 5 src move --resolve vm1
	grep -q "rolled back; the VM runs here: the destination never resumed" "$T/stdout" ||
		fail "--resolve does not say the migration was rolled back: $(cat "$T/stdout")"
	on_source
	;;
resume-sent | before-running)
	in_doubt
	runs "$T/dst/vm1.sock"
	start_serve
	# Connections that say nothing do not keep the RESOLVE out.
	silent_peers
	grep -qx "held 16 refused 4" "$T/silent20" || fail "silent connections: $(cat "$T/silent20")"
	expect_status 0 src move --resolve vm1
	grep -q "settled: the VM runs there" "$T/stdout" ||
		fail "--resolve does not say where the VM runs: $(cat "$T/stdout")"
	on_destination
	;;
after-running | after-commit)
	expect_result 0 done
	grep -q '"phase":"warning"' "$T/move.json" || fail "no warning that COMMIT went unanswered"
	on_destination
	if [ "$1" = after-commit ]; then
		ctl "$T/dst/vm1.sock" '{"cmd":"stop"}' >/dev/null
		for i in $(seq 100); do [ -e "$T/dst/vm1.json" ] || break; sleep 0.1; done
		not_started_there "$T/store/vm1/disk.raw"
	fi
	;;
resuming)
	in_doubt
	expect_status 6 src move --resolve vm1
	grep -q "cannot settle it: vm1 was resuming here but its process is gone" "$T/stdout" ||
		fail "--resolve does not say why it cannot settle it: $(cat "$T/stdout" "$T/stderr")"
	sed 's/^/--resolve: /' "$T/stdout"
	# None runs; both copies are kept, identical (the source paused with its
	# disk and its record; the destination's image, not started).
	[ "$(ps_state src vm1)" = in-doubt ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
	[ "$(ps_state dst vm1)" = none ] || fail "smove ps on the destination: vm1 $(ps_state dst vm1)"
	[ -e "$T/src-state/vm1.migration" ] || fail "the source's record of the doubt is gone"
	there=$(the_copy_there)
	cmp "$T/disk.raw" "$there" || fail "the two copies of vm1's disk differ"
	not_started_there "$there"
	# A person chooses the source's copy.
	expect_status 5 src move --abandon vm1 --force
	echo "--abandon: $(grep -v '^ *$' "$T/stdout" | tail -1)"
	[ -e "$T/src-state/vm1.fence" ] || fail "no fence after the abandon"
	runs "$T/src/vm1.sock"
	guest_goes_on "$T/vm1.console"
	not_started_there "$there"
	;;
src-preflight | src-storage | src-synced | src-round-1 | src-round-3 | src-switchover | \
	src-ready-wait | src-before-resume | src-after-resume)
	# The VM ended with its process, never resumed there: the destination
	# discards its copy (held at RESUME by its hook: once serve starts anew).
	if [ "$1" != src-after-resume ]; then
		for i in $(seq 100); do [ ! -e "$T/store/vm1" ] && break; sleep 0.1; done
		[ ! -e "$T/store/vm1" ] || fail "the destination kept its copy"
	fi
	disk_records_hold "$T/vm1.console" "$T/disk.raw"
	case $1 in
	src-switchover | src-ready-wait | src-before-resume | src-after-resume)
		# Its record of the switchover: in doubt until settled.
		[ "$(ps_state src vm1)" = in-doubt ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
		# shellcheck disable=SC2046
		expect_status 1 src run --name vm1 $(runtime_args --memory 128M --disk "$T/disk.raw")
		expect_stderr "was in doubt.*--resolve vm1"
		expect_status 5 src move --resolve vm1
		grep -q "never ran on the destination" "$T/stdout" ||
			fail "--resolve does not say the VM never ran there: $(cat "$T/stdout")"
		;;
	esac
	if [ "$1" = src-after-resume ]; then
		kill -9 "$SERVE_PID"
		wait "$SERVE_PID" 2>/dev/null || true
		start_serve
	fi
	[ ! -e "$T/src-state/vm1.migration" ] || fail "the source's record is still there"
	nothing_on_dest vm1
	fault_vm_again
	on_source
	;;
src-resume-sent | src-before-running | src-after-running | src-cleanup)
	runs "$T/dst/vm1.sock"
	[ "$(ps_state src vm1)" = in-doubt ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
	# From another directory, holding a file of the disk's relative name.
	mkdir "$T/elsewhere"
	echo decoy >"$T/elsewhere/disk.raw"
	(cd "$T/elsewhere" && SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" \
		"$SMOVE" move --resolve vm1) >"$T/stdout" 2>"$T/stderr" ||
		{ cat "$T/stdout" "$T/stderr"; fail "--resolve from another directory failed"; }
	grep -q "settled: the VM runs there" "$T/stdout" ||
		fail "--resolve does not say where the VM runs: $(cat "$T/stdout")"
	[ "$(cat "$T/elsewhere/disk.raw")" = decoy ] || fail "--resolve deleted another disk.raw"
	on_destination killed
	;;
*)
	expect_result 5 rolled-back "closed by peer|reset|broken pipe|to the destination failed"
	on_source
	;;
esac
