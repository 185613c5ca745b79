/* fleet/planfile.c: a plan as JSON, written for a person to read and edit
 * and read back from anyone (another scheduler may write plans that
 * `smove rebalance` runs): the format is docs/rebalance.md. Reading checks
 * every member: an unknown one is refused (a typo in "from" must not move a
 * VM elsewhere), names are plain names, hosts HOST:PORT, a VM moves once per
 * plan, never to where it comes from. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"
#include "proto/proto.h"
#include "util/util.h"

/* ---- writing ------------------------------------------------------------------------ */

/* Appends one finished JSON text (or a literal) to the plan's text. */
static void put(struct proto_buf *b, const char *s, bool *oom)
{
	size_t n = strlen(s);

	if (proto_buf_reserve(b, b->len + n + 1) < 0) {
		*oom = true;
		return;
	}
	memcpy(b->data + b->len, s, n + 1);
	b->len += n;
}

/* One value, written compact, after "key": and followed by sep. */
static void put_json(struct proto_buf *b, struct proto_json *j, const char *sep, bool *oom)
{
	const char *s = proto_json_finish(j);

	if (!s)
		*oom = true;
	else
		put(b, s, oom);
	put(b, sep, oom);
	proto_json_reset(j);
}

static void room_json(struct proto_json *j, const char *key, uint64_t mem, uint64_t disk)
{
	proto_json_key(j, key);
	proto_json_obj_begin(j);
	proto_json_kv_uint(j, "memory_free", mem);
	proto_json_kv_uint(j, "storage_free", disk);
	proto_json_obj_end(j);
}

/* Host h's room before the plan and once it is done (informational). */
static void host_json(struct proto_json *j, const struct fleet_plan *p, const struct fleet_host *h)
{
	int64_t mem = (int64_t)h->mem_free, disk = (int64_t)h->disk_free;

	for (unsigned i = 0; i < p->nmoves; i++) {
		const struct fleet_move *m = &p->moves[i];
		int64_t dm = m->mode == FLEET_COLD ? 0 : (int64_t)m->memory;

		if (strcmp(m->to, h->addr) == 0) {
			mem -= dm;
			disk -= (int64_t)m->disk;
		}
		if (strcmp(m->from, h->addr) == 0) {
			mem += dm;
			disk += (int64_t)m->disk;
		}
	}
	proto_json_obj_begin(j);
	proto_json_kv_uint(j, "vms", h->nvms);
	proto_json_kv_uint(j, "max_incoming", h->max_incoming);
	room_json(j, "before", h->mem_free, h->disk_free);
	room_json(j, "after", mem > 0 ? (uint64_t)mem : 0, disk > 0 ? (uint64_t)disk : 0);
	proto_json_obj_end(j);
}

