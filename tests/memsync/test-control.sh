#!/bin/sh
# The control socket while the guest's heartbeat runs and it rewrites and
# checks a memory pattern: status, pause (the heartbeat stops), resume (it goes
# on, and the guest's invariants still hold), bad input (garbage, a huge line,
# an unknown command, wrong types) answered with errors while the VM keeps
# running, then stop: `smove run` exits 0 and leaves no socket behind.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
export SMOVE_RUNTIME_DIR="$T/run"
ctl() { /usr/bin/python3 "$abs_top_srcdir/tests/memsync/ctl.py" "$T/ctl.sock" "$@"; }
field() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.readline()); print(eval(sys.argv[1]))' "$1"; }
"$SMOVE" run --name ctl --memory 64M --control "$T/ctl.sock" --console "$T/console" \
	--guest "$abs_top_builddir/memsync/guest/guest.elf" --cmdline "mem=16M passes=0 hb=10" &
pid=$!
on_exit "kill $pid 2>/dev/null || true"
for i in $(seq 100); do [ -S "$T/ctl.sock" ] && break; sleep 0.1; done
# advances N: the heartbeat goes beyond N within 10 s (however loaded the host).
advances() {
	for i in $(seq 100); do
		[ "$(ctl | field 'd["guest"]["heartbeat"]')" -gt "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
sleep 0.3
hb1=$(ctl | field 'd["guest"]["heartbeat"]')
advances "$hb1" || fail "heartbeat does not advance from $hb1"
ctl '{"cmd":"pause"}' | field 'd["ok"] and d["pause_ms"] >= 0' | grep -q True || fail "pause failed"
[ "$(ctl | field 'd["state"]')" = paused ] || fail "state is not paused"
hb3=$(ctl | field 'd["guest"]["heartbeat"]')
sleep 0.5
hb4=$(ctl | field 'd["guest"]["heartbeat"]')
[ "$hb3" = "$hb4" ] || fail "heartbeat moved while paused ($hb3, $hb4)"
ctl '{"cmd":"resume"}' | field 'd["ok"]' | grep -q True || fail "resume failed"
advances "$hb4" || fail "heartbeat did not resume after $hb4"
# Bad input, all on one connection: each gets an error reply.
ctl 'garbage' '{"cmd":' '[1,2]' '{"cmd":42}' '{"cmd":"launch"}' @200000 \
	'{"cmd":"status"}' >"$T/replies"
[ "$(grep -c '"ok":false' "$T/replies")" = 6 ] || { cat "$T/replies"; fail "bad requests not refused"; }
grep -q 'unknown command' "$T/replies" || fail "no unknown-command error"
grep -q 'longer than 65536' "$T/replies" || fail "no error for the huge line"
tail -1 "$T/replies" | field 'd["state"]' | grep -q running || fail "VM not running after bad input"
[ "$(ctl | field 'd["guest"]["state"]')" = running ] || fail "the guest reports a failure"
for i in $(seq 100); do grep -q "mem pass 32 ok" "$T/console" && break; sleep 0.1; done
grep -q "mem pass 32 ok" "$T/console" || fail "the memory program did not go on"
# A client that connects and goes away does no harm.
/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.send(b"{\"cmd\"")' "$T/ctl.sock"
ctl '{"cmd":"stop"}' | field 'd["ok"]' | grep -q True || fail "stop failed"
wait $pid || fail "smove run exited $? after stop"
[ ! -e "$T/ctl.sock" ] || fail "the control socket was left behind"
grep -q "^hb " "$T/console" || fail "no heartbeat on the console"
