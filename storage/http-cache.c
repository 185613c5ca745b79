/* storage/http-cache.c: a bounded LRU cache of aligned blocks of a remote
 * file, so that the HTTP backend fetches format metadata once. A hash table
 * finds a block; a doubly linked list orders blocks by last use. Fetching is
 * the caller's business (http.c); this file only stores and evicts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/http.h"

struct http_cache_entry {
	uint64_t idx;
	size_t len;
	struct http_cache_entry *hnext;	      /* hash chain */
	struct http_cache_entry *prev, *next; /* LRU list */
	uint8_t data[];
};

int http_cache_init(struct http_cache *c, uint32_t block, uint64_t capacity)
{
	memset(c, 0, sizeof *c);
	c->block = block;
	c->max_blocks = (size_t)(capacity / block);
	c->nbuckets = c->max_blocks * 2 + 1;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	if (!c->buckets)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

void http_cache_release(struct http_cache *c)
{
	struct http_cache_entry *e = c->lru_head;

	while (e) {
		struct http_cache_entry *next = e->next;

		free(e);
		e = next;
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof *c);
}

static struct http_cache_entry **bucket(struct http_cache *c, uint64_t idx)
{
	return &c->buckets[(idx * 0x9e3779b97f4a7c15ull >> 17) % c->nbuckets];
}

static struct http_cache_entry *find(struct http_cache *c, uint64_t idx)
{
	for (struct http_cache_entry *e = *bucket(c, idx); e; e = e->hnext)
		if (e->idx == idx)
			return e;
	return NULL;
}

static void lru_unlink(struct http_cache *c, struct http_cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct http_cache *c, struct http_cache_entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static void evict(struct http_cache *c, struct http_cache_entry *e)
{
	struct http_cache_entry **p = bucket(c, e->idx);

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	lru_unlink(c, e);
	c->n--;
	free(e);
}

bool http_cache_get(struct http_cache *c, uint64_t idx, void *dst, size_t skip, size_t len)
{
	struct http_cache_entry *e;
	bool hit = false;

	pthread_mutex_lock(&c->lock);
	e = c->max_blocks ? find(c, idx) : NULL;
	if (e && skip <= e->len && len <= e->len - skip) {
		memcpy(dst, e->data + skip, len);
		lru_unlink(c, e);
		lru_push_front(c, e);
		hit = true;
	}
	if (hit)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void http_cache_put(struct http_cache *c, uint64_t idx, const void *data, size_t len)
{
	struct http_cache_entry *e;

	if (!c->max_blocks || len > c->block)
		return;
	/* Allocated outside the lock; a failure only means the block is not kept. */
	e = malloc(sizeof *e + len);
	if (!e)
		return;
	e->idx = idx;
	e->len = len;
	memcpy(e->data, data, len);
	pthread_mutex_lock(&c->lock);
	struct http_cache_entry *old = find(c, idx);
	if (old) /* another thread fetched it too: keep the newer copy */
		evict(c, old);
	while (c->n >= c->max_blocks)
		evict(c, c->lru_tail);
	struct http_cache_entry **b = bucket(c, idx);
	e->hnext = *b;
	*b = e;
	lru_push_front(c, e);
	c->n++;
	pthread_mutex_unlock(&c->lock);
}
