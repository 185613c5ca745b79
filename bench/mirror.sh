#!/bin/sh
# bench/mirror.sh: smove's mirror engine against nbdcopy, as ratios.
#  1. Throughput: a 4 GiB disk holding 2 GiB of data (1 MiB runs, every other
#     MiB) copied to a fresh image served by `nbdkit smove` on loopback TCP,
#     with the images in memory (/dev/shm: the engines, not the disk, are
#     measured) and then on disk (raw only: the flush to stable storage counts),
#     by `nbdcopy --destination-is-zero --flush` and by `smove disk mirror
#     --destination-is-zero`
#     (one connection, and four like nbdcopy's multi-conn default; both open
#     at most one per core). Both end with the data on the destination's
#     stable storage (nbdcopy flushes only with --flush; its unflushed time
#     is printed too): raw to raw
#     (nbdcopy reads the file itself), and VHDX to VHDX (nbdcopy reads the
#     source through a second `nbdkit smove`, smove reads the file). Each copy
#     is checked against the source once.
#  2. The latency synchronous mirroring adds to a writer: random 4 KiB writes
#     to the source alone, then through a synchronous mirror job
#     (bench/mirror-latency.c).
# Run from the build directory (or set abs_top_builddir). RUNS=N (default 5)
# repeats each measurement and prints the median.
set -eu
B=${abs_top_builddir:-$(pwd)}
SMOVE=$B/cmd/smove
PLUGIN=$B/storage/nbdkit/.libs/nbdkit-smove-plugin.so
LAT=$B/bench/mirror-latency
RUNS=${RUNS:-5}
[ -x "$LAT" ] || make -C "$B" bench/mirror-latency >/dev/null
SHM=/dev/shm
[ -d "$SHM" ] && [ "$(df -k --output=avail "$SHM" | tail -1)" -gt 12000000 ] || SHM=/var/tmp
T=$(mktemp -d "$SHM/smove-bench.XXXXXX")
DISK=$(mktemp -d "${TMPDIR:-/var/tmp}/smove-bench.XXXXXX")
trap 'for p in "$T"/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; rm -rf "$T" "$DISK"' EXIT
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve NAME FILE: nbdkit smove on a loopback TCP port; sets $uri.
serve() {
	p=$(port)
	nbdkit -p "$p" -i 127.0.0.1 -P "$T/$1.pid" "$PLUGIN" "file=$2"
	uri="nbd://127.0.0.1:$p/"
}
unserve() {
	pid=$(cat "$T/$1.pid")
	kill "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$T/$1.pid"
}

# The source: 2 GiB of data in 1 MiB runs, every other MiB of 4 GiB.
head -c 64M /dev/urandom >"$T/chunk"
"$SMOVE" disk create --size 4G "$T/src.raw"
/usr/bin/python3 - "$T/chunk" "$T/src.raw" <<'PY'
import sys
chunk = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "r+b") as f:
    for i in range(2048):
        f.seek(2 * i << 20)
        f.write(chunk[(i % 64) << 20:((i % 64) + 1) << 20])
PY
"$SMOVE" disk convert -q "$T/src.raw" "$T/src.vhdx"
DATA=2147483648

