#!/bin/sh
# One destination killed in the middle of a plan: a's three VMs are drained
# onto b and c; c's serve holds its first migration at the switchover (the
# test hook dest-switchover: the VM paused on a, before RESUME) and is killed
# there (kill -9). The report says which moves failed (the one into c, rolled
# back: its VM runs on a again) and which were done; every VM runs exactly
# once somewhere and every guest's checker goes on (nothing lost). c comes
# back, the same plan is run again: what was done is found done, the rest is
# moved, and the guests still go on.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fleet/lib.sh"
vms="vm1 vm2 vm3"
host_serve a
host_serve b --max-incoming 2
SMOVE_TEST_STALL=dest-switchover host_serve c --max-incoming 2
for v in $vms; do host_vm a $v; done
wait_booted $vms
admin plan --drain "$(host_addr a)" --to "$(host_addr b)" --to "$(host_addr c)" \
	--tls-psk "$T/lib.psk" -o "$T/plan.json" || fail "no plan"
to_c=$(/usr/bin/python3 -c 'import json,sys
p = json.load(open(sys.argv[1]))
print(" ".join(m["vm"] for m in p["moves"] if m["to"] == sys.argv[2]))' "$T/plan.json" "$(host_addr c)")
[ -n "$to_c" ] || fail "the plan moves nothing to c"
# A simple command in the background (not lib.sh's rebalance, a function:
# its subshell would be $!): wait gives its exit status.
$IN_admin "$SMOVE" rebalance "$T/plan.json" --tls-psk "$T/lib.psk" --json >"$T/rebalance.json" \
	2>"$T/rebalance.err" &
reb=$!
wait_for "$T/c/serve.err" "stalling at dest-switchover" 180
eval "kill -9 \$SERVE_PID_c"
set +e
wait $reb
st=$?
set -e
[ $st = 5 ] || { cat "$T/rebalance.err" >&2; fail "the rebalance exited $st, not 5 (a move failed)"; }
cat "$T/rebalance.json" | grep -E '"event":"(move|summary)"' | grep -v '"state":"phase"' >&2 || true
REB_STATUS=$(/usr/bin/python3 -c 'import json,sys
d=[json.loads(l) for l in open(sys.argv[1]) if "\"summary\"" in l]
print("none" if not d else "ok")' "$T/rebalance.json")
[ "$REB_STATUS" = ok ] || { cat "$T/rebalance.err" >&2; fail "the rebalance ended without a summary"; }
[ "$(summary 'd["failed"] + d["not_started"]')" -ge 1 ] || fail "the report names no failed move"
[ "$(summary 'd["in_doubt"]')" = 0 ] || fail "a move is in doubt, though c died before RESUME"
for v in $to_c; do
	case $(move_state $v) in failed | not-started) ;; *) fail "$v (to c): $(move_state $v), not failed" ;; esac
done
for v in $vms; do
	h=$(where $v)
	[ "$h" != none ] || fail "$v runs nowhere"
	case " $to_c " in *" $v "*) [ "$h" = a ] || fail "$v, whose move to c failed, is on $h" ;; esac
	runs "$T/$h/$v.sock"
	guest_goes_on "$(console_of $v)"
done
echo "--- c back, the plan again"
host_serve c --max-incoming 2
rebalance "$T/plan.json"
[ "$REB_STATUS" = 0 ] || { cat "$T/rebalance.json" "$T/rebalance.err" >&2; fail "the second run exited $REB_STATUS"; }
for v in $vms; do
	h=$(where $v)
	case " $to_c " in
	*" $v "*) [ "$(move_state $v)" = done ] && [ "$h" = c ] || fail "$v: $(move_state $v), on $h" ;;
	*) [ "$(move_state $v)" = already-done ] && [ "$h" = b ] || fail "$v: $(move_state $v), on $h" ;;
	esac
	runs "$T/$h/$v.sock"
	guest_goes_on "$T/$h/store/$v/console.log"
done
echo PASS
