#!/bin/sh
# Two migrations into one serve at once, each isolated: vm1's disk is a
# differencing VHDX whose parent holds data the guest never touches, vm2's a
# raw disk. Both move while their guests write; vm1's disk arrives as one flat
# VHDX (no parent) holding the parent's data and every record, vm2's raw disk
# every record, and the source keeps the parent (only the child was vm1's).
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img qemu-io
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
"$SMOVE" disk create --size 8M "$T/base.vhdx" >/dev/null
qemu-io -f vhdx -c "write -P 0xab 7M 1M" "$T/base.vhdx" >/dev/null
"$SMOVE" disk create --parent "$T/base.vhdx" "$T/child.vhdx" >/dev/null
truncate -s 8M "$T/disk.raw"
guest_cmdline="mem=8M passes=0 disk=6M diskpasses=3 cpu0=disk+mem hb=5"
start_vm vm1 --memory 128M --disk "$T/child.vhdx" --cmdline "$guest_cmdline"
start_vm vm2 --memory 128M --disk "$T/disk.raw" --cmdline "$guest_cmdline"
wait_for "$T/vm1.console" "disk 0 pass 1 ok"
wait_for "$T/vm2.console" "disk 0 pass 1 ok"
for vm in vm1 vm2; do
	src move "$vm" --to "$DST_ADDR:$PORT" --json $(tls_default) \
		>"$T/$vm.move.json" 2>"$T/$vm.move.err" &
	eval "pid_$vm=\$!"
done
for vm in vm1 vm2; do
	eval "pid=\$pid_$vm"
	wait "$pid" || { cat "$T/$vm.move.err" "$T/serve.err" >&2; fail "smove move $vm failed"; }
done
grep -c "preflight from" "$T/serve.err" | grep -qx 2 || fail "serve did not see two preflights"
for vm in vm1 vm2; do
	console="$T/store/$vm/console.log"
	wait_for "$console" "disk 0: 6 MiB x 3 passes verified" 120
	! grep FAIL "$console" || fail "$vm's guest found a broken invariant after the migration"
	guest_mem_goes_on "$console"
	runs "$T/dst/$vm.sock"
	ctl "$T/dst/$vm.sock" '{"cmd":"stop"}' >/dev/null
done
for i in $(seq 100); do [ -e "$T/dst/vm1.json" ] || [ -e "$T/dst/vm2.json" ] || break; sleep 0.1; done
[ ! -e "$T/child.vhdx" ] && [ ! -e "$T/disk.raw" ] || fail "a source disk is still there"
[ -e "$T/base.vhdx" ] || fail "the parent, which no VM owned, was deleted"
flat="$T/store/vm1/child.vhdx"
"$SMOVE" disk info --json "$flat" >"$T/info.json"
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))
sys.exit(c["subformat"] == "differencing" or "backing-filename" in c or "backing-image" in c)' \
	"$T/info.json" || fail "vm1's disk arrived with a parent: $(cat "$T/info.json")"
qemu-io -f vhdx -r -c "read -P 0xab 7M 1M" "$flat" >"$T/qemu-io.out" 2>&1 || {
	cat "$T/qemu-io.out" >&2
	fail "the parent's data did not arrive in the flat image"
}
check_disk vhdx "$flat" 6M 3
check_disk raw "$T/store/vm2/disk.raw" 6M 3
