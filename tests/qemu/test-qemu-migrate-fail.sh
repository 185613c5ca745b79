#!/bin/sh
# Live migrations that do not happen leave the VM running where it was: one
# cancelled (migrate_cancel: the source's wait says cancelled), one whose
# destination QEMU is killed midway (the source's wait says failed, with
# QEMU's reason). Each time the source, never paused, goes on to its verdict
# with every disk record of its last pass on its own image, and the
# destination QEMU ends (QEMU exits when its incoming migration fails).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/qemu-lib.sh"
requires_qemu
cd "$T"
for mode in cancel dest-dies; do
	rm -f src.vhdx dst.vhdx
	"$SMOVE" disk create --size 8M src.vhdx >/dev/null
	vm_config vm.json stays "disk=4M diskpasses=40 mem=16M passes=5 hb=20 hbprint=10 cpu0=disk+mem" \
		"$T/src.vhdx" vhdx
	timeout 900 "$QEMU_VM" migrate vm.json "$T/dst.vhdx" $mode >out 2>err ||
		{ cat out err; fail "qemu-vm migrate $mode"; }
	cat out
	case $mode in
	cancel) grep -q "^source's wait: -125: .*the migration was cancelled" out || fail "not cancelled" ;;
	*) grep -q "^source's wait: -5: .*the migration failed: " out || fail "not failed" ;;
	esac
	grep -q "^verdict: ok" vm.json.console || fail "$mode: no verdict on the source"
	check_disk src.vhdx vhdx 4M 40
	[ ! -e dst.vhdx ] || fail "$mode: a destination disk appeared"
done
echo PASS
