#!/bin/sh
# Arguments as people type them: options anywhere on the line (GNU
# permutation) for every subcommand, '--' ends them, and 'smove help CMD'
# prints what 'smove CMD --help' prints, for every command and subcommand.
. "$abs_top_srcdir/tests/functions.sh"
cd "$T"

# help CMD [SUB] = CMD [SUB] --help, for every command the help lists.
commands=$("$SMOVE" --help | awk '/^Commands:/{on=1;next} on && NF==0{exit} on{print $1}')
[ -n "$commands" ] || fail "smove --help lists no commands"
"$SMOVE" help >help.top && "$SMOVE" --help >help.dash && cmp -s help.top help.dash ||
	fail "'smove help' differs from 'smove --help'"
for c in $commands; do
	"$SMOVE" help $c >a || fail "smove help $c failed"
	"$SMOVE" $c --help >b || fail "smove $c --help failed"
	cmp -s a b || fail "'smove help $c' differs from 'smove $c --help'"
	sub=$(awk '/^Commands:/{on=1;next} on && NF==0{exit} on{print $1}' b)
	for s in $sub; do
		"$SMOVE" help $c $s >a || fail "smove help $c $s failed"
		"$SMOVE" $c $s --help >b || fail "smove $c $s --help failed"
		cmp -s a b || fail "'smove help $c $s' differs from 'smove $c $s --help'"
		"$SMOVE" $c help $s >a || fail "smove $c help $s failed"
		cmp -s a b || fail "'smove $c help $s' differs from 'smove $c $s --help'"
		head -1 b | grep -q "^Usage: smove $c $s" || fail "smove help $c $s: $(head -1 b)"
	done
done
"$SMOVE" help demo disk | head -1 | grep -q '^Usage: smove demo disk' || fail "help demo disk"
"$SMOVE" demo --keep disk --help | head -1 | grep -q '^Usage: smove demo disk' ||
	fail "demo --keep disk --help"
expect_status 2 "$SMOVE" help nosuch
expect_stderr "^smove: unknown command 'nosuch'"

# Options after the operands, as qemu-img and most GNU tools take them.
"$SMOVE" disk create a.vhdx --size 8M || fail "create IMAGE --size"
"$SMOVE" disk info a.vhdx --json >info.json || fail "info IMAGE --json"
grep -q '"virtual-size":8388608' info.json || fail "info IMAGE --json: $(cat info.json)"
"$SMOVE" disk map a.vhdx --json | grep -q '^\[' || fail "map IMAGE --json"
"$SMOVE" disk check a.vhdx --json | grep -q '"check-errors":0' || fail "check IMAGE --json"
"$SMOVE" disk convert a.vhdx b.vhd --quiet -O vpc || fail "convert SRC DST -O"
"$SMOVE" disk info b.vhd --output=json | grep -q '"format":"vpc"' || fail "convert -O vpc"
"$SMOVE" ps --json >/dev/null || fail "ps --json"

# '--' ends the options: a file named like an option.
"$SMOVE" disk create --size 1M -- -odd.raw || fail "create -- -odd.raw"
"$SMOVE" disk info --json -- -odd.raw | grep -q '"virtual-size":1048576' || fail "info -- -odd.raw"
expect_status 2 "$SMOVE" disk info -odd.raw
expect_stderr "^smove disk info: invalid option -- 'o'"

# One prefix for every message: the command's name.
expect_status 1 "$SMOVE" disk info missing.vhdx
expect_stderr "^smove disk info: missing.vhdx: "
expect_status 2 "$SMOVE" disk info --bogus a.vhdx
expect_stderr "^smove disk info: unrecognized option '--bogus'"
expect_status 2 "$SMOVE" --json disk
expect_stderr "^smove: unknown option '--json' \(options come after the command\)"
echo PASS
