/* storage/http.c: a file on a web server as read-only vhd/ byte I/O, through
 * libcurl. Each read becomes ranged GETs of whole cache blocks (http-cache.c
 * keeps them), on easy handles taken from a small pool so that connections
 * are reused. Transient failures (5xx, 429, timeouts, resets) are retried
 * with exponential back-off; every answer is checked: the status must be 206,
 * Content-Range must name exactly the bytes asked for, the body must be
 * exactly that long. A server that ignores Range is refused at open. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "storage/http.h"
#include "storage/storage.h"

#define CACHE_BLOCK	(64u << 10) /* small: VHD reads a 512-byte bitmap per block */
#define CACHE_DEFAULT	(16ull << 20)
#define RUN_MAX_BLOCKS	256 /* at most 16 MiB per GET */
#define POOL_MAX	8
#define RETRIES_DEFAULT 5
#define BACKOFF_FIRST	0.1 /* seconds; doubled each retry, at most BACKOFF_MAX */
#define BACKOFF_MAX	2.0

struct pooled {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
};

struct http_io {
	struct vhd_io io;
	char *ca_file;
	uint64_t size;
	unsigned retries;
	pthread_mutex_t pool_lock;
	struct pooled *pool[POOL_MAX];
	int npool;
	struct http_cache cache;
};

/* One GET of [off, off+len) and what came back. */
struct fetch {
	const char *name;
	uint8_t *buf;
	uint64_t off, len, got;
	uint64_t total;	 /* the file size the answer states (UINT64_MAX: unknown) */
	long status;	 /* of the last response's status line */
	bool have_range; /* a Content-Range header came with it */
	uint64_t first, last;
	bool total_star; /* the total was "*" */
	int r;		 /* an error found by a callback: not retried */
	char *err;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct http_io *hio(struct vhd_io *io)
{
	return (struct http_io *)io;
}

/* Content-Range: bytes FIRST-LAST/TOTAL (or bytes * /TOTAL on a 416). */
static void parse_content_range(struct fetch *f, const char *v)
{
	unsigned long long a, b, t;
	int n = 0;

	while (*v == ' ')
		v++;
	if (sscanf(v, "bytes %llu-%llu/%llu%n", &a, &b, &t, &n) == 3 && n > 0) {
		f->have_range = true;
		f->first = a;
		f->last = b;
		f->total = t;
	} else if (sscanf(v, "bytes %llu-%llu/*%n", &a, &b, &n) == 2 && n > 0) {
		f->have_range = true;
		f->first = a;
		f->last = b;
		f->total_star = true;
	} else if (sscanf(v, "bytes */%llu", &t) == 1) {
		f->total = t;
	}
}

static size_t on_header(char *line, size_t size, size_t n, void *opaque)
{
	struct fetch *f = opaque;
	size_t len = size * n;
	char h[256];

	if (len >= sizeof h)
		return len; /* no header we read is that long */
	memcpy(h, line, len);
	h[len] = '\0';
	if (strncmp(h, "HTTP/", 5) == 0) { /* a new response (after a redirect, 100) */
		const char *sp = strchr(h, ' ');

		f->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		f->have_range = f->total_star = false;
		f->got = 0;
	} else if (strncasecmp(h, "Content-Range:", 14) == 0) {
		parse_content_range(f, h + 14);
	}
	return len;
}

static int check_range_answer(struct fetch *f)
{
	uint64_t want_last = f->off + f->len - 1;

	if (f->status == 200)
		return vhd_error(f->err, ENOTSUP,
				 "%s: server does not honour range requests (it answered 200 "
				 "with the whole file to a request for bytes %" PRIu64 "-%" PRIu64
				 ")",
				 f->name, f->off, want_last);
	if (!f->have_range || f->total_star)
		return vhd_error(f->err, EPROTO,
				 "%s: server answered 206 without a usable Content-Range (bytes "
				 "%" PRIu64 "-%" PRIu64 " asked for)",
				 f->name, f->off, want_last);
	if (f->first != f->off || f->last != want_last)
		return vhd_error(f->err, EPROTO,
				 "%s: server sent bytes %" PRIu64 "-%" PRIu64 " when bytes %" PRIu64
				 "-%" PRIu64 " were asked for",
				 f->name, f->first, f->last, f->off, want_last);
	return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
	struct fetch *f = opaque;
	size_t len = size * n;

	if (f->status != 206 && f->status != 200)
		return len; /* an error page: read and dropped, the status decides */
	if (f->got == 0 && (f->r = check_range_answer(f)) < 0)
		return 0; /* abort the transfer */
	if (len > f->len - f->got) {
		f->r = vhd_error(f->err, EPROTO,
				 "%s: server sent more than the %" PRIu64 " bytes asked for at "
				 "offset %" PRIu64,
				 f->name, f->len, f->off);
		return 0;
	}
	memcpy(f->buf + f->got, data, len);
	f->got += len;
	return len;
}

static struct pooled *get_handle(struct http_io *h, char *err)
{
	struct pooled *p = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->npool > 0)
		p = h->pool[--h->npool];
	pthread_mutex_unlock(&h->pool_lock);
	if (p)
		return p;
	p = calloc(1, sizeof *p);
	if (!p || !(p->curl = curl_easy_init())) {
		free(p);
		vhd_error(err, ENOMEM, "%s: cannot create a libcurl handle", h->io.name);
		return NULL;
	}
	CURL *c = p->curl;
	curl_easy_setopt(c, CURLOPT_URL, h->io.name);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A transfer that stalls (under 1 byte/s for 30 s) is a timeout: retried. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "smove/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	return p;
}

