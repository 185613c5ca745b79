#!/bin/sh
# smove move with virsh migrate's spellings and smove's one vocabulary,
# against a stand-in for a VM's control socket (fake-vm.py: no KVM needed):
# --bandwidth in MiB/s or with a unit, --parallel-connections, --compressed,
# --no-auto-converge ("auto_converge": false in the request), --abort,
# --copy-storage-all and --live accepted; --timeout cancels a migration that
# runs too long (it rolls back: exit 5); the TLS set with its old spellings,
# its key files checked (and named) before anything connects; a URL where a
# HOST:PORT goes is refused; --json reports failures as JSON.
. "$abs_top_srcdir/tests/functions.sh"
cd "$T"
export SMOVE_RUNTIME_DIR="$T/run"
/usr/bin/python3 "$abs_top_srcdir/tests/cli/fake-vm.py" "$T/run" vm1 "$T/requests" &
fake=$!
on_exit "kill $fake 2>/dev/null || :"
for _ in $(seq 100); do [ -S run/vm1.sock ] && break; sleep 0.05; done
[ -S run/vm1.sock ] || fail "the fake VM did not start"

printf 'alice:%s\ncarol:%s\n' "$(printf '%064d' 1)" "$(printf '%064d' 2)" >keys.psk
mkdir certs empty
touch certs/ca-cert.pem certs/client-cert.pem certs/client-key.pem

# last_request: the last migrate request the VM received.
last_request() { grep '"cmd":"migrate"' requests | tail -1; }
member() { last_request | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$1'))"; }

# virsh's spellings become the request's members.
"$SMOVE" move vm1 --to 127.0.0.1:1 --bandwidth 100 --parallel-connections 4 --compressed \
	--no-auto-converge --copy-storage-all --live --tls-psk keys.psk >out ||
	{ cat out; fail "move with virsh's spellings"; }
grep -q '^vm1: moved to 127.0.0.1:1 in ' out || fail "move: $(cat out)"
[ "$(member bandwidth)" = $((100 * 1048576)) ] || fail "--bandwidth 100 is not 100 MiB/s: $(last_request)"
[ "$(member channels)" = 4 ] || fail "--parallel-connections: $(last_request)"
[ "$(member compress)" = True ] || fail "--compressed: $(last_request)"
[ "$(member auto_converge)" = False ] || fail "--no-auto-converge: $(last_request)"
[ "$(member tls_psk)" = "$T/keys.psk" ] || fail "--tls-psk: $(last_request)"
[ "$(member tls_user)" = alice ] || fail "the default user is not the file's first: $(last_request)"
for bw in 100M:104857600 1G:1073741824 500K:512000 1.5G:1610612736; do
	"$SMOVE" move vm1 --to 127.0.0.1:1 --bandwidth ${bw%:*} >/dev/null || fail "--bandwidth ${bw%:*}"
	[ "$(member bandwidth)" = ${bw#*:} ] || fail "--bandwidth ${bw%:*}: $(last_request)"
	[ "$(member auto_converge)" = True ] || fail "auto-converge is not the default"
done
for bad in 0 -5 abc 10X; do
	expect_status 2 "$SMOVE" move vm1 --to 127.0.0.1:1 --bandwidth $bad
	expect_stderr "^smove move: invalid --bandwidth '$bad' \(MiB/s, or a size per second"
done
# The old spellings of the TLS options still work.
"$SMOVE" move vm1 --to 127.0.0.1:1 --tls-x509 certs >/dev/null || fail "--tls-x509"
[ "$(member tls_x509)" = "$T/certs" ] || fail "--tls-x509: $(last_request)"
"$SMOVE" move vm1 --to 127.0.0.1:1 --tls-certificates certs >/dev/null || fail "--tls-certificates"
"$SMOVE" move vm1 --to 127.0.0.1:1 --tls-psk keys.psk --tls-user carol >/dev/null || fail "--tls-user"
[ "$(member tls_user)" = carol ] || fail "--tls-user: $(last_request)"

# Key files are checked before anything connects, and named.
n=$(grep -c '"cmd":"migrate"' requests)
expect_status 1 "$SMOVE" move vm1 --to 127.0.0.1:1 --tls-psk missing.psk
expect_stderr "^smove move: missing.psk: No such file or directory$"
echo alice >bad.psk
expect_status 1 "$SMOVE" move vm1 --to 127.0.0.1:1 --tls-psk bad.psk
expect_stderr "^smove move: bad.psk: line 1 is not USER:HEXKEY \(the format psktool writes\)$"
expect_status 1 "$SMOVE" move vm1 --to 127.0.0.1:1 --tls-psk keys.psk --tls-username bob
expect_stderr "^smove move: keys.psk: has no key for user 'bob' \(it has: alice, carol\)$"
expect_status 1 "$SMOVE" move vm1 --to 127.0.0.1:1 --tls-certificates empty
expect_stderr "^smove move: empty/ca-cert.pem: No such file or directory \(--tls-certificates empty needs ca-cert.pem\)$"
expect_status 1 "$SMOVE" move vm1 --to 127.0.0.1:1 --tls-psk keys.psk --tls-certificates certs
expect_stderr "give --tls-psk or --tls-certificates, not both"
[ "$(grep -c '"cmd":"migrate"' requests)" = "$n" ] || fail "a refused key file reached the VM"
expect_status 2 "$SMOVE" move vm1 --to nbd://127.0.0.1:1/x
expect_stderr "^smove move: --to takes HOST:PORT \(a 'smove serve'\), not the URL"

# --timeout: a migration still running then is cancelled and rolls back.
start=$(date +%s)
expect_status 5 "$SMOVE" move vm1 --to 127.0.0.1:2 --timeout 1
grep -q 'not finished after 1 s (--timeout): cancelling' "$T/stdout" || fail "timeout: $(cat "$T/stdout")"
grep -q 'rolled back; the VM runs here' "$T/stdout" || fail "timeout: $(cat "$T/stdout")"
[ $(($(date +%s) - start)) -lt 15 ] || fail "--timeout 1 took too long"
grep -q '"cmd":"migrate-cancel"' requests || fail "--timeout sent no cancel"
expect_status 5 "$SMOVE" move vm1 --to 127.0.0.1:2 --timeout 1 --json
grep -q '^{"schema":1,"event":"timeout","timeout_s":1}$' "$T/stdout" || fail "timeout --json: $(cat "$T/stdout")"
grep -q '"event":"result","result":"rolled-back"' "$T/stdout" || fail "timeout --json: no result"
expect_status 2 "$SMOVE" move vm1 --to 127.0.0.1:1 --timeout 0
# --abort is --cancel.
c=$(grep -c '"cmd":"migrate-cancel"' requests)
"$SMOVE" move --abort vm1 || fail "--abort"
[ "$(grep -c '"cmd":"migrate-cancel"' requests)" = $((c + 1)) ] || fail "--abort sent no cancel"

# --json: failures as JSON too.
expect_status 1 "$SMOVE" move nosuch --to 127.0.0.1:1 --json
grep -q '^{"error":"nosuch: no VM of that name runs here","exit-status":1}$' "$T/stdout" ||
	fail "move --json failure: $(cat "$T/stdout")"
expect_status 1 "$SMOVE" move vm1 --to 127.0.0.1:1 --json --tls-psk missing.psk
grep -q '^{"error":"missing.psk: No such file or directory","exit-status":1}$' "$T/stdout" ||
	fail "move --json key file: $(cat "$T/stdout")"
echo PASS
