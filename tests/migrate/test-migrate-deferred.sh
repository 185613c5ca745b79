#!/bin/sh
# A live migration in bitmap mode with two extra channels, the guest
# rewriting 96 MiB flat out over a link capped at 100 MB/s: each sender peeks
# at KVM's dirty log and defers the pages the guest wrote again since the
# round's fetch to the next round (migrate-precopy.c). A deferred page that
# the next round did not send would be a stale page on the destination: the
# guest checks every page of its pattern there.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
start_serve
start_vm vm1 --memory 256M --cpus 1 --dirty-log bitmap \
	--cmdline "mem=96M passes=0 rate=0 verify=1 hb=5"
wait_for "$T/vm1.console" "mem pass 1 ok" 60
move vm1 --downtime-ms 20 --bandwidth 100 --channels 2
expect_move 0
[ "$(event 'd["result"]')" = done ] || fail "result is not done"
grep -q '"deferred_pages":[1-9]' "$T/move.json" || fail "no round deferred a page"
guest_mem_goes_on "$T/store/vm1/console.log"
echo "moved in $(event 'd["total_s"]') s, $(event 'd["rounds"]') rounds," \
	"$(grep -o '"deferred_pages":[0-9]*' "$T/move.json" | awk -F: '{n += $2} END {print n}')" \
	"pages deferred"
