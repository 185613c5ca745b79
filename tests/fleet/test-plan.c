/* tests/fleet/test-plan.c: plans without hosts: inventories given as the
 * JSON a host's serve answers (fleet_host_parse), then drains (the largest
 * VM first, to the host with the most room; a stopped VM cold; refused with
 * every VM that fits nowhere, or when a VM is in doubt or moving), balances
 * (each move lowers the highest share, and fits at its turn), the check of
 * a plan step by step (a VM not where the plan says, a host full at a step,
 * a move that frees room for a later one), and the plan's JSON both ways
 * (a person's edits read back; every malformed plan refused with a reason). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"

#define MiB (1ull << 20)

static char err[FLEET_ERR_LEN];

/* A host at addr with mem MiB free, disk MiB free, and VMs "name:MiB[:state]". */
static void host(struct fleet_host *h, const char *addr, unsigned mem, unsigned disk, ...)
{
	char json[8192];
	size_t n = 0;
	va_list ap;
	const char *vm;

	n += (size_t)snprintf(json + n, sizeof(json) - n,
			      "{\"ok\":true,\"memory\":{\"available\":%llu,\"reserved\":0,"
			      "\"free\":%llu},\"storage\":{\"available\":%llu,\"reserved\":0,"
			      "\"free\":%llu},\"limits\":{\"max_incoming\":2,\"incoming\":0},"
			      "\"vms\":[",
			      mem * MiB, mem * MiB, disk * MiB, disk * MiB);
	va_start(ap, disk);
	for (bool first = true; (vm = va_arg(ap, const char *)); first = false) {
		char name[64] = "", state[32] = "running", mig[64] = "";
		unsigned m = 0;

		sscanf(vm, "%63[^:]:%u:%31s", name, &m, state);
		if (strcmp(state, "moving") == 0)
			snprintf(mig, sizeof(mig),
				 ",\"migration\":{\"state\":\"migrating\",\"to\":\"x:1\"}");
		if (strcmp(state, "moving") == 0)
			snprintf(state, sizeof(state), "running");
		n += (size_t)snprintf(json + n, sizeof(json) - n,
				      "%s{\"name\":\"%s\",\"state\":\"%s\",\"runtime\":\"qemu\","
				      "\"memory\":%llu,\"cpus\":1,\"disk_need\":%llu%s}",
				      first ? "" : ",", name, state, m * MiB, 10 * MiB, mig);
	}
	va_end(ap);
	snprintf(json + n, sizeof(json) - n, "]}");
	cr_assert_eq(fleet_host_parse(addr, json, h, err), 0, "%s", err);
}

static const struct fleet_move *move_of(const struct fleet_plan *p, const char *vm)
{
	for (unsigned i = 0; i < p->nmoves; i++)
		if (strcmp(p->moves[i].vm, vm) == 0)
			return &p->moves[i];
	return NULL;
}

static void release(struct fleet_host *h, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fleet_host_release(&h[i]);
}

Test(plan, a_drain_places_the_largest_first_where_there_is_most_room)
{
	struct fleet_host h[3];
	struct fleet_plan p;

	host(&h[0], "a:1", 100000, 100000, "big:512", "mid:256", "small:128", "off:2048:stopped",
	     NULL);
	host(&h[1], "b:1", 600, 1000, NULL);
	host(&h[2], "c:1", 500, 1000, NULL);
	cr_assert_eq(fleet_plan_drain(h, 3, "a:1", FLEET_LIVE, &p, err), 0, "%s", err);
	cr_assert_eq(p.nmoves, 4);
	cr_assert_str_eq(move_of(&p, "big")->to, "b:1");   /* 600 > 500 */
	cr_assert_str_eq(move_of(&p, "mid")->to, "c:1");   /* 500 > 88 */
	cr_assert_str_eq(move_of(&p, "small")->to, "c:1"); /* 244 > 88 */
	cr_assert_eq(move_of(&p, "off")->mode, FLEET_COLD, "a stopped VM goes cold");
	cr_assert_eq(move_of(&p, "big")->mode, FLEET_LIVE);
	cr_assert_eq(fleet_plan_check(h, 3, &p, err), 0, "%s", err);
	/* interleaved by destination: the first two moves go to two hosts */
	cr_assert_str_neq(p.moves[0].to, p.moves[1].to);
	fleet_plan_release(&p);
	release(h, 3);
}

Test(plan, an_impossible_drain_is_refused_with_every_reason)
{
	struct fleet_host h[3];
	struct fleet_plan p;

	host(&h[0], "a:1", 1000, 1000, "vm1:256", "vm2:256", "vm3:256", NULL);
	host(&h[1], "b:1", 300, 1000, NULL);
	host(&h[2], "c:1", 300, 1000, NULL);
	cr_assert_eq(fleet_plan_drain(h, 3, "a:1", FLEET_LIVE, &p, err), -ENOSPC);
	cr_assert(strstr(err, "cannot drain a:1: no other host has room for vm3 (256 MiB, 10 MiB)"),
		  "%s", err);
	cr_assert(strstr(err, "b:1 44 MiB"), "the room left is given: %s", err);
	cr_assert_eq(p.nmoves, 0);
	release(h, 3);
}

