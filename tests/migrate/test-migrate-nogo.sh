#!/bin/sh
# The preflight: a dry run of a VM the destination can take says go and
# changes nothing; a VM it cannot take gets a no-go listing every reason (too
# little memory here, a CPUID feature the VM was started with that this host
# lacks, a name already taken) and nothing is created on either side, with or
# without --dry-run. The destination pretends to have 64 MiB of memory free
# (the test hook SMOVE_TEST_MEM_AVAILABLE).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
export SMOVE_TEST_MEM_AVAILABLE=$((64 << 20))
start_serve
unset SMOVE_TEST_MEM_AVAILABLE
truncate -s 8M "$T/disk.raw"
start_vm vm1 --memory 32M --disk "$T/disk.raw" --cmdline "mem=4M passes=0 hb=5"
move vm1 --dry-run
expect_move 0
[ "$(event 'd["result"]')" = go ] || fail "the dry run's result is not go"
runs "$T/src/vm1.sock"
# vm2: 128 MiB, and its CPUID set (vm1's, as the VM reports it) with a feature
# bit no host of this CPU vendor has: SGX (leaf 7 EBX bit 2) on AMD, else RTM.
bit=2
grep -qw sgx /proc/cpuinfo && bit=11
grep -qw sgx /proc/cpuinfo && grep -qw rtm /proc/cpuinfo && skip "this host has both SGX and RTM"
ctl "$T/src/vm1.sock" '{"cmd":"config"}' | /usr/bin/python3 -c '
import json, sys
c = json.loads(json.load(sys.stdin)["config"])
c.update(name="vm2", memory=128 << 20, console=sys.argv[1] + "/vm2.console", disks=[])
del c["control"]
for e in c["cpuid"]:
    if e[0] == 7 and e[1] == 0:
        e[4] |= 1 << int(sys.argv[2])
json.dump(c, open(sys.argv[1] + "/vm2.json", "w"))' "$T" "$bit"
SMOVE_RUNTIME_DIR="$T/src" "$SMOVE" run --config "$T/vm2.json" >"$T/vm2.out" 2>&1 &
on_exit "kill -9 $! 2>/dev/null || true"
wait_for "$T/vm2.console" "smove-guest:"
mkdir "$T/store/vm2"
for opt in --dry-run ""; do
	move vm2 $opt
	expect_move 4
	[ "$(event 'd["result"]')" = no-go ] || fail "result is not no-go"
	event 'd["reasons"]' >"$T/reasons"
	grep -q "needs 128.0 MiB of memory, this host has 64.0 MiB available" "$T/reasons" ||
		fail "no reason about memory: $(cat "$T/reasons")"
	grep -q "CPUID leaf 0x7.0 EBX bit $bit is a feature" "$T/reasons" ||
		fail "no reason about the CPUID feature: $(cat "$T/reasons")"
	grep -q "store/vm2 already exists" "$T/reasons" || fail "no reason about the name"
	runs "$T/src/vm2.sock"
	[ -z "$(ls -A "$T/store/vm2")" ] || fail "something was created in store/vm2"
	[ -z "$(ls -A "$T/store/.smove-sessions")" ] || fail "a no-go left a record"
	[ "$(ls "$T/store")" = vm2 ] || fail "something was created in the storage directory"
done
# A person reads the reasons too.
src move vm2 --to "127.0.0.1:$PORT" >"$T/human" || true
grep -q "cannot take this VM; nothing was changed" "$T/human" || fail "no human no-go message"
grep -q "  - .*CPUID leaf" "$T/human" || fail "the human no-go does not list reasons"
