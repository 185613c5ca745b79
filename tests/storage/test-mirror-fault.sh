#!/bin/sh
# The destination dies: nbdkit is killed (SIGKILL) in the middle of the bulk
# pass, and again once the mirror is synchronous. Each time the engine fails
# the job with a clear error and says what the destination holds, the writer
# never sees an error, and the source holds exactly what the writer wrote
# (mirror-writer --shadow compares it with its own copy in memory).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/storage/servers.sh"
. "$abs_top_srcdir/tests/storage/mirror-scenario.sh"

cd "$T"
make_image src.raw raw
pattern_file p 8388608 21
dd if=p of=src.raw bs=1M seek=4 conv=notrunc status=none
dd if=p of=src.raw bs=1M seek=20 conv=notrunc status=none

for when in bulk synced; do
	rm -f dst.raw
	make_image dst.raw raw
	start_plugin "d$when" "file=$T/dst.raw"
	"$abs_top_builddir/tests/storage/mirror-writer" --shadow --expect-failure \
		--kill "$T/d$when.pid" --kill-at "$when" --write-rate 8000000 --bandwidth 64000000 \
		--timeout 60 \
		src.raw "$nbd_uri" >out 2>err || {
		cat out err >&2
		fail "$when: mirror-writer failed"
	}
	grep -q "^killed_in=$when" out || fail "$when: the server was not killed then: $(cat out err)"
	grep -q '^state=failed$' out || fail "$when: the job did not fail: $(cat out)"
	grep -q '^writer_errors=0$' out || fail "$when: the writer saw an error"
	grep -Eq "^error=nbd\+unix:.*(destination|connection).*" out ||
		fail "$when: unclear error: $(grep ^error= out)"
	grep -q "^report=.*holds a partial copy of src.raw" out ||
		fail "$when: unclear report: $(grep ^report= out)"
done
echo PASS
