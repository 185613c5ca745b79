#!/bin/sh
# bench/vpc-convert.sh [DIR]: `smove disk convert` against `qemu-img convert`
# on VHD images: a 4 GiB dynamic VHD holding 1 GiB of data (256 runs of 4 MiB
# spread over the disk) to raw, raw to a dynamic VHD, and VHD to VHD. Each
# case runs 5 times per tool, alternating (warm page cache, outputs removed
# between runs, each output fsynced); the medians, the ratio qemu-img / smove
# (> 1: smove is faster) and the fastest runs are printed, with the load.
# Needs about 6 GiB free in DIR (default: a directory under /tmp; /dev/shm
# takes the disk out of the measure).
set -eu
: "${SMOVE:=$(cd "$(dirname "$0")/.." && pwd)/build/cmd/smove}"
dir=${1:-$(mktemp -d /tmp/smove-bench.XXXXXX)}
cd "$dir"
trap 'rm -f src.raw src.vhd out.*' EXIT

head -c 4194304 /dev/urandom >chunk
truncate -s 4G src.raw
i=0
while [ $i -lt 256 ]; do # every 16 MiB, 4 MiB of data
	dd if=chunk of=src.raw bs=4M seek=$((i * 4)) conv=notrunc status=none
	i=$((i + 1))
done
qemu-img convert -f raw -O vpc -o subformat=dynamic src.raw src.vhd

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
fastest() { printf '%s\n' "$@" | sort -n | sed -n 1p; }
run() { # TOOL: one timed run of the case in $from/$to
	rm -f "out.$to"
	t0=$(now)
	case $1 in
	smove) "$SMOVE" disk convert -q --to "$to" "$from" "out.$to" ;;
	qemu) qemu-img convert -f "$ffmt" -O "$tfmt" "$from" "out.$to" ;;
	esac
	sync "out.$to"
	awk "BEGIN { print $(now) - $t0 }"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %10s %10s %8s   %s\n' case smove qemu-img ratio "(fastest runs: smove, qemu-img)"
for c in vhd:raw raw:vhd vhd:vhd2; do
	from=src.${c%%:*} to=${c#*:}
	ffmt=$([ "${c%%:*}" = vhd ] && echo vpc || echo raw)
	tfmt=$([ "$to" = raw ] && echo raw || echo vpc)
	[ "$to" = vhd2 ] && to=vhd
	st="" qt=""
	for i in 1 2 3 4 5; do
		st="$st $(run smove)"
		qt="$qt $(run qemu)"
	done
	# shellcheck disable=SC2086
	s=$(median $st) q=$(median $qt) sf=$(fastest $st) qf=$(fastest $qt)
	printf '%-12s %9.2fs %9.2fs %7.2fx   (%.2fs, %.2fs)\n' "${c%%:*}->${c#*:}" "$s" "$q" \
		"$(awk "BEGIN { print $q / $s }")" "$sf" "$qf"
done
