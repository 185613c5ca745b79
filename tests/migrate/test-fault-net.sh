#!/bin/sh
# The network between the two hosts fails in the middle of a migration. The
# destination's `smove serve` runs in a network namespace of its own, joined
# to this one by a veth pair (addresses 10.251.N.1 and .2, which exist only
# there), with TLS (a pre-shared key). Both sides run with the frame timeout
# shortened to 3 s by the test hook SMOVE_TEST_TIMEOUT_MS (30 s otherwise):
#   cut-memory        the destination's host resets every TCP connection of
#                     the source (an iptables REJECT with tcp-reset) during
#                     the memory rounds
#   down-memory       the link goes down (ip link set down) during the rounds
#   blackhole-storage every packet dropped both ways (iptables DROP) during
#                     the disk's bulk copy (--bandwidth 4)
#   blackhole-memory  ... during the memory rounds
# Each ends in a rollback (`smove move` exits 5) within a few timeouts: vm1
# runs on the source with its disk, its guest goes on with every invariant
# intact; the destination, which notices the silence by itself, discards its
# copy and serves on (and takes vm1 once the network is back).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
requires ip iptables psktool
[ $# = 1 ] || fault_cases "$0" cut-memory down-memory blackhole-storage blackhole-memory
[ $# = 1 ] || exit 0

# Two hosts: this namespace and $NS.
N=$(($$ % 200 + 20))
NS=smove-fault-$$
VS=sfs$$
VD=sfd$$
ip netns add "$NS" 2>/dev/null || skip "cannot create a network namespace"
on_exit "ip netns del $NS 2>/dev/null || true; ip link del $VS 2>/dev/null || true"
ip link add "$VS" type veth peer name "$VD"
ip link set "$VD" netns "$NS"
ip addr add "10.251.$N.1/30" dev "$VS"
ip link set "$VS" up
ip netns exec "$NS" ip addr add "10.251.$N.2/30" dev "$VD"
ip netns exec "$NS" ip link set "$VD" up
ip netns exec "$NS" ip link set lo up
ADDR=10.251.$N.2
SERVE_IN="ip netns exec $NS"
in_ns() { ip netns exec "$NS" "$@"; }

psktool -u smove -p "$T/keys.psk" >/dev/null
export SMOVE_TEST_TIMEOUT_MS=3000
start_serve --tls-psk "$T/keys.psk"
fault_vm
case $1 in
*-storage) opts="--bandwidth 4" event='"event":"progress"' ;;
*-memory) opts="--downtime-ms 1" event='"round":2' ;;
esac
move_bg vm1 --tls-psk "$T/keys.psk" $opts
wait_for "$T/move.json" "$event"
t0=$(date +%s)
case $1 in
cut-*) in_ns iptables -I INPUT -p tcp -j REJECT --reject-with tcp-reset ;;
down-*) ip link set "$VS" down ;;
blackhole-*)
	in_ns iptables -I INPUT -j DROP
	in_ns iptables -I OUTPUT -j DROP
	;;
esac
move_wait
t=$(($(date +%s) - t0))
grep -E '"(phase|result)"' "$T/move.json" | cut -c1-200
echo "rolled back $t s after the fault"
expect_result 5 rolled-back
[ "$t" -le 12 ] || fail "the rollback took $t s, more than 4 timeouts"
# The destination notices by itself and discards its copy.
for i in $(seq 150); do [ -e "$T/store/vm1" ] || break; sleep 0.1; done
case $1 in
cut-*) in_ns iptables -D INPUT -p tcp -j REJECT --reject-with tcp-reset ;;
down-*) ip link set "$VS" up ;;
blackhole-*)
	in_ns iptables -D INPUT -j DROP
	in_ns iptables -D OUTPUT -j DROP
	;;
esac
kill -0 "$SERVE_PID" || fail "serve ended"
on_source
grep -q "vm1: migration failed, copy discarded" "$T/serve.err" ||
	fail "serve does not say it discarded the copy"
# The network is back: vm1 moves.
move vm1 --tls-psk "$T/keys.psk"
expect_result 0 done
on_destination
