#!/bin/sh
# NBD over TLS with X.509 certificates on both sides (made by certtool through
# tests/proto/make-tls-creds.sh): nbdkit --tls=require --tls-certificates
# --tls-verify-peer serves an empty 16 MiB export on loopback; `smove disk
# mirror --tls-certs` copies a VHDX to it and verifies it, `smove disk info`
# and `smove disk convert` read it back through nbds://...?tls-certificates=,
# and qemu-img finds the copy equal to the source. Clients without a valid
# certificate (none, or one from another CA), a client that does not trust
# the server's CA, and a client without TLS are refused, saying why.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires nbdkit certtool qemu-img qemu-io
cd "$T"
sh "$abs_top_srcdir/tests/proto/make-tls-creds.sh" "$T/tls"
x509=$T/tls/x509
mkdir ca-only
cp "$x509/ca-cert.pem" ca-only/

"$SMOVE" disk create --size 16M src.vhdx
qemu-io -f vhdx -c 'write -P 0x5a 1M 3M' -c 'write -P 0x11 15M 64k' src.vhdx >/dev/null
port=$(free_port)
nbdkit -p "$port" -i 127.0.0.1 -P "$T/nbdkit.pid" --tls=require --tls-certificates="$x509" \
	--tls-verify-peer memory 16M
on_exit 'kill $(cat "$T/nbdkit.pid") 2>/dev/null || :'
url=nbds://127.0.0.1:$port/

# Mirror, then read back with the certificates named in the URL.
"$SMOVE" disk mirror -q --json --tls-certs "$x509" --verify src.vhdx "$url" >mirror.json ||
	fail "mirror over X.509 TLS failed"
grep -q '"verified":true' mirror.json || fail "the mirror was not verified: $(cat mirror.json)"
"$SMOVE" disk info --json "$url?tls-certificates=$x509" >info.json || fail "info over X.509 TLS failed"
grep -q '"virtual-size":16777216' info.json || fail "info: wrong size: $(cat info.json)"
"$SMOVE" disk convert -q "$url?tls-certificates=$x509" copy.raw || fail "convert over X.509 TLS failed"
qemu-img compare -f vhdx -F raw src.vhdx copy.raw >/dev/null || fail "the copy read back differs"

# refused URL DIR: info and mirror with certificates DIR are refused, saying why.
refused() {
	expect_status 1 "$SMOVE" disk info "$url?tls-certificates=$1"
	expect_stderr "$url.*: cannot connect.*$2"
	expect_status 1 "$SMOVE" disk mirror -q --tls-certs "$1" src.vhdx "$url"
	expect_stderr "$url: cannot connect.*$2"
}
client_refused="the server ended the TLS handshake, refusing this client's credentials"
refused "$T/ca-only" "$client_refused"              # no client certificate
refused "$T/tls/rogue-client" "$client_refused"     # signed by another CA
refused "$T/tls/rogue" "not signed by the CA this client trusts.*certificate verification"
expect_status 1 "$SMOVE" disk info "nbd://127.0.0.1:$port/"
expect_stderr "server requires TLS"
# The export was not written by any refused client.
"$SMOVE" disk convert -q "$url?tls-certificates=$x509" copy2.raw
cmp copy.raw copy2.raw || fail "a refused client changed the export"
echo PASS
