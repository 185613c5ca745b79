#!/bin/sh
# A TCP stream survives a live migration (QEMU runtime). Three network
# namespaces: the source host and the destination host each run their smove
# (`smove run` there, `smove serve` here) with a tap device of the same name,
# tap-vm1 (the VM's configuration names it), in a bridge of its own; both
# bridges are joined by veth pairs to the bridge of a third, client
# namespace. The migration itself goes over another veth pair between the
# two hosts. The Linux test guest takes 10.251.0.10/24 (smove.ip=) and serves
# its counter stream (smove.netport=: a line "N NS" every 10 ms); a client in
# the third namespace connects before the move and reads during and after it.
# Asserted: the same TCP connection goes on delivering every count once and
# in order after the move (no reset, no count missing), and the destination
# announced the guest: RARP frames from the guest's MAC reach the client's
# bridge from the destination's side after the move, more than the five of
# QEMU's own announcement when an incoming migration completes (smove calls
# announce-self once the VM runs there: five more). Prints the longest gap
# between two lines the client saw.
. "$abs_top_srcdir/tests/functions.sh"
[ "$(id -u)" = 0 ] || skip "not root: network namespaces, bridges and tap devices need it"
requires ip
export SMOVE_TEST_RUNTIME=qemu
. "$abs_top_srcdir/tests/migrate/lib.sh"
PY=/usr/bin/python3
CLIENT="$abs_top_srcdir/tests/qemu/net-client.py"
MAC=52:54:00:fb:00:0a
GUEST=10.251.0.10

# Namespaces of tests that are gone (their pid is in the name).
for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(smove-n[0-9]*-[a-z]*\).*/\1/p'); do
	pid=${ns#smove-n}
	pid=${pid%-*}
	kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
done
NS_S=smove-n$$-src NS_D=smove-n$$-dst NS_C=smove-n$$-cli
netns_cleanup() {
	for ns in "$NS_S" "$NS_D" "$NS_C"; do ip netns delete "$ns" 2>/dev/null || true; done
}
ip netns add "$NS_S" 2>"$T/netns.err" || skip "cannot create network namespaces: $(head -1 "$T/netns.err")"
on_exit netns_cleanup
# Every name is made inside the namespaces (none ever appears in the caller's).
net() {
	set -e
	ip netns add "$NS_D"
	ip netns add "$NS_C"
	for ns in "$NS_S" "$NS_D" "$NS_C"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link add br0 type bridge
		ip -n "$ns" link set br0 up
	done
	# The hosts' bridges to the client's: s0 (source) - cs, d0 (destination) - cd.
	ip -n "$NS_S" link add s0 type veth peer name cs netns "$NS_C"
	ip -n "$NS_D" link add d0 type veth peer name cd netns "$NS_C"
	for l in "$NS_S s0" "$NS_D d0" "$NS_C cs" "$NS_C cd"; do
		set -- $l
		ip -n "$1" link set "$2" master br0 up
	done
	ip -n "$NS_C" addr add 10.251.0.100/24 dev br0
	# The VM's tap, the same name on both hosts.
	for ns in "$NS_S" "$NS_D"; do
		ip -n "$ns" tuntap add dev tap-vm1 mode tap
		ip -n "$ns" link set tap-vm1 master br0 up
	done
	# The migration's link.
	ip -n "$NS_S" link add m0 type veth peer name m1 netns "$NS_D"
	ip -n "$NS_S" addr add 10.251.1.1/24 dev m0
	ip -n "$NS_D" addr add 10.251.1.2/24 dev m1
	ip -n "$NS_S" link set m0 up
	ip -n "$NS_D" link set m1 up
}
(net) 2>"$T/netns.err" || skip "cannot build the namespaces' network (bridge, veth, tap): $(tail -1 "$T/netns.err")"
IN_SRC="ip netns exec $NS_S" IN_DST="ip netns exec $NS_D" IN_CLI="ip netns exec $NS_C"
SRC_ADDR=10.251.1.1 DST_ADDR=10.251.1.2
echo "hosts: $NS_S and $NS_D (migration over 10.251.1.0/24), client $NS_C (10.251.0.100);" \
	"the guest $GUEST on tap-vm1 in each host's bridge"

start_serve
start_vm vm1 --memory 128M --nic "tap-vm1,mac=$MAC" \
	--cmdline "mem=8M passes=0 hb=10 ip=$GUEST/24 netport=7777"
wait_for "$T/vm1.console" "^net: counter service on port 7777|FAIL" 90
grep -q "^init: eth0 $GUEST/24" "$T/vm1.console" || fail "/init did not configure eth0"
! grep FAIL "$T/vm1.console" || fail "the guest's checker failed"

# The client and the capture, in the client's namespace.
$IN_CLI $PY "$CLIENT" capture "$MAC" "$T/frames.out" "$T/stop" &
on_exit "touch $T/stop"
wait_for "$T/frames.out" capturing 10
$IN_CLI $PY "$CLIENT" stream "$GUEST" 7777 "$T/client.out" "$T/stop" &
CLIENT_PID=$!
wait_for "$T/client.out" connected 30
sleep 2 # lines before the move
t_move=$($PY -c 'import time; print(time.time())')
move vm1
t_moved=$($PY -c 'import time; print(time.time())')
expect_move 0
[ "$(event 'd["result"]')" = done ] || fail "the result is $(event 'd["result"]'), not done"
wait "$VM_PID" || fail "the source's smove run did not exit 0"
sleep 3 # lines after it, from the destination
touch "$T/stop"
wait "$CLIENT_PID" || fail "the client failed"
! grep FAIL "$T/store/vm1/console.log" || fail "the guest's checker failed after the move"
runs "$T/dst/vm1.sock"

tail -1 "$T/client.out" | $PY -c '
import json, sys
r = json.loads(sys.stdin.read())
t_move, t_moved = float(sys.argv[1]), float(sys.argv[2])
after = sum(1 for t in r["times"] if t > t_moved)
during = [b - a for a, b in zip(r["times"], r["times"][1:]) if b > t_move and a < t_moved + 1]
print("client: %d lines, %d after the move; longest gap between two lines %.1f ms (%.1f ms from the"
      " move'"'"'s start), the move took %.2f s, the host saw a downtime of %s ms" % (
          r["lines"], after, r["max_gap_ms"],
          (r["max_gap_at"] - t_move) * 1e3 if r["max_gap_at"] else 0, t_moved - t_move,
          sys.argv[3]))
