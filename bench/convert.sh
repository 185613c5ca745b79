#!/bin/sh
# bench/convert.sh [DIR] [RUNS]: `smove disk convert` against `qemu-img
# convert` on the same images: a 4 GiB dynamic VHDX holding 1 GiB of random
# data (256 runs of 4 MiB, one every 16 MiB), converted VHDX->VHD, VHD->VHDX,
# VHDX->raw and raw->VHDX. Each case runs RUNS times per tool (default 5,
# alternating), from a cold page cache when this user may drop it (else warm,
# and the output says so), the output file removed and the result synced
# inside the timing. Prints the medians and the ratio qemu-img / smove (> 1:
# smove is faster). Needs about 7 GiB free in DIR (default: under /tmp).
set -eu
: "${SMOVE:=$(cd "$(dirname "$0")/.." && pwd)/build/cmd/smove}"
dir=${1:-$(mktemp -d /tmp/smove-bench.XXXXXX)}
runs=${2:-5}
cd "$dir"
trap 'rm -f chunk src.raw src.vhdx src.vhd out.*' EXIT

head -c 4194304 /dev/urandom >chunk
truncate -s 4G src.raw
i=0
while [ $i -lt 256 ]; do
	dd if=chunk of=src.raw bs=4M seek=$((i * 4)) conv=notrunc status=none
	i=$((i + 1))
done
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=32M src.raw src.vhdx
qemu-img convert -f raw -O vpc -o subformat=dynamic src.raw src.vhd

cold=no
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then cold=yes; fi
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
qfmt() { case $1 in vhd) echo vpc ;; *) echo "$1" ;; esac; }
opts() { case $1 in vhdx) echo "-o subformat=dynamic,block_size=32M" ;; vhd) echo "-o subformat=dynamic" ;; esac; }
run() { # TOOL FROM TO: one timed run
	rm -f "out.$3"
	[ $cold = yes ] && sync && echo 3 >/proc/sys/vm/drop_caches
	t0=$(now)
	case $1 in
	smove) "$SMOVE" disk convert -q --to "$3" "src.$2" "out.$3" ;;
	qemu) qemu-img convert -f "$(qfmt "$2")" -O "$(qfmt "$3")" $(opts "$3") "src.$2" "out.$3" ;;
	esac
	sync
	awk "BEGIN { print $(now) - $t0 }"
}

echo "cold cache: $cold; $runs runs per tool; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %10s %10s %8s\n' case smove qemu-img ratio
for c in vhdx:vhd vhd:vhdx vhdx:raw raw:vhdx; do
	from=${c%%:*} to=${c#*:}
	s= q=
	k=0
	while [ $k -lt "$runs" ]; do
		s="$s $(run smove "$from" "$to")"
		q="$q $(run qemu "$from" "$to")"
		k=$((k + 1))
	done
	# shellcheck disable=SC2086
	sm=$(median $s) qm=$(median $q)
	printf '%-12s %9.2fs %9.2fs %7.2fx\n' "$from->$to" "$sm" "$qm" \
		"$(awk "BEGIN { print $qm / $sm }")"
done