static void put_handle(struct http_io *h, struct pooled *p)
{
	pthread_mutex_lock(&h->pool_lock);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (p) {
		curl_easy_cleanup(p->curl);
		free(p);
	}
}

static bool transient_curl(CURLcode res)
{
	switch (res) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool transient_status(long status)
{
	return status >= 500 || status == 429 || status == 408;
}

/* One attempt. Returns 0, a negative errno (final), or 1 (transient: the
 * message in err says what happened, to report if no retry succeeds). */
static int fetch_once(struct http_io *h, struct fetch *f)
{
	struct pooled *p = get_handle(h, f->err);
	char range[64];
	CURLcode res;

	if (!p)
		return -ENOMEM;
	snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, f->off, f->off + f->len - 1);
	f->got = 0;
	f->status = 0;
	f->r = 0;
	f->total = UINT64_MAX;
	f->have_range = f->total_star = false;
	p->errbuf[0] = '\0';
	curl_easy_setopt(p->curl, CURLOPT_RANGE, range);
	curl_easy_setopt(p->curl, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, f);
	res = curl_easy_perform(p->curl);
	if (f->r < 0) {
		/* A protocol error: this connection's state is unknown, drop it. */
		curl_easy_cleanup(p->curl);
		free(p);
		return f->r;
	}
	if (res != CURLE_OK) {
		int t = transient_curl(res);

		vhd_error(f->err, EIO, "%s: %s", h->io.name,
			  p->errbuf[0] ? p->errbuf : curl_easy_strerror(res));
		curl_easy_cleanup(p->curl);
		free(p);
		return t ? 1 : -EIO;
	}
	put_handle(h, p);
	if (f->status == 206 && f->got == f->len)
		return 0;
	if (f->status == 206)
		return vhd_error(f->err, EPROTO,
				 "%s: server sent %" PRIu64 " of the %" PRIu64
				 " bytes asked for at offset %" PRIu64,
				 h->io.name, f->got, f->len, f->off);
	if (f->status == 200) /* a 200 with an empty body never reached on_body */
		return check_range_answer(f);
	int e = f->status == 404 ? ENOENT : f->status == 403 ? EACCES : EIO;
	vhd_error(f->err, e, "%s: server answered HTTP %ld to a request for bytes %s", h->io.name,
		  f->status, range);
	return transient_status(f->status) ? 1 : -e;
}

