#!/bin/sh
# `smove run --config` takes the same fields as the options (and options
# override them); --json prints a started and a stopped event; the ring
# dirty-log mode runs too.
. "$abs_top_srcdir/tests/functions.sh"
requires_kvm
export SMOVE_RUNTIME_DIR="$T/run"
truncate -s 8M "$T/d.raw"
cat >"$T/vm.json" <<JSON
{"name": "cfg", "guest": "$abs_top_builddir/memsync/guest/guest.elf",
 "cmdline": "mem=16M passes=3 disk=4M", "memory": 67108864, "cpus": 1,
 "console": "$T/console", "dirty_log": "ring",
 "disks": [{"path": "$T/d.raw", "format": "raw", "readonly": false}]}
JSON
expect_status 0 "$SMOVE" run --config "$T/vm.json" --json --cpus 2
/usr/bin/python3 - "$T/stdout" <<'PY' || { cat "$T/stdout"; fail "bad --json events"; }
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["event"] == "started" and ev[0]["name"] == "cfg", ev
assert ev[-1]["event"] == "stopped" and ev[-1]["reason"] == "guest", ev
assert ev[-1]["guest_exit"] == 0 and ev[-1]["guest_message"] == "ok", ev
PY
grep -q "smove-guest: 2 cpus" "$T/console" || fail "--cpus did not override the configuration"
/usr/bin/python3 "$abs_top_srcdir/tests/memsync/check-records.py" "$T/d.raw" 4M 1
# A read-only disk: the guest's writes are refused and it says so.
expect_status 1 "$SMOVE" run --config "$T/vm.json" --disk "$T/d2.raw,readonly" --cmdline x=1 2>/dev/null || true
truncate -s 4M "$T/ro.raw"
sed 's/"readonly": false/"readonly": true/; s|d.raw|ro.raw|' "$T/vm.json" >"$T/ro.json"
expect_status 1 "$SMOVE" run --config "$T/ro.json"
expect_stderr "the disk is read-only"
