# bench/: benchmarks against real peers, run by hand (`bench/NAME.sh`), never
# by `make check`; each prints its numbers beside the peer's and the ratio.
bench_scripts =
bench_scripts += bench/convert.sh
EXTRA_DIST += $(bench_scripts)