Test(plan, a_vm_in_doubt_or_moving_stops_a_drain)
{
	struct fleet_host h[2];
	struct fleet_plan p;

	host(&h[0], "a:1", 1000, 1000, "vm1:128:in-doubt", NULL);
	host(&h[1], "b:1", 1000, 1000, NULL);
	cr_assert_eq(fleet_plan_drain(h, 2, "a:1", FLEET_LIVE, &p, err), -EBUSY);
	cr_assert(strstr(err, "vm1 cannot be moved now: its migration is in doubt"), "%s", err);
	release(h, 2);
	host(&h[0], "a:1", 1000, 1000, "vm1:128:moving", NULL);
	host(&h[1], "b:1", 1000, 1000, NULL);
	cr_assert_eq(fleet_plan_drain(h, 2, "a:1", FLEET_LIVE, &p, err), -EBUSY);
	cr_assert(strstr(err, "being moved already"), "%s", err);
	release(h, 2);
}

Test(plan, a_name_taken_at_a_host_sends_the_vm_elsewhere)
{
	struct fleet_host h[3];
	struct fleet_plan p;

	host(&h[0], "a:1", 1000, 1000, "vm1:128", NULL);
	host(&h[1], "b:1", 9000, 1000, "vm1:128", NULL); /* more room, but a vm1 */
	host(&h[2], "c:1", 300, 1000, NULL);
	cr_assert_eq(fleet_plan_drain(h, 3, "a:1", FLEET_QUICK, &p, err), 0, "%s", err);
	cr_assert_str_eq(p.moves[0].to, "c:1");
	cr_assert_eq(p.moves[0].mode, FLEET_QUICK);
	fleet_plan_release(&p);
	release(h, 3);
}

Test(plan, a_balance_evens_the_shares)
{
	struct fleet_host h[3];
	struct fleet_plan p;

	/* a: 4 x 256 of 1280 (80 %); b and c empty, 1280 each */
	host(&h[0], "a:1", 256, 10000, "v1:256", "v2:256", "v3:256", "v4:256", NULL);
	host(&h[1], "b:1", 1280, 10000, NULL);
	host(&h[2], "c:1", 1280, 10000, NULL);
	cr_assert_eq(fleet_plan_balance(h, 3, FLEET_LIVE, &p, err), 0, "%s", err);
	cr_assert_eq(p.nmoves, 2, "a keeps 2, b and c one each (%u moves)", p.nmoves);
	cr_assert_str_neq(p.moves[0].to, p.moves[1].to);
	cr_assert_eq(fleet_plan_check(h, 3, &p, err), 0, "%s", err);
	fleet_plan_release(&p);
	release(h, 3);
	/* already even: nothing to do */
	host(&h[0], "a:1", 500, 10000, "v1:256", NULL);
	host(&h[1], "b:1", 500, 10000, "v2:256", NULL);
	cr_assert_eq(fleet_plan_balance(h, 2, FLEET_LIVE, &p, err), 0, "%s", err);
	cr_assert_eq(p.nmoves, 0);
	release(h, 2);
}

Test(plan, the_check_plays_the_moves_in_order)
{
	struct fleet_host h[2];
	struct fleet_plan p = {.version = 1};
	struct fleet_move m[3] = {
	    {"vm1", "a:1", "b:1", FLEET_LIVE, 0, 0},
	    {"vm2", "b:1", "a:1", FLEET_LIVE, 0, 0},
	    {"vm3", "a:1", "b:1", FLEET_LIVE, 0, 0},
	};

	/* b has room for one: vm1 fits, vm3 only once vm2 has left b */
	host(&h[0], "a:1", 1000, 1000, "vm1:256", "vm3:256", NULL);
	host(&h[1], "b:1", 300, 1000, "vm2:256", NULL);
	p.moves = m;
	p.nmoves = 3;
	cr_assert_eq(fleet_plan_check(h, 2, &p, err), 0, "%s", err);
	/* the other order overflows b at its second step */
	m[1] = (struct fleet_move){"vm3", "a:1", "b:1", FLEET_LIVE, 0, 0};
	m[2] = (struct fleet_move){"vm2", "b:1", "a:1", FLEET_LIVE, 0, 0};
	cr_assert_eq(fleet_plan_check(h, 2, &p, err), -ENOSPC);
	cr_assert(strstr(err, "move 2 (vm3 to b:1): b:1 would have 44 MiB of memory"), "%s", err);
	/* a cold move needs storage only */
	m[1].mode = FLEET_COLD;
	cr_assert_eq(fleet_plan_check(h, 2, &p, err), 0, "%s", err);
	/* a VM that is not where the plan says */
	m[0] = (struct fleet_move){"vm9", "a:1", "b:1", FLEET_LIVE, 0, 0};
	cr_assert_eq(fleet_plan_check(h, 2, &p, err), -EINVAL);
	cr_assert(strstr(err, "move 1: vm9 is not on a:1 at its turn"), "%s", err);
	/* a host the inventories do not have */
	m[0] = (struct fleet_move){"vm1", "a:1", "z:1", FLEET_LIVE, 0, 0};
	cr_assert_eq(fleet_plan_check(h, 2, &p, err), -EINVAL);
	release(h, 2);
}

