# proto/: wire formats (JSON lines, the migration protocol). Depends on libc,
# zlib and gnutls only.
noinst_LTLIBRARIES += proto/libproto.la
proto_libproto_la_SOURCES = \
	proto/proto.h \
	proto/json-write.c proto/json-parse.c
proto_libproto_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS) $(GNUTLS_CFLAGS)
proto_libproto_la_LIBADD = $(ZLIB_LIBS) $(GNUTLS_LIBS) -lm
