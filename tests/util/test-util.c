/* tests/util/test-util.c: util/'s helpers: hex, the temporary-name rule, the
 * durable write and removal, small reads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

Test(hex, round_trip_and_refusals)
{
	const uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff};
	uint8_t out[4];
	char s[9];

	util_hex(in, 4, s);
	cr_assert_str_eq(s, "00ab7fff");
	cr_assert_eq(util_unhex(s, out, 4), 0);
	cr_assert_arr_eq(in, out, 4);
	cr_assert_eq(util_unhex("00AB7FFF", out, 4), 0);
	cr_assert_eq(util_unhex("00ab7ff", out, 4), -EINVAL, "odd length accepted");
	cr_assert_eq(util_unhex("00ab7fxf", out, 4), -EINVAL, "a non-digit accepted");
}

Test(file, durable_write_replaces_whole_and_leaves_no_temporary)
{
	char dir[] = "/tmp/smove-test-util-XXXXXX", path[128], tmp[160], err[UTIL_ERR_LEN], *text;
	struct stat st;
	size_t len;

	cr_assert(mkdtemp(dir));
	util_path_join(path, sizeof(path), dir, "f.json");
	cr_assert_eq(util_write_durable(path, "old", 3, err), 0, "%s", err);
	cr_assert_eq(util_write_durable(path, "newer", 5, err), 0, "%s", err);
	cr_assert_eq(util_read_small(path, &text, &len, 100, err), 0, "%s", err);
	cr_assert_str_eq(text, "newer");
	free(text);
	cr_assert_eq(util_temp_name(path, tmp, sizeof(tmp), err), 0);
	cr_assert(strstr(tmp, "/.f.json.smove-tmp"), "%s", tmp);
	cr_assert_eq(stat(tmp, &st), -1, "the temporary file is left");
	cr_assert_eq(util_read_small(path, &text, &len, 4, err), -EFBIG, "max not enforced");
	cr_assert_eq(util_unlink_durable(path, err), 0, "%s", err);
	cr_assert_eq(util_unlink_durable(path, err), 0, "a missing file is no error");
	cr_assert_eq(stat(path, &st), -1);
	rmdir(dir);
}

Test(crc32c, both_implementations_agree)
{
	uint8_t buf[100000];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	cr_assert_eq(util_crc32c(0, "123456789", 9), 0xE3069283);
	for (size_t len = 0; len < sizeof(buf); len = len * 3 + 7)
		cr_assert_eq(util_crc32c(0, buf + 1, len), util_crc32c_portable(0, buf + 1, len),
			     "length %zu", len);
}
