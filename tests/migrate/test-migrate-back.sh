#!/bin/sh
# Back and forth: a 2-vCPU guest (a memory pattern on one vCPU, disk records
# on the other) moves from host A to host B and back, $MOVES times in a row
# (10; 2 for a QEMU VM outside check-full), each host in a network namespace of its own (netns.sh; loopback where
# none can be made) running both `smove serve` and the VM when it is there,
# over TLS with a pre-shared key. The guest never notices anything but the
# pauses: after every move it runs on the host it went to with its invariants
# intact (a lost or stale page or record, or a clock going back, stops it with
# FAIL), and the host it left keeps nothing of it. At the end its longest
# heartbeat gap over all the moves is reported (and must stay under 5 s even
# on a loaded machine), its disk program finishes, and the disk equals the
# reference (lib.sh's check_disk_equal).
. "$abs_top_srcdir/tests/functions.sh"
requires psktool qemu-img
. "$abs_top_srcdir/tests/migrate/lib.sh"
. "$abs_top_srcdir/tests/migrate/netns.sh"
# A QEMU VM under TCG moves in about 10 s: 2 moves (there and back) in make check, 10 in
# check-full (SMOVE_TEST_FULL=1); its guest writes 20 to 25 disk passes a move.
if [ "$RUNTIME" = memsync ] || [ "${SMOVE_TEST_FULL:-0}" = 1 ]; then
	MOVES=${MOVES:-10}
else
	MOVES=${MOVES:-2}
fi
PASSES=60
[ "$RUNTIME" = memsync ] || PASSES=$((MOVES * 25))
sh "$abs_top_srcdir/tests/proto/make-tls-creds.sh" "$T/tls" >/dev/null
start_serve --tls-psk "$T/tls/keys.psk"
PORT_B=$PORT
# Host A's serve: runtime $T/src (where the VM starts), storage $T/storeA.
mkdir "$T/storeA"
SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" $IN_SRC "$SMOVE" serve --listen "$SRC_ADDR:0" --storage "$T/storeA" \
	--tls-psk "$T/tls/keys.psk" --json >"$T/serveA.out" 2>"$T/serveA.err" &
on_exit "kill $! 2>/dev/null || true"
wait_for "$T/serveA.out" listening 30
PORT_A=$(sed -n 's/.*"[0-9.]*:\([0-9]*\)".*/\1/p' "$T/serveA.out")
"$SMOVE" disk create --size 8M "$T/disk.vhdx" >/dev/null
start_vm vm1 --memory 128M --cpus 2 --disk "$T/disk.vhdx" \
	--cmdline "mem=8M passes=0 disk=8M diskpasses=$PASSES cpu0=mem cpu1=disk hb=5"
wait_for "$T/vm1.console" "disk 0 pass 1 ok"

# hop N RUNDIR EXEC ADDR PORT STORE TO-RUNDIR LEFT-STORE: move N, from the
# host of RUNDIR (its processes run through EXEC) to ADDR:PORT, whose VM
# registers in TO-RUNDIR and keeps its files in STORE; the host left behind
# keeps nothing (LEFT-STORE: where the VM's files were there, if it came
# through serve).
hop() {
	set +e
	SMOVE_RUNTIME_DIR="$2" SMOVE_STATE_DIR="$2-state" $3 "$SMOVE" move vm1 --to "$4:$5" --tls-psk "$T/tls/alice.psk" \
		--json >"$T/move.json" 2>"$T/move.err"
	MOVE_STATUS=$?
	set -e
	expect_move 0
	runs "$7/vm1.sock"
	for i in $(seq 100); do
		[ ! -e "$2/vm1.json" ] && [ ! -e "$8/vm1" ] && break
		sleep 0.1
	done
	[ ! -e "$2/vm1.json" ] || fail "move $1: the host left still runs the VM"
	[ ! -e "$8/vm1" ] || { ls -la "$8/vm1"; fail "move $1: the host left kept $8/vm1"; }
	! grep FAIL "$6/vm1/console.log" || fail "move $1: the guest found a broken invariant"
	echo "move $1 to $4: $(event '"%.1f s, downtime %.1f ms, %d rounds" % (d["total_s"], d["downtime_ms"], d["rounds"])'), disk pass $(grep -c "disk 0 pass" "$6/vm1/console.log") of $PASSES"
}

t0=$(date +%s)
n=0
while [ $n -lt "$MOVES" ]; do
	n=$((n + 1))
	if [ $((n % 2)) = 1 ]; then
		hop $n "$T/src" "$IN_SRC" "$DST_ADDR" "$PORT_B" "$T/store" "$T/dst" "$T/storeA"
		host="$T/dst" store="$T/store"
	else
		hop $n "$T/dst" "$IN_DST" "$SRC_ADDR" "$PORT_A" "$T/storeA" "$T/src" "$T/store"
		host="$T/src" store="$T/storeA"
	fi
done
echo "$MOVES moves in $(($(date +%s) - t0)) s"
console="$store/vm1/console.log"
passes=$(grep -c "mem pass" "$console")
wait_for "$console" "disk 0: 8 MiB x $PASSES passes verified" 120
for i in $(seq 300); do
	[ "$(grep -c "mem pass" "$console")" -ge $((passes + 2)) ] && break
	sleep 0.1
done
! grep FAIL "$console" || fail "the guest found a broken invariant"
[ "$(grep -c "mem pass" "$console")" -ge $((passes + 2)) ] ||
	fail "the memory program does not go on after the moves"
gap=$(status "$host/vm1.sock" 'd["guest"]["max_gap_ms"]')
echo "the guest's longest heartbeat gap over $MOVES moves: $gap ms"
/usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > 5000)" "$gap" ||
	fail "the guest saw a gap of $gap ms"
ctl "$host/vm1.sock" '{"cmd":"stop"}' >/dev/null
for i in $(seq 100); do [ -e "$host/vm1.json" ] || break; sleep 0.1; done
check_disk_equal vhdx "$store/vm1/disk.vhdx" $((8 << 20)) $PASSES