Test(planfile, written_and_read_back)
{
	struct fleet_host h[3];
	struct fleet_plan p, q;
	char *json;

	host(&h[0], "a:1", 100000, 100000, "vm1:128", "vm2:128:stopped", NULL);
	host(&h[1], "b:1", 600, 1000, NULL);
	host(&h[2], "c:1", 500, 1000, NULL);
	cr_assert_eq(fleet_plan_drain(h, 3, "a:1", FLEET_LIVE, &p, err), 0, "%s", err);
	p.limits.per_link = 3;
	cr_assert_eq(fleet_plan_to_json(&p, h, 3, &json, err), 0, "%s", err);
	cr_assert(
	    strstr(json, "\n    {\"vm\":\"vm1\",\"from\":\"a:1\",\"to\":\"b:1\",\"mode\":\"live\""),
	    "a move a line: %s", json);
	cr_assert(strstr(json, "\"max_per_link\":3"), "%s", json);
	cr_assert_eq(fleet_plan_parse(json, strlen(json), &q, err), 0, "%s", err);
	cr_assert_eq(q.nmoves, p.nmoves);
	cr_assert_str_eq(q.kind, "drain");
	cr_assert_eq(q.limits.per_link, 3);
	for (unsigned i = 0; i < p.nmoves; i++) {
		cr_assert_str_eq(q.moves[i].vm, p.moves[i].vm);
		cr_assert_str_eq(q.moves[i].to, p.moves[i].to);
		cr_assert_eq(q.moves[i].mode, p.moves[i].mode);
		cr_assert_eq(q.moves[i].memory, p.moves[i].memory);
	}
	free(json);
	fleet_plan_release(&p);
	fleet_plan_release(&q);
	release(h, 3);
}

Test(planfile, a_plan_from_elsewhere_is_checked)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"moves\":[]}", "\"version\" must be 1"},
	    {"{\"version\":2,\"moves\":[]}", "\"version\" must be 1"},
	    {"{\"version\":1}", "\"moves\" must be an array"},
	    {"{\"version\":1,\"moves\":[],\"extra\":1}", "unknown member \"extra\""},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"v\",\"form\":\"a:1\",\"to\":\"b:1\"}]}",
	     "move 1: unknown member \"form\""},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"../v\",\"from\":\"a:1\",\"to\":\"b:1\"}]}",
	     "plain name"},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"v\",\"from\":\"a\",\"to\":\"b:1\"}]}",
	     "HOST:PORT"},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"v\",\"from\":\"/run/x.sock\",\"to\":\"b:1\"}]}",
	     "HOST:PORT"},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"v\",\"from\":\"a:1\",\"to\":\"a:1\"}]}",
	     "the same host"},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"v\",\"from\":\"a:1\",\"to\":\"b:1\",\"mode\":\"hot\"}]}",
	     "\"mode\" must be"},
	    {"{\"version\":1,\"moves\":[{\"vm\":\"v\",\"from\":\"a:1\",\"to\":\"b:1\"},"
	     "{\"vm\":\"v\",\"from\":\"b:1\",\"to\":\"c:1\"}]}",
	     "both move v"},
	    {"{\"version\":1,\"limits\":{\"max_per_dest\":0},\"moves\":[]}", "1 to 64"},
	    {"{\"version\":1,\"limits\":{\"max_per_host\":2},\"moves\":[]}", "unknown member"},
	};
	static const char least[] =
	    "{\"version\":1,\"moves\":[{\"vm\":\"v\",\"from\":\"[::1]:4\",\"to\":\"b:1\"}]}";
	struct fleet_plan p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(fleet_plan_parse(bad[i].json, strlen(bad[i].json), &p, err), -EINVAL,
			     "%s", bad[i].json);
		cr_assert(strstr(err, bad[i].why), "%s: %s", bad[i].json, err);
	}
	/* the least a scheduler may write: vm, from, to */
	cr_assert_eq(fleet_plan_parse(least, strlen(least), &p, err), 0, "%s", err);
	cr_assert_eq(p.moves[0].mode, FLEET_LIVE);
	fleet_plan_release(&p);
}

Test(inventory, a_bad_inventory_is_refused)
{
	struct fleet_host h;

	cr_assert_lt(fleet_host_parse("a:1", "{\"ok\":false,\"error\":\"no\"}", &h, err), 0);
	cr_assert(strstr(err, "a:1: no"), "%s", err);
	cr_assert_lt(fleet_host_parse("a:1", "{\"ok\":true,\"vms\":[]}", &h, err), 0);
	cr_assert_lt(fleet_host_parse("a:1", "not json", &h, err), 0);
}