if r["out_of_sequence"]:
    sys.exit("count %(got)d came after %(after)d: lines were lost or repeated" % r["out_of_sequence"])
if r["end"] != "open":
    sys.exit("the connection was %s" % r["end"])
if after < 100:
    sys.exit("only %d lines in the 3 s after the move (a line every 10 ms)" % after)
' "$t_move" "$t_moved" "$(event 'd["downtime_ms"]')" || fail "the TCP stream did not survive the move"

# The announcement: RARP from the guest's MAC, from the destination's side.
$PY -c '
import json, sys
t_move = float(sys.argv[2])
f = [json.loads(l) for l in open(sys.argv[1]) if "\"t\"" in l]
rarp_dst = [x for x in f if x["kind"] == "rarp" and x["if"] == "cd" and x["t"] > t_move]
rarp_src = [x for x in f if x["kind"] == "rarp" and x["if"] == "cs"]
arp_dst = [x for x in f if x["kind"] == "arp" and x["if"] == "cd" and x["t"] > t_move]
print("announcement: %d RARP frames from the destination'"'"'s side (%d from the source'"'"'s),"
      " %d ARP frames from the guest there" % (len(rarp_dst), len(rarp_src), len(arp_dst)))
if len(rarp_dst) <= 5:
    sys.exit("%d RARP frames: QEMU'"'"'s own announcement after an incoming migration is 5;"
             " smove'"'"'s announce-self after the resume did not reach the network" % len(rarp_dst))
' "$T/frames.out" "$t_move" || fail "the destination did not announce the guest"
ctl "$T/dst/vm1.sock" '{"cmd":"stop"}' >/dev/null
