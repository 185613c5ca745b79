#!/bin/sh
# A VM whose dirty log is the per-vCPU dirty ring is not live-migrated on PVM,
# whose ring misses guest writes while the VM is throttled (stale pages on the
# destination: docs/migration.md): `smove move` refuses with a sentence that
# names the remedy, and the VM runs on at the source, untouched. Elsewhere
# (no kvm_pvm module) the move goes ahead and the guest, rewriting 64 MiB flat
# out, finds every page intact on the destination.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
start_vm vm1 --memory 256M --cpus 1 --dirty-log ring \
	--cmdline "mem=64M passes=0 rate=0 verify=1 hb=5"
wait_for "$T/vm1.console" "mem pass 1 ok" 60
move vm1 --downtime-ms 20
if [ -e /sys/module/kvm_pvm ]; then
	expect_move 1
	grep -q "cannot live-migrate with the dirty ring on this KVM (PVM)" "$T/move.err" || {
		cat "$T/move.err" >&2
		fail "smove move did not say why it refuses a ring-mode VM"
	}
	grep -q -- "--dirty-log bitmap" "$T/move.err" || fail "the refusal names no remedy"
	runs "$T/src/vm1.sock"
	[ ! -e "$T/store/vm1" ] || fail "the destination holds files of vm1"
	! grep FAIL "$T/vm1.console" || fail "the guest failed on the source"
	echo "refused: $(cat "$T/move.err")"
	exit 0
fi
expect_move 0
[ "$(event 'd["result"]')" = done ] || fail "result is not done"
console="$T/store/vm1/console.log"
passes=$(grep -c "mem pass" "$console" || true)
for i in $(seq 300); do
	grep -q FAIL "$console" && break
	[ "$(grep -c "mem pass" "$console")" -ge $((passes + 1)) ] && break
	sleep 0.1
done
! grep FAIL "$console" || fail "the guest lost memory in the migration"
[ "$(grep -c "mem pass" "$console")" -ge $((passes + 1)) ] ||
	fail "the memory program does not go on after the migration"