# copy TOOL FMT DIR: one timed copy into a fresh FMT image in DIR; prints MiB/s.
copy() {
	tool=$1 fmt=$2 dir=$3
	rm -f "$dir/dst.$fmt"
	"$SMOVE" disk create --size 4G "$dir/dst.$fmt"
	serve dst "$dir/dst.$fmt"
	dst=$uri
	src=$T/src.$fmt
	if [ "$tool" != "${tool#nbdcopy}" ] && [ "$fmt" != raw ]; then
		serve src "$src"
		src=$uri
	fi
	t0=$(now)
	case $tool in
	nbdcopy) nbdcopy --destination-is-zero --flush "$src" "$dst" ;;
	nbdcopy-noflush) nbdcopy --destination-is-zero "$src" "$dst" ;;
	smove) "$SMOVE" disk mirror -q --destination-is-zero "$src" "$dst" ;;
	smove4) "$SMOVE" disk mirror -q --destination-is-zero --connections 4 "$src" "$dst" ;;
	esac
	t1=$(now)
	[ -e "$T/src.pid" ] && unserve src
	unserve dst
	if [ ! -e "$T/checked-$tool-$fmt" ]; then
		"$SMOVE" disk convert -q "$dir/dst.$fmt" "$T/check.raw"
		cmp "$T/src.raw" "$T/check.raw" || { echo "$tool $fmt: the copy differs" >&2; exit 1; }
		rm -f "$T/check.raw"
		touch "$T/checked-$tool-$fmt"
	fi
	rm -f "$dir/dst.$fmt"
	echo "$t0 $t1" | awk -v d=$DATA '{printf "%.0f\n", d / 1048576 / ($2 - $1)}'
}

# compare LABEL FMT DIR: RUNS rounds of every tool, then the medians.
compare() {
	label=$1 fmt=$2 dir=$3
	for i in $(seq "$RUNS"); do
		for tool in nbdcopy nbdcopy-noflush smove smove4; do
			copy $tool "$fmt" "$dir" >>"$T/$label-$tool-$fmt"
		done
	done
	n=$(median <"$T/$label-nbdcopy-$fmt")
	for tool in smove smove4; do
		s=$(median <"$T/$label-$tool-$fmt")
		conns=1
		[ "$tool" = smove4 ] && conns=4
		printf "%-6s %-5s smove (%d conn) %5s MiB/s   nbdcopy --flush %5s MiB/s   ratio %s   (runs: %s/ %s)\n" \
			"$label" "$fmt" "$conns" "$s" "$n" "$(echo "$s $n" | awk '{printf "%.2f", $1/$2}')" \
			"$(tr '\n' ' ' <"$T/$label-$tool-$fmt")" "$(tr '\n' ' ' <"$T/$label-nbdcopy-$fmt")"
	done
	printf "%-6s %-5s nbdcopy without --flush (data possibly not on stable storage): %s MiB/s\n" \
		"$label" "$fmt" "$(median <"$T/$label-nbdcopy-noflush-$fmt")"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; memory: $T, disk: $DISK"
compare memory raw "$T"
compare memory vhdx "$T"
compare disk raw "$DISK"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

# Latency of synchronous mirroring, 4 KiB random writes to a raw source (in
# memory, like the destination: the mirror's cost, not the disk's).
"$SMOVE" disk create --size 1G "$T/lat.raw"
for i in $(seq "$RUNS"); do
	rm -f "$T/ldst.raw"
	"$SMOVE" disk create --size 1G "$T/ldst.raw"
	serve ldst "$T/ldst.raw"
	"$LAT" "$T/lat.raw" "$uri" 2000 4096 >"$T/lat-$i"
	unserve ldst
	awk '/^direct/ {d=$3} /^nbd/ {b=$3} /^mirrored/ {m=$3} END {print d, b, m}' "$T/lat-$i" >>"$T/lat"
done
d=$(cut -d' ' -f1 "$T/lat" | median) b=$(cut -d' ' -f2 "$T/lat" | median)
m=$(cut -d' ' -f3 "$T/lat" | median)
printf "4 KiB write latency (median of medians): source alone %s us, destination alone (NBD round trip) %s us, synchronous mirror %s us (+%s us over the source, +%s us over both)\n" \
	"$d" "$b" "$m" "$(echo "$d $m" | awk '{printf "%.1f", $2-$1}')" \
	"$(echo "$d $b $m" | awk '{x = $1 > $2 ? $1 : $2; printf "%.1f", $3-x}')"
cat "$T/lat-$RUNS" | sed 's/^/  last run (mean, p50, p99 us): /'
