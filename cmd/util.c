/* cmd/util.c: messages, sizes and time for the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd/cmd.h"
#include "proto/proto.h"

const char *cmd_name = "smove";

void msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int fail_json(bool json, int status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", cmd_name, text);
	if (json) {
		struct proto_json j;

		fflush(stderr);
		proto_json_init(&j);
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "error", text);
		proto_json_kv_int(&j, "exit-status", status);
		proto_json_obj_end(&j);
		print_json(&j);
		proto_json_release(&j);
	}
	return status;
}

void scrub_name(char *text, size_t len, const char *hidden, const char *shown)
{
	size_t hl = strlen(hidden), sl = strlen(shown);
	char *p;

	if (!hl)
		return;
	while ((p = strstr(text, hidden))) {
		size_t tail = strlen(p + hl);

		if ((size_t)(p - text) + sl + tail + 1 > len)
			return;
		memmove(p + sl, p + hl, tail + 1);
		memcpy(p, shown, sl);
	}
}

int usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return EXIT_USAGE;
}

int help_or_unknown(int c, const char *prog, const char *help)
{
	if (c == 'h') {
		fputs(help, stdout);
		return EXIT_SUCCESS;
	}
	/* getopt has said what was wrong, naming the command (see run_subcommand). */
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return EXIT_USAGE;
}

int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "BKMGTP";
	char *end;
	double v;
	int shift = 0;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	if (*end) {
		const char *u = strchr(units, *end >= 'a' ? *end - 32 : *end);

		if (!u)
			return -EINVAL;
		shift = (int)(u - units) * 10;
		end++;
		if (shift && (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	v = ldexp(v, shift);
	if (v >= 18446744073709551616.0 || v != floor(v))
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

bool is_url(const char *s)
{
	const char *p = strstr(s, "://");

	if (!p || p == s)
		return false;
	for (const char *c = s; c < p; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '+' ||
		      (c > s && *c >= '0' && *c <= '9')))
			return false;
	return true;
}

int parse_bandwidth(const char *s, uint64_t *out)
{
	char *end;
	double mib;

	errno = 0;
	mib = strtod(s, &end);
	if (end != s && *end == '\0' && !errno) {
		if (!(mib > 0) || mib > 1e12)
			return -EINVAL;
		*out = (uint64_t)(mib * 1048576.0);
		return *out ? 0 : -EINVAL;
	}
	return parse_size(s, out) < 0 || *out == 0 ? -EINVAL : 0;
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
	return buf;
}

int print_json(struct proto_json *j)
{
	const char *text = proto_json_finish(j);

	if (!text) {
		msg("out of memory building JSON output");
		return -1;
	}
	puts(text);
	return 0;
}

int exit_of_result(const char *result)
{
	static const struct {
		const char *name;
		int code;
	} codes[] = {
	    {"done", EXIT_SUCCESS},	 {"go", EXIT_SUCCESS},
	    {"no-go", EXIT_NOGO},	 {"rolled-back", EXIT_ROLLED_BACK},
	    {"in-doubt", EXIT_IN_DOUBT},
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(result, codes[i].name) == 0)
			return codes[i].code;
	return EXIT_FAILURE;
}
