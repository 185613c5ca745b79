#!/bin/sh
# The Linux test guest boots under QEMU's TCG (q35, 256 MiB, no KVM needed):
# Debian's kernel loads the virtio modules, the checker rewrites and checks an
# 8 MiB memory pattern (passes 2+ paced at 64 MiB/s: smove.rate) and writes 3
# passes of records through virtio-blk with
# O_DIRECT|O_SYNC, its heartbeat goes on, it says "verdict: ok", /init powers
# off (QEMU exits 0 by itself), and the host finds every record of pass 3 on
# the disk, equal to a reference made apart (make-records.py). Then the finish
# request: a guest told to run for ever ends after the pass during which
# "finish" arrived on its console, with a final check. Then the checks are
# shown to catch what they exist to catch: a page set back to an old
# generation (smove.selftest=corrupt-mem) and a lost disk write
# (corrupt-disk) each end in a FAIL line, and the host's check-records.py
# rejects that disk too.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/qemu/linux-guest.sh"
requires_linux_guest
records() { /usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$@"; }

# 1. Three passes of each program, and the verdict.
truncate -s 16M "$T/disk.raw"
APPEND="smove.mem=8M smove.passes=3 smove.rate=64 smove.disk=8M smove.diskpasses=3 smove.hb=5 smove.hbprint=1"
start=$(date +%s)
linux_qemu ok $(linux_disk d0 "$T/disk.raw") 2>"$T/qemu.err" ||
	{ cat "$T/qemu.err" "$T/ok.console" >&2; fail "QEMU did not exit 0 after the guest powered off"; }
echo "booted, checked and powered off in $(($(date +%s) - start)) s"
c="$T/ok.console"
grep -q "^smove-checker: .*smove.mem=8M" "$c" || fail "the checker did not start"
[ "$(grep -c "^hb [0-9]*$" "$c")" -ge 10 ] || fail "fewer than 10 heartbeat lines"
grep -q "^hb 10$" "$c" || fail "no heartbeat 10"
for line in "mem pass 1 ok" "mem pass 3 ok" "mem 0: 8 MiB x 3 passes" \
	"disk 0 pass 1 ok" "disk 0 pass 3 ok" "disk 0: 8 MiB x 3 passes verified" \
	"heartbeat: [0-9]* beats of 5 ms in [0-9]* ms, longest gap [0-9]* us" "init: checker exited 0"; do
	grep -q "^$line" "$c" || fail "no line '$line' on the console"
done
guest_ok "$c"
# Passes 2 and 3 (16 MiB) at 64 MiB/s take 250 ms at least.
us=$(sed -n 's/^mem 0: 8 MiB x 3 passes in [0-9]* ms, passes 2+ in \([0-9]*\) us$/\1/p' "$c")
[ -n "$us" ] && [ "$us" -ge 240000 ] || fail "smove.rate=64: passes 2+ took ${us:-?} us, not 250 ms"
records "$T/disk.raw" 8M 3
/usr/bin/python3 "$abs_top_srcdir/tests/migrate/make-records.py" "$T/ref.raw" $((16 << 20)) \
	$((8 << 20)) 3
cmp "$T/ref.raw" "$T/disk.raw" || fail "the disk differs from the reference records"

# 2. Until told: passes=0, then "finish" once the disk's pass 2 is done.
truncate -s 16M "$T/disk2.raw"
APPEND="smove.mem=8M smove.passes=0 smove.disk=8M smove.diskpasses=0 smove.hb=5 smove.seed=7"
linux_qemu run $(linux_disk d0 "$T/disk2.raw") 2>"$T/qemu.err" &
qpid=$!
on_exit "kill $qpid 2>/dev/null || true"
wait_for "$T/run.console" "^disk 0 pass 2 ok" 90
! grep -q "^verdict" "$T/run.console" || fail "the guest ended before it was told to"
send_console run finish
wait $qpid || fail "QEMU did not exit 0 after the finish request"
guest_ok "$T/run.console"
grep -q "^finish requested" "$T/run.console" || fail "the finish request was not seen"
last=$(sed -n 's/^disk 0: 8 MiB x \([0-9]*\) passes verified.*/\1/p' "$T/run.console")
[ -n "$last" ] && [ "$last" -ge 2 ] || fail "no final disk check after pass 2 or later"
grep -q "^mem 0: 8 MiB x [0-9]* passes" "$T/run.console" || fail "no final memory check"
records "$T/disk2.raw" 8M "$last" 7

# 3. A lost page fails the memory check.
APPEND="smove.mem=8M smove.passes=3 smove.hb=5 smove.selftest=corrupt-mem"
linux_qemu mem 2>"$T/qemu.err" || fail "QEMU did not exit 0 (corrupt-mem)"
grep -q "^FAIL mem: stale or lost page: wrong generation at 0x[0-9a-f]* (expected 1, found 0)" \
	"$T/mem.console" || { cat "$T/mem.console" >&2; fail "corrupt-mem did not fail the check"; }
! grep -q "^verdict" "$T/mem.console" || fail "a verdict after a failure"

# 4. A lost write fails the disk check, in the guest and on the host.
truncate -s 16M "$T/disk4.raw"
APPEND="smove.disk=8M smove.diskpasses=1 smove.hb=5 smove.selftest=corrupt-disk"
linux_qemu disk $(linux_disk d0 "$T/disk4.raw") 2>"$T/qemu.err" ||
	fail "QEMU did not exit 0 (corrupt-disk)"
grep -q "^FAIL disk 0: lost disk write: stale record at 0x400000 (expected 1, found 0)" \
	"$T/disk.console" || { cat "$T/disk.console" >&2; fail "corrupt-disk did not fail the check"; }
! grep -q "^verdict" "$T/disk.console" || fail "a verdict after a failure"
if records "$T/disk4.raw" 8M 1 >"$T/records.out" 2>&1; then
	fail "check-records.py accepts a disk with a lost write"
fi
grep -q "^block 1024: .* gen 0 " "$T/records.out" && grep -q "FAIL: 1 bad records" "$T/records.out" ||
	{ cat "$T/records.out" >&2; fail "check-records.py did not find exactly block 1024 bad"; }
