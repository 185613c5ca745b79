#!/bin/sh
# `smove move --cancel` at every phase of a migration of a guest writing
# memory and disk (the test hooks of docs/migration.md hold a side there).
# Before RESUME a cancel rolls back: `smove move` exits 5 saying it was
# cancelled, vm1 runs on the source with its disk and its guest goes on, and
# the destination (still serving) has discarded its copy, and the report
# counts the disk bytes sent:
#   preflight        (the destination has not answered yet)
#   storage          (bulk copy, --bandwidth 4)
#   synced           (disks mirrored synchronously)
#   round-1          (after memory round 1)
#   switchover       (the source paused, before the last round)
#   ready-wait       (the source paused, waiting for the destination to load)
#   before-resume    (the destination ready, RESUME not sent)
# From RESUME on the cancel is refused, saying why, and the migration goes on:
#   after-resume     (RESUME received there; then serve dies: in doubt)
#   after-running    (RUNNING received here; then serve dies: done)
# A QEMU VM runs three (the bulk copy, the source paused waiting for the
# destination, and a refused cancel) outside check-full (SMOVE_TEST_FULL=1);
# test-migrate-cancel cancels after round 1.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
cases="preflight storage synced round-1 switchover ready-wait before-resume after-resume
	after-running"
[ "$RUNTIME" = qemu ] && [ "${SMOVE_TEST_FULL:-0}" = 0 ] && cases="storage ready-wait after-running"
# shellcheck disable=SC2086
[ $# = 1 ] || fault_cases "$0" $cases
[ $# = 1 ] || exit 0

fault_move "$1"
case $1 in
after-resume | after-running)
	expect_status 1 src move --cancel vm1
	grep -q "too late to cancel: the destination was told to resume the VM" "$T/stdout" ||
		fail "the refused cancel does not say why: $(cat "$T/stdout" "$T/stderr")"
	kill -9 "$SERVE_PID"
	move_wait
	grep '"result"' "$T/move.json"
	if [ "$1" = after-running ]; then
		expect_result 0 done
		on_destination
	else
		in_doubt
		start_serve
		expect_status 5 src move --resolve vm1
		on_source
	fi
	exit 0
	;;
esac
# copied: the bytes the bulk copy had copied at its last progress event.
copied() {
	grep '"event":"progress"' "$T/move.json" | tail -n 1 |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["done"])'
}
if [ "$1" = storage ]; then # cancel once the bulk copy has copied something
	for i in $(seq 100); do [ "$(copied)" -gt 0 ] && break; sleep 0.1; done
fi
expect_status 0 src move --cancel vm1
move_wait
grep '"result"' "$T/move.json"
expect_result 5 rolled-back "cancelled on the source"
# The report counts the disk bytes sent before the rollback: none before the
# storage phase, at least the bulk copy's progress during it, and the whole
# disk (8 MiB the guest wrote) once it was mirrored.
disk=$(event 'd["bytes"]["disk"]')
case $1 in
preflight) [ "$disk" = 0 ] || fail "bytes.disk is $disk before any disk was copied" ;;
storage)
	[ "$(copied)" -gt 0 ] && [ "$disk" -ge "$(copied)" ] ||
		fail "bytes.disk is $disk although the bulk copy had copied $(copied) bytes"
	;;
*) [ "$disk" -ge 8388608 ] || fail "bytes.disk is $disk although the disk was mirrored" ;;
esac
kill -0 "$SERVE_PID" || fail "serve ended"
grep -q "cancelled on the source" "$T/serve.err" || fail "serve does not say the source cancelled"
on_source
# Nothing holds the VM: it can be moved there at once.
move vm1
expect_result 0 done
on_destination