/* Written for a person: a member a line, a move a line. */
int fleet_plan_to_json(const struct fleet_plan *p, const struct fleet_host *hosts, unsigned n,
		       char **out, char *err)
{
	struct proto_buf b;
	struct proto_json j;
	bool oom = false;
	char line[64];

	proto_buf_init(&b);
	proto_json_init(&j);
	snprintf(line, sizeof(line), "{\n  \"version\": %u,\n",
		 p->version ? p->version : FLEET_PLAN_VERSION);
	put(&b, line, &oom);
	if (p->kind[0]) {
		put(&b, "  \"kind\": ", &oom);
		proto_json_str(&j, p->kind);
		put_json(&b, &j, ",\n", &oom);
	}
	if (p->comment[0]) {
		put(&b, "  \"comment\": ", &oom);
		proto_json_str(&j, p->comment);
		put_json(&b, &j, ",\n", &oom);
	}
	put(&b, "  \"limits\": ", &oom);
	proto_json_obj_begin(&j);
	if (p->limits.per_source)
		proto_json_kv_uint(&j, "max_per_source", p->limits.per_source);
	if (p->limits.per_dest)
		proto_json_kv_uint(&j, "max_per_dest", p->limits.per_dest);
	if (p->limits.per_link)
		proto_json_kv_uint(&j, "max_per_link", p->limits.per_link);
	proto_json_obj_end(&j);
	put_json(&b, &j, ",\n  \"moves\": [", &oom);
	for (unsigned i = 0; i < p->nmoves; i++) {
		const struct fleet_move *m = &p->moves[i];

		put(&b, i ? ",\n    " : "\n    ", &oom);
		proto_json_obj_begin(&j);
		proto_json_kv_str(&j, "vm", m->vm);
		proto_json_kv_str(&j, "from", m->from);
		proto_json_kv_str(&j, "to", m->to);
		proto_json_kv_str(&j, "mode", fleet_mode_name(m->mode));
		proto_json_kv_uint(&j, "memory", m->memory);
		proto_json_kv_uint(&j, "disk", m->disk);
		proto_json_obj_end(&j);
		put_json(&b, &j, "", &oom);
	}
	put(&b, p->nmoves ? "\n  ]" : "]", &oom);
	if (hosts && n) {
		put(&b, ",\n  \"hosts\": {", &oom);
		for (unsigned h = 0; h < n; h++) {
			put(&b, h ? ",\n    " : "\n    ", &oom);
			proto_json_str(&j, hosts[h].addr);
			put_json(&b, &j, ": ", &oom);
			host_json(&j, p, &hosts[h]);
			put_json(&b, &j, "", &oom);
		}
		put(&b, "\n  }", &oom);
	}
	put(&b, "\n}\n", &oom);
	proto_json_release(&j);
	if (oom) {
		proto_buf_release(&b);
		return util_error(err, ENOMEM, "out of memory");
	}
	*out = (char *)b.data;
	return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int only(const struct proto_json_value *o, const char *what, const char *const *keys,
		char *err)
{
	for (size_t i = 0; i < o->n; i++) {
		bool known = false;

		for (const char *const *k = keys; *k; k++)
			known |= strcmp(o->keys[i], *k) == 0;
		if (!known)
			return util_error(err, EINVAL, "%s: unknown member \"%.64s\"", what,
					  o->keys[i]);
	}
	return 0;
}

/* HOST:PORT, [V6]:PORT */
static bool host_port(const char *s)
{
	const char *colon = strrchr(s, ':');

	return s[0] && s[0] != '/' && strncmp(s, "unix:", 5) != 0 && colon && colon != s &&
	       colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
	       strlen(s) < FLEET_HOST_MAX && !strpbrk(s, " \"\\");
}

/* A plain VM name (as the protocol's: no '/', no leading '.' or '-'). */
static bool plain_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FLEET_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || s[i] == '/' ||
		    s[i] == '\\')
			return false;
	return true;
}

static int get_limit(const struct proto_json_value *o, const char *key, unsigned *out, char *err)
{
	uint64_t v;
	char perr[PROTO_ERR_LEN];
	int r = proto_json_get_u64(o, key, &v, perr);

	if (r == -ENOENT)
		return 0;
	if (r < 0 || v < 1 || v > 64)
		return util_error(err, EINVAL, "limits: \"%s\" must be 1 to 64", key);
	*out = (unsigned)v;
	return 0;
}

static int parse_move(const struct proto_json_value *o, unsigned i, struct fleet_move *m, char *err)
{
	static const char *const keys[] = {"vm", "from", "to", "mode", "memory", "disk", NULL};
	const char *vm, *from, *to, *mode = "live";
	char what[32], perr[PROTO_ERR_LEN];
	int r;

	snprintf(what, sizeof(what), "move %u", i + 1);
	if (o->type != PROTO_JSON_OBJECT)
		return util_error(err, EINVAL, "%s is not an object", what);
	if ((r = only(o, what, keys, err)) < 0)
		return r;
	if (proto_json_get_str(o, "vm", &vm, perr) < 0 || !plain_name(vm))
		return util_error(err, EINVAL, "%s: \"vm\" must be a VM's plain name", what);
	if (proto_json_get_str(o, "from", &from, perr) < 0 || !host_port(from) ||
	    proto_json_get_str(o, "to", &to, perr) < 0 || !host_port(to))
		return util_error(err, EINVAL, "%s (%s): \"from\" and \"to\" must be HOST:PORT",
				  what, vm);
	if (strcmp(from, to) == 0)
		return util_error(err, EINVAL, "%s (%s): from and to are the same host", what, vm);
	if ((proto_json_get(o, "mode") && proto_json_get_str(o, "mode", &mode, perr) < 0) ||
	    fleet_mode_parse(mode, &m->mode) < 0)
		return util_error(err, EINVAL, "%s (%s): \"mode\" must be live, quick or cold",
				  what, vm);
	if ((proto_json_get(o, "memory") &&
	     proto_json_get_u64(o, "memory", &m->memory, perr) < 0) ||
	    (proto_json_get(o, "disk") && proto_json_get_u64(o, "disk", &m->disk, perr) < 0))
		return util_error(err, EINVAL, "%s (%s): \"memory\" and \"disk\" are byte counts",
				  what, vm);
	snprintf(m->vm, sizeof(m->vm), "%s", vm);
	snprintf(m->from, sizeof(m->from), "%s", from);
	snprintf(m->to, sizeof(m->to), "%s", to);
	return 0;
}

