#!/bin/sh
# QEMU's life is tied to smove's: a VM created (and started) from a thread
# that then ends keeps running, since the fork came from the VM's own
# process thread (PR_SET_PDEATHSIG follows the forking thread); and when
# smove's process is killed (SIGKILL: no clean-up of its own), QEMU dies with
# it. A QEMU killed behind the runtime's back is reported as such by
# qemu_vm_wait, and later commands fail cleanly. The runtime directory a
# killed smove left is removed by the next VM made beside it.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
vm_config vm.json tied "mem=8M passes=0 hb=50 hbprint=0"
"$QEMU_VM" hold vm.json >out 2>err &
holder=$!
on_exit "kill -9 $holder 2>/dev/null || :"
for _ in $(seq 600); do grep -q "^qemu pid" out && break; kill -0 $holder 2>/dev/null || break; sleep 0.1; done
grep -q "^qemu pid" out || { cat out err; fail "the VM did not outlive the thread that made it"; }
qpid=$(awk '/^qemu pid/ {print $3}' out)
kill -0 "$qpid" || fail "no QEMU process $qpid"
kill -9 $holder
wait $holder 2>/dev/null || :
for _ in $(seq 100); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$qpid" 2>/dev/null; then
	kill -9 "$qpid"
	fail "QEMU $qpid outlived smove's process"
fi
echo "QEMU $qpid died with its parent"
ls -d "$T"/run/qemu-tied-* >/dev/null 2>&1 || fail "the killed VM's runtime directory is not there to sweep"

vm_config crash.json crash "mem=8M passes=0 hb=50 hbprint=0"
"$QEMU_VM" crash crash.json >out 2>err || { cat out err; fail "qemu-vm crash"; }
cat out
grep -q "crash: QEMU was killed by signal 9" out || fail "the message does not say QEMU was killed"
grep -q "^pause after death: .*QMP" out || fail "pause after QEMU's death"
# The next VM swept the killed one's runtime directory (nobody held its lock).
! ls -d "$T"/run/qemu-tied-* >/dev/null 2>&1 || fail "a dead VM's runtime directory was left"
[ -z "$(ls -A "$T/run")" ] || fail "runtime directories left: $(ls -A "$T/run")"
echo PASS
