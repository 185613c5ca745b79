# util/: the helpers several folders share (CRC-32C, byte order, clock, hex,
# durable files). Depends on libc only; every other folder may use it.
noinst_LTLIBRARIES += util/libutil.la
util_libutil_la_SOURCES = util/util.h util/endian.h \
	util/crc32c.c util/clock.c util/hex.c util/file.c util/spawn.c