static void sleep_seconds(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A GET with retries. */
static int fetch(struct http_io *h, struct fetch *f)
{
	double wait = BACKOFF_FIRST;
	int r;

	for (unsigned attempt = 0;; attempt++) {
		r = fetch_once(h, f);
		if (r <= 0)
			return r;
		if (attempt >= h->retries)
			break;
		sleep_seconds(wait);
		wait = wait * 2 > BACKOFF_MAX ? BACKOFF_MAX : wait * 2;
	}
	size_t l = strlen(f->err);
	snprintf(f->err + l, VHD_ERR_LEN - l, " (gave up after %u attempts)", h->retries + 1);
	return -EIO;
}

static int fetch_range(struct http_io *h, void *buf, uint64_t len, uint64_t off, char *err)
{
	struct fetch f = {.name = h->io.name, .buf = buf, .off = off, .len = len, .err = err};
	int r = fetch(h, &f);

	if (r == 0 && f.total != h->size)
		return vhd_error(err, ESTALE,
				 "%s: the file changed on the server (its size is now %" PRIu64
				 ", was %" PRIu64 ")",
				 h->io.name, f.total, h->size);
	return r;
}

static int http_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off, char *err)
{
	struct http_io *h = hio(io);
	uint64_t B = h->cache.block, end = off + len, pos = off;
	/* A large read (a data copy) would only flush the metadata out of the
	 * cache: its whole blocks are not kept, only its partial edges. */
	bool keep_whole = len <= h->cache.max_blocks * B / 4;

	if (off > h->size || len > h->size - off)
		return vhd_error(err, EIO, "%s: read at offset 0x%llx is past the end of the file",
				 io->name, (unsigned long long)off);
	while (pos < end) {
		uint64_t idx = pos / B, skip = pos % B;
		uint64_t n = B - skip < end - pos ? B - skip : end - pos;

		if (http_cache_get(&h->cache, idx, (uint8_t *)buf + (pos - off), skip, n)) {
			pos += n;
			continue;
		}
		/* Fetch the missing block and those after it that the read covers. */
		uint64_t last = (end - 1) / B;
		if (last - idx >= RUN_MAX_BLOCKS)
			last = idx + RUN_MAX_BLOCKS - 1;
		uint64_t rstart = idx * B,
			 rend = (last + 1) * B < h->size ? (last + 1) * B : h->size;
		uint8_t *tmp = malloc(rend - rstart);
		int r;

		if (!tmp)
			return vhd_error(err, ENOMEM, "%s: out of memory", io->name);
		r = fetch_range(h, tmp, rend - rstart, rstart, err);
		if (r < 0) {
			free(tmp);
			return r;
		}
		for (uint64_t b = idx; b <= last; b++) {
			uint64_t bs = b * B, be = bs + B < rend ? bs + B : rend;

			if (keep_whole || bs < off || be > end)
				http_cache_put(&h->cache, b, tmp + (bs - rstart), be - bs);
		}
		uint64_t upto = rend < end ? rend : end;
		memcpy((uint8_t *)buf + (pos - off), tmp + (pos - rstart), upto - pos);
		free(tmp);
		pos = upto;
	}
	return 0;
}

static int http_pwrite(struct vhd_io *io, const void *buf, size_t len, uint64_t off, char *err)
{
	return vhd_error(err, EROFS, "%s: a web server's file is read-only", io->name);
}

static int http_flush(struct vhd_io *io, char *err)
{
	return 0;
}

static int http_size(struct vhd_io *io, uint64_t *size, char *err)
{
	*size = hio(io)->size;
	return 0;
}

static void http_close(struct vhd_io *io)
{
	struct http_io *h = hio(io);

	for (int i = 0; i < h->npool; i++) {
		curl_easy_cleanup(h->pool[i]->curl);
		free(h->pool[i]);
	}
	pthread_mutex_destroy(&h->pool_lock);
	http_cache_release(&h->cache);
	free(h->ca_file);
	free(h);
}

static const struct vhd_io_ops http_ops = {
    .pread = http_pread,
    .pwrite = http_pwrite,
    .flush = http_flush,
    .size = http_size,
    .close = http_close,
};

/* The size, from the answer to a GET of byte 0 (which also proves that the
 * server honours ranges). An empty file answers 416 with "bytes * /0". */
static int probe_size(struct http_io *h, char *err)
{
	uint8_t byte;
	struct fetch f = {.name = h->io.name, .buf = &byte, .len = 1, .err = err};
	int r = fetch(h, &f);

	if (r < 0 && f.status == 416 && f.total == 0) {
		h->size = 0;
		return 0;
	}
	if (r < 0)
		return r;
	if (f.total == UINT64_MAX || f.total == 0)
		return vhd_error(err, EPROTO, "%s: server did not state the file's size",
				 h->io.name);
	h->size = f.total;
	return 0;
}

int storage_io_open_http(const char *url, const struct storage_opts *o, struct vhd_io **out,
			 char *err)
{
	uint64_t capacity = o && o->http_cache ? o->http_cache : CACHE_DEFAULT;
	struct http_io *h = calloc(1, sizeof *h);
	int r;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (!h || !(h->io.name = strdup(url)) ||
	    (o && o->ca_file && !(h->ca_file = strdup(o->ca_file))) ||
	    http_cache_init(&h->cache, CACHE_BLOCK, capacity) < 0) {
		if (h) {
			free(h->io.name);
			free(h->ca_file);
		}
		free(h);
		return vhd_error(err, ENOMEM, "%s: out of memory", url);
	}
	pthread_mutex_init(&h->pool_lock, NULL);
	h->io.ops = &http_ops;
	h->io.readonly = true;
	h->retries = o && o->http_retries ? o->http_retries : RETRIES_DEFAULT;
	h->size = UINT64_MAX;
	r = probe_size(h, err);
	if (r < 0) {
		vhd_io_close(&h->io);
		return r;
	}
	*out = &h->io;
	return 0;
}
