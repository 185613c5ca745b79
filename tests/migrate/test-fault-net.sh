#!/bin/sh
# The network between the two hosts fails in the middle of a migration. The
# two hosts are network namespaces joined by a veth pair (netns.sh), the
# migration uses TLS (a pre-shared key). Both sides run with the frame timeout
# shortened to 3 s (6 s for a QEMU VM) by the test hook SMOVE_TEST_FRAME_TIMEOUT_MS (30 s otherwise):
#   cut-memory        the destination's host resets every TCP connection of
#                     the source (an iptables REJECT with tcp-reset) during
#                     the memory rounds
#   down-memory       the link goes down (ip link set down) during the rounds
#   blackhole-storage every packet dropped both ways (iptables DROP) during
#                     the disk's bulk copy (--bandwidth 4)
#   blackhole-memory  ... during the memory rounds
#   blackhole-switchover ... at the switchover: the source paused, its VM's
#                     state sent, the destination holding it unloaded (test
#                     hook dest-switchover)
#   blackhole-30s     (SMOVE_TEST_FULL=1) blackhole-memory with the real 30 s
# Each ends in a rollback (`smove move` exits 5) within a few timeouts: vm1
# runs on the source with its disk, its guest goes on with every invariant
# intact; the destination, which notices the silence by itself (at the
# switchover: once the link is back), discards its copy and serves on (and
# takes vm1 once the network is back).
#   blackhole-resumed every packet dropped after RESUME, the VM resumed there
#                     (RUNNING held back: test hook dest-running): the source
#                     ends in doubt within a few timeouts (exit 6), the VM
#                     runs there; once the link is back `smove move
#                     --resolve` settles it as resumed: one VM, there
# A QEMU VM runs cut-memory and the two at the switchover and after RESUME
# outside check-full (SMOVE_TEST_FULL=1).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
requires ip iptables psktool
cases="cut-memory down-memory blackhole-storage blackhole-memory blackhole-switchover
	blackhole-resumed"
[ "${SMOVE_TEST_FULL:-0}" = 0 ] || cases="$cases blackhole-30s"
[ "$RUNTIME" = qemu ] && [ "${SMOVE_TEST_FULL:-0}" = 0 ] &&
	cases="cut-memory blackhole-switchover blackhole-resumed"
# shellcheck disable=SC2086
[ $# = 1 ] || fault_cases "$0" $cases
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
# A QEMU VM under TCG on a loaded machine can leave its stream unread for
# seconds while it loads RAM: 6 s there, so that only the fault times out.
limit=3
[ "$RUNTIME" = memsync ] || limit=6
if [ "$1" = blackhole-30s ]; then
	limit=30
	set -- blackhole-memory
else
	export SMOVE_TEST_FRAME_TIMEOUT_MS=$((limit * 1000))
fi
stall=
case $1 in
*-switchover) stall=dest-switchover ;;
*-resumed) stall=dest-running ;;
esac
fault_serve "$stall" --tls-psk "$T/keys.psk"
fault_vm
opts=
case $1 in
*-storage) opts="--bandwidth 4" event='"event":"progress"' ;;
*-memory) opts="--downtime-ms 1" event='"round":2' ;;
esac
move_bg vm1 --tls-psk "$T/keys.psk" $opts
if [ -n "$stall" ]; then
	wait_for "$T/serve.err" "stalling at $stall"
else
	wait_for "$T/move.json" "$event"
fi
t0=$(date +%s)
fault on
move_wait
t=$(($(date +%s) - t0))
grep -E '"(phase|result)"' "$T/move.json" | cut -c1-200
if [ "$1" = blackhole-resumed ]; then
	echo "in doubt $t s after the fault"
	[ "$t" -le $((4 * limit)) ] || fail "the source waited $t s, more than 4 timeouts of $limit s"
	in_doubt
	runs "$T/dst/vm1.sock"
	fault off
	expect_status 0 src move --resolve vm1
	on_destination
	exit 0
fi
echo "rolled back $t s after the fault"
expect_result 5 rolled-back
[ "$t" -le $((4 * limit)) ] || fail "the rollback took $t s, more than 4 timeouts of $limit s"
# The destination notices by itself and discards its copy (held at the
# switchover, once the link is back).
[ -n "$stall" ] || for i in $(seq 150); do [ -e "$T/store/vm1" ] || break; sleep 0.1; done
fault off
kill -0 "$SERVE_PID" || fail "serve ended"
on_source
grep -q "vm1: migration failed, copy discarded" "$T/serve.err" ||
	fail "serve does not say it discarded the copy"
# The network is back: vm1 moves.
move vm1 --tls-psk "$T/keys.psk"
expect_result 0 done
on_destination
