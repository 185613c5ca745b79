#!/bin/sh
# A live migration of a VM whose dirty log is the per-vCPU dirty ring, the
# guest rewriting 64 MiB flat out over a link capped at 100 MB/s: the guest
# dirties faster than the link carries, so the rounds throttle its vCPU (a
# SIGUSR1 kick every 10 ms, also while the vCPU thread resets its full ring:
# a reset interrupted so left pages writable and unlogged, and the guest
# found stale pages on the destination). On the destination the guest finds
# every page of its pattern intact.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
start_vm vm1 --memory 256M --cpus 1 --dirty-log ring \
	--cmdline "mem=64M passes=0 rate=0 verify=1 hb=5"
wait_for "$T/vm1.console" "mem pass 1 ok" 60
move vm1 --downtime-ms 20 --bandwidth 100
expect_move 0
[ "$(event 'd["result"]')" = done ] || fail "result is not done"
grep -q '"throttle":[1-9]' "$T/move.json" || fail "the rounds never throttled the guest"
guest_mem_goes_on "$T/store/vm1/console.log"
echo "moved in $(event 'd["total_s"]') s, $(event 'd["rounds"]') rounds"
