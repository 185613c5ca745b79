# tests/migrate/netns.sh: two hosts on one machine, each in a network
# namespace of its own, joined by a veth pair. Source it after lib.sh, before
# starting anything; it sets lib.sh's IN_SRC / IN_DST (`ip netns exec NS`) and
# SRC_ADDR / DST_ADDR (10.250.X.1 and .2, X from the test's pid: addresses
# that exist only inside the two namespaces, so parallel tests never meet).
# The namespaces go when the test exits, whatever the way; those of a test
# that was killed are removed by the next one.
#   netns_shape RATE   shapes the link both ways with tc tbf (e.g. 200mbit);
#                      $SHAPED says whether it could (no over loopback);
#   netns_unshape      the link at full speed again
# Without root or iproute2, or with SMOVE_TEST_NETNS=no, the test runs over
# loopback instead and says so ($NETNS is yes or no).

netns_setup() {
	NETNS=no
	if [ "${SMOVE_TEST_NETNS:-yes}" = no ]; then
		why="SMOVE_TEST_NETNS=no"
	elif [ "$(id -u)" != 0 ]; then
		why="not root"
	elif ! command -v ip >/dev/null 2>&1; then
		why="no ip (iproute2)"
	else
		# Namespaces of tests that are gone (their pid is in the name).
		for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(smove-t[0-9]*-[ab]\).*/\1/p'); do
			pid=${ns#smove-t}
			pid=${pid%-?}
			kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
		done
		NS_A=smove-t$$-a
		NS_B=smove-t$$-b
		if ip netns add "$NS_A" 2>"$T/netns.err"; then
			on_exit netns_cleanup
			netns_link 2>>"$T/netns.err" && NETNS=yes
		fi
		why="cannot create network namespaces: $(head -1 "$T/netns.err")"
	fi
	if [ $NETNS = yes ]; then
		echo "two hosts: network namespaces $NS_A ($SRC_ADDR) and $NS_B ($DST_ADDR), over a veth pair"
	else
		echo "two hosts over loopback, not network namespaces ($why)"
	fi
}

# The second namespace and the link, both ends created inside the namespaces
# (no name ever appears in the caller's).
netns_link() {
	x=$(($$ % 250))
	ip netns add "$NS_B" &&
		ip -n "$NS_A" link add va type veth peer name vb netns "$NS_B" &&
		ip -n "$NS_A" addr add "10.250.$x.1/24" dev va &&
		ip -n "$NS_B" addr add "10.250.$x.2/24" dev vb &&
		ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
		ip -n "$NS_A" link set va up && ip -n "$NS_B" link set vb up &&
		ip netns exec "$NS_A" true || return 1
	IN_SRC="ip netns exec $NS_A"
	IN_DST="ip netns exec $NS_B"
	SRC_ADDR=10.250.$x.1
	DST_ADDR=10.250.$x.2
}

netns_cleanup() {
	ip netns delete "$NS_B" 2>/dev/null || true
	ip netns delete "$NS_A" 2>/dev/null || true
}

netns_shape() {
	SHAPED=no
	if [ $NETNS = no ]; then
		echo "loopback: the link is not shaped to $1"
	elif tc -n "$NS_A" qdisc replace dev va root tbf rate "$1" burst 256kb latency 50ms &&
		tc -n "$NS_B" qdisc replace dev vb root tbf rate "$1" burst 256kb latency 50ms; then
		SHAPED=yes
		echo "the link is shaped to $1 both ways (tbf)"
	else
		echo "tc cannot shape the link to $1: it runs unshaped"
	fi
}

netns_unshape() {
	[ "${SHAPED:-no}" = no ] && return 0
	tc -n "$NS_A" qdisc del dev va root
	tc -n "$NS_B" qdisc del dev vb root
	SHAPED=no
}

netns_setup
