#!/bin/sh
# bench/vpc-convert.sh [DIR]: `smove disk convert` against `qemu-img convert`
# on VHD images: a 4 GiB dynamic VHD holding 1 GiB of data (256 runs of 4 MiB
# spread over the disk) to raw, raw to a dynamic VHD, and VHD to VHD. Each
# case runs 3 times per tool (warm page cache, outputs removed between runs);
# the medians and the ratio qemu-img / smove (> 1: smove is faster) are
# printed. Needs about 6 GiB free in DIR (default: a directory under /tmp).
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
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
run() { # TOOL: one timed run of the case in $from/$to
	rm -f "out.$to"
	t0=$(now)
	case $1 in
	smove) "$SMOVE" disk convert -q --to "$to" "$from" "out.$to" ;;
	qemu) qemu-img convert -f "$ffmt" -O "$tfmt" "$from" "out.$to" ;;
	esac
	sync
	awk "BEGIN { print $(now) - $t0 }"
}

printf '%-12s %10s %10s %8s\n' case smove qemu-img ratio
for c in vhd:raw raw:vhd vhd:vhd2; do
	from=src.${c%%:*} to=${c#*:}
	ffmt=$([ "${c%%:*}" = vhd ] && echo vpc || echo raw)
	tfmt=$([ "$to" = raw ] && echo raw || echo vpc)
	[ "$to" = vhd2 ] && to=vhd
	s1=$(run smove) q1=$(run qemu) s2=$(run smove) q2=$(run qemu) s3=$(run smove) q3=$(run qemu)
	s=$(median3 "$s1" "$s2" "$s3") q=$(median3 "$q1" "$q2" "$q3")
	printf '%-12s %9.2fs %9.2fs %7.2fx\n' "${c%%:*}->${c#*:}" "$s" "$q" "$(awk "BEGIN { print $q / $s }")"
done
