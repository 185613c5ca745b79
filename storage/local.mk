# storage/: byte-I/O backends (NBD, HTTP), the mirror engine and the nbdkit
# plugin. Depends on vhd/.
noinst_LTLIBRARIES += storage/libstorage.la
storage_libstorage_la_SOURCES = \
	storage/storage.h storage/nbd.h storage/http.h \
	storage/blk-vhd.c storage/open.c storage/nbd.c storage/http.c storage/http-cache.c \
	storage/mirror.h storage/mirror.c storage/mirror-track.c storage/mirror-conn.c \
	storage/mirror-write.c storage/mirror-verify.c
# The in-process NBD server (the QEMU runtime serves its disks with it).
storage_libstorage_la_SOURCES += storage/nbd-server.h storage/nbd-proto.h \
	storage/nbd-server.c storage/nbd-server-cmd.c
storage_libstorage_la_CFLAGS = $(AM_CFLAGS) $(LIBNBD_CFLAGS) $(LIBCURL_CFLAGS)
storage_libstorage_la_LIBADD = $(LIBNBD_LIBS) $(LIBCURL_LIBS) $(PTHREAD_LIBS)

# The nbdkit plugin: `nbdkit smove file=DISK.vhdx`. From the build tree:
# nbdkit $(abs_top_builddir)/storage/nbdkit/.libs/nbdkit-smove-plugin.so ...
nbdkitplugin_LTLIBRARIES += storage/nbdkit/nbdkit-smove-plugin.la
storage_nbdkit_nbdkit_smove_plugin_la_SOURCES = storage/nbdkit/smove-plugin.c
storage_nbdkit_nbdkit_smove_plugin_la_CFLAGS = $(AM_CFLAGS) $(NBDKIT_CFLAGS)
storage_nbdkit_nbdkit_smove_plugin_la_LIBADD = storage/libstorage.la vhd/libvhd.la
storage_nbdkit_nbdkit_smove_plugin_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-export-symbols-regex '^plugin_init$$'
