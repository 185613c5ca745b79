/* storage/http.h: the block cache of the HTTP backend (http-cache.c). Private
 * to storage/.
 *
 * The cache holds aligned blocks of the remote file (the last one may be
 * short), at most `max_blocks` of them, and evicts the least recently used.
 * All functions are thread-safe; data is copied in and out under the lock, so
 * a caller never holds a pointer into the cache. */
#ifndef SMOVE_STORAGE_HTTP_H
#define SMOVE_STORAGE_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_cache_entry;

struct http_cache {
	pthread_mutex_t lock;
	uint32_t block;	   /* bytes per block, a power of two */
	size_t max_blocks; /* 0: the cache keeps nothing */
	size_t n;
	size_t nbuckets;
	struct http_cache_entry **buckets;
	struct http_cache_entry *lru_head, *lru_tail; /* head = most recent */
	uint64_t hits, misses;
};

/* capacity in bytes (rounded down to whole blocks). -ENOMEM on failure. */
int http_cache_init(struct http_cache *c, uint32_t block, uint64_t capacity);
void http_cache_release(struct http_cache *c);

/* Copies len bytes at offset `skip` of block idx into dst, if the block is
 * cached and holds them; true on a hit. */
bool http_cache_get(struct http_cache *c, uint64_t idx, void *dst, size_t skip, size_t len);

/* Stores a copy of block idx (len bytes; less than a block only at the end of
 * the file), evicting the least recently used block when full. */
void http_cache_put(struct http_cache *c, uint64_t idx, const void *data, size_t len);

#endif
