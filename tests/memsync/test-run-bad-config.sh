#!/bin/sh
# Bad configurations are refused with a message naming what is wrong, before
# any VM runs: bad names, sizes, vCPU counts, guests, dirty-log modes, disks,
# and configuration files that are not JSON, have unknown keys or wrong types.
. "$abs_top_srcdir/tests/functions.sh"
export SMOVE_RUNTIME_DIR="$T/run"
guest="$abs_top_builddir/memsync/guest/guest.elf"
bad() { # bad STATUS PATTERN ARGS...
	st=$1 pat=$2
	shift 2
	expect_status "$st" "$SMOVE" run --console /dev/null "$@"
	expect_stderr "$pat"
}
bad 2 "--name .* is required" --guest "$guest"
bad 2 "VM name '../x' is not valid" --name ../x --guest "$guest"
bad 2 "memory must be a multiple of 2 MiB" --name a --guest "$guest" --memory 3M
bad 2 "memory must be a multiple of 2 MiB" --name a --guest "$guest" --memory 100000
bad 2 "invalid memory size" --name a --guest "$guest" --memory lots
bad 2 "--cpus must be between 1 and 8" --name a --guest "$guest" --cpus 0
bad 2 "--cpus must be between 1 and 8" --name a --guest "$guest" --cpus 99
bad 2 "--dirty-log must be bitmap or ring" --name a --guest "$guest" --dirty-log log
bad 2 "unknown disk option 'fast'" --name a --guest "$guest" --disk x.raw,fast
bad 2 "unexpected argument" --name a --guest "$guest" extra
echo '{"name": "a", "memory": 64M}' >"$T/bad.json"
bad 1 "bad.json: configuration: " --config "$T/bad.json"
echo '{"name": "a", "memroy": 67108864}' >"$T/bad.json"
bad 1 'unknown key "memroy"' --config "$T/bad.json"
echo '{"name": "a", "cpus": "two"}' >"$T/bad.json"
bad 1 'configuration: ' --config "$T/bad.json"
echo '{"name": "a", "disks": [{"path": "x", "format": "qcow2"}]}' >"$T/bad.json"
bad 1 '"format" must be auto, raw, vhd or vhdx' --config "$T/bad.json"
echo '{"name": "a", "dirty_log": "both"}' >"$T/bad.json"
bad 1 '"dirty_log" must be bitmap or ring' --config "$T/bad.json"
echo '[1]' >"$T/bad.json"
bad 1 'configuration must be a JSON object' --config "$T/bad.json"
bad 1 "nothere.json: No such file" --config "$T/nothere.json"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	bad 1 "nothere.elf: No such file" --name a --guest "$T/nothere.elf"
	echo "not an elf" >"$T/bad.elf"
	bad 1 "bad.elf: not an ELF file" --name a --guest "$T/bad.elf"
	bad 1 "not a 64-bit x86 executable ELF" --name a --guest /bin/true
	bad 1 "missing.raw: No such file" --name a --guest "$guest" --disk "$T/missing.raw"
	truncate -s 1M "$T/d.raw"
	bad 1 "guest reported a failure .*no virtio-blk disk found" --name a --guest "$guest" \
		--cmdline "disk=1M cpu0=disk"
	bad 1 "guest reported a failure .*disk= exceeds the disk" --name a --guest "$guest" \
		--disk "$T/d.raw" --cmdline "disk=2M"
	bad 1 "guest reported a failure .*unknown program" --name a --guest "$guest" \
		--cmdline "cpu0=dance"
fi
[ ! -e "$T/run/a.json" ] || fail "a refused VM left a registry entry"
