#!/bin/sh
# Coverage-guided fuzzing of the image parsers (libFuzzer, ASan, UBSan) for a
# bounded time, from seeds made by qemu-img and by smove plus the committed
# ones. 20 s here; SMOVE_TEST_FULL=1 (make check-full) runs 10 minutes.
. "$abs_top_srcdir/tests/functions.sh"
fuzzer="$abs_top_builddir/tests/fuzz/fuzz-image-libfuzzer"
[ -x "$fuzzer" ] || skip "libFuzzer harness not built (needs clang and libclang-rt-14-dev)"

secs=20
[ -n "${SMOVE_TEST_FULL:-}" ] && secs=600
mkdir "$T/corpus"
sh "$abs_top_srcdir/tests/fuzz/make-seeds.sh" "$T/corpus"
seeds="$abs_top_srcdir/tests/fuzz/seeds-image"
[ -d "$seeds" ] || seeds=
cd "$T"
"$fuzzer" -max_total_time=$secs -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
	-print_final_stats=1 "$T/corpus" $seeds \
	>"$T/fuzz.log" 2>&1 || {
	tail -60 "$T/fuzz.log" >&2
	fail "the fuzzer found a crash, a leak or a hang (see above)"
}
grep -E 'stat::number_of_executed_units' "$T/fuzz.log"
echo PASS
