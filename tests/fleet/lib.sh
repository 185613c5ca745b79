# tests/fleet/lib.sh: several smove hosts on one machine for the fleet
# tests. Source it after tests/functions.sh; it sources tests/migrate/lib.sh
# for the runtime, the TLS key ($T/lib.psk), wait_for, ctl, status, runs and
# guest_goes_on. Each host X (a, b, c, ...) is a network namespace of its own
# at 10.251.N.I (I: 1 for a, 2 for b, ...), and the administrator's host,
# where plans are made and run (`admin CMD`), a fourth one at 10.251.N.100,
# all on one bridge (in a namespace of its own too; N from the test's pid, so
# that parallel tests never meet). Without root or iproute2, or with
# SMOVE_TEST_NETNS=no (or FLEET_NETNS=no set by the test), they are all on
# loopback and the test says so ($FLEET_NET: yes or no). Host X keeps its
# runtime and state directories in $T/X and its serve's storage in
# $T/X/store; its serve listens on ADDR_X:$PORT_X with TLS.
#   host_serve X [OPTS]     X's serve in the background: $PORT_X, $SERVE_PID_X,
#                           its log $T/X/serve.err (a second call restarts it
#                           on the same port)
#   host_addr X             ADDR_X:$PORT_X
#   host_in X               the prefix that runs a command on X (ip netns exec)
#   on X CMD...             smove CMD on host X (its RUNDIR and STATEDIR)
#   admin CMD...            smove CMD on the administrator's host (a function:
#                           in the background, `$IN_admin "$SMOVE" CMD... &`
#                           so that $! is smove's pid)
#   host_vm X NAME [OPTS]   `smove run` of the test guest on X: a small Linux
#                           guest writing memory and its disk $T/NAME.raw
#                           (8 MiB) for ever, checking both; console
#                           $T/NAME.console; $VM_PID_NAME
#   where NAME              the host whose registry runs NAME (a b c ..., or
#                           none), checked to be one at most
#   console_of NAME         the console log of NAME where it runs now
#   inv X                   X's inventory (smove ps --host --json)
FLEET_HOSTS=""
. "$abs_top_srcdir/tests/migrate/lib.sh"

# ---- the network: a bridge, a namespace per host ----------------------------

FLEET_NET=no IN_admin=
fleet_net_setup() {
	if [ "${FLEET_NETNS:-${SMOVE_TEST_NETNS:-yes}}" = no ]; then
		why="FLEET_NETNS or SMOVE_TEST_NETNS is no"
	elif [ "$(id -u)" != 0 ]; then
		why="not root"
	elif ! command -v ip >/dev/null 2>&1; then
		why="no ip (iproute2)"
	else
		# Namespaces of fleet tests that are gone (their pid is in the name).
		for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(smove-f[0-9]*-[a-z]*\).*/\1/p'); do
			pid=${ns#smove-f}
			pid=${pid%-*}
			kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
		done
		FLEET_NET_X=$(($$ % 250))
		FLEET_SW=smove-f$$-sw
		if ip netns add "$FLEET_SW" 2>"$T/netns.err"; then
			on_exit fleet_net_cleanup
			ip -n "$FLEET_SW" link add br0 type bridge forward_delay 0 2>>"$T/netns.err" &&
				ip -n "$FLEET_SW" link set br0 up && FLEET_NET=yes
		fi
		why="cannot create network namespaces: $(head -1 "$T/netns.err")"
	fi
	if [ $FLEET_NET = yes ]; then
		fleet_ns admin 100
		echo "hosts: network namespaces on one bridge (10.251.$FLEET_NET_X.0/24)," \
			"the administrator's at $ADDR_admin"
	else
		echo "hosts over loopback, not network namespaces ($why)"
	fi
}

fleet_net_cleanup() {
	for ns in $(ip netns list 2>/dev/null | sed -n "s/^\\(smove-f$$-[a-z]*\\).*/\\1/p"); do
		ip netns delete "$ns" 2>/dev/null || true
	done
}

# fleet_ns X I: X's namespace at 10.251.N.I, its eth0 a port of the bridge;
# sets IN_X and ADDR_X.
fleet_ns() {
	ns=smove-f$$-$1
	ip netns add "$ns" &&
		ip -n "$ns" link add eth0 type veth peer name "p$2" netns "$FLEET_SW" &&
		ip -n "$FLEET_SW" link set "p$2" master br0 && ip -n "$FLEET_SW" link set "p$2" up &&
		ip -n "$ns" addr add "10.251.$FLEET_NET_X.$2/24" dev eth0 &&
		ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up ||
		fail "cannot make host $1's network namespace"
	eval "IN_$1='ip netns exec $ns' ADDR_$1=10.251.$FLEET_NET_X.$2"
}

# host_net X: X's namespace and address, made on first use.
host_net() {
	eval "[ -z \"\${ADDR_$1:-}\" ]" || return 0
	if [ $FLEET_NET = yes ]; then
		fleet_ns "$1" $(($(printf '%d' "'$1") - 96))
	else
		eval "IN_$1= ADDR_$1=127.0.0.1"
	fi
}
fleet_net_setup

host_in() { eval "echo \${IN_$1:-}"; }
admin() { $IN_admin "$SMOVE" "$@"; }

kill_fleet_vms() {
	for f in "$T"/[a-z]/*.json; do
		[ -f "$f" ] || continue
		pid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f" 2>/dev/null) || continue
		kill -9 "$pid" 2>/dev/null || true
	done
}
on_exit kill_fleet_vms

on() {
	h=$1
	shift
	SMOVE_RUNTIME_DIR="$T/$h" SMOVE_STATE_DIR="$T/$h" $(host_in "$h") "$SMOVE" "$@"
}

host_addr() { eval "echo \$ADDR_$1:\$PORT_$1"; }

host_serve() {
	h=$1
	shift
	mkdir -p "$T/$h/store"
	host_net "$h"
	eval "port=\${PORT_$h:-0} addr=\$ADDR_$h"
	: >"$T/$h/serve.out"
	SMOVE_RUNTIME_DIR="$T/$h" SMOVE_STATE_DIR="$T/$h" $(host_in "$h") "$SMOVE" serve \
		--listen "$addr:$port" --storage "$T/$h/store" --json --tls-psk "$T/lib.psk" "$@" \
		>"$T/$h/serve.out" 2>>"$T/$h/serve.err" &
	eval "SERVE_PID_$h=$!"
	on_exit "kill $! 2>/dev/null || true"
	wait_for "$T/$h/serve.out" listening 30
	eval "PORT_$h=$(sed -n 's/.*"[0-9.]*:\([0-9]*\)".*/\1/p' "$T/$h/serve.out")"
	case " $FLEET_HOSTS " in *" $h "*) ;; *) FLEET_HOSTS="$FLEET_HOSTS $h" ;; esac
}

