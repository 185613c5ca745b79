#!/bin/sh
# One TLS vocabulary on every command that connects: --tls-psk FILE,
# --tls-username NAME (default: the file's first user; the login name is not
# asked for, so a session without one works), --tls-certificates DIR, the old
# spellings kept; the key files checked, and named, before any connection
# (disk mirror, disk info of an nbds:// image, serve); bandwidth in MiB/s or
# with a unit, as for move; a URL where a local path goes is refused as such.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires nbdkit psktool qemu-img
cd "$T"

psktool -u alice -p keys.psk >/dev/null
psktool -u bob -p keys.psk >/dev/null
NBDKIT_ARGS="--tls=require --tls-psk=$T/keys.psk" NBDKIT_PLUGIN=memory start_plugin m 64M
url="nbds+unix:///?socket=$T/m.sock"
qemu-img create -q -f raw src.raw 8M
dd if=/dev/urandom of=src.raw bs=1M count=8 conv=notrunc status=none

# Without --tls-username (and without a login name: setsid, no terminal) the
# file's first user is presented.
setsid "$SMOVE" disk mirror -q --tls-psk keys.psk src.raw "$url" </dev/null >out 2>&1 ||
	{ cat out; fail "mirror --tls-psk without --tls-username"; }
"$SMOVE" disk mirror -q --tls-psk keys.psk --tls-username bob --verify src.raw "$url" ||
	fail "mirror --tls-username bob"
"$SMOVE" disk mirror -q --tls-psk keys.psk --tls-user bob src.raw "$url" || fail "--tls-user (old)"
"$SMOVE" disk info --tls-psk keys.psk "$url" >info || fail "info of an nbds:// image"
grep -q '^virtual size: .*(67108864 bytes)' info || fail "info: $(cat info)"
st=0
"$SMOVE" disk compare --tls-psk keys.psk -f raw src.raw "$url" >/dev/null || st=$?
[ $st -le 1 ] || fail "compare over TLS (exit $st)"

# The key files, checked and named before anything connects (the socket
# named here does not exist: a connection would fail otherwise).
none="nbds+unix:///?socket=$T/none.sock"
for cmd in "disk mirror -q src.raw $none" "disk info $none" "disk map $none" "disk check $none" \
	"disk convert -q -O raw $none out.raw"; do
	# shellcheck disable=SC2086
	expect_status 1 "$SMOVE" $cmd --tls-psk missing.psk
	expect_stderr "^smove disk [a-z]*: missing.psk: No such file or directory$"
	# shellcheck disable=SC2086
	expect_status 1 "$SMOVE" $cmd --tls-psk keys.psk --tls-username carol
	expect_stderr "keys.psk: has no key for user 'carol' \(it has: alice, bob\)$"
	# shellcheck disable=SC2086
	expect_status 1 "$SMOVE" $cmd --tls-certificates "$T"
	expect_stderr "ca-cert.pem: No such file or directory \(--tls-certificates $T needs ca-cert.pem\)$"
done
expect_status 2 "$SMOVE" disk compare src.raw "$none" --tls-psk missing.psk
expect_stderr "^smove disk compare: missing.psk: No such file or directory$"
expect_status 1 "$SMOVE" disk mirror -q --tls-certs /nonexistent src.raw "$none"
expect_stderr "^smove disk mirror: /nonexistent: No such file or directory$"
expect_status 1 "$SMOVE" disk mirror -q --json --tls-psk missing.psk src.raw "$none"
grep -q '^{"error":"missing.psk: No such file or directory","exit-status":1}$' "$T/stdout" ||
	fail "mirror --json: $(cat "$T/stdout")"
# serve checks its own before it listens.
mkdir store
expect_status 1 "$SMOVE" serve --listen 127.0.0.1:0 --storage store --tls-psk missing.psk
expect_stderr "^smove serve: missing.psk: No such file or directory$"
expect_status 1 "$SMOVE" serve --listen 127.0.0.1:0 --storage store --tls-certificates "$T"
expect_stderr "ca-cert.pem: No such file or directory"
expect_status 1 "$SMOVE" serve --listen 127.0.0.1:0 --storage store --tls-x509 "$T"
expect_stderr "ca-cert.pem: No such file or directory"
expect_status 2 "$SMOVE" serve --listen 127.0.0.1:0 --storage nbd://host/x --insecure
expect_stderr "^smove serve: --storage is a local directory, not the URL 'nbd://host/x'$"

# Bandwidth: MiB/s or a size per second, the same words as move's.
start=$(date +%s)
"$SMOVE" disk mirror -q --bandwidth 4M --tls-psk keys.psk src.raw "$url" || fail "--bandwidth 4M"
[ $(($(date +%s) - start)) -ge 1 ] || fail "8 MiB at 4 MiB/s took less than a second"
"$SMOVE" disk mirror -q --bandwidth 100 --tls-psk keys.psk src.raw "$url" || fail "--bandwidth 100"
expect_status 2 "$SMOVE" disk mirror --bandwidth 0 src.raw "$url"
expect_stderr "invalid --bandwidth '0' \(MiB/s, or a size per second"

# A URL where a local path goes.
expect_status 2 "$SMOVE" disk create nbd://host/x 1G
expect_stderr "^smove disk create: nbd://host/x: is a URL; create makes a local file$"
expect_status 2 "$SMOVE" disk convert src.raw https://host/x.vhdx
expect_stderr "^smove disk convert: https://host/x.vhdx: is a URL; convert makes a local file"
echo PASS
