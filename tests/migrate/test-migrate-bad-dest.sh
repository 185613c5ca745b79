#!/bin/sh
# Hostile destinations against `smove move`: every case of
# tests/migrate/bad-dest.py, a fake serve that answers HELLO with garbage, a
# wrong version or a huge frame, goes silent, answers PREFLIGHT with ERROR or
# nonsense, says go and then closes, sends ERROR, garbage or a huge frame,
# names disk exports that are unreachable, speak no NBD or smuggle URI
# options, or name a Unix socket or no TLS (refused: the disks go only over
# TLS to the destination itself), misbehaves during the memory rounds (or the
# QEMU runtime's stream) and at the switchover, or (a QEMU VM) speaks an older
# protocol or no STREAM. The fake speaks in the clear (LIB_TLS=none). The
# source ends with the documented exit status (1: nothing had changed; 5:
# rolled back) and a clear error; its VM runs on with the guest's invariants
# intact, its files are all there and nothing of the migration is left. Then
# both VMs move to a real serve.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
export SMOVE_TEST_FRAME_TIMEOUT_MS=4000
fake="$abs_top_srcdir/tests/migrate/bad-dest.py"
truncate -s 8M "$T/disk.raw"
start_vm vmd --memory 128M --cpus 2 --disk "$T/disk.raw" \
	--cmdline "mem=8M passes=0 disk=8M diskpasses=1000000 cpu0=mem cpu1=disk hb=5"
start_vm vmm --memory 128M --cmdline "mem=8M passes=0 hb=5"
/usr/bin/python3 "$fake" --list "$RUNTIME" >"$T/cases"
LIB_TLS=none
tab=$(printf '\t')
n=0
while IFS=$tab read -r c status pattern vm; do
	name=vm$(echo "$vm" | cut -c1)
	rm -f "$T/port"
	/usr/bin/python3 "$fake" "$T/port" "$c" >"$T/fake.$c" 2>&1 &
	fake_pid=$!
	on_exit "kill $fake_pid 2>/dev/null || true"
	for i in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
	PORT=$(cat "$T/port")
	t0=$(date +%s.%N)
	move "$name"
	t1=$(date +%s.%N)
	kill "$fake_pid" 2>/dev/null || true
	wait "$fake_pid" 2>/dev/null || true
	[ "$MOVE_STATUS" = "$status" ] || {
		cat "$T/move.json" "$T/move.err" "$T/fake.$c"
		fail "$c: smove move exited $MOVE_STATUS, expected $status"
	}
	error=$(event 'd.get("error", "")')
	echo "$c: exit $MOVE_STATUS after $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s: $error"
	echo "$error" | grep -Eq -- "$pattern" || fail "$c: the error does not match '$pattern'"
	runs "$T/src/$name.sock"
	! grep FAIL "$T/$name.console" || fail "$c: the guest found a broken invariant"
	[ -e "$T/src/$name.json" ] || fail "$c: the source no longer registers $name"
	[ ! -e "$T/src-state/$name.migration" ] || fail "$c: a migration record is left"
	[ -z "$(ls -A "$T/src" | grep '\.psk$')" ] || fail "$c: an export key is left"
	[ -e "$T/disk.raw" ] || fail "$c: the disk was deleted"
	n=$((n + 1))
done <"$T/cases"
echo "$n hostile destinations: every migration failed cleanly"
# Both VMs move to a real serve (TLS), where their guests re-verify their
# memory and (vmd) every disk record: a check made after all the faults.
PORT=
LIB_TLS=psk
start_serve
move vmd
expect_move 0
move vmm
expect_move 0
runs "$T/dst/vmd.sock"
runs "$T/dst/vmm.sock"
guest_goes_on "$T/store/vmd/console.log"
guest_mem_goes_on "$T/store/vmm/console.log"
