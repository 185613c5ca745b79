#!/bin/sh
# The network between the two hosts fails in the middle of a migration. The
# two hosts are network namespaces joined by a veth pair (netns.sh), the
# migration uses TLS (a pre-shared key). Both sides run with the frame timeout
# shortened to 3 s by the test hook SMOVE_TEST_FRAME_TIMEOUT_MS (30 s otherwise):
#   cut-memory        the destination's host resets every TCP connection of
#                     the source (an iptables REJECT with tcp-reset) during
#                     the memory rounds
#   down-memory       the link goes down (ip link set down) during the rounds
#   blackhole-storage every packet dropped both ways (iptables DROP) during
#                     the disk's bulk copy (--bandwidth 4)
#   blackhole-memory  ... during the memory rounds
#   blackhole-30s     (SMOVE_TEST_FULL=1) blackhole-memory with the real 30 s
# Each ends in a rollback (`smove move` exits 5) within a few timeouts: vm1
# runs on the source with its disk, its guest goes on with every invariant
# intact; the destination, which notices the silence by itself, discards its
# copy and serves on (and takes vm1 once the network is back).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
requires ip iptables psktool
full=
[ "${SMOVE_TEST_FULL:-0}" = 0 ] || full=blackhole-30s
[ $# = 1 ] || fault_cases "$0" cut-memory down-memory blackhole-storage blackhole-memory $full
[ $# = 1 ] || exit 0

. "$abs_top_srcdir/tests/migrate/netns.sh"
[ "$NETNS" = yes ] || skip "these faults need network namespaces"
# fault on|off: the fault of this case begins or ends.
fault() {
	add=-I up=down
	[ "$1" = on ] || add=-D up=up
	case $kind in
	cut-*) ip netns exec "$NS_B" iptables $add INPUT -p tcp -j REJECT --reject-with tcp-reset ;;
	down-*) ip -n "$NS_A" link set va $up ;;
	blackhole-*)
		ip netns exec "$NS_B" iptables $add INPUT -j DROP
		ip netns exec "$NS_B" iptables $add OUTPUT -j DROP
		;;
	esac
}
kind=$1

psktool -u smove -p "$T/keys.psk" >/dev/null
# blackhole-30s: the real timeouts (SMOVE_TEST_FULL=1 only).
limit=3
if [ "$1" = blackhole-30s ]; then
	limit=30
	set -- blackhole-memory
else
	export SMOVE_TEST_FRAME_TIMEOUT_MS=3000
fi
start_serve --tls-psk "$T/keys.psk"
fault_vm
case $1 in
*-storage) opts="--bandwidth 4" event='"event":"progress"' ;;
*-memory) opts="--downtime-ms 1" event='"round":2' ;;
esac
move_bg vm1 --tls-psk "$T/keys.psk" $opts
wait_for "$T/move.json" "$event"
t0=$(date +%s)
fault on
move_wait
t=$(($(date +%s) - t0))
grep -E '"(phase|result)"' "$T/move.json" | cut -c1-200
echo "rolled back $t s after the fault"
expect_result 5 rolled-back
[ "$t" -le $((4 * limit)) ] || fail "the rollback took $t s, more than 4 timeouts of $limit s"
# The destination notices by itself and discards its copy.
for i in $(seq 150); do [ -e "$T/store/vm1" ] || break; sleep 0.1; done
fault off
kill -0 "$SERVE_PID" || fail "serve ended"
on_source
grep -q "vm1: migration failed, copy discarded" "$T/serve.err" ||
	fail "serve does not say it discarded the copy"
# The network is back: vm1 moves.
move vm1 --tls-psk "$T/keys.psk"
expect_result 0 done
on_destination
