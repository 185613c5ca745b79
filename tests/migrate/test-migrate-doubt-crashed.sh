#!/bin/sh
# A source host that goes down while its migration is in doubt: the VM's
# process is killed and its runtime directory emptied, as a reboot would
# (RUNDIR is a tmpfs); its record (STATEDIR/NAME.migration) stays: `smove ps`
# reports it, `smove run` refuses to start the VM by its name or on its disk
# by any path (relative, absolute, through a symlink or a hard link, under
# another name), and `smove move --resolve NAME`, run from another
# directory, settles it from the record alone. Here the destination never
# resumed: the record goes, the disk holds every write the guest completed,
# and the VM starts again (its memory state was lost with its process).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
fault_move after-resume
kill -9 "$SERVE_PID"
move_wait
in_doubt
kill_source
rm -rf "$T/src"
mkdir "$T/src"
[ -e "$T/src-state/vm1.migration" ] || fail "no record of the migration in doubt"
[ "$(ps_state src vm1)" = in-doubt ] || { src ps; fail "smove ps does not report the migration in doubt"; }
src ps | grep -q "'smove move --resolve vm1'" || fail "smove ps does not say how to settle it"
# shellcheck disable=SC2046
expect_status 1 src run --name vm1 $(runtime_args --memory 128M --disk "$T/disk.raw")
expect_stderr "vm1: a migration to $DST_ADDR:$PORT was in doubt.*--resolve vm1"
ln -s disk.raw "$T/link.raw"
ln "$T/disk.raw" "$T/hard.raw"
mkdir "$T/sub"
for disk in disk.raw ./sub/../disk.raw "$T/disk.raw" "$T/link.raw" hard.raw; do
	# shellcheck disable=SC2046
	(cd "$T" && expect_status 1 src run --name other $(runtime_args --memory 128M --disk "$disk"))
	expect_stderr "in doubt and this disk may be in use on its destination: run 'smove move --resolve vm1'"
done
rm "$T/link.raw" "$T/hard.raw"
echo "smove run refused vm1 by its name and its disk by 5 paths"
disk_records_hold "$T/vm1.console" "$T/disk.raw"
start_serve
mkdir "$T/elsewhere"
echo decoy >"$T/elsewhere/disk.raw"
(cd "$T/elsewhere" && expect_status 5 src move --resolve vm1)
grep -q "never ran on the destination" "$T/stdout" || fail "--resolve does not say so: $(cat "$T/stdout")"
[ ! -e "$T/src-state/vm1.migration" ] || fail "the record is still there"
[ "$(cat "$T/elsewhere/disk.raw")" = decoy ] || fail "--resolve touched another disk.raw"
nothing_on_dest vm1
fault_vm_again
on_source
