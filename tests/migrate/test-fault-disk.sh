#!/bin/sh
# The destination's disk is full. Its storage directory is a small tmpfs
# mounted for the test; vm1's raw disk holds 8 MiB (and a QEMU VM's kernel
# and initrd, which travel with it, about 18 MiB more: the tmpfs is larger
# by 24 MiB for it).
#   nogo      4 MiB free from the start: the preflight says no-go (exit 4),
#             naming the space the disks and files need, and nothing
#             changes on either side
#   storage   16 MiB, filled by another file during the disk's bulk copy
#             (--bandwidth 4): exit 5, rolled back, saying the space ran out
#   memory    ... filled during the memory rounds, while the guest's disk
#             writes are mirrored synchronously; the destination's image is
#             made sparse again (its blocks punched out, as on thinly
#             provisioned storage), so that the guest's next writes need space
#             there: the failed mirror stops the migration at the end of the
#             round (exit 5, saying so), not at the switchover
# After a rollback vm1 runs on the source with its disk and its guest goes on;
# the destination discards its copy and serves on; once the filler is gone
# vm1 moves there.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
[ $# = 1 ] || fault_cases "$0" nogo storage memory
[ $# = 1 ] || exit 0

case $1 in
nogo) size=4M ;;
*) size=16M ;;
esac
[ "$RUNTIME" = memsync ] || [ "$1" = nogo ] || size=40M
mount -t tmpfs -o "size=$size" smove-test "$T/store" 2>/dev/null || skip "cannot mount a tmpfs"
on_exit "umount -l $T/store"
start_serve
fault_vm
fill() {
	dd if=/dev/zero of="$T/store/filler$1" bs=64k 2>/dev/null || true
	df -h "$T/store" | tail -1
}
case $1 in
nogo)
	move vm1
	grep '"result"' "$T/move.json"
	expect_result 4 no-go
	event 'd["reasons"]' | grep -Eq "the disks hold 8.0 MiB( and the VM's files [0-9.]+ MiB)?, .*store has 4.0 MiB free" ||
		fail "no reason about the space: $(event 'd["reasons"]')"
	[ "$RUNTIME" = memsync ] || event 'd["reasons"]' | grep -q "and the VM's files 1[6-9].[0-9] MiB" ||
		fail "the space needed does not count the kernel and initrd: $(event 'd["reasons"]')"
	[ "$(ls "$T/store")" = "" ] && [ -z "$(ls -A "$T/store/.smove-sessions")" ] ||
		{ ls -laR "$T/store"; fail "a no-go created something"; }
	runs "$T/src/vm1.sock"
	[ "$(ps_state src vm1)" = running ] || fail "smove ps on the source: vm1 $(ps_state src vm1)"
	[ "$(ps_state dst vm1)" = none ] || fail "smove ps on the destination: vm1 $(ps_state dst vm1)"
	guest_goes_on "$T/vm1.console"
	exit 0
	;;
storage)
	move_bg vm1 --bandwidth 4
	wait_for "$T/move.json" '"event":"progress"'
	;;
memory)
	move_bg vm1 --bandwidth 4
	wait_for "$T/move.json" '"phase":"memory"'
	;;
esac
fill 1
if [ "$1" = memory ]; then
	fallocate --punch-hole --offset 0 --length 8M "$T"/store/vm1/.disk.raw.smove-tmp
	fill 2
fi
move_wait
grep -E '"(phase|result)"' "$T/move.json" | cut -c1-240
expect_result 5 rolled-back "No space left on device"
[ "$(event 'd["rounds"]')" -le 2 ] || fail "the memory rounds went on after the mirror failed"
kill -0 "$SERVE_PID" || fail "serve ended"
on_source
grep -q "vm1: migration failed, copy discarded" "$T/serve.err" ||
	fail "serve does not say it discarded the copy"
rm -f "$T"/store/filler*
move vm1
expect_result 0 done
on_destination
