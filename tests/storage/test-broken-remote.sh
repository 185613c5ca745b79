#!/bin/sh
# The broken-image corpus (tests/data/broken, made by the vhdx and vpc tests)
# read remotely: from a web server (nginx) by smove disk info and convert, and
# served by nbdkit smove to nbdcopy. Each image is refused or read with a
# clear error naming it, or read whole; nothing crashes or hangs, and nbdkit
# stays up after a bad request.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
requires nbdcopy

corpus="$abs_top_builddir/tests/data/broken"
[ -d "$corpus" ] && [ -n "$(ls "$corpus")" ] || skip "no broken-image corpus in $corpus"
cd "$T"
mkdir www
cp "$corpus"/* www/
start_nginx "$T/www"

n=0
st=0
for f in www/*; do
	name=$(basename "$f")
	url="http://127.0.0.1:$NGINX_PORT/$name"
	for cmd in info convert; do # convert only what info could open
		[ $cmd = convert ] && [ $st != 0 ] && continue
		rm -f out.raw
		set +e
		if [ $cmd = info ]; then
			timeout 60 "$SMOVE" disk info "$url" >/dev/null 2>err
		else
			timeout 60 "$SMOVE" disk convert -q "$url" out.raw 2>err
		fi
		st=$?
		set -e
		[ $st -le 1 ] || fail "smove disk $cmd $url: exit status $st: $(cat err)"
		# The message names an image of the chain (a loop names its last).
		[ $st = 0 ] || grep -qF "http://127.0.0.1:$NGINX_PORT/" err ||
			fail "smove disk $cmd $url: $(cat err)"
	done

	if try_plugin "p$n" "file=$T/$f" readonly=true; then
		set +e
		timeout 60 nbdcopy "$nbd_uri" null: 2>err
		st=$?
		set -e
		[ $st -le 1 ] || fail "nbdcopy from nbdkit smove $name: exit status $st"
		kill -0 "$(cat "$T/p$n.pid")" || fail "nbdkit smove died serving $name"
		stop_plugin "p$n"
	else
		grep -qF "$T/www/" "$T/p$n.log" || fail "nbdkit smove $name: $(cat "$T/p$n.log")"
	fi
	n=$((n + 1))
done
echo "$n broken images read remotely"
echo PASS
