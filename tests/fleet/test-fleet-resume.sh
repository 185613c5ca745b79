#!/bin/sh
# A plan interrupted and started again resumes from what actually happened:
# a's three VMs are drained onto b and c one move at a time
# (--max-per-source 1); `smove rebalance` is killed (kill -9) while its
# second move runs, which goes on in the VM's own process. Run again, it asks
# the hosts: the first VM is at its destination (already done), the second
# is still moving (watched until done) or done, the third is moved. Each VM
# was migrated exactly once (one preflight "go" for it in b's and c's logs
# together), runs once, on its destination, and its guest goes on.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fleet/lib.sh"
vms="vm1 vm2 vm3"
host_serve a
host_serve b
host_serve c
for v in $vms; do host_vm a $v; done
wait_booted $vms
admin plan --drain "$(host_addr a)" --to "$(host_addr b)" --to "$(host_addr c)" \
	--tls-psk "$T/lib.psk" -o "$T/plan.json" || fail "no plan"
first=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["moves"][0]["vm"])' "$T/plan.json")
second=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["moves"][1]["vm"])' "$T/plan.json")
$IN_admin "$SMOVE" rebalance "$T/plan.json" --tls-psk "$T/lib.psk" --json --max-per-source 1 \
	>"$T/first.json" 2>"$T/first.err" &
reb=$!
on_exit "kill -9 $reb 2>/dev/null || true"
wait_for "$T/first.json" "\"index\":2,\"vm\":\"$second\",.*\"state\":\"started\"" 180
sleep 2 # its migration under way
kill -9 $reb
wait $reb || true
grep -q "\"vm\":\"$first\".*\"state\":\"done\"" "$T/first.json" || fail "the first move was not done before the kill"
echo "--- killed during $second's move; again"
rebalance "$T/plan.json" --max-per-source 1
[ "$REB_STATUS" = 0 ] || { cat "$T/rebalance.json" "$T/rebalance.err" >&2; fail "the second run exited $REB_STATUS"; }
grep -E '"event":"move"' "$T/rebalance.json" | grep -v '"phase"' >&2
[ "$(move_state $first)" = already-done ] || fail "$first: $(move_state $first), not already-done"
case $(move_state $second) in done | already-done) ;; *) fail "$second: $(move_state $second)" ;; esac
for v in $vms; do
	want=$(/usr/bin/python3 -c 'import json,sys
print([m["to"] for m in json.load(open(sys.argv[1]))["moves"] if m["vm"] == sys.argv[2]][0])' "$T/plan.json" "$v")
	h=$(where $v)
	[ "$(host_addr $h)" = "$want" ] || fail "$v is on $h ($(host_addr $h)), the plan said $want"
	n=$(cat "$T/b/serve.err" "$T/c/serve.err" | grep -c "$v: preflight from .*: go" || true)
	[ "$n" = 1 ] || fail "$v was migrated $n times"
	runs "$T/$h/$v.sock"
	guest_goes_on "$T/$h/store/$v/console.log"
done
echo PASS
