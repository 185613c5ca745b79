/* proto/json-parse.c: a small, strict JSON parser for control-socket requests
 * and configuration files. Input is untrusted: text size and nesting depth are
 * bounded, strings must be valid (no raw control characters, no NUL), and any
 * error names the position. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int proto_error(char *err, int errnum, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (errnum <= 0)
		errnum = EIO;
	errno = errnum;
	va_start(ap, fmt);
	vsnprintf(err, PROTO_ERR_LEN, fmt, ap);
	va_end(ap);
	errno = saved;
	return -errnum;
}

struct parser {
	const char *p, *start, *end;
	char *err;
};

static int fail(struct parser *ps, const char *what)
{
	return proto_error(ps->err, EINVAL, "invalid JSON at byte %zu: %s",
			   (size_t)(ps->p - ps->start), what);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static int hex4(struct parser *ps, unsigned *out)
{
	unsigned v = 0;

	if (ps->end - ps->p < 4)
		return fail(ps, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(ps, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int escape(struct parser *ps, char *o, size_t *n)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned cp, lo;
	int r;

	if (ps->p >= ps->end)
		return fail(ps, "unterminated escape");
	const char *hit = strchr(from, *ps->p);
	if (hit && *ps->p) {
		o[(*n)++] = to[hit - from];
		ps->p++;
		return 0;
	}
	if (*ps->p++ != 'u')
		return fail(ps, "unknown escape");
	if ((r = hex4(ps, &cp)) < 0)
		return r;
	if (cp >= 0xd800 && cp < 0xdc00) {
		if (!literal(ps, "\\u") || (r = hex4(ps, &lo)) < 0 || lo < 0xdc00 || lo > 0xdfff)
			return fail(ps, "unpaired surrogate");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	} else if (cp >= 0xdc00 && cp < 0xe000) {
		return fail(ps, "unpaired surrogate");
	}
	if (cp == 0)
		return fail(ps, "NUL in string");
	*n += put_utf8(o + *n, cp);
	return 0;
}

static int string(struct parser *ps, char **out)
{
	const char *q = ++ps->p; /* past the quote */
	size_t n = 0;
	char *s;
	int r;

	/* Decoded text is never longer than its source. */
	while (q < ps->end && *q != '"')
		q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
	if (q >= ps->end)
		return fail(ps, "unterminated string");
	s = malloc((size_t)(q - ps->p) + 1);
	if (!s)
		return proto_error(ps->err, ENOMEM, "out of memory");
	while (*ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;

		if (c < 0x20) {
			free(s);
			return fail(ps, "control character in string");
		}
		if (c == '\\') {
			ps->p++;
			if ((r = escape(ps, s, &n)) < 0) {
				free(s);
				return r;
			}
			continue;
		}
		s[n++] = (char)c;
		ps->p++;
	}
	ps->p++;
	s[n] = '\0';
	*out = s;
	return 0;
}

static int number(struct parser *ps, struct proto_json_value *v)
{
	char buf[64], *endp;
	const char *q = ps->p;
	bool integral = true;

	if (q < ps->end && *q == '-')
		q++;
	while (q < ps->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' ||
			       *q == '+' || *q == '-')) {
		if (*q == '.' || *q == 'e' || *q == 'E')
			integral = false;
		q++;
	}
	if (q == ps->p || (size_t)(q - ps->p) >= sizeof buf)
		return fail(ps, "bad number");
	memcpy(buf, ps->p, (size_t)(q - ps->p));
	buf[q - ps->p] = '\0';
	if ((buf[0] == '0' && buf[1] >= '0' && buf[1] <= '9') ||
	    (buf[0] == '-' && (buf[1] < '0' || buf[1] > '9')))
		return fail(ps, "bad number");
	errno = 0;
	v->num = strtod(buf, &endp);
	if (*endp)
		return fail(ps, "bad number");
	if (integral) {
		errno = 0;
		long long i = strtoll(buf, &endp, 10);
		v->is_int = errno == 0 && !*endp;
		v->i = i;
	}
	v->type = PROTO_JSON_NUMBER;
	ps->p = q;
	return 0;
}

static int value(struct parser *ps, int depth, struct proto_json_value **out);

static int add_item(struct proto_json_value *c, char *key, struct proto_json_value *item)
{
	if ((c->n & (c->n - 1)) == 0) { /* grow at powers of two */
		size_t cap = c->n ? c->n * 2 : 4;
		struct proto_json_value **items = realloc(c->items, cap * sizeof *items);

		if (!items)
			return -ENOMEM;
		c->items = items;
		if (c->type == PROTO_JSON_OBJECT) {
			char **keys = realloc(c->keys, cap * sizeof *keys);

			if (!keys)
				return -ENOMEM;
			c->keys = keys;
		}
	}
	if (key)
		c->keys[c->n] = key;
	c->items[c->n++] = item;
	return 0;
}