int fleet_plan_parse(const char *text, size_t len, struct fleet_plan *p, char *err)
{
	static const char *const top[] = {"version", "kind",  "comment", "limits",
					  "moves",   "hosts", "created", NULL};
	static const char *const lim[] = {"max_per_source", "max_per_dest", "max_per_link", NULL};
	const struct proto_json_value *moves, *limits;
	struct proto_json_value *v = NULL;
	char perr[PROTO_ERR_LEN];
	const char *s;
	uint64_t version = 0;
	int r;

	memset(p, 0, sizeof(*p));
	if ((r = proto_json_parse(text, len, &v, perr)) < 0)
		return util_error(err, EINVAL, "the plan is not JSON: %s", perr);
	if (v->type != PROTO_JSON_OBJECT) {
		r = util_error(err, EINVAL, "the plan is not a JSON object");
		goto out;
	}
	if ((r = only(v, "the plan", top, err)) < 0)
		goto out;
	if (proto_json_get_u64(v, "version", &version, perr) < 0 || version != FLEET_PLAN_VERSION) {
		r = util_error(err, EINVAL, "the plan's \"version\" must be %d",
			       FLEET_PLAN_VERSION);
		goto out;
	}
	p->version = (unsigned)version;
	if (proto_json_get_str(v, "kind", &s, perr) == 0)
		snprintf(p->kind, sizeof(p->kind), "%s", s);
	if (proto_json_get_str(v, "comment", &s, perr) == 0)
		snprintf(p->comment, sizeof(p->comment), "%s", s);
	if ((limits = proto_json_get(v, "limits"))) {
		if (limits->type != PROTO_JSON_OBJECT) {
			r = util_error(err, EINVAL, "the plan's \"limits\" is not an object");
			goto out;
		}
		if ((r = only(limits, "limits", lim, err)) < 0 ||
		    (r = get_limit(limits, "max_per_source", &p->limits.per_source, err)) < 0 ||
		    (r = get_limit(limits, "max_per_dest", &p->limits.per_dest, err)) < 0 ||
		    (r = get_limit(limits, "max_per_link", &p->limits.per_link, err)) < 0)
			goto out;
	}
	moves = proto_json_get(v, "moves");
	if (!moves || moves->type != PROTO_JSON_ARRAY || moves->n > FLEET_MAX_MOVES) {
		r = util_error(err, EINVAL, "the plan's \"moves\" must be an array of at most %d",
			       FLEET_MAX_MOVES);
		goto out;
	}
	if (moves->n && !(p->moves = calloc(moves->n, sizeof(*p->moves)))) {
		r = util_error(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < moves->n; i++) {
		if ((r = parse_move(moves->items[i], (unsigned)i, &p->moves[i], err)) < 0)
			goto out;
		for (size_t k = 0; k < i; k++)
			if (strcmp(p->moves[k].vm, p->moves[i].vm) == 0) {
				r = util_error(err, EINVAL,
					       "moves %zu and %zu both move %s (one move per VM "
					       "and plan)",
					       k + 1, i + 1, p->moves[i].vm);
				goto out;
			}
		p->nmoves++;
	}
	r = 0;
out:
	proto_json_free(v);
	if (r < 0)
		fleet_plan_release(p);
	return r;
}
