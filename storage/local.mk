# storage/: byte-I/O backends (NBD, HTTP), the mirror engine and the nbdkit
# plugin. Depends on vhd/.
noinst_LTLIBRARIES += storage/libstorage.la
storage_libstorage_la_SOURCES = \
	storage/storage.h storage/nbd.h storage/http.h \
	storage/open.c storage/nbd.c storage/http.c storage/http-cache.c
storage_libstorage_la_CFLAGS = $(AM_CFLAGS) $(LIBNBD_CFLAGS) $(LIBCURL_CFLAGS)
storage_libstorage_la_LIBADD = $(LIBNBD_LIBS) $(LIBCURL_LIBS) $(PTHREAD_LIBS)
