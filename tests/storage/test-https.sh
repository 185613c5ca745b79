#!/bin/sh
# An image on an HTTPS server with a self-signed certificate (certtool): read
# when SMOVE_CA_FILE trusts the certificate, refused when nothing does.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"

cd "$T"
mkdir www
pattern_file www/a.raw 5242880 3
start_nginx "$T/www" "" ssl
url="https://127.0.0.1:$NGINX_PORT/a.raw"

SMOVE_CA_FILE="$T/nginx/cert.pem" "$SMOVE" disk convert -q "$url" b.raw
cmp www/a.raw b.raw || fail "convert over HTTPS differs from the file"
SMOVE_CA_FILE="$T/nginx/cert.pem" "$SMOVE" disk map --json "$url" | grep -q '"data"' ||
	fail "map over HTTPS"

# Without the CA the certificate is not trusted: a clear error, no retries.
expect_status 1 env -u SMOVE_CA_FILE "$SMOVE" disk info "$url"
expect_stderr "a.raw: .*(certificate|issuer|verify)"
grep -q 'gave up' "$T/stderr" && fail "a certificate error was retried"
echo PASS
