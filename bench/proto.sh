#!/bin/sh
# bench/proto.sh [MIB]: throughput of smove's page transfer (MEM_BATCH:
# encode, send, receive straight into the destination's memory, check; once
# also received into a buffer and copied) over TCP loopback, plain, with
# TLS-PSK and with compression, on 1 and 4+1 connections, against the raw loopback socket moving the same bytes between
# two threads (write(2) to read(2) into memory) and `dd` through a pipe, in
# the same run. Each case runs 3 times; the median is printed, with the
# ratio to the raw socket. Then a runtime's migration stream (STREAM frames of
# 256 KiB, plain and TLS-PSK) over a Unix socketpair, against the raw
# socketpair. Run from the build directory or set BUILD.
set -eu
mib=${1:-512}
build=${BUILD:-$(pwd)}
bench="$build/bench/proto-bench"
[ -x "$bench" ] || { echo "build first: $bench not found (run from the build directory)" >&2; exit 1; }

median3() { sort -n | sed -n 2p; }

run() { # LABEL ARGS...
	label=$1
	shift
	v=$(for i in 1 2 3; do "$bench" "$@" | awk '{print $2}'; done | median3)
	echo "$label $v"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with other work: compare ratios)"
raw=$(run raw raw "$mib" | awk '{print $2}')
dd_gbs=$(for i in 1 2 3; do
	dd if=/dev/zero bs=1M count="$mib" 2>/dev/null | dd of=/dev/null bs=1M 2>&1 |
		awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1) }' |
		awk -v m="$mib" '{ printf "%.3f\n", m * 1048576 / $1 / 1e9 }'
done | median3)
printf '%-32s %8s %10s\n' "case ($mib MiB guest memory)" "GB/s" "vs raw"
printf '%-32s %8s %10s\n' "raw TCP loopback socket" "$raw" "1.00"
printf '%-32s %8s %10s\n' "dd | dd through a pipe" "$dd_gbs" \
	"$(awk -v a="$dd_gbs" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')"
for c in "plain, 1 connection|" "plain, 1 conn., copying|--copy" \
	"plain, 4+1 connections|--channels 4" \
	"TLS-PSK, 1 connection|--tls" "TLS-PSK, 4+1 connections|--tls --channels 4" \
	"zlib, 1 connection|--compress" "zlib, 4+1 connections|--compress --channels 4"; do
	label=${c%%|*}
	# shellcheck disable=SC2086 # the options are words
	v=$(run x pages "$mib" ${c#*|} | awk '{print $2}')
	printf '%-32s %8s %10s\n' "smove $label" "$v" \
		"$(awk -v a="$v" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')"
done
rawu=$(run raw raw "$mib" --unix | awk '{print $2}')
printf '%-32s %8s %10s\n' "raw Unix socketpair" "$rawu" "1.00"
for c in "STREAM 256 KiB, socketpair|" "STREAM 256 KiB, TLS-PSK|--tls"; do
	label=${c%%|*}
	# shellcheck disable=SC2086 # the options are words
	v=$(run x stream "$mib" ${c#*|} | awk '{print $2}')
	printf '%-32s %8s %10s\n' "smove $label" "$v" \
		"$(awk -v a="$v" -v b="$rawu" 'BEGIN { printf "%.2f", a / b }')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
