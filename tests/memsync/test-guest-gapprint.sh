#!/bin/sh
# The test guest's gapprint= (for the migration benchmark): a pause of the VM
# (control socket) of 300 ms shows on its console as a heartbeat gap of at
# least that long, and short gaps are not printed.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
export SMOVE_RUNTIME_DIR="$T"
"$SMOVE" run --name gp --guest "$abs_top_builddir/memsync/guest/guest.elf" --memory 64M \
	--console "$T/console" --cmdline "mem=8M passes=0 hb=1 hbprint=0 gapprint=250" \
	>"$T/run.out" 2>&1 &
pid=$!
on_exit "kill -9 $pid 2>/dev/null || true"
ctl() { /usr/bin/python3 "$abs_top_srcdir/tests/memsync/ctl.py" "$T/gp.sock" "$@" >/dev/null; }
for i in $(seq 300); do grep -q "mem pass 1 ok" "$T/console" 2>/dev/null && break; sleep 0.1; done
grep -q "mem pass 1 ok" "$T/console" || fail "the guest did not start"
before=$(grep -c "^gap " "$T/console" || true)
ctl '{"cmd":"pause"}'
sleep 0.4
ctl '{"cmd":"resume"}'
for i in $(seq 100); do [ "$(grep -c "^gap " "$T/console")" -gt "$before" ] && break; sleep 0.1; done
gap=$(sed -n 's/^gap \([0-9]*\) us$/\1/p' "$T/console" | sort -n | tail -1)
echo "the longest gap printed: ${gap:-none} us"
[ -n "$gap" ] || fail "no gap printed after a 400 ms pause"
[ "$gap" -ge 400000 ] || fail "the printed gap ($gap us) is shorter than the pause (400 ms)"
least=$(sed -n 's/^gap \([0-9]*\) us$/\1/p' "$T/console" | sort -n | head -1)
[ "$least" -ge 250000 ] || fail "a gap of $least us was printed, below gapprint=250"
ctl '{"cmd":"stop"}'
