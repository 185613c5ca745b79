#!/bin/sh
# Replays the committed fuzz seeds and the broken-image corpus through the
# image fuzz harness built with the project's compiler (and, in the
# sanitizer pass, under ASan and UBSan).
. "$abs_top_srcdir/tests/functions.sh"
replay="$abs_top_builddir/tests/fuzz/replay-image"
mkdir "$T/corpus"
sh "$abs_top_srcdir/tests/fuzz/make-seeds.sh" "$T/corpus"
set -- "$T"/corpus/*
for d in "$abs_top_srcdir/tests/fuzz/seeds-image" "$abs_top_builddir/tests/data/broken"; do
	[ -d "$d" ] && for f in "$d"/*; do [ -f "$f" ] && set -- "$@" "$f"; done
done
"$replay" "$@" || fail "replaying $# inputs failed"
echo "replayed $# inputs"
echo PASS
