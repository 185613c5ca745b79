#!/bin/sh
# VMs without disks, moved with extra memory channels: the source opens its
# channels right after the go, possibly before the destination has mapped the
# guest's RAM; serve lets them wait for it instead of refusing them. Three
# VMs, each moved and running on the destination with its invariants intact.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
for vm in vm1 vm2 vm3; do
	start_vm $vm --memory 128M --cmdline "mem=8M passes=0 hb=5"
	move $vm --channels 4
	expect_move 0
	runs "$T/dst/$vm.sock"
	wait_for "$T/store/$vm/console.log" "mem pass [0-9]+ ok"
	! grep FAIL "$T/store/$vm/console.log" || fail "$vm's guest found a broken invariant"
done
! grep "refused" "$T/serve.err" || fail "serve refused a channel"
