#!/bin/sh
# make-tls-creds.sh DIR: TLS credentials for the protocol tests, made by
# gnutls's own tools: PSK files (psktool) and X.509 directories (certtool) in
# nbdkit's --tls-certificates layout.
#   DIR/keys.psk       alice's and carol's keys (the server's file)
#   DIR/alice.psk      alice's key alone (a client's file)
#   DIR/wrong.psk      alice with another key
#   DIR/bob.psk        a user the server does not know
#   DIR/x509/          CA, server (CN and SAN localhost, 127.0.0.1), client
#   DIR/rogue/         another CA and a client it signed (trusts only itself)
#   DIR/rogue-client/  the real CA, with the rogue client's certificate
set -eu
d=$1
mkdir -p "$d/x509" "$d/rogue" "$d/rogue-client"
psktool -u alice -p "$d/keys.psk" >/dev/null
psktool -u carol -p "$d/keys.psk" >/dev/null
grep '^alice:' "$d/keys.psk" >"$d/alice.psk"
psktool -u alice -p "$d/wrong.psk" >/dev/null
psktool -u bob -p "$d/bob.psk" >/dev/null

key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null; }
ca() { # DIR NAME
	printf 'cn = %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$2" >"$1/ca.info"
	key "$1/ca-key.pem"
	certtool --generate-self-signed --load-privkey "$1/ca-key.pem" --template "$1/ca.info" \
		--outfile "$1/ca-cert.pem" 2>/dev/null
}
cert() { # CADIR OUTDIR WHO TEMPLATE
	printf '%b' "$4" >"$2/$3.info"
	key "$2/$3-key.pem"
	certtool --generate-certificate --load-ca-certificate "$1/ca-cert.pem" \
		--load-ca-privkey "$1/ca-key.pem" --load-privkey "$2/$3-key.pem" \
		--template "$2/$3.info" --outfile "$2/$3-cert.pem" 2>/dev/null
}
server='cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n'
client='cn = smove-client\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 2\n'
ca "$d/x509" "smove test CA"
cert "$d/x509" "$d/x509" server "$server"
cert "$d/x509" "$d/x509" client "$client"
ca "$d/rogue" "rogue CA"
cert "$d/rogue" "$d/rogue" client "$client"
cp "$d/x509/ca-cert.pem" "$d/rogue-client/"
cp "$d/rogue/client-cert.pem" "$d/rogue/client-key.pem" "$d/rogue-client/"
