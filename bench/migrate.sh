#!/bin/sh
# bench/migrate.sh: live migration of smove's test guest, smove against QEMU
# on the same link in the same run.
#
# Two network namespaces joined by a veth pair (addresses 10.251.0.1 and .2
# exist only inside them; without namespaces, loopback and no shaped rows):
# `smove serve` and QEMU's -incoming listen in one, the VMs run in the other.
# Rows: guests of 1 GiB and 4 GiB whose memory program touches most of their
# memory flat out (mem=, 960 MiB and 2944 MiB: QEMU's multiboot entry sees 3
# GiB at most), then idles, or rewrites it at 64 or 512 MiB/s (rate=) on the
# unshaped link, or as fast as it can on a link shaped to 125 MB/s (tc tbf
# 1gbit). Tools: smove with each dirty log (bitmap with manual protect, dirty
# ring; --dirty-log) and --downtime-ms 20, and QEMU (microvm, the guest's
# 32-bit multiboot image, memory only) with downtime-limit 20 ms, max-bandwidth
# 100 GiB/s (its default 128 MiB/s would cap it below the link) and
# auto-converge on (as smove throttles). bench/migrate.py does the runs and
# prints the table: medians, ratios to the link's limit and to QEMU.
#
# Run as root from the build directory (or set abs_top_builddir).
#   RUNS=N (3) runs of each 1 GiB row, RUNS4=N (1) of each 4 GiB row,
#   RUNS_MAX=N (1) of the flat-out rows on the shaped link (slow),
#   SIZES="1024 4096" (MiB), RATES="idle 64 512 max", TOOLS="bitmap ring qemu",
#   KEEP=1 keeps the scratch directory (its results.jsonl holds every run,
#   with smove's round log).
set -eu
B=${abs_top_builddir:-$(pwd)}
S=$(cd "$(dirname "$0")/.." && pwd)
SMOVE=$B/cmd/smove
RUNS=${RUNS:-3}
RUNS4=${RUNS4:-1}
SIZES=${SIZES:-1024 4096}
RATES=${RATES:-idle 64 512 max}
TOOLS=${TOOLS:-bitmap ring qemu}
PY="/usr/bin/python3 $S/bench/migrate.py"
[ -x "$SMOVE" ] && [ -f "$B/memsync/guest/guest32.elf" ] ||
	{ echo "build first (run from the build directory)" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "no /dev/kvm" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/var/tmp}/smove-bench-migrate.XXXXXX")
