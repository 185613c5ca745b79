#!/bin/sh
# What is refused before anything moves. a runs vm1 and vm2; b has room for
# one VM of 128 MiB (its serve pretends 200 MiB), c for none (100 MiB); d
# refuses the administration role (--no-admin).
#   - smove ps --host lists a's VMs with their memory and disks, and d says
#     why it does not answer;
#   - smove plan --drain a onto b and c is refused with the reason (no room
#     for one of them), exit 1;
#   - a plan written by hand (vm1 to b, vm2 to c): smove rebalance --dry-run
#     runs every preflight and reports vm1 go and vm2 no-go with c's reason
#     (exit 4), and the check of the plan names c's memory; run for real, the
#     plan is refused before anything starts (exit 1).
# Nothing moved: both VMs still run on a, b and c made nothing.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fleet/lib.sh"
host_serve a
SMOVE_TEST_MEM_TOTAL=$((200 << 20)) host_serve b
SMOVE_TEST_MEM_TOTAL=$((100 << 20)) host_serve c
host_serve d --no-admin
host_vm a vm1
host_vm a vm2
wait_booted vm1 vm2
admin ps --host "$(host_addr a)" --tls-psk "$T/lib.psk" | tee "$T/ps.out"
grep -Eq "^  vm1 +running +qemu +128 MiB" "$T/ps.out" || fail "smove ps --host does not list vm1"
[ "$(inv a | pyj 'sorted(v["name"] for v in d["vms"])')" = "['vm1', 'vm2']" ] || fail "a's inventory"
[ "$(inv a | pyj '[v for v in d["vms"] if v["name"] == "vm1"][0]["disks"][0]["allocated"]')" -gt 0 ] ||
	fail "no allocated bytes in the inventory"
expect_status 1 admin ps --host "$(host_addr d)" --tls-psk "$T/lib.psk"
expect_stderr "does not take administration requests \(smove serve --no-admin\)"
# a drain that cannot be done
expect_status 1 admin plan --drain "$(host_addr a)" --to "$(host_addr b)" --to "$(host_addr c)" \
	--tls-psk "$T/lib.psk"
expect_stderr "cannot drain $(host_addr a): no other host has room for vm[12]"
# a plan by hand, a dry run
cat >"$T/plan.json" <<JSON
{"version": 1, "comment": "written by hand",
 "moves": [{"vm": "vm1", "from": "$(host_addr a)", "to": "$(host_addr b)"},
           {"vm": "vm2", "from": "$(host_addr a)", "to": "$(host_addr c)", "mode": "quick"}]}
JSON
rebalance "$T/plan.json" --dry-run
cat "$T/rebalance.json"
[ "$REB_STATUS" = 4 ] || { cat "$T/rebalance.err" >&2; fail "the dry run exited $REB_STATUS, not 4"; }
[ "$(move_state vm1)" = go ] || fail "vm1: $(move_state vm1), not go"
[ "$(move_state vm2)" = no-go ] || fail "vm2: $(move_state vm2), not no-go"
grep '"vm":"vm2".*"no-go"' "$T/rebalance.json" | grep -q "needs 128.0 MiB of memory, this host has 100.0 MiB" ||
	fail "vm2's no-go does not give c's reason"
grep '"event":"check"' "$T/rebalance.json" | grep -q '"ok":false.*move 2 (vm2 to ' ||
	fail "the plan's check does not name move 2"
# for real: refused before anything starts
rebalance "$T/plan.json"
[ "$REB_STATUS" = 1 ] || fail "an impossible plan ran (exit $REB_STATUS)"
grep -q "move 2 (vm2 to $(host_addr c))" "$T/rebalance.err" || { cat "$T/rebalance.err"; fail "no reason"; }
! grep -q '"state":"started"' "$T/rebalance.json" || fail "a move started"
for v in vm1 vm2; do
	[ "$(where $v)" = a ] || fail "$v moved to $(where $v)"
	runs "$T/a/$v.sock"
done
for h in b c; do
	[ -z "$(ls "$T/$h/store")" ] || fail "$h made $(ls "$T/$h/store")"
	! grep "preflight from .*: go (" "$T/$h/serve.err" | grep -vq "(dry run)" ||
		fail "$h said go for a real move"
done
echo PASS
