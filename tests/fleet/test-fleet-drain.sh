#!/bin/sh
# Draining a host that runs several small VMs onto two others: three hosts,
# a b c; a runs the VMs (3, or 5 with SMOVE_TEST_FULL), b and c take at most
# 2 migrations at once (--max-incoming 2) and have room for 2 VMs each (their
# serve pretends 300 MiB of memory, of which the VMs there take theirs:
# SMOVE_TEST_MEM_TOTAL). `smove plan --drain a --to b --to c` writes a plan
# that fits; `smove rebalance` runs it with limits above the hosts' (3 into
# one host, 3 per link) so that the hosts' own limit and the sources' queue
# are what keep b and c at 2. Polled all along (tests/fleet/watch.py), no
# destination ever runs more migrations than its limit or holds VMs taking
# more than its memory; in the end every VM runs exactly once, on b or c,
# its guest's checker going on, and nothing of it is left on a.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fleet/lib.sh"
vms="vm1 vm2 vm3"
[ -z "${SMOVE_TEST_FULL:-}" ] || vms="vm1 vm2 vm3 vm4 vm5"
total=$((300 << 20))
[ -z "${SMOVE_TEST_FULL:-}" ] || total=$((400 << 20))
host_serve a
SMOVE_TEST_MEM_TOTAL=$total host_serve b --max-incoming 2
SMOVE_TEST_MEM_TOTAL=$total host_serve c --max-incoming 2
for v in $vms; do host_vm a $v; done
wait_booted $vms
admin plan --drain "$(host_addr a)" --to "$(host_addr b)" --to "$(host_addr c)" \
	--tls-psk "$T/lib.psk" -o "$T/plan.json" || fail "no plan"
cat "$T/plan.json"
n=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["moves"]))' "$T/plan.json")
[ "$n" = "$(echo $vms | wc -w)" ] || fail "the plan moves $n VMs"
watch_start b=$total c=$total
rebalance "$T/plan.json" --max-per-dest 3 --max-per-link 3 --max-per-source 4
watch_stop
[ "$REB_STATUS" = 0 ] || { cat "$T/rebalance.json" "$T/rebalance.err" >&2; fail "rebalance exited $REB_STATUS"; }
[ "$(summary 'd["moved"]')" = "$n" ] || fail "the summary does not say $n moved"
grep -q '"state":"queued"' "$T/rebalance.json" && echo "some moves waited in the destinations' queues"
for h in b c; do
	max=$(sed -n 's/.*(\([0-9]*\) of 2 incoming migrations).*/\1/p' "$T/$h/serve.err" | sort -n | tail -1)
	[ "${max:-0}" -le 2 ] || fail "$h's serve counted $max migrations at once"
done
for v in $vms; do
	h=$(where $v)
	case $h in b | c) ;; *) fail "$v runs on '$h', not b or c" ;; esac
	[ ! -e "$T/$v.raw" ] || fail "$v's disk is left on a"
	runs "$T/$h/$v.sock"
	guest_goes_on "$T/$h/store/$v/console.log"
done
[ -z "$(on a ps | awk 'NR > 1')" ] || { on a ps; fail "a still runs VMs"; }
echo PASS
