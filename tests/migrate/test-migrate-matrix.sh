#!/bin/sh
# The migration matrix, between two hosts on one machine (network namespaces
# joined by a veth pair: netns.sh; loopback where they cannot be made): for
# each row, a 256 MiB test guest writing memory and disk moves from one host
# to the other (lib.sh's live_scenario: its invariants hold there, its
# heartbeat goes on, its disk equals a reference made apart from smove, read
# by QEMU and for VHD by libvhdi too, VHDX passes qemu-img check, nothing is
# left on the source). A row: disk format, vCPUs, TLS (none or psk),
# compression (off or on), memory channels, and optionally a tbf rate for the
# link in Mbit/s (e.g. 200mbit). `make check` runs a pairwise selection (every pair of values of any
# two dimensions in some row) and one row over a 200 Mbit/s link;
# SMOVE_TEST_FULL=1 runs the whole product; SMOVE_TEST_ROWS="ROW;ROW"
# runs the rows given. A QEMU VM's memory goes as one stream, neither
# compressed nor over channels (those are smove's own VMM's): its rows vary
# format, vCPUs and TLS only, in make check two rows that take both values
# of each but the format (one over the shaped link; the other formats move
# in test-migrate-raw and -vhdx-psk), in check-full their whole product.
. "$abs_top_srcdir/tests/functions.sh"
requires qemu-img psktool
. "$abs_top_srcdir/tests/migrate/lib.sh"
. "$abs_top_srcdir/tests/migrate/netns.sh"
sh "$abs_top_srcdir/tests/proto/make-tls-creds.sh" "$T/tls" >/dev/null

pairwise="vhd 1 none off 1;vhd 2 psk on 4;vhdx 1 none on 4;vhdx 2 psk off 1;raw 1 psk off 4;raw 2 none on 1;vhdx 2 psk on 4 200mbit"
full=""
for fmt in vhd vhdx raw; do
	for cpus in 1 2; do
		for tls in none psk; do
			for z in off on; do
				for ch in 1 4; do full="$full$fmt $cpus $tls $z $ch;"; done
			done
		done
	done
done
if [ "$RUNTIME" = qemu ]; then
	pairwise="vhd 1 none off 1;vhdx 2 psk off 1 200mbit"
	full=""
	for fmt in vhd vhdx raw; do
		for cpus in 1 2; do
			for tls in none psk; do full="$full$fmt $cpus $tls off 1;"; done
		done
	done
	full="${full}vhdx 2 psk off 1 200mbit"
else
	full="${full}vhdx 2 psk on 4 200mbit"
fi
rows=$pairwise
[ "${SMOVE_TEST_FULL:-0}" = 1 ] && rows=$full
rows=${SMOVE_TEST_ROWS:-$rows}

# row FORMAT CPUS TLS COMPRESS CHANNELS [RATE]
row() {
	serve_opts="" move_opts="--channels $5"
	LIB_TLS=none
	[ "$3" = psk ] && serve_opts="--tls-psk $T/tls/keys.psk" move_opts="$move_opts --tls-psk $T/tls/alice.psk"
	[ "$4" = on ] && move_opts="$move_opts --compress"
	if [ -n "${6:-}" ]; then netns_shape "$6"; fi
	PORT=
	start_serve $serve_opts
	LIVE_MEMORY=256M live_scenario "$1" "$2" $move_opts
	echo "bytes sent: $(event 'd["bytes"]'), rounds: $(event 'd["rounds"]'), $(event 'd["total_s"]') s"
	# The link was shaped: the bytes took at least 90 % of their time at RATE.
	if [ -n "${6:-}" ] && [ $SHAPED = yes ]; then
		[ "$(event "int(d['total_s'] >= 0.9 * d['bytes']['total'] * 8 / ${6%mbit}e6)")" = 1 ] ||
			fail "the migration went faster than $6: the link is not shaped"
	fi
	netns_unshape
	kill "$SERVE_PID"
	wait "$SERVE_PID" || true
	rm -rf "$T/src" "$T/src-state" "$T/dst" "$T/dst-state" "$T/store" "$T"/vm1.* "$T"/disk.* "$T"/move.* "$T"/serve.*
	mkdir -p "$T/src" "$T/src-state" "$T/dst" "$T/dst-state" "$T/store"
}

n=0
rest=$rows
while [ -n "$rest" ]; do
	r=${rest%%;*}
	rest=${rest#"$r"}
	rest=${rest#;}
	[ -n "$r" ] || continue
	n=$((n + 1))
	t0=$(date +%s.%N)
	echo "=== row $n: $r"
	# shellcheck disable=SC2086
	row $r
	echo "=== row $n: $r passed in $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s"
done
[ $n -gt 0 ] || fail "no rows"
