# proto/: wire formats (JSON lines, the migration protocol). Depends on libc,
# util/, zlib and gnutls only.
noinst_LTLIBRARIES += proto/libproto.la
proto_libproto_la_SOURCES = \
	proto/proto.h proto/internal.h proto/wire.h proto/compress.h \
	proto/json-write.c proto/json-parse.c \
	proto/wire.c proto/frame.c proto/messages.c proto/state.c proto/session.c \
	proto/pages.c proto/pages-recv.c proto/stream.c proto/compress.c proto/rounds.c \
	proto/conn.c proto/net.c proto/tls.c proto/psk.c
proto_libproto_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS) $(GNUTLS_CFLAGS)
proto_libproto_la_LIBADD = util/libutil.la $(ZLIB_LIBS) $(GNUTLS_LIBS) $(PTHREAD_LIBS) -lm
