#!/bin/sh
# The preflight: a dry run of a VM the destination can take says go and
# changes nothing; a VM it cannot take gets a no-go listing every reason (too
# little memory here, a CPUID feature the VM was started with that this host
# lacks, a name already taken) and nothing is created on either side, with or
# without --dry-run. The destination pretends to have 64 MiB of memory free
# (the test hook SMOVE_TEST_MEM_AVAILABLE), more than vm1 needs (32 MiB) and
# less than vm2 (128 MiB). With the QEMU runtime, whose VMs have at least
# 128 MiB (the Linux guest), vm1 has 128 MiB, the destination 192 MiB and vm2
# 256 MiB; vm2 runs on a CPU model (Haswell-v1) that the destination's QEMU
# does not list (a wrapper in serve's PATH hides it), vm1 on the default one.
# Two migrations at once cannot promise the same memory twice: while vm1's
# is in progress, a VM that fits alone but not beside it gets a no-go that
# names vm1's migration.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
case $RUNTIME in
memsync) mem1=32 avail=64 mem2=128 ;;
qemu)
	mem1=128 avail=192 mem2=256
	# The destination's QEMU: this host's, without the CPU model Haswell-v1.
	real=$(command -v qemu-system-x86_64)
	mkdir "$T/qemu-bin"
	cat >"$T/qemu-bin/qemu-system-x86_64" <<SH
#!/bin/sh
[ "\$*" = "-cpu help" ] && { "$real" -cpu help | grep -vw Haswell-v1; exit 0; }
exec "$real" "\$@"
SH
	chmod +x "$T/qemu-bin/qemu-system-x86_64"
	"$real" -cpu help | grep -qw Haswell-v1 || skip "this QEMU has no CPU model Haswell-v1"
	;;
esac
LIB_TLS=none # (bad-client.py's dry run speaks in the clear)
export SMOVE_TEST_MEM_AVAILABLE=$((avail << 20))
path=$PATH
[ "$RUNTIME" = memsync ] || PATH="$T/qemu-bin:$PATH"
start_serve
PATH=$path
unset SMOVE_TEST_MEM_AVAILABLE
truncate -s 8M "$T/disk.raw"
export SMOVE_TEST_STALL=source-storage # (for the two migrations at once, below)
start_vm vm1 --memory ${mem1}M --disk "$T/disk.raw" --cmdline "mem=4M passes=0 hb=5"
unset SMOVE_TEST_STALL
move vm1 --dry-run
expect_move 0
[ "$(event 'd["result"]')" = go ] || fail "the dry run's result is not go"
runs "$T/src/vm1.sock"
# vm2: $mem2 MiB, and (memsync) its CPUID set (vm1's, as the VM reports it)
# with a feature bit no host of this CPU vendor has: SGX (leaf 7 EBX bit 2)
# on AMD, else RTM; (qemu) the CPU model Haswell-v1.
bit=2
if [ "$RUNTIME" = memsync ]; then
	grep -qw sgx /proc/cpuinfo && bit=11
	grep -qw sgx /proc/cpuinfo && grep -qw rtm /proc/cpuinfo && skip "this host has both SGX and RTM"
	cpu_reason="CPUID leaf 0x7.0 EBX bit $bit is a feature"
else
	cpu_reason="this host's QEMU has no CPU model Haswell-v1"
fi
ctl "$T/src/vm1.sock" '{"cmd":"config"}' | /usr/bin/python3 -c '
import json, sys
c = json.loads(json.load(sys.stdin)["config"])
c.update(name="vm2", memory=int(sys.argv[3]) << 20, console=sys.argv[1] + "/vm2.console", disks=[])
del c["control"]
if c.get("runtime") == "qemu":
    c["cpu"] = "Haswell-v1"
for e in c.get("cpuid", []):
    if e[0] == 7 and e[1] == 0:
        e[4] |= 1 << int(sys.argv[2])
json.dump(c, open(sys.argv[1] + "/vm2.json", "w"))' "$T" "$bit" "$mem2"
SMOVE_RUNTIME_DIR="$T/src" SMOVE_STATE_DIR="$T/src-state" "$SMOVE" run --config "$T/vm2.json" >"$T/vm2.out" 2>&1 &
on_exit "kill -9 $! 2>/dev/null || true"
wait_for "$T/vm2.console" "smove-(guest|checker):"
mkdir "$T/store/vm2"
for opt in --dry-run ""; do
	move vm2 $opt
	expect_move 4
	[ "$(event 'd["result"]')" = no-go ] || fail "result is not no-go"
	event 'd["reasons"]' >"$T/reasons"
	grep -q "needs $mem2.0 MiB of memory, this host has $avail.0 MiB available" "$T/reasons" ||
		fail "no reason about memory: $(cat "$T/reasons")"
	grep -q "$cpu_reason" "$T/reasons" ||
		fail "no reason about the CPU: $(cat "$T/reasons")"
	grep -q "store/vm2 already exists" "$T/reasons" || fail "no reason about the name"
	runs "$T/src/vm2.sock"
	[ -z "$(ls -A "$T/store/vm2")" ] || fail "something was created in store/vm2"
	[ -z "$(ls -A "$T/store/.smove-sessions")" ] || fail "a no-go left a record"
	[ "$(ls "$T/store")" = vm2 ] || fail "something was created in the storage directory"
done
# A person reads the reasons too.
src move vm2 --to "127.0.0.1:$PORT" $(tls_default) >"$T/human" || true
grep -q "cannot take this VM; nothing was changed" "$T/human" || fail "no human no-go message"
grep -q "  - .*$cpu_reason" "$T/human" || fail "the human no-go does not list reasons"
# Two migrations at once: vm1's, held once its disk is mirrored, has its
# memory promised; a VM that fits alone but not beside it is a no-go naming
# vm1's migration (bad-client.py's dry run), and a go once vm1's is
# cancelled.
bad_client_base "$T/src/vm1.sock"
fit=$((avail - mem1 + 16))
bad_preflight() { /usr/bin/python3 "$abs_top_srcdir/tests/migrate/bad-client.py" "$PORT" --preflight vmz $((fit << 20)); }
[ "$(bad_preflight)" = GO ] || fail "a VM of $fit MiB does not fit alone: $(bad_preflight)"
move_bg vm1
wait_for "$T/vm1.run.err" "stalling at source-storage"
bad_preflight >"$T/both"
grep -q "^NO-GO: the VM needs $fit.0 MiB of memory, this host has $avail.0 MiB available ($mem1.0 MiB of it promised to the migrations in progress: vm1)$" "$T/both" ||
	fail "the second migration is not refused naming the first: $(cat "$T/both")"
src move --cancel vm1 >/dev/null
move_wait
expect_move 5
[ "$(bad_preflight)" = GO ] || fail "vm1's promise outlived its migration: $(bad_preflight)"
runs "$T/src/vm1.sock"
