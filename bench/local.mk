# bench/: benchmarks against real peers, run by hand (`bench/NAME.sh`), never
# by `make check`; each prints its numbers beside the peer's and the ratio.
bench_scripts = bench/proto.sh
# bench/vpc-convert.sh: smove disk convert against qemu-img convert on VHD.
bench_scripts += bench/vpc-convert.sh
# bench/convert.sh: smove disk convert against qemu-img convert, VHDX <-> VHD and raw.
bench_scripts += bench/convert.sh
EXTRA_DIST += $(bench_scripts)
# bench/proto.sh: page-transfer throughput against a raw loopback socket.
noinst_PROGRAMS += bench/proto-bench
bench_proto_bench_LDADD = proto/libproto.la $(PTHREAD_LIBS)
# bench/vm.sh: smove's VM (memory bandwidth in ring 3, virtio-blk throughput)
# against the host.
bench_scripts += bench/vm.sh
EXTRA_PROGRAMS = bench/vm-memhost
bench_vm_memhost_SOURCES = bench/vm-memhost.c memsync/guest/mem.c
bench_vm_memhost_CPPFLAGS = $(AM_CPPFLAGS) -DGUEST_HOST_BUILD
bench_vm_memhost_CFLAGS = $(AM_CFLAGS) -O2
CLEANFILES += bench/vm-memhost
# bench/mirror.sh: the mirror engine against nbdcopy (throughput), and the
# latency synchronous mirroring adds to a writer (bench/mirror-latency).
bench_scripts += bench/mirror.sh
EXTRA_PROGRAMS += bench/mirror-latency
bench_mirror_latency_LDADD = storage/libstorage.la vhd/libvhd.la util/libutil.la $(PTHREAD_LIBS)
CLEANFILES += bench/mirror-latency
# bench/migrate.sh: live migration, smove (both dirty logs) against QEMU on
# the same veth link (unshaped, and tbf at 1 gbit), 1 and 4 GiB guests;
# bench/migrate.py runs each migration and prints the table.
bench_scripts += bench/migrate.sh
EXTRA_DIST += bench/migrate.py
# bench/qemu-tcg-precopy.sh: plain QEMU live pre-copy under TCG, each move
# judged by the Linux test guest's own check (docs/design.md, "QEMU under TCG").
bench_scripts += bench/qemu-tcg-precopy.sh
EXTRA_DIST += bench/qemu-tcg-precopy.py
# bench/rebalance.sh: a drain of five VMs of 1 GiB as a plan with 1, 2 and 4
# moves at once, against the sum of the same moves one by one.
bench_scripts += bench/rebalance.sh
# bench/qemu-migrate.sh: issue 10, the Linux test guest moved with its disk by
# smove's QEMU runtime (VHDX) and by plain QEMU as libvirt's --copy-storage-all
# drives it (NBD, blockdev-mirror, migrate), interleaved in one run;
# bench/qemu-migrate.py does each move and prints the table.
bench_scripts += bench/qemu-migrate.sh
EXTRA_DIST += bench/qemu-migrate.py
