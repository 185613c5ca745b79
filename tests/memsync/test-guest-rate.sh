#!/bin/sh
# The test guest's rate= (for the migration benchmark): passes 2+ of its memory
# program write no faster than rate MiB/s. 4 passes of 16 MiB at 32 MiB/s take
# 2 s at least; flat out they take a small fraction of that.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
guest() { # guest RATE: the microseconds passes 2+ took
	SMOVE_RUNTIME_DIR="$T" "$SMOVE" run --name "rate$1" \
		--guest "$abs_top_builddir/memsync/guest/guest.elf" --memory 64M \
		--cmdline "mem=16M passes=5 rate=$1 hb=5" >"$T/console" 2>&1 ||
		{ cat "$T/console"; fail "the guest failed with rate=$1"; }
	sed -n 's/^mem 0: 16 MiB x 5 passes in .* ms, passes 2+ in \([0-9]*\) us$/\1/p' "$T/console"
}
paced=$(guest 32)
flat=$(guest 0)
echo "passes 2+: $paced us at rate=32, $flat us flat out"
[ -n "$paced" ] && [ -n "$flat" ] || fail "the guest did not report its passes' time"
[ "$paced" -ge 1990000 ] || fail "rate=32 wrote 64 MiB in $paced us: faster than 32 MiB/s"
[ "$paced" -le 8000000 ] || fail "rate=32 wrote 64 MiB in $paced us: far slower than 32 MiB/s"
[ "$flat" -lt "$paced" ] || fail "rate=0 ($flat us) is not faster than rate=32 ($paced us)"
