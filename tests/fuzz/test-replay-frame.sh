#!/bin/sh
# Replays the committed frame-fuzzer seeds (and freshly captured streams of
# both sides: every message type appears) through the protocol harness built
# with the project's compiler (and, in the sanitizer pass, under ASan and
# UBSan).
. "$abs_top_srcdir/tests/functions.sh"
. "$abs_top_srcdir/tests/fuzz/fuzz-lib.sh"
mkdir "$T/corpus"
"$abs_top_builddir/tests/fuzz/frame-seeds" "$T/corpus" || fail "cannot make seeds"
# shellcheck disable=SC2046 # file names without spaces
run_replay frame "$T"/corpus/* $(files_in "$abs_top_srcdir/tests/fuzz/seeds-frame")
