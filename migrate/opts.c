/* migrate/opts.c: the arguments of the control socket's `migrate`
 * command (docs/control-socket.md), checked and read into struct mig_opts. */
#include <errno.h>
#include <string.h>

#include "migrate/internal.h"

static int opt_str(const struct proto_json_value *req, const char *key, char *dst, size_t len,
		   char *err)
{
	const char *s;
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_str(req, key, &s, perr);

	if (r == -ENOENT)
		return 0;
	if (r < 0 || strlen(s) >= len)
		return util_error(err, EINVAL,
				  "migrate: \"%s\" must be a string of at most %zu bytes", key,
				  len - 1);
	strcpy(dst, s);
	return 0;
}

static int opt_u64(const struct proto_json_value *req, const char *key, uint64_t *dst, uint64_t max,
		   char *err)
{
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_u64(req, key, dst, perr);

	if (r == -ENOENT)
		return 0;
	if (r < 0 || *dst > max)
		return util_error(err, EINVAL, "migrate: \"%s\" must be an integer up to %llu", key,
				  (unsigned long long)max);
	return 0;
}

static int opt_bool(const struct proto_json_value *req, const char *key, bool *dst, char *err)
{
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_bool(req, key, dst, perr);

	if (r == -ENOENT)
		return 0;
	return r < 0 ? util_error(err, EINVAL, "migrate: \"%s\" must be true or false", key) : 0;
}

int mig_opts_parse(const struct proto_json_value *req, struct mig_opts *o, char *err)
{
	uint64_t channels = 0, rounds = MIG_MAX_ROUNDS;
	int r;

	memset(o, 0, sizeof(*o));
	o->downtime_ms = 300;
	o->auto_converge = true;
	if ((r = opt_str(req, "to", o->to, sizeof(o->to), err)) < 0 ||
	    (r = opt_str(req, "tls_psk", o->tls_psk, sizeof(o->tls_psk), err)) < 0 ||
	    (r = opt_str(req, "tls_user", o->tls_user, sizeof(o->tls_user), err)) < 0 ||
	    (r = opt_str(req, "tls_x509", o->tls_x509, sizeof(o->tls_x509), err)) < 0 ||
	    (r = opt_u64(req, "downtime_ms", &o->downtime_ms, 3600000, err)) < 0 ||
	    (r = opt_u64(req, "bandwidth", &o->bandwidth, UINT64_MAX / 2, err)) < 0 ||
	    (r = opt_u64(req, "channels", &channels, PROTO_MAX_CHANNELS - 1, err)) < 0 ||
	    (r = opt_u64(req, "max_rounds", &rounds, 100000, err)) < 0 ||
	    (r = opt_bool(req, "compress", &o->compress, err)) < 0 ||
	    (r = opt_bool(req, "auto_converge", &o->auto_converge, err)) < 0 ||
	    (r = opt_bool(req, "no_delete", &o->no_delete, err)) < 0 ||
	    (r = opt_bool(req, "dry_run", &o->dry_run, err)) < 0 ||
	    (r = opt_bool(req, "quick", &o->quick, err)) < 0 ||
	    (r = opt_u64(req, "queue_timeout", &o->queue_timeout, 7 * 24 * 3600, err)) < 0)
		return r;
	if (!o->to[0])
		return util_error(err, EINVAL, "migrate: \"to\" (HOST:PORT) is required");
	if (o->tls_psk[0] && o->tls_x509[0])
		return util_error(err, EINVAL,
				  "migrate: give \"tls_psk\" or \"tls_x509\", not both");
	o->channels = (unsigned)channels;
	o->max_rounds = rounds ? (unsigned)rounds : MIG_MAX_ROUNDS;
	return 0;
}
