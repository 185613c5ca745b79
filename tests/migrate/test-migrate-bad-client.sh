#!/bin/sh
# Hostile sources against `smove serve` while a real migration is in
# progress: every case of tests/migrate/bad-client.py (garbage, a wrong
# version, a huge length, truncated frames, silent peers, bad checksums,
# unknown types and flags, frames out of order, page addresses outside guest
# memory after a real go, bad state blobs, channel joins with a wrong token,
# and disk and VM names with ../, absolute paths, empty or too long). serve
# refuses each with a clear error in its log (and on the wire when the
# connection still works), drops silent peers after its frame timeout
# (shortened by the test hook SMOVE_TEST_FRAME_TIMEOUT_MS), creates nothing
# outside its storage directory and leaves nothing inside it, and the
# migration going on meanwhile is then cancelled and moved for real. The
# fake sources speak in the clear: serve runs with --insecure (without it,
# and without --tls-*, it refuses to start, and says why). Connections that
# have not said HELLO are limited (migrate/serve.c: 32 in all, 8 per peer
# address, until the handshake's deadline): 20 silent connections from two
# other loopback addresses (10 each: 8 held, 2 refused at once) do not keep
# the real migration out, and are dropped at the deadline.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/migrate/lib.sh"
export SMOVE_TEST_FRAME_TIMEOUT_MS=4000
client="$abs_top_srcdir/tests/migrate/bad-client.py"
bad() { /usr/bin/python3 "$client" "$PORT" "$1"; }
# No TLS and no --insecure: serve does not start.
expect_status 1 dst serve --listen 127.0.0.1:0 --storage "$T/store"
expect_stderr "^smove serve: without TLS \(--tls-psk or --tls-certificates\) anyone who reaches 127\.0\.0\.1:0 could send a VM; give --insecure to allow it$"
LIB_TLS=none
start_serve
truncate -s 8M "$T/disk.raw"
SMOVE_TEST_STALL=source-ready start_vm vm1 --memory 128M --disk "$T/disk.raw" \
	--cmdline "mem=8M passes=0 hb=5"
move_bg vm1
wait_for "$T/vm1.run.err" "stalling at source-ready"
bad_client_base "$T/src/vm1.sock"
# The silent peers wait for serve's timeout meanwhile.
silent=""
for c in silent half-silent silent-after-hello; do
	bad $c >"$T/bad.$c" 2>&1 &
	silent="$silent $!"
done
/usr/bin/python3 "$client" --list >"$T/cases"
tab=$(printf '\t')
n=0
while IFS=$tab read -r c log; do
	case $c in *silent*) continue ;; esac
	lines=$(wc -l <"$T/serve.err")
	bad "$c" >"$T/bad.$c" 2>&1 || { cat "$T/bad.$c" "$T/serve.err"; fail "serve did not refuse the $c client"; }
	for i in $(seq 100); do
		tail -n +$((lines + 1)) "$T/serve.err" | grep -Eq -- "$log" && break
		sleep 0.1
	done
	tail -n +$((lines + 1)) "$T/serve.err" | grep -Eq -- "$log" || {
		echo "--- the client: $(cat "$T/bad.$c")"
		tail -n +$((lines + 1)) "$T/serve.err"
		fail "serve's log does not say why it refused the $c client ($log)"
	}
	n=$((n + 1))
done <"$T/cases"
for p in $silent; do
	wait "$p" || { cat "$T"/bad.*silent*; fail "a silent peer was not dropped in time"; }
done
[ "$(grep -c "receive: timed out" "$T/serve.err")" -ge 3 ] || fail "serve did not log the timeouts"
echo "$n cases refused, 3 silent peers dropped after serve's frame timeout"
# Nothing outside the storage, nothing left inside it but the migration in progress.
[ -z "$(find "$T" /tmp -maxdepth 2 -name evil -newer "$T/cases" 2>/dev/null)" ] ||
	fail "a file named evil was created"
[ "$(ls -A "$T/store" | tr '\n' ' ')" = ".smove-serve.lock .smove-sessions vm1 " ] || {
	ls -lA "$T/store"
	fail "unexpected files in the storage"
}
[ "$(ls "$T/store/.smove-sessions" | grep -c '\.psk$')" = 1 ] || fail "an export key was left behind"
for f in "$T"/store/.smove-sessions/*.json; do
	grep -q '"bad-' "$f" || continue
	grep -q '"aborted"' "$f" || { cat "$f"; fail "a bad client's session is not recorded as aborted"; }
done
! pgrep -f "$T/store/bad-" >/dev/null || fail "an export or a VM process of a bad client is left"
! dst ps 2>/dev/null | grep -q '^bad-' || fail "smove ps lists a bad client's VM"
# The migration waiting at the source goes on: cancel it, then move for real
# while 20 silent connections wait for their handshake's deadline.
src move --cancel vm1 >/dev/null
move_wait
expect_move 5
lines=$(wc -l <"$T/serve.err")
silent_peers
wait_for "$T/silent20" "held"
grep -qx "held 16 refused 4" "$T/silent20" || fail "serve did not hold 8 and refuse 2 of each peer's 10 silent connections: $(cat "$T/silent20")"
move vm1
expect_move 0
runs "$T/dst/vm1.sock"
guest_mem_goes_on "$T/store/vm1/console.log"
wait "$SILENT_PID"
grep -q "all closed" "$T/silent20" || fail "serve kept silent connections: $(cat "$T/silent20")"
[ "$(tail -n +$((lines + 1)) "$T/serve.err" | grep -c "a peer was refused: receive: timed out")" = 16 ] || {
	tail -n +$((lines + 1)) "$T/serve.err"
	fail "serve did not drop the 16 silent connections it held at their deadline"
}
echo "20 silent connections ($(cat "$T/silent20" | tr '\n' ' ')): the migration went through"
