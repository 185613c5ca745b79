#!/bin/sh
# bench/vm.sh: smove's VM against the host it runs on, as ratios.
#  1. Memory write bandwidth: the test guest's pattern loop in guest ring 3
#     against the same loop (the same C file) on the host, in steady state
#     (passes 2 to 17 of 17: the first pass touches the pages).
#  2. Disk write throughput: the guest writing SIZE through virtio-blk to a raw
#     file (64 KiB requests, 16 per notify, then a flush) against dd writing the
#     same file from the host (64 KiB writes, then fsync).
# Run from the build directory (or set abs_top_builddir). RUNS=N (default 3)
# repeats each measurement and prints the median.
set -eu
B=${abs_top_builddir:-$(pwd)}
SMOVE=$B/cmd/smove
GUEST=$B/memsync/guest/guest.elf
HOST=$B/bench/vm-memhost
RUNS=${RUNS:-3}
MEM=${MEM:-512}
DISK=${DISK:-256}
[ -x "$HOST" ] || make -C "$B" bench/vm-memhost >/dev/null
T=$(mktemp -d "${TMPDIR:-/var/tmp}/smove-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
export SMOVE_RUNTIME_DIR="$T/run"
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

guest_mem_us() { # passes
	"$SMOVE" run --name bench-mem --memory $((MEM + 128))M --guest "$GUEST" \
		--console "$T/console" --cmdline "mem=${MEM}M passes=$1 verify=0 hbprint=0" >/dev/null 2>&1
	sed -n 's/^mem 0: .* passes 2+ in \([0-9]*\) us$/\1/p' "$T/console" | tail -1
	rm -f "$T/console"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for i in $(seq "$RUNS"); do
	g=$(guest_mem_us 17) h=$("$HOST" "$MEM" 17)
	echo "$g $h" | awk -v m="$MEM" '{g=16*m/$1*1e6; h=16*m/$2*1e6; printf "%.0f %.0f %.3f\n", g, h, g/h}' >>"$T/mem"
done
sed 's/^/  memory run (guest MiB\/s, host MiB\/s, ratio): /' "$T/mem"
guest=$(cut -d' ' -f1 "$T/mem" | median) host=$(cut -d' ' -f2 "$T/mem" | median)
ratio=$(cut -d' ' -f3 "$T/mem" | median)
printf "memory write, ring 3 guest:   %6s MiB/s   host: %6s MiB/s   ratio %s (median of %s)\n" \
	"$guest" "$host" "$ratio" "$RUNS"

for i in $(seq "$RUNS"); do
	rm -f "$T/g.raw" "$T/h.raw"
	truncate -s "${DISK}M" "$T/g.raw"
	"$SMOVE" run --name bench-disk --memory 64M --guest "$GUEST" --disk "$T/g.raw,format=raw" \
		--console "$T/console" --cmdline "disk=${DISK}M cpu0=diskw hbprint=0" >/dev/null 2>&1
	gms=$(sed -n 's/^diskw 0: .* in \([0-9]*\) ms$/\1/p' "$T/console")
	rm -f "$T/console"
	truncate -s "${DISK}M" "$T/h.raw"
	t0=$(date +%s%N)
	dd if="$T/g.raw" of="$T/h.raw" bs=64K count=$((DISK * 16)) conv=notrunc,fsync 2>/dev/null
	hms=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "$gms $hms" | awk -v d="$DISK" '{g=d/$1*1000; h=d/$2*1000; printf "%.0f %.0f %.3f\n", g, h, g/h}' >>"$T/disk"
done
sed 's/^/  disk run (guest MiB\/s, host MiB\/s, ratio): /' "$T/disk"
guest=$(cut -d' ' -f1 "$T/disk" | median) host=$(cut -d' ' -f2 "$T/disk" | median)
ratio=$(cut -d' ' -f3 "$T/disk" | median)
printf "disk write, guest virtio-blk: %6s MiB/s   host: %6s MiB/s   ratio %s (median of %s)\n" \
	"$guest" "$host" "$ratio" "$RUNS"