NS_SRC=smbench-src-$$
NS_DST=smbench-dst-$$
SERVE=
cleanup() {
	[ -z "$SERVE" ] || kill "$SERVE" 2>/dev/null || true
	ip netns del "$NS_SRC" 2>/dev/null || true
	ip netns del "$NS_DST" 2>/dev/null || true
	[ "${KEEP:-0}" = 1 ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$T/src" "$T/dst" "$T/store"
export SMOVE_NBDKIT_PLUGIN="$B/storage/nbdkit/.libs/nbdkit-smove-plugin.so"

if ip netns add "$NS_SRC" 2>/dev/null && ip netns add "$NS_DST" &&
	ip link add va netns "$NS_SRC" type veth peer name vb netns "$NS_DST" &&
	ip -n "$NS_SRC" addr add 10.251.0.1/24 dev va && ip -n "$NS_DST" addr add 10.251.0.2/24 dev vb &&
	ip -n "$NS_SRC" link set va up && ip -n "$NS_DST" link set vb up &&
	ip -n "$NS_SRC" link set lo up && ip -n "$NS_DST" link set lo up; then
	ADDR=10.251.0.2 NSS=$NS_SRC NSD=$NS_DST INSECURE=--insecure
	LINK="veth between two network namespaces"
else
	echo "no network namespaces here: loopback, and no shaped link" >&2
	ADDR=127.0.0.1 NSS= NSD= INSECURE=
	LINK="loopback (no namespaces)"
	RATES=$(echo "$RATES" | sed 's/max//')
fi
in_ns() { ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }
# bg_in_ns NS CMD...: CMD in the background, its own pid in $! (ip execs it).
bg_in_ns() { ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@" & else "$@" & fi; }
shape() { # unshaped | tbf
	[ -n "$NSS" ] || return 0
	if [ "${1%%-*}" = tbf ]; then
		ip netns exec "$NSS" tc qdisc replace dev va root tbf rate 1gbit burst 256kb latency 50ms
	else
		ip netns exec "$NSS" tc qdisc del dev va root 2>/dev/null || true
	fi
}
PORT=$((40000 + $$ % 20000))

measure_link() { # NAME MIB
	bg_in_ns "$NSD" $PY sink "$ADDR" $((PORT + 2)) >"$T/sink.out"
	sp=$!
	for i in $(seq 50); do grep -qs listening "$T/sink.out" && break; sleep 0.1; done
	in_ns "$NSS" $PY link "$ADDR" $((PORT + 2)) "$2" "$1" >>"$T/results.jsonl"
	wait "$sp"
}

bg_in_ns "$NSD" env SMOVE_RUNTIME_DIR="$T/dst" "$SMOVE" serve --listen "$ADDR:$PORT" \
	--storage "$T/store" $INSECURE --json >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
for i in $(seq 100); do grep -qs listening "$T/serve.out" && break; sleep 0.1; done
grep -q listening "$T/serve.out" || { cat "$T/serve.err" >&2; exit 1; }

echo "link: $LINK; load before: $(uptime | sed 's/.*load/load/') on $(nproc) cores"
# The link's limit: one TCP stream over the same veth, between the same
# addresses, as the migration's connection (no TLS, as the runs below), three
# times before the runs and once after them: the table uses the best (other
# load on the machine only ever slows a measurement down).
links() {
	shape unshaped
	measure_link unshaped 1024
	case $RATES in *max*) shape tbf; measure_link tbf-1gbit 256; shape unshaped ;; esac
}
links; links; links

for mem in $SIZES; do
	ws=$((mem - 64))
	[ "$ws" -le 2944 ] || ws=2944
	runs=$RUNS
	[ "$mem" -lt 4096 ] || runs=$RUNS4
	for rate in $RATES; do
		link=unshaped n=$runs
		[ "$rate" != max ] || link=tbf-1gbit n=$((runs < ${RUNS_MAX:-1} ? runs : ${RUNS_MAX:-1}))
		shape "$link"
		for i in $(seq "$n"); do
			for tool in $TOOLS; do
				case $tool in
				qemu) set -- qemu ;;
				*) set -- smove --mode "$tool" ;;
				esac
				$PY "$@" --smove "$SMOVE" --guest "$B/memsync/guest/guest.elf" \
					--guest32 "$B/memsync/guest/guest32.elf" --mem "$mem" --ws "$ws" \
					--rate "$rate" --addr "$ADDR" --port "$PORT" --ns-src "$NSS" \
					--ns-dst "$NSD" --tmp "$T" --src-dir "$T/src" --dst-dir "$T/dst" \
					--store "$T/store" --link "$link" --timeout 240 --serve-pid "$SERVE" |
					tee -a "$T/results.jsonl" |
					/usr/bin/python3 -c 'import json,sys
r=json.loads(sys.stdin.read())
print("  %5s MiB %-5s %-12s %s" % (r["mem"], r["rate"], r["tool"], r.get("error") or
      "total %.2f s, downtime %.1f ms (sent %.1f), gap %.1f ms, %d rounds, %.0f MB" % (
      r["total_s"], r["downtime_ms"], r["sent_ms"], r["gap_ms"], r["rounds"], r["bytes"] / 1e6)))'
			done
		done
	done
done
links
echo "load after: $(uptime | sed 's/.*load/load/')"
echo
$PY table "$T/results.jsonl"
