#!/bin/sh
# A web server that ignores Range (nginx with max_ranges 0 answers 200 with
# the whole file): the image is refused at open with a clear error, and the
# refusal costs one request, not a download of the whole file.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"

cd "$T"
mkdir www
pattern_file www/a.raw 33554432 5
start_nginx "$T/www" "max_ranges 0;"
url="http://127.0.0.1:$NGINX_PORT/a.raw"

expect_status 1 "$SMOVE" disk info "$url"
expect_stderr "a.raw: server does not honour range requests"
expect_status 1 "$SMOVE" disk convert -q "$url" b.raw
expect_stderr "server does not honour range requests"
[ ! -e b.raw ] || fail "convert left b.raw behind"
# Each command made one request (nginx logs an aborted one when it notices).
for _ in $(seq 40); do [ "$(wc -l <nginx/access.log)" -ge 2 ] && break; sleep 0.05; done
[ "$(wc -l <nginx/access.log)" = 2 ] || fail "expected 2 requests: $(cat nginx/access.log)"
echo PASS
