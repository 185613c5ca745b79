#!/bin/sh
# A destination's limit of migrations at once (smove serve --max-incoming 1)
# and the source's queue: while vm1's move holds the one place (its source
# stalls once its disk is mirrored: the test hook source-storage), vm2's
# move with --queue-timeout 0 is refused at once as busy (exit 4, the reason
# "busy: 1 migrations in progress, the limit is 1", nothing made there);
# with a queue it waits ("queued" events) until vm1's move is cancelled,
# then moves; vm1 is moved after it. serve's log never counts more than 1
# migration in progress, and both guests go on at the destination.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve --max-incoming 1
truncate -s 8M "$T/d1.raw" "$T/d2.raw"
export SMOVE_TEST_STALL=source-storage
start_vm vm1 --memory 64M --disk "$T/d1.raw" --cmdline "mem=4M passes=0 disk=4M diskpasses=0 cpu0=disk+mem hb=5 rate=8"
unset SMOVE_TEST_STALL
start_vm vm2 --memory 64M --disk "$T/d2.raw" --cmdline "mem=4M passes=0 disk=4M diskpasses=0 cpu0=disk+mem hb=5 rate=8"
wait_for "$T/vm1.console" "disk 0 pass 1 ok" 120
wait_for "$T/vm2.console" "disk 0 pass 1 ok" 120
mv_bg() { # NAME OUT OPTS...
	n=$1 out=$2
	shift 2
	SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src" "$SMOVE" move "$n" --to "$DST_ADDR:$PORT" \
		--json --tls-psk "$T/lib.psk" "$@" >"$T/$out.json" 2>"$T/$out.err" &
}
mv_bg vm1 m1
pid1=$!
wait_for "$T/vm1.run.err" "stalling at source-storage" 60
# refused at once
set +e
SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src" "$SMOVE" move vm2 --to "$DST_ADDR:$PORT" \
	--tls-psk "$T/lib.psk" --queue-timeout 0 >"$T/m0.out" 2>&1
rc=$?
set -e
[ $rc = 4 ] || { cat "$T/m0.out"; fail "a move to a busy destination without a queue exited $rc, not 4"; }
grep -q "busy: 1 migrations in progress, the limit is 1" "$T/m0.out" || { cat "$T/m0.out"; fail "no busy reason"; }
[ ! -e "$T/store/vm2" ] || fail "a busy destination made $T/store/vm2"
# queued, then moved
mv_bg vm2 m2
pid2=$!
wait_for "$T/m2.json" '"attempt":2' 30
grep -q '"reason":"busy: 1 migrations in progress, the limit is 1"' "$T/m2.json" || fail "queued without the reason"
[ ! -e "$T/store/vm2" ] || fail "a busy destination made $T/store/vm2"
SMOVE_RUNTIME_DIR="$T/src" "$SMOVE" move --cancel vm1 >/dev/null
set +e
wait "$pid1"
rc=$?
set -e
[ $rc = 5 ] || { cat "$T/m1.err" >&2; fail "vm1's cancelled move exited $rc, not 5"; }
wait "$pid2" || { cat "$T/m2.err" "$T/serve.err" >&2; fail "vm2's move failed"; }
grep -q '"result":"done"' "$T/m2.json" || fail "vm2 was not moved"
mv_bg vm1 m1
wait $! || { cat "$T/m1.err" "$T/serve.err" >&2; fail "vm1's second move failed"; }
# never more than one at once
max=$(sed -n 's/.*(\([0-9]*\) of 1 incoming migrations).*/\1/p; s/.*incoming migrations: \([0-9]*\) of 1.*/\1/p' "$T/serve.err" | sort -n | tail -1)
[ "$max" = 1 ] || { cat "$T/serve.err" >&2; fail "serve counted $max migrations in progress at once"; }
for vm in vm1 vm2; do
	runs "$T/dst/$vm.sock"
	guest_goes_on "$T/store/$vm/console.log"
done
echo PASS
