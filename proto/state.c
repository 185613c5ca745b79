/* proto/state.c: the state graph of a migration session, as a pure function
 * (drawn in proto/proto.h and docs/protocol.md). Sessions (session.c) check
 * every frame they send or receive against it. */
#include "proto/proto.h"

static const char *const state_names[] = {
    [PROTO_ST_START] = "start",		  [PROTO_ST_HELLO] = "hello",
    [PROTO_ST_NEGOTIATED] = "negotiated", [PROTO_ST_PREFLIGHT] = "preflight",
    [PROTO_ST_STORAGE] = "storage",	  [PROTO_ST_MEMORY] = "memory",
    [PROTO_ST_STATE] = "state",		  [PROTO_ST_LOADING] = "loading",
    [PROTO_ST_READY] = "ready",		  [PROTO_ST_IN_DOUBT] = "in-doubt",
    [PROTO_ST_RESUMING] = "resuming",	  [PROTO_ST_RUNNING] = "running",
    [PROTO_ST_COMMITTED] = "committed",	  [PROTO_ST_CHANNEL] = "channel",
    [PROTO_ST_RESOLVE] = "resolve",	  [PROTO_ST_RESOLVING] = "resolving",
    [PROTO_ST_CLOSED] = "closed",	  [PROTO_ST_DEAD] = "dead",
};

const char *proto_state_name(enum proto_state st)
{
	if ((unsigned)st >= sizeof state_names / sizeof state_names[0])
		return "invalid";
	return state_names[st];
}

/* One edge: in state `from_st`, side `by` may send `type`, leading to `to`. */
struct edge {
	enum proto_state from_st;
	enum proto_side by;
	unsigned type;
	enum proto_state to;
};

static const struct edge edges[] = {
    {PROTO_ST_START, PROTO_SOURCE, PROTO_HELLO, PROTO_ST_HELLO},
    /* HELLO_ACK: NEGOTIATED, CHANNEL or RESOLVE by role (below) */
    {PROTO_ST_HELLO, PROTO_DEST, PROTO_HELLO_ACK, PROTO_ST_NEGOTIATED},
    {PROTO_ST_NEGOTIATED, PROTO_SOURCE, PROTO_PREFLIGHT, PROTO_ST_PREFLIGHT},
    /* PREFLIGHT_REPLY: STORAGE on go, CLOSED on no-go (below) */
    {PROTO_ST_PREFLIGHT, PROTO_DEST, PROTO_PREFLIGHT_REPLY, PROTO_ST_STORAGE},
    {PROTO_ST_STORAGE, PROTO_DEST, PROTO_DISK_EXPORT, PROTO_ST_STORAGE},
    /* the files that travel with the VM and never change, before the memory */
    {PROTO_ST_STORAGE, PROTO_SOURCE, PROTO_DEVICE_STATE, PROTO_ST_STORAGE},
    {PROTO_ST_STORAGE, PROTO_SOURCE, PROTO_MEM_BATCH, PROTO_ST_MEMORY},
    {PROTO_ST_STORAGE, PROTO_SOURCE, PROTO_ROUND_END, PROTO_ST_MEMORY},
    {PROTO_ST_STORAGE, PROTO_SOURCE, PROTO_STREAM, PROTO_ST_MEMORY},
    {PROTO_ST_MEMORY, PROTO_SOURCE, PROTO_MEM_BATCH, PROTO_ST_MEMORY},
    {PROTO_ST_MEMORY, PROTO_SOURCE, PROTO_ROUND_END, PROTO_ST_MEMORY},
    {PROTO_ST_MEMORY, PROTO_SOURCE, PROTO_STREAM, PROTO_ST_MEMORY},
    {PROTO_ST_MEMORY, PROTO_SOURCE, PROTO_VCPU_STATE, PROTO_ST_STATE},
    {PROTO_ST_MEMORY, PROTO_SOURCE, PROTO_DEVICE_STATE, PROTO_ST_STATE},
    /* a stream that carried the whole state (its end is checked by stream.c) */
    {PROTO_ST_MEMORY, PROTO_SOURCE, PROTO_STATE_END, PROTO_ST_LOADING},
    {PROTO_ST_STATE, PROTO_SOURCE, PROTO_VCPU_STATE, PROTO_ST_STATE},
    {PROTO_ST_STATE, PROTO_SOURCE, PROTO_DEVICE_STATE, PROTO_ST_STATE},
    {PROTO_ST_STATE, PROTO_SOURCE, PROTO_STATE_END, PROTO_ST_LOADING},
    {PROTO_ST_LOADING, PROTO_DEST, PROTO_SWITCHOVER_READY, PROTO_ST_READY},
    {PROTO_ST_READY, PROTO_SOURCE, PROTO_RESUME, PROTO_ST_IN_DOUBT},
    {PROTO_ST_IN_DOUBT, PROTO_DEST, PROTO_RESUMING, PROTO_ST_RESUMING},
    {PROTO_ST_RESUMING, PROTO_DEST, PROTO_RUNNING, PROTO_ST_RUNNING},
    {PROTO_ST_RUNNING, PROTO_SOURCE, PROTO_COMMIT, PROTO_ST_COMMITTED},
    {PROTO_ST_COMMITTED, PROTO_DEST, PROTO_DONE, PROTO_ST_CLOSED},
    {PROTO_ST_CHANNEL, PROTO_SOURCE, PROTO_MEM_BATCH, PROTO_ST_CHANNEL},
    {PROTO_ST_RESOLVE, PROTO_SOURCE, PROTO_RESOLVE, PROTO_ST_RESOLVING},
    {PROTO_ST_RESOLVING, PROTO_DEST, PROTO_RESOLVE_REPLY, PROTO_ST_CLOSED},
};

static bool ended(enum proto_state st)
{
	return st == PROTO_ST_CLOSED || st == PROTO_ST_DEAD;
}

/* CANCEL: either side until RESUME is sent; the destination until it sends
 * RESUMING (so a CANCEL that crosses RESUME on the wire is still honoured:
 * the destination that sent it never resumes). */
static bool may_cancel(enum proto_state st, enum proto_side by)
{
	if (st >= PROTO_ST_NEGOTIATED && st <= PROTO_ST_READY)
		return true;
	return st == PROTO_ST_IN_DOUBT && by == PROTO_DEST;
}

int proto_state_next(enum proto_state st, enum proto_role role, enum proto_side from, unsigned type,
		     bool go)
{
	if (ended(st))
		return -1;
	switch (type) {
	case PROTO_ERROR:
		return PROTO_ST_DEAD;
	case PROTO_PING:
	case PROTO_PONG:
		return st == PROTO_ST_START ? -1 : (int)st;
	case PROTO_CANCEL:
		return may_cancel(st, from) ? PROTO_ST_CLOSED : -1;
	default:
		break;
	}
	for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
		const struct edge *e = &edges[i];

		if (e->from_st != st || e->by != from || e->type != type)
			continue;
		if (type == PROTO_HELLO_ACK && role == PROTO_ROLE_CHANNEL)
			return PROTO_ST_CHANNEL;
		if (type == PROTO_HELLO_ACK && role == PROTO_ROLE_RESOLVE)
			return PROTO_ST_RESOLVE;
		if (type == PROTO_PREFLIGHT_REPLY && !go)
			return PROTO_ST_CLOSED;
		return (int)e->to;
	}
	return -1;
}
