# bench/: benchmarks against real peers, run by hand (`bench/NAME.sh`), never
# by `make check`; each prints its numbers beside the peer's and the ratio.
bench_scripts = bench/proto.sh
EXTRA_DIST += $(bench_scripts)
# bench/proto.sh: page-transfer throughput against a raw loopback socket.
noinst_PROGRAMS += bench/proto-bench
bench_proto_bench_LDADD = proto/libproto.la $(PTHREAD_LIBS)
