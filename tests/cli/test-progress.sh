#!/bin/sh
# Every long operation says what it is doing on a terminal (run under a
# pseudo-terminal with script(1)): convert ("converting"), mirror
# ("mirroring", then "verifying" with --verify), compare ("comparing"), each
# bar ending at 100%, and never a first frame of 0 B/0 B; nothing on a
# terminal with -q or --json, and --json reports a failure as JSON.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires script nbdkit
cd "$T"

# on_tty CMD...: runs CMD with a terminal as its standard error; its output in tty.out.
on_tty() {
	script -qefc "$*" /dev/null >tty.out 2>&1 </dev/null || { cat tty.out; fail "$*"; }
	tr '\r' '\n' <tty.out >tty.lines
}
truncate -s 64M src.raw
dd if=/dev/urandom of=src.raw bs=1M count=24 seek=8 conv=notrunc status=none

on_tty "$SMOVE" disk convert -O vhdx src.raw out.vhdx
grep -q '^converting *\[#*\] 100% 64.0 MiB/64.0 MiB' tty.lines || fail "convert: $(cat tty.lines)"
on_tty "$SMOVE" disk compare src.raw out.vhdx
grep -q '^comparing *\[#*\] 100% 64.0 MiB/64.0 MiB' tty.lines || fail "compare: $(cat tty.lines)"
grep -q '^Images are identical.' tty.lines || fail "compare: $(cat tty.lines)"
NBDKIT_PLUGIN=memory start_plugin m 64M
on_tty "$SMOVE" disk mirror --verify src.raw "'$nbd_uri'"
grep -q '^mirroring *\[#*\] 100%' tty.lines || fail "mirror: $(cat tty.lines)"
grep -q '^verifying *\[#*\] 100% 64.0 MiB/64.0 MiB' tty.lines || fail "verify: $(cat tty.lines)"
grep -n '' tty.lines | grep -q '0 B/0 B' && fail "a 0/0 frame: $(cat tty.lines)"
# No bar with -q or --json.
on_tty "$SMOVE" disk convert -q -O raw src.raw q.raw
! grep -q 'converting' tty.lines || fail "convert -q drew a bar"
on_tty "$SMOVE" disk mirror --json src.raw "'$nbd_uri'"
! grep -q 'mirroring' tty.lines || fail "mirror --json drew a bar"
grep -q '^{"source":"src.raw",' tty.lines || fail "mirror --json: $(cat tty.lines)"

# --json failures are JSON on standard output (and a sentence on standard error).
for cmd in "disk convert -O raw missing.raw x.raw" "disk info missing.raw" "disk map missing.raw" \
	"disk check missing.raw" "disk compare missing.raw src.raw" "disk mirror missing.raw $nbd_uri"; do
	# shellcheck disable=SC2086
	"$SMOVE" $cmd --json >out.json 2>err.txt && fail "$cmd succeeded"
	grep -q '^{"error":"missing.raw: No such file or directory","exit-status":[12]}$' out.json ||
		fail "$cmd --json: $(cat out.json)"
	grep -q "^smove disk [a-z]*: missing.raw: No such file or directory" err.txt || fail "$cmd: $(cat err.txt)"
done
echo PASS
