#!/bin/sh
# Cold moves: a VM that is not running moves with its configuration and
# disks, once, verified, and starts at its destination.
#   - vm1 runs on a; its configuration is saved, it is stopped; `smove move
#     --cold --config` sends it to b: b holds DIR/vm1/vm.json and a disk equal
#     to a's (same bytes), a has neither the disk nor the configuration, and
#     `smove run --config DIR/vm1/vm.json` on b starts it (its guest boots and
#     checks its disk); a cold move of a VM that runs (vm2) is refused;
#   - vm1 stopped again on b: b's inventory lists it as stopped, `smove plan
#     --drain b --to c` moves it cold, `smove rebalance` does (through b's
#     serve): c holds it, b's directory for it is gone, it starts on c.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fleet/lib.sh"
host_serve a
host_serve b
host_serve c
host_vm a vm1
host_vm a vm2
wait_booted vm1 vm2
ctl "$T/a/vm1.sock" '{"cmd":"config"}' | pyj 'd["config"]' >"$T/vm1.json"
ctl "$T/a/vm2.sock" '{"cmd":"config"}' | pyj 'd["config"]' >"$T/vm2.json"
ctl "$T/a/vm1.sock" '{"cmd":"stop"}' >/dev/null
eval "wait \$VM_PID_vm1" || true
sum=$(md5sum <"$T/vm1.raw")
# a running VM is not moved cold
expect_status 1 admin move --cold --config "$T/vm2.json" --to "$(host_addr b)" --tls-psk "$T/lib.psk"
expect_stderr "vm2 runs on this host|in use"
expect_status 1 on a move --cold \
	--config "$T/vm2.json" --to "$(host_addr b)" --tls-psk "$T/lib.psk"
expect_stderr "vm2 runs on this host"
# vm1, cold, to b
on a move --cold --config "$T/vm1.json" --to "$(host_addr b)" --tls-psk "$T/lib.psk" --json \
	>"$T/cold.json" || { cat "$T/cold.json" "$T/b/serve.err" >&2; fail "the cold move failed"; }
grep -q '"result":"done".*"cold":true' "$T/cold.json" || fail "no cold result"
[ ! -e "$T/vm1.raw" ] && [ ! -e "$T/vm1.json" ] || fail "a keeps vm1's disk or configuration"
[ -e "$T/b/store/vm1/vm.json" ] || fail "b has no configuration for vm1"
[ "$(md5sum <"$T/b/store/vm1/vm1.raw")" = "$sum" ] || fail "b's copy of the disk differs"
! ls -A "$T/b/store/vm1" | grep -q smove-tmp || fail "temporary files on b"
grep -q '"committed"' "$T"/b/store/.smove-sessions/*.json || fail "b's record is not committed"
[ "$(where vm1)" = none ] || fail "vm1 runs on $(where vm1) before it is started"
start_on() { # HOST: smove run --config of vm1 there (its console appended to its log,
	# which travelled with it): it boots anew and checks its disk
	log="$T/$1/store/vm1/console.log"
	before=$(grep -c "disk 0 pass 1 ok" "$log" || true)
	(exec env SMOVE_RUNTIME_DIR="$T/$1" SMOVE_STATE_DIR="$T/$1" $(host_in "$1") "$SMOVE" run \
		--config "$T/$1/store/vm1/vm.json") >"$T/vm1.$1.out" 2>"$T/vm1.$1.err" &
	on_exit "kill -9 $! 2>/dev/null || true"
	for i in $(seq 1800); do
		[ "$(grep -c "disk 0 pass 1 ok" "$log" || true)" -gt "$before" ] && break
		sleep 0.1
	done
	[ "$(grep -c "disk 0 pass 1 ok" "$log")" -gt "$before" ] ||
		{ cat "$T/vm1.$1.err" >&2; fail "vm1 did not start on $1"; }
	runs "$T/$1/vm1.sock"
}
start_on b
[ "$(where vm1)" = b ] || fail "vm1 does not run on b"
# stopped on b, planned and moved cold through the hosts' administration
ctl "$T/b/vm1.sock" '{"cmd":"stop"}' >/dev/null
for i in $(seq 100); do [ -e "$T/b/vm1.json" ] || break; sleep 0.1; done
sum=$(md5sum <"$T/b/store/vm1/vm1.raw")
[ "$(inv b | pyj '[v["state"] for v in d["vms"] if v["name"] == "vm1"]')" = "['stopped']" ] ||
	fail "b's inventory does not list vm1 as stopped"
admin plan --drain "$(host_addr b)" --to "$(host_addr c)" --tls-psk "$T/lib.psk" -o "$T/plan.json"
grep -q '"vm":"vm1".*"mode":"cold"' "$T/plan.json" || { cat "$T/plan.json"; fail "not planned cold"; }
rebalance "$T/plan.json"
[ "$REB_STATUS" = 0 ] || { cat "$T/rebalance.json" "$T/rebalance.err" "$T/b/serve.err" >&2; fail "rebalance exited $REB_STATUS"; }
[ "$(move_state vm1)" = done ] || fail "vm1: $(move_state vm1)"
[ ! -e "$T/b/store/vm1" ] || fail "b keeps $(ls "$T/b/store/vm1")"
[ "$(md5sum <"$T/c/store/vm1/vm1.raw")" = "$sum" ] || fail "c's copy of the disk differs"
start_on c
[ "$(where vm1)" = c ] || fail "vm1 does not run (only) on c"
echo PASS
