#!/bin/sh
# bench/rebalance.sh: draining a host of five VMs of 1 GiB onto two others,
# as a plan run with at most 1, 2 and 4 moves at once (per source, per
# destination and per link alike), against the sum of the same moves made
# one by one with `smove move`. Three `smove serve` hosts on loopback (a, b,
# c; --max-incoming 4, so that the plan's limits are the ones that count);
# the VMs run the Linux test guest under QEMU (KVM where /dev/kvm works, TCG
# elsewhere: the runtime's choice), each with an 8 MiB raw disk, its checker
# touching 4 MiB of memory at 2 MiB/s after one pass over 1 MiB of its disk.
# The single moves are made twice, the first time to warm up (not counted).
# Between runs the VMs are moved back to a (not timed). Prints a row per
# limit: the plan's total time, the sum of single moves, their ratio, the
# longest downtime of the plan's moves, and whether every guest still ran
# its checks afterwards.
#
# Run from the build directory (or set abs_top_builddir).
#   VMS=N (5) VMs, MEMORY=SIZE (1G) each, LIMITS="1 2 4", MODE=live|quick,
#   KEEP=1 keeps the scratch directory (events of every run in it).
set -eu
B=${abs_top_builddir:-$(pwd)}
S=$(cd "$(dirname "$0")/.." && pwd)
SMOVE=$B/cmd/smove
VMS=${VMS:-5}
MEMORY=${MEMORY:-1G}
LIMITS=${LIMITS:-1 2 4}
MODE=${MODE:-live}
KERNEL=$B/qemu/guest/linux/vmlinuz
INITRD=$B/qemu/guest/initramfs.cpio
[ -x "$SMOVE" ] && [ -f "$KERNEL" ] && [ -f "$INITRD" ] ||
	{ echo "build first, with the Linux test guest (run from the build directory)" >&2; exit 1; }
command -v psktool >/dev/null && command -v nbdkit >/dev/null ||
	{ echo "needs psktool and nbdkit" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/var/tmp}/smove-bench-rebalance.XXXXXX")
PIDS=""
cleanup() {
	for f in "$T"/[abc]/*.json; do
		[ -f "$f" ] || continue
		kill -9 "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f")" 2>/dev/null || true
	done
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	[ "${KEEP:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export SMOVE_NBDKIT_PLUGIN="$B/storage/nbdkit/.libs/nbdkit-smove-plugin.so"
psktool -u smove -p "$T/keys.psk" >/dev/null 2>&1
PSK="--tls-psk $T/keys.psk"

on() {
	h=$1
	shift
	SMOVE_RUNTIME_DIR="$T/$h" SMOVE_STATE_DIR="$T/$h" "$SMOVE" "$@"
}

wait_for() { # FILE PATTERN SECONDS
	for i in $(seq $(($3 * 10))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for '$2' in $1" >&2
	exit 1
}

for h in a b c; do
	mkdir -p "$T/$h/store"
	on $h serve --listen 127.0.0.1:0 --storage "$T/$h/store" --json $PSK --max-incoming 4 \
		>"$T/$h/serve.out" 2>"$T/$h/serve.err" &
	PIDS="$PIDS $!"
	wait_for "$T/$h/serve.out" listening 30
	eval "ADDR_$h=127.0.0.1:$(sed -n 's/.*"[0-9.]*:\([0-9]*\)".*/\1/p' "$T/$h/serve.out")"
done
addr() { eval "echo \$ADDR_$1"; }
names=""
for i in $(seq "$VMS"); do
	n=vm$i
	names="$names $n"
	truncate -s 8M "$T/$n.raw"
	on a run --runtime qemu --name $n --memory "$MEMORY" --kernel "$KERNEL" --initrd "$INITRD" \
		--disk "$T/$n.raw" --console "$T/$n.console" \
		--cmdline "console=ttyS0 quiet panic=-1 smove.mem=4M smove.passes=0 smove.rate=2 smove.disk=1M smove.diskpasses=1 smove.hb=20" \
		>"$T/$n.out" 2>"$T/$n.err" &
done
for n in $names; do wait_for "$T/$n.console" "disk 0 pass 1 ok" 300; done
echo "$VMS VMs of $MEMORY on a ($(grep -q kvm "$T/vm1.err" 2>/dev/null && echo KVM || echo "QEMU's choice of accelerator"))"
"$SMOVE" plan --drain "$(addr a)" --to "$(addr b)" --to "$(addr c)" --mode "$MODE" $PSK \
	-o "$T/drain.json"
/usr/bin/python3 - "$T/drain.json" "$T/back.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for m in p["moves"]:
    m["from"], m["to"] = m["to"], m["from"]
p.pop("hosts", None)
json.dump(p, open(sys.argv[2], "w"))
PY
back() { "$SMOVE" rebalance "$T/back.json" $PSK --max-per-source 4 --max-per-dest 4 --max-per-link 4 \
	--json >"$T/back.$1.json" 2>&1 || { echo "moving back failed" >&2; exit 1; }; }
host_of() { /usr/bin/python3 -c 'import json,sys
print([m["to"] for m in json.load(open(sys.argv[1]))["moves"] if m["vm"] == sys.argv[2]][0])' "$T/drain.json" "$1"; }

# single moves, one by one: once to warm up (the first moves after the
# guests' boot are slower: caches, the destinations' first allocations),
# then counted
singles() { # LABEL
	single=0
	for n in $names; do
		q=""
		[ "$MODE" = quick ] && q=--quick
		on a move $n --to "$(host_of $n)" $PSK $q --json >"$T/single.$n.json" 2>&1 ||
			{ echo "single move of $n failed" >&2; exit 1; }
		s=$(/usr/bin/python3 -c 'import json,sys
print([json.loads(l) for l in open(sys.argv[1]) if "\"result\"" in l][-1]["total_s"])' "$T/single.$n.json")
		echo "  $n alone ($1): ${s}s"
		single=$(/usr/bin/python3 -c "print($single + $s)")
	done
	back "single-$1"
}
singles warm-up
singles counted

printf '\n%-6s %10s %12s %7s %15s %s\n' limit plan_s singles_s ratio max_downtime_ms guests
for l in $LIMITS; do
	start=$(date +%s.%N)
	"$SMOVE" rebalance "$T/drain.json" $PSK --max-per-source "$l" --max-per-dest "$l" \
		--max-per-link "$l" --json >"$T/plan.$l.json" 2>&1 || { echo "the plan failed ($l)" >&2; exit 1; }
	end=$(date +%s.%N)
	ok=yes
	for n in $names; do
		h=$(host_of $n)
		for x in b c; do [ "$(addr $x)" = "$h" ] && log="$T/$x/store/$n/console.log"; done
		grep -q FAIL "$log" && ok=no
	done
	/usr/bin/python3 - "$T/plan.$l.json" "$l" "$start" "$end" "$single" "$ok" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
done = [e for e in ev if e.get("event") == "move" and e["state"] == "done"]
dt = max([e.get("downtime_ms", 0) for e in done] or [0])
total = float(sys.argv[4]) - float(sys.argv[3])
single = float(sys.argv[5])
print("%-6s %10.1f %12.1f %7.2f %15.0f %s" % (sys.argv[2], total, single, total / single, dt, sys.argv[6]))
PY
	back "$l"
done
