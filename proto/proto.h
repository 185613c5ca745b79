/* proto/proto.h: smove's wire formats, the one public header of proto/.
 *
 * proto/ depends on libc, zlib and gnutls only. It holds:
 *   - JSON: a writer for --json output and the control socket's replies, and a
 *     parser for control-socket requests and configuration files (untrusted
 *     input: depth and size are bounded, every error is reported, never trusted);
 *   - the migration protocol (framing, messages, versions, TLS, compression),
 *     documented in docs/protocol.md.
 *
 * Conventions: functions return 0 or a negative errno and, on failure, write a
 * sentence into the caller's buffer `err` of PROTO_ERR_LEN bytes.
 */
#ifndef SMOVE_PROTO_H
#define SMOVE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_ERR_LEN 512

int proto_error(char *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- JSON writer ------------------------------------------------------------- */

/* Builds one JSON text in memory. Commas and escaping are handled; a failed
 * allocation is remembered and reported by proto_json_finish. */
struct proto_json {
	char *s;
	size_t len, cap;
	bool oom;
	int depth;
	uint64_t need_comma; /* bit d: the container at depth d already has a member */
};

void proto_json_init(struct proto_json *j);
void proto_json_release(struct proto_json *j);
void proto_json_reset(struct proto_json *j);
void proto_json_obj_begin(struct proto_json *j);
void proto_json_obj_end(struct proto_json *j);
void proto_json_arr_begin(struct proto_json *j);
void proto_json_arr_end(struct proto_json *j);
void proto_json_key(struct proto_json *j, const char *key);
void proto_json_str(struct proto_json *j, const char *s);
void proto_json_int(struct proto_json *j, int64_t v);
void proto_json_uint(struct proto_json *j, uint64_t v);
void proto_json_double(struct proto_json *j, double v);
void proto_json_bool(struct proto_json *j, bool v);
void proto_json_null(struct proto_json *j);
/* key: value shorthands inside an object. */
void proto_json_kv_str(struct proto_json *j, const char *key, const char *v);
void proto_json_kv_int(struct proto_json *j, const char *key, int64_t v);
void proto_json_kv_uint(struct proto_json *j, const char *key, uint64_t v);
void proto_json_kv_double(struct proto_json *j, const char *key, double v);
void proto_json_kv_bool(struct proto_json *j, const char *key, bool v);
/* The finished text (NUL-terminated, owned by j), or NULL if memory ran out. */
const char *proto_json_finish(struct proto_json *j);

/* ---- JSON parser ------------------------------------------------------------- */

enum proto_json_type {
	PROTO_JSON_NULL,
	PROTO_JSON_BOOL,
	PROTO_JSON_NUMBER,
	PROTO_JSON_STRING,
	PROTO_JSON_ARRAY,
	PROTO_JSON_OBJECT,
};

struct proto_json_value {
	enum proto_json_type type;
	bool b;
	double num;
	bool is_int; /* the number was written as an integer that fits in int64 */
	int64_t i;
	char *str; /* STRING (NUL-terminated; embedded NULs are refused) */
	/* ARRAY and OBJECT: n items; keys[k] names items[k] in an OBJECT. */
	size_t n;
	struct proto_json_value **items;
	char **keys;
};

#define PROTO_JSON_MAX_DEPTH 32
#define PROTO_JSON_MAX_TEXT  (1u << 20)

/* Parses exactly one JSON value (surrounding white space allowed). */
int proto_json_parse(const char *text, size_t len, struct proto_json_value **out, char *err);
void proto_json_free(struct proto_json_value *v);
/* The member `key` of an object, or NULL (also when v is not an object). */
const struct proto_json_value *proto_json_get(const struct proto_json_value *v, const char *key);
/* Typed member access: -ENOENT when missing, -EINVAL (with a message naming
 * the key) when of another type or out of range. */
int proto_json_get_str(const struct proto_json_value *v, const char *key, const char **out,
		       char *err);
int proto_json_get_u64(const struct proto_json_value *v, const char *key, uint64_t *out, char *err);
int proto_json_get_bool(const struct proto_json_value *v, const char *key, bool *out, char *err);

#endif
