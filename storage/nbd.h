/* storage/nbd.h: what the NBD backend and the mirror engine share: connecting
 * a libnbd handle with smove's TLS settings, and turning libnbd's errors into
 * smove's messages. Private to storage/. */
#ifndef SMOVE_STORAGE_NBD_H
#define SMOVE_STORAGE_NBD_H

#include <libnbd.h>

#include "storage/storage.h"

/* Opens a connection to uri. tls (may be NULL) overrides what the URI says;
 * any TLS setting makes TLS required. Asks for the base:allocation context
 * when want_extents. On failure *out is NULL and err names the URI. */
int storage_nbd_connect(const char *uri, const struct storage_tls *tls, bool want_extents,
			unsigned timeout_ms, struct nbd_handle **out, char *err);

/* A connected handle as byte I/O (nbd.c's backend), which takes it over
 * (closing it even on failure). */
int storage_nbd_io_wrap(struct nbd_handle *h, const char *name, bool readonly, struct vhd_io **out,
			char *err);

/* Fills err with "SUBJECT: WHAT: libnbd's last error" and returns its -errno. */
int storage_nbd_error(char *err, const char *subject, const char *what);

/* The largest request the server accepts (its maximum block size, at most
 * 32 MiB, which every server takes). */
uint32_t storage_nbd_max_request(struct nbd_handle *h);

#endif