static int container(struct parser *ps, int depth, struct proto_json_value *c)
{
	bool obj = *ps->p == '{';
	char close = obj ? '}' : ']';
	int r;

	c->type = obj ? PROTO_JSON_OBJECT : PROTO_JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		struct proto_json_value *item;
		char *key = NULL;

		skip_ws(ps);
		if (obj) {
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "expected a key");
			if ((r = string(ps, &key)) < 0)
				return r;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				return fail(ps, "expected ':'");
			}
			ps->p++;
		}
		if ((r = value(ps, depth + 1, &item)) < 0) {
			free(key);
			return r;
		}
		if (add_item(c, key, item) < 0) {
			free(key);
			proto_json_free(item);
			return proto_error(ps->err, ENOMEM, "out of memory");
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		return fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int value(struct parser *ps, int depth, struct proto_json_value **out)
{
	struct proto_json_value *v;
	int r = 0;

	if (depth > PROTO_JSON_MAX_DEPTH)
		return fail(ps, "nested too deeply");
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of text");
	v = calloc(1, sizeof *v);
	if (!v)
		return proto_error(ps->err, ENOMEM, "out of memory");
	switch (*ps->p) {
	case '{':
	case '[':
		r = container(ps, depth, v);
		break;
	case '"':
		v->type = PROTO_JSON_STRING;
		r = string(ps, &v->str);
		break;
	default:
		if (literal(ps, "true")) {
			v->type = PROTO_JSON_BOOL;
			v->b = true;
		} else if (literal(ps, "false")) {
			v->type = PROTO_JSON_BOOL;
		} else if (literal(ps, "null")) {
			v->type = PROTO_JSON_NULL;
		} else {
			r = number(ps, v);
		}
	}
	if (r < 0) {
		proto_json_free(v);
		return r;
	}
	*out = v;
	return 0;
}

int proto_json_parse(const char *text, size_t len, struct proto_json_value **out, char *err)
{
	struct parser ps = {text, text, text + len, err};
	int r;

	*out = NULL;
	if (len > PROTO_JSON_MAX_TEXT)
		return proto_error(err, E2BIG, "JSON text of %zu bytes is over the limit of %u",
				   len, PROTO_JSON_MAX_TEXT);
	if (memchr(text, '\0', len))
		return proto_error(err, EINVAL, "invalid JSON: NUL byte in text");
	r = value(&ps, 0, out);
	if (r < 0)
		return r;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		proto_json_free(*out);
		*out = NULL;
		return fail(&ps, "trailing text after the value");
	}
	return 0;
}

void proto_json_free(struct proto_json_value *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		proto_json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

const struct proto_json_value *proto_json_get(const struct proto_json_value *v, const char *key)
{
	if (!v || v->type != PROTO_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->keys[i], key) == 0)
			return v->items[i];
	return NULL;
}

static int member(const struct proto_json_value *v, const char *key, enum proto_json_type type,
		  const struct proto_json_value **out, char *err)
{
	static const char *const names[] = {"null",	"a boolean", "a number",
					    "a string", "an array",  "an object"};
	const struct proto_json_value *m = proto_json_get(v, key);

	if (!m)
		return -ENOENT;
	if (m->type != type)
		return proto_error(err, EINVAL, "\"%s\" must be %s", key, names[type]);
	*out = m;
	return 0;
}

int proto_json_get_str(const struct proto_json_value *v, const char *key, const char **out,
		       char *err)
{
	const struct proto_json_value *m = NULL;
	int r = member(v, key, PROTO_JSON_STRING, &m, err);

	if (r == 0)
		*out = m->str;
	return r;
}

int proto_json_get_u64(const struct proto_json_value *v, const char *key, uint64_t *out, char *err)
{
	const struct proto_json_value *m = NULL;
	int r = member(v, key, PROTO_JSON_NUMBER, &m, err);

	if (r < 0)
		return r;
	if (!m->is_int || m->i < 0)
		return proto_error(err, EINVAL, "\"%s\" must be a non-negative integer", key);
	*out = (uint64_t)m->i;
	return 0;
}

int proto_json_get_bool(const struct proto_json_value *v, const char *key, bool *out, char *err)
{
	const struct proto_json_value *m = NULL;
	int r = member(v, key, PROTO_JSON_BOOL, &m, err);

	if (r == 0)
		*out = m->b;
	return r;
}
