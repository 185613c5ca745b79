/* proto/json-write.c: builds JSON text in memory, for --json output and the
 * control socket's replies. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

void proto_json_init(struct proto_json *j)
{
	memset(j, 0, sizeof *j);
}

void proto_json_release(struct proto_json *j)
{
	free(j->s);
	proto_json_init(j);
}

void proto_json_reset(struct proto_json *j)
{
	j->len = 0;
	j->oom = false;
	j->depth = 0;
	j->need_comma = 0;
	if (j->s)
		j->s[0] = '\0';
}

static void append(struct proto_json *j, const char *s, size_t n)
{
	if (j->oom)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		char *p;

		while (cap < j->len + n + 1)
			cap *= 2;
		p = realloc(j->s, cap);
		if (!p) {
			j->oom = true;
			return;
		}
		j->s = p;
		j->cap = cap;
	}
	memcpy(j->s + j->len, s, n);
	j->len += n;
	j->s[j->len] = '\0';
}

static void appendf(struct proto_json *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void appendf(struct proto_json *j, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	append(j, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A value or key is about to be written in the current container. */
static void separate(struct proto_json *j)
{
	uint64_t bit = 1ull << (j->depth & 63);

	if (j->need_comma & bit)
		append(j, ",", 1);
	j->need_comma |= bit;
}

static void open_container(struct proto_json *j, char c)
{
	separate(j);
	append(j, &c, 1);
	j->depth++;
	j->need_comma &= ~(1ull << (j->depth & 63));
}

static void close_container(struct proto_json *j, char c)
{
	append(j, &c, 1);
	j->depth--;
}

void proto_json_obj_begin(struct proto_json *j)
{
	open_container(j, '{');
}

void proto_json_obj_end(struct proto_json *j)
{
	close_container(j, '}');
}

void proto_json_arr_begin(struct proto_json *j)
{
	open_container(j, '[');
}

void proto_json_arr_end(struct proto_json *j)
{
	close_container(j, ']');
}

static void quoted(struct proto_json *j, const char *s)
{
	append(j, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = {'\\', (char)*p};
			append(j, esc, 2);
		} else if (*p == '\n') {
			append(j, "\\n", 2);
		} else if (*p == '\t') {
			append(j, "\\t", 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			appendf(j, "\\u%04x", *p);
		} else {
			append(j, (const char *)p, 1);
		}
	}
	append(j, "\"", 1);
}

void proto_json_key(struct proto_json *j, const char *key)
{
	separate(j);
	quoted(j, key);
	append(j, ":", 1);
	/* The value that follows must not add a comma of its own. */
	j->need_comma &= ~(1ull << (j->depth & 63));
}

void proto_json_str(struct proto_json *j, const char *s)
{
	separate(j);
	quoted(j, s ? s : "");
}

void proto_json_int(struct proto_json *j, int64_t v)
{
	separate(j);
	appendf(j, "%" PRId64, v);
}

void proto_json_uint(struct proto_json *j, uint64_t v)
{
	separate(j);
	appendf(j, "%" PRIu64, v);
}

void proto_json_double(struct proto_json *j, double v)
{
	separate(j);
	if (isfinite(v))
		appendf(j, "%.6g", v);
	else
		append(j, "null", 4);
}

void proto_json_bool(struct proto_json *j, bool v)
{
	separate(j);
	append(j, v ? "true" : "false", v ? 4 : 5);
}

void proto_json_null(struct proto_json *j)
{
	separate(j);
	append(j, "null", 4);
}

void proto_json_kv_str(struct proto_json *j, const char *key, const char *v)
{
	proto_json_key(j, key);
	proto_json_str(j, v);
}

void proto_json_kv_int(struct proto_json *j, const char *key, int64_t v)
{
	proto_json_key(j, key);
	proto_json_int(j, v);
}

void proto_json_kv_uint(struct proto_json *j, const char *key, uint64_t v)
{
	proto_json_key(j, key);
	proto_json_uint(j, v);
}

void proto_json_kv_double(struct proto_json *j, const char *key, double v)
{
	proto_json_key(j, key);
	proto_json_double(j, v);
}

void proto_json_kv_bool(struct proto_json *j, const char *key, bool v)
{
	proto_json_key(j, key);
	proto_json_bool(j, v);
}

const char *proto_json_finish(struct proto_json *j)
{
	if (j->oom)
		return NULL;
	if (!j->s)
		append(j, "", 0);
	return j->oom ? NULL : j->s;
}
