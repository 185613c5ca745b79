/* tests/unit/test-json.c: the JSON writer and the strict parser. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "proto/proto.h"

Test(json, writer_escapes_and_separates)
{
	struct proto_json j;

	proto_json_init(&j);
	proto_json_obj_begin(&j);
	proto_json_kv_str(&j, "name", "a\"b\\c\n\x01");
	proto_json_key(&j, "list");
	proto_json_arr_begin(&j);
	proto_json_uint(&j, 1);
	proto_json_int(&j, -2);
	proto_json_obj_begin(&j);
	proto_json_obj_end(&j);
	proto_json_arr_end(&j);
	proto_json_kv_bool(&j, "ok", true);
	proto_json_kv_double(&j, "nan", 0.0 / 0.0);
	proto_json_obj_end(&j);
	cr_assert_str_eq(proto_json_finish(&j), "{\"name\":\"a\\\"b\\\\c\\n\\u0001\","
						"\"list\":[1,-2,{}],\"ok\":true,\"nan\":null}");
	proto_json_release(&j);
}

Test(json, round_trip)
{
	const char *text = " {\"cmd\": \"status\", \"n\": 42, \"f\": 1.5, \"t\": true,"
			   " \"a\": [null, \"\\u00e9\\ud83d\\ude00\"]} ";
	struct proto_json_value *v;
	char err[PROTO_ERR_LEN];
	const char *s;
	uint64_t n;
	bool b;

	cr_assert_eq(proto_json_parse(text, strlen(text), &v, err), 0, "%s", err);
	cr_assert_eq(proto_json_get_str(v, "cmd", &s, err), 0);
	cr_assert_str_eq(s, "status");
	cr_assert_eq(proto_json_get_u64(v, "n", &n, err), 0);
	cr_assert_eq(n, 42);
	cr_assert_eq(proto_json_get_u64(v, "f", &n, err), -EINVAL);
	cr_assert(strstr(err, "\"f\" must be a non-negative integer"), "%s", err);
	cr_assert_eq(proto_json_get_bool(v, "t", &b, err), 0);
	cr_assert(b);
	cr_assert_eq(proto_json_get_str(v, "n", &s, err), -EINVAL);
	cr_assert_eq(proto_json_get_str(v, "missing", &s, err), -ENOENT);
	const struct proto_json_value *a = proto_json_get(v, "a");
	cr_assert_eq(a->n, 2);
	cr_assert_str_eq(a->items[1]->str, "\xc3\xa9\xf0\x9f\x98\x80");
	proto_json_free(v);
}

Test(json, bad_input_is_an_error_with_a_position)
{
	static const char *const bad[] = {
	    "",	     "{",	"{\"a\" 1}",   "[1,]",	      "01",   "-",
	    "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\x01\"",    "{} x", "tru",
	    "[1 2]", "{1:2}",	"\"\\u0000\"", "[\"\\u12\"]", "1e",   "nul",
	};
	char err[PROTO_ERR_LEN];
	struct proto_json_value *v;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(proto_json_parse(bad[i], strlen(bad[i]), &v, err), -EINVAL,
			     "accepted '%s'", bad[i]);
		cr_assert_null(v);
		cr_assert(strstr(err, "invalid JSON"), "%s", err);
	}
}

Test(json, nesting_is_bounded)
{
	char text[200];
	struct proto_json_value *v;
	char err[PROTO_ERR_LEN];

	memset(text, '[', sizeof text);
	cr_assert_eq(proto_json_parse(text, sizeof text, &v, err), -EINVAL);
	cr_assert(strstr(err, "nested too deeply"), "%s", err);
}