host_vm() {
	h=$1 name=$2
	shift 2
	[ -e "$T/$name.raw" ] || truncate -s 8M "$T/$name.raw"
	runtime_args --memory 64M --disk "$T/$name.raw" \
		--cmdline "mem=4M passes=0 disk=4M diskpasses=0 cpu0=disk+mem hb=5 rate=8" "$@" \
		>"$T/$name.args"
	host_net "$h"
	(
		# The prefix split into words first, the arguments at newlines only.
		set -- env SMOVE_RUNTIME_DIR="$T/$h" SMOVE_STATE_DIR="$T/$h" $(host_in "$h") "$SMOVE" run \
			--name "$name" --console "$T/$name.console"
		IFS='
'
		exec "$@" $(cat "$T/$name.args")
	) >"$T/$name.run.out" 2>"$T/$name.run.err" &
	eval "VM_PID_$name=$!"
	on_exit "kill -9 $! 2>/dev/null || true"
}

# Every VM started with host_vm has booted and checked its disk once.
wait_booted() {
	for n in "$@"; do wait_for "$T/$n.console" "disk 0 pass 1 ok" 180; done
}

# host_state X NAME: NAME's state in `smove ps` on X, or none.
host_state() {
	on "$1" ps | awk -v n="$2" '$1 == n { print $3; f = 1 } END { if (!f) print "none" }'
}

where() {
	found=none
	for h in $FLEET_HOSTS; do
		[ "$(host_state "$h" "$1")" != none ] || continue
		[ "$found" = none ] || fail "$1 is registered on $found and on $h"
		found=$h
	done
	echo "$found"
}

console_of() {
	h=$(where "$1")
	if [ -e "$T/$h/store/$1/console.log" ]; then
		echo "$T/$h/store/$1/console.log"
	else
		echo "$T/$1.console"
	fi
}

inv() { admin ps --host "$(host_addr "$1")" --tls-psk "$T/lib.psk" --json; }

# pyj EXPR < JSON: EXPR over d, the JSON read from standard input.
pyj() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# watch_start X=TOTAL...: polls the hosts' inventories (tests/fleet/watch.py)
# into $T/watch.log until watch_stop, which fails if at any poll a host ran
# more migrations than its limit or held VMs taking more than TOTAL bytes.
watch_start() {
	args=""
	for a in "$@"; do args="$args $(host_addr "${a%%=*}")=${a#*=}"; done
	rm -f "$T/watch.stop"
	$IN_admin /usr/bin/python3 "$abs_top_srcdir/tests/fleet/watch.py" "$SMOVE" "$T/lib.psk" \
		"$T/watch.log" "$T/watch.stop" $args &
	WATCH_PID=$!
	on_exit "kill $WATCH_PID 2>/dev/null || true"
}
watch_stop() {
	: >"$T/watch.stop"
	wait "$WATCH_PID" || true
	/usr/bin/python3 - "$T/watch.log" <<'PY' || fail "a host held more than it may (above)"
import re, sys
bad = 0
for l in open(sys.argv[1]):
    m = re.match(r"(\S+) incoming=(\d+) max=(\d+) memory=(\d+) total=(\d+)", l)
    if m and (int(m[2]) > int(m[3]) or int(m[4]) > int(m[5])):
        print("over its limit or its memory:", l.strip()); bad = 1
    if l.startswith("max "):
        print("watched:", l.strip())
sys.exit(bad)
PY
}

# rebalance PLAN [OPTS]: `smove rebalance PLAN --json` with the key; events
# in $T/rebalance.json, exit status in $REB_STATUS.
rebalance() {
	plan=$1
	shift
	set +e
	admin rebalance "$plan" --tls-psk "$T/lib.psk" --json "$@" >"$T/rebalance.json" 2>"$T/rebalance.err"
	REB_STATUS=$?
	set -e
}

# move_state VM: the last state the rebalance events gave VM's move.
move_state() {
	/usr/bin/python3 -c '
import json, sys
s = "none"
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get("event") == "move" and d["vm"] == sys.argv[2] and d["state"] not in ("phase", "queued", "started", "waiting", "resolving"):
        s = d["state"]
print(s)' "$T/rebalance.json" "$1"
}

# summary EXPR: EXPR (python) over d = the rebalance's summary event.
summary() {
	/usr/bin/python3 -c '
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if "\"summary\"" in l][-1]
print(eval(sys.argv[2]))' "$T/rebalance.json" "$1"
}
