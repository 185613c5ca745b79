# qemu/: QEMU as smove's second VM runtime (qemu/qemu.h). Depends on vhd/,
# storage/, proto/ and util/.
noinst_LTLIBRARIES += qemu/libqemu.la
qemu_libqemu_la_SOURCES = qemu/qemu.h qemu/internal.h \
	qemu/util.c qemu/qmp.c qemu/config.c qemu/config-json.c qemu/cmdline.c \
	qemu/process.c qemu/console.c qemu/disks.c qemu/vm.c qemu/migrate.c qemu/host.c
qemu_libqemu_la_LIBADD = $(PTHREAD_LIBS)
# What links libqemu needs besides it.
qemu_libs = qemu/libqemu.la storage/libstorage.la vhd/libvhd.la \
	proto/libproto.la util/libutil.la $(ZLIB_LIBS) $(PTHREAD_LIBS)
