#!/bin/sh
# There and back: a 2-vCPU guest (memory pattern and disk records, both for
# ever) moves from host A to host B and then from B back to A, each host
# running both `smove run` and `smove serve`. The guest never notices anything
# but the pauses: its invariants hold, its heartbeat goes on, and its longest
# heartbeat gap stays within a few seconds even on a loaded machine. Host B
# keeps nothing of it afterwards.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
PORT_B=$PORT
# Host A's serve: storage $T/storeA, runtime $T/src (where the VM started).
mkdir "$T/storeA"
SMOVE_RUNTIME_DIR="$T/src" "$SMOVE" serve --listen 127.0.0.1:0 --storage "$T/storeA" --json \
	>"$T/serveA.out" 2>"$T/serveA.err" &
on_exit "kill $! 2>/dev/null || true"
wait_for "$T/serveA.out" listening 30
PORT_A=$(sed -n 's/.*"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$T/serveA.out")
"$SMOVE" disk create --size 8M "$T/disk.vhdx" >/dev/null
start_vm vm1 --memory 128M --cpus 2 --disk "$T/disk.vhdx" \
	--cmdline "mem=8M passes=0 disk=8M diskpasses=0 cpu0=mem cpu1=disk hb=5"
wait_for "$T/vm1.console" "disk 0 pass 1 ok"
move vm1
expect_move 0
runs "$T/dst/vm1.sock"
# Back: B's VM process runs the migration to A.
set +e
SMOVE_RUNTIME_DIR="$T/dst" "$SMOVE" move vm1 --to "127.0.0.1:$PORT_A" --json >"$T/move.json" 2>"$T/move.err"
MOVE_STATUS=$?
set -e
expect_move 0
runs "$T/src/vm1.sock"
for i in $(seq 100); do [ ! -e "$T/store/vm1" ] && [ ! -e "$T/dst/vm1.json" ] && break; sleep 0.1; done
[ ! -e "$T/store/vm1" ] || { ls -la "$T/store/vm1"; fail "host B kept the VM's directory"; }
[ ! -e "$T/dst/vm1.json" ] || fail "host B still runs the VM"
console="$T/storeA/vm1/console.log"
passes=$(grep -c "disk 1 pass\|disk 0 pass" "$console")
wait_for "$console" "disk 0 pass $((passes + 2)) ok" 60
! grep FAIL "$console" || fail "the guest found a broken invariant"
gap=$(status "$T/src/vm1.sock" 'd["guest"]["max_gap_ms"]')
echo "the guest's longest heartbeat gap over two moves: $gap ms"
/usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > 5000)" "$gap" ||
	fail "the guest saw a gap of $gap ms"
