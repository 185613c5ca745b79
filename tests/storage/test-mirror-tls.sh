#!/bin/sh
# The mirror engine over TLS with a pre-shared key (psktool) and two
# connections (nbdkit smove advertises multi-conn), under writers that leave
# the dirty set room to shrink, so that synchronous mode comes by itself.
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
. "$abs_top_srcdir/tests/storage/mirror-scenario.sh"
requires psktool

psktool -u alice -p "$T/keys.psk" >/dev/null
NBDKIT_ARGS="--tls=require --tls-psk=$T/keys.psk"
# The cap stretches the bulk pass over the 12 MiB of data to about 0.4 s, so
# that writes land in it even when a loaded machine starts the writers late.
mirror_scenario raw raw --tls-psk "$T/keys.psk" --tls-username alice --connections 2 \
	--writers 2 --write-rate 1000000 --bandwidth 32000000 --timeout 60
# The engine opens no more connections than there are CPUs.
want=$(($(nproc) < 2 ? $(nproc) : 2))
grep -q "^connections=$want\$" "$T/out" || fail "expected $want connections: $(cat "$T/out")"
# mirror-writer forces synchronous mode after 4 passes (then a 5th copies the
# rest): 4 or fewer means the dirty set shrank below the threshold by itself.
grep -q '^passes=[1-4]$' "$T/out" || fail "expected to converge by itself: $(cat "$T/out")"
echo PASS
