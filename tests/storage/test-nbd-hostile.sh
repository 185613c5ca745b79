#!/bin/sh
# NBD servers that misbehave (tests/storage/hostile-nbd.py): empty or
# overlong extents in block status, short reads, read errors, garbage, a
# connection that closes. Each is a clear error naming the export, or (for
# an overlong extent, clipped to what was asked) the right answer; never a
# crash, a hang or wrong data.
. "$abs_top_srcdir/tests/functions.sh"

cd "$T"
pattern_file a.raw 4194304 13
serve() { # serve MODE: sets $uri
	rm -f sock
	/usr/bin/python3 "$abs_top_srcdir/tests/storage/hostile-nbd.py" "$1" a.raw "$T/sock" &
	pid=$!
	on_exit "kill $pid 2>/dev/null || :"
	for _ in $(seq 100); do [ -S sock ] && break; sleep 0.05; done
	[ -S sock ] || fail "hostile-nbd.py $1 did not start"
	uri="nbd+unix:///?socket=$T/sock"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || :; }

for mode in good beyond-extent; do
	serve $mode
	"$SMOVE" disk map --json "$uri" | grep -q '"length":4194304,[^}]*"type":"data"' ||
		fail "$mode: wrong map"
	rm -f b.raw
	"$SMOVE" disk convert -q "$uri" b.raw
	cmp a.raw b.raw || fail "$mode: the copy differs"
	stop
done

check_error() { # check_error MODE PATTERN
	serve "$1"
	rm -f b.raw
	expect_status 1 timeout 60 "$SMOVE" disk convert -q "$uri" b.raw
	expect_stderr "$2"
	grep -qF "$uri" "$T/stderr" || fail "$1: the message does not name the export"
	[ ! -e b.raw ] || fail "$1: convert left b.raw behind"
	stop
}
check_error empty-extent 'server sent an empty extent at offset 0x0'
check_error short-read 'read of 0x[0-9a-f]+ bytes at offset 0x0: .*(Input/output error|short)'
check_error error-read 'read of 0x[0-9a-f]+ bytes at offset 0x0: .*Input/output error'
check_error garbage 'read of .*: .*(invalid|magic)'
check_error hangup 'read of .*: .*(not connected|reset|closed)'
echo PASS
