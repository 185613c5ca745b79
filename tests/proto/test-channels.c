/* tests/proto/test-channels.c: a migration whose pages flow over the main
 * connection and 4 extra channels (one thread each on both sides), over 3
 * rounds in which the same pages are rewritten and sent again on another
 * channel: the receiver, ordering rounds with struct proto_rounds, ends with
 * exactly the source's memory. Also: a channel with a wrong token is refused,
 * and a ROUND_END that counts more batches than arrived times out clearly. */
#include <criterion/criterion.h>

#include "tests/proto/harness.h"

#define NCHAN  4 /* extra channels */
#define MEM    (8u << 20)
#define ROUNDS 3
#define BATCH  64

static char err[PROTO_ERR_LEN];

struct chan {
	unsigned index;
	struct proto_conn *sconn, *dconn;
	struct proto_session s, d; /* source and destination ends */
	/* sender */
	struct proto_pages_enc *enc;
	uint8_t *mem;
	uint32_t round;
	int rc;
	char err[PROTO_ERR_LEN];
	/* receiver */
	struct proto_rounds *rounds;
	uint8_t *dmem;
	unsigned applied;
};

/* Round r sends on channel c the pages whose index % (NCHAN+1) == (c+r) % (NCHAN+1):
 * each page moves to another channel every round. Round 1 sends all pages,
 * later rounds the first half of memory, rewritten. */
static bool mine(uint64_t page, unsigned c, uint32_t r)
{
	return page % (NCHAN + 1) == (c + r) % (NCHAN + 1);
}

static uint64_t round_pages(uint32_t r)
{
	return (r == 1 ? MEM : MEM / 2) / PROTO_PAGE_SIZE;
}

static int send_round(struct proto_session *s, struct proto_pages_enc *e, uint8_t *mem, unsigned c,
		      uint32_t r, char *e_out)
{
	struct proto_page pages[BATCH];
	size_t n = 0;
	int rc = 0;

	for (uint64_t p = 0; p < round_pages(r) && rc == 0; p++) {
		if (!mine(p, c, r))
			continue;
		pages[n].gpa = p * PROTO_PAGE_SIZE;
		pages[n++].data = mem + p * PROTO_PAGE_SIZE;
		if (n == BATCH) {
			rc = proto_session_send_pages(s, e, r, pages, n, e_out);
			n = 0;
		}
	}
	if (rc == 0 && n)
		rc = proto_session_send_pages(s, e, r, pages, n, e_out);
	return rc;
}

static void *chan_send(void *arg)
{
	struct chan *ch = arg;

	ch->rc = send_round(&ch->s, ch->enc, ch->mem, ch->index, ch->round, ch->err);
	return NULL;
}

static void *chan_recv(void *arg)
{
	struct chan *ch = arg;
	struct proto_buf scratch;

	proto_buf_init(&scratch);
	for (;;) {
		struct proto_msg m;
		char e2[PROTO_ERR_LEN];
		int rc = proto_session_recv(&ch->d, &m, ch->err);

		if (rc == -ECONNRESET)
			break; /* the source closed the channel after the last round */
		if (rc < 0) {
			ch->rc = rc;
			proto_rounds_abort(ch->rounds, ch->err);
			break;
		}
		if (m.u.mem_batch.applied) { /* by the session, into its target */
			proto_msg_release(&m);
			ch->applied++;
			continue;
		}
		rc = proto_rounds_batch_begin(ch->rounds, ch->index, m.u.mem_batch.round, 5000,
					      ch->err);
		if (rc == 0)
			rc = proto_mem_batch_copy(&m.u.mem_batch, ch->dmem, MEM, &scratch, e2);
		proto_msg_release(&m);
		if (rc < 0) {
			ch->rc = rc;
			proto_rounds_abort(ch->rounds, ch->err);
			break;
		}
		ch->applied++;
		proto_rounds_batch_end(ch->rounds, ch->index);
	}
	proto_buf_release(&scratch);
	return NULL;
}

struct main_dest {
	struct dest_run d;
	struct proto_rounds *rounds;
	int rc;
	char err[PROTO_ERR_LEN];
	unsigned round_ends;
};

/* The destination's main thread: accept, preflight, then MEM_BATCH (channel 0)
 * and ROUND_END until the final round, then a cancel ends the test. */
static void *main_recv(void *arg)
{
	struct main_dest *md = arg;
	struct proto_buf scratch;

	proto_buf_init(&scratch);
	for (;;) {
		struct proto_msg m;
		int rc = proto_session_recv(&md->d.s, &m, md->err);

		if (rc < 0) {
			md->rc = rc;
			proto_rounds_abort(md->rounds, md->err);
			break;
		}
		if (m.type == PROTO_MEM_BATCH && m.u.mem_batch.applied) {
			rc = 0;
		} else if (m.type == PROTO_MEM_BATCH) {
			rc = proto_rounds_batch_begin(md->rounds, 0, m.u.mem_batch.round, 5000,
						      md->err);
			if (rc == 0)
				rc = proto_mem_batch_copy(&m.u.mem_batch, md->d.mem, MEM, &scratch,
							  md->err);
			if (rc == 0)
				proto_rounds_batch_end(md->rounds, 0);
		} else if (m.type == PROTO_ROUND_END) {
			rc = proto_rounds_end(md->rounds, &m.u.round_end, 5000, md->err);
			md->round_ends += rc == 0;
		} else if (m.type == PROTO_CANCEL) {
			proto_msg_release(&m);
			break;
		}
		proto_msg_release(&m);
		if (rc < 0) {
			md->rc = proto_session_fail(&md->d.s, -rc, md->err, "%s", md->err);
			proto_rounds_abort(md->rounds, md->err);
			break;
		}
	}
	proto_buf_release(&scratch);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct main_dest *md = arg;
	struct proto_msg m, r = {.type = PROTO_PREFLIGHT_REPLY};

	proto_session_init(&md->d.s, md->d.conn, PROTO_DEST);
	if ((md->rc = proto_session_accept(&md->d.s, md->err)) < 0 ||
	    (md->rc = proto_session_ack(&md->d.s, PROTO_FEATURES_V2, md->err)) < 0 ||
	    (md->rc = proto_session_recv(&md->d.s, &m, md->err)) < 0)
		return NULL;
	md->d.mem = calloc(1, m.u.preflight.mem_size);
	proto_msg_release(&m);
	r.u.preflight_reply.go = true;
	md->rc = proto_session_send(&md->d.s, &r, md->err);
	return NULL;
}

/* Source and destination ends of the main session, through PREFLIGHT. */
static void open_main(struct proto_session *src, struct proto_conn **sconn, struct main_dest *md,
		      bool compress)
{
	struct proto_msg m = {.type = PROTO_PREFLIGHT}, r;
	pthread_t t;

	conn_pair(sconn, &md->d.conn, 5000);
	pthread_create(&t, NULL, accept_main, md);
	proto_session_init(src, *sconn, PROTO_SOURCE);
	cr_assert_eq(proto_session_hello(src, PROTO_ROLE_MIGRATE,
					 PROTO_FEAT_CHANNELS | (compress ? PROTO_FEAT_COMPRESS : 0),
					 NULL, NULL, 0, err),
		     0, "%s", err);
	cr_assert(src->features & PROTO_FEAT_CHANNELS);
	m.u.preflight = (struct proto_preflight){.vm_name = "vm",
						 .config_json = "{}",
						 .mem_size = MEM,
						 .vcpus = 1,
						 .cpu_vendor = "v",
						 .channels = NCHAN};
	cr_assert_eq(proto_session_send(src, &m, err), 0, "%s", err);
	cr_assert_eq(proto_session_recv(src, &r, err), 0, "%s", err);
	proto_msg_release(&r);
	pthread_join(t, NULL);
	cr_assert_eq(md->rc, 0, "%s", md->err);
}

struct join {
	struct chan *ch;
	struct proto_session *main;
	int rc;
	char err[PROTO_ERR_LEN];
};

static void *join_dest(void *arg)
{
	struct join *j = arg;
	struct proto_session *d = &j->ch->d;

	j->rc = proto_session_accept(d, j->err);
	if (j->rc == 0)
		j->rc = proto_session_join_check(j->main, d, NCHAN, j->err);
	if (j->rc == 0)
		j->rc = proto_session_ack(d, j->main->features, j->err);
	else
		proto_session_fail(d, -j->rc, j->err, "%s", j->err);
	return NULL;
}

/* Joins channel ch to the session: HELLO with the session id and token. */
static int join(struct chan *ch, struct proto_session *src, struct proto_session *dmain,
		const uint8_t *token, char *cerr, char *derr)
{
	struct join j = {.ch = ch, .main = dmain};
	pthread_t t;
	int rc;

	conn_pair(&ch->sconn, &ch->dconn, 5000);
	proto_session_init(&ch->s, ch->sconn, PROTO_SOURCE);
	proto_session_init(&ch->d, ch->dconn, PROTO_DEST);
	pthread_create(&t, NULL, join_dest, &j);
	rc = proto_session_hello(&ch->s, PROTO_ROLE_CHANNEL, src->features, src->session_id, token,
				 (uint16_t)ch->index, cerr);
	pthread_join(t, NULL);
	snprintf(derr, PROTO_ERR_LEN, "%s", j.err);
	return rc ? rc : j.rc;
}

static void close_chan(struct chan *ch)
{
	proto_session_release(&ch->s);
	proto_session_release(&ch->d);
	proto_conn_close(ch->sconn);
	proto_conn_close(ch->dconn);
}

static void run(bool compress, bool direct)
{
	struct proto_mem_target target = {.mem_size = MEM};
	struct proto_session src;
	struct proto_conn *sconn;
	struct main_dest md;
	struct chan ch[NCHAN + 1];
	pthread_t rt[NCHAN + 1], st[NCHAN + 1], mt;
	struct proto_pages_opts o = {.compress = compress};
	uint8_t *mem = malloc(MEM);
	char derr[PROTO_ERR_LEN];

	memset(&md, 0, sizeof md);
	memset(ch, 0, sizeof ch);
	fill_memory(mem, MEM, 1);
	open_main(&src, &sconn, &md, compress);
	cr_assert_eq(proto_rounds_new(NCHAN + 1, &md.rounds, err), 0);
	target.base = md.d.mem;
	target.rounds = md.rounds;
	if (direct)
		proto_session_set_target(&md.d.s, &target);
	for (unsigned c = 0; c <= NCHAN; c++) {
		ch[c].index = c;
		ch[c].mem = mem;
		ch[c].rounds = md.rounds;
		ch[c].dmem = md.d.mem;
		cr_assert_eq(proto_pages_enc_new(&o, &ch[c].enc, err), 0);
		if (c == 0)
			continue;
		cr_assert_eq(join(&ch[c], &src, &md.d.s, src.token, err, derr), 0, "%s / %s", err,
			     derr);
		cr_assert_eq(ch[c].s.state, PROTO_ST_CHANNEL);
		if (direct)
			proto_session_set_target(&ch[c].d, &target);
		pthread_create(&rt[c], NULL, chan_recv, &ch[c]);
	}
	pthread_create(&mt, NULL, main_recv, &md);
	for (uint32_t r = 1; r <= ROUNDS; r++) {
		struct proto_msg re = {.type = PROTO_ROUND_END};

		if (r > 1) /* the guest rewrites the first half */
			fill_memory(mem, MEM / 2, 10 + r);
		for (unsigned c = 1; c <= NCHAN; c++) {
			ch[c].round = r;
			pthread_create(&st[c], NULL, chan_send, &ch[c]);
		}
		cr_assert_eq(send_round(&src, ch[0].enc, mem, 0, r, err), 0, "%s", err);
		re.u.round_end = (struct proto_round_end){.round = r, .nchannels = NCHAN + 1};
		re.u.round_end.batches[0] = src.tx_round == r ? src.tx_batches : 0;
		for (unsigned c = 1; c <= NCHAN; c++) {
			pthread_join(st[c], NULL);
			cr_assert_eq(ch[c].rc, 0, "channel %u: %s", c, ch[c].err);
			re.u.round_end.batches[c] = ch[c].s.tx_batches;
		}
		cr_assert_eq(proto_session_send(&src, &re, err), 0, "%s", err);
	}
	for (unsigned c = 1; c <= NCHAN; c++) {
		proto_conn_close(ch[c].sconn); /* ends the receiving thread */
		ch[c].sconn = NULL;
	}
	for (unsigned c = 1; c <= NCHAN; c++) {
		pthread_join(rt[c], NULL);
		cr_assert_eq(ch[c].rc, 0, "channel %u: %s", c, ch[c].err);
		cr_assert_gt(ch[c].applied, 0);
	}
	{
		struct proto_msg cancel = {.type = PROTO_CANCEL, .u.reason = {ECANCELED, "end"}};

		cr_assert_eq(proto_session_send(&src, &cancel, err), 0, "%s", err);
	}
	pthread_join(mt, NULL);
	cr_assert_eq(md.rc, 0, "%s", md.err);
	cr_assert_eq(md.round_ends, ROUNDS);
	cr_assert_eq(memcmp(md.d.mem, mem, MEM), 0, "the destination's memory differs");
	if (compress)
		cr_assert_gt(proto_pages_enc_stats(ch[1].enc)->compressed_batches, 0);
	for (unsigned c = 0; c <= NCHAN; c++) {
		proto_pages_enc_free(ch[c].enc);
		if (c)
			close_chan(&ch[c]);
	}
	proto_rounds_free(md.rounds);
	proto_session_release(&src);
	proto_session_release(&md.d.s);
	proto_conn_close(sconn);
	proto_conn_close(md.d.conn);
	free(md.d.mem);
	free(mem);
}

Test(channels, four_channels_reassemble_exactly)
{
	run(false, false);
}

Test(channels, four_channels_compressed)
{
	run(true, false);
}

/* The sessions apply the pages themselves, ordered by the rounds. */
Test(channels, four_channels_into_a_target)
{
	run(false, true);
	run(true, true);
}

Test(channels, wrong_token_is_refused)
{
	struct proto_session src;
	struct proto_conn *sconn;
	struct main_dest md;
	struct chan ch = {.index = 1};
	uint8_t token[PROTO_ID_LEN] = {0};
	char derr[PROTO_ERR_LEN];

	memset(&md, 0, sizeof md);
	open_main(&src, &sconn, &md, false);
	cr_assert_eq(join(&ch, &src, &md.d.s, token, err, derr), -ECONNABORTED);
	cr_assert(strstr(err, "session id or channel token does not match"), "%s", err);
	cr_assert(strstr(derr, "channel 1: session id or channel token does not match"), "%s",
		  derr);
	close_chan(&ch);
	ch.index = NCHAN + 1; /* past the channels the preflight asked for */
	cr_assert_eq(join(&ch, &src, &md.d.s, src.token, err, derr), -ECONNABORTED);
	cr_assert(strstr(derr, "channel 5: the migration has channels 1..4"), "%s", derr);
	close_chan(&ch);
	proto_session_release(&src);
	proto_session_release(&md.d.s);
	proto_conn_close(sconn);
	proto_conn_close(md.d.conn);
	free(md.d.mem);
}

Test(channels, round_end_waits_for_missing_batches_and_refuses_extra_ones)
{
	struct proto_rounds *r;
	struct proto_round_end re = {.round = 1, .nchannels = 2, .batches = {1, 2}};

	cr_assert_eq(proto_rounds_new(2, &r, err), 0);
	/* the main connection (0) cannot wait for its own missing batch */
	cr_assert_eq(proto_rounds_end(r, &re, 100, err), -EPROTO);
	cr_assert(strstr(err, "counts 1 batches on the main connection, 0 came"), "%s", err);
	cr_assert_eq(proto_rounds_batch_begin(r, 0, 1, 100, err), 0);
	proto_rounds_batch_end(r, 0);
	cr_assert_eq(proto_rounds_batch_begin(r, 1, 1, 100, err), 0);
	proto_rounds_batch_end(r, 1);
	cr_assert_eq(proto_rounds_end(r, &re, 100, err), -ETIMEDOUT);
	cr_assert(strstr(err, "applied/sent per channel: 1/1 1/2"), "%s", err);
	/* a channel's batch of round 2 waits while round 1 is open; on the main
	 * connection, which carries ROUND_END 1, it is refused at once */
	cr_assert_eq(proto_rounds_batch_begin(r, 1, 2, 50, err), -ETIMEDOUT);
	cr_assert(strstr(err, "waited 50 ms for round 1 to end"), "%s", err);
	cr_assert_eq(proto_rounds_batch_begin(r, 0, 2, 5000, err), -EPROTO);
	cr_assert(strstr(err, "round 2 on the main connection before ROUND_END 1"), "%s", err);
	proto_rounds_batch_end(r, 1);
	proto_rounds_batch_end(r, 1);
	cr_assert_eq(proto_rounds_end(r, &re, 100, err), -EPROTO);
	cr_assert(strstr(err, "channel 1 applied 3 batches, 2 announced"), "%s", err);
	proto_rounds_free(r);

	cr_assert_eq(proto_rounds_new(2, &r, err), 0);
	re.batches[0] = 0;
	re.batches[1] = 0;
	cr_assert_eq(proto_rounds_end(r, &re, 100, err), 0, "%s", err);
	cr_assert_eq(proto_rounds_batch_begin(r, 1, 1, 100, err), -EPROTO);
	cr_assert(strstr(err, "a batch of round 1 arrived after ROUND_END 1"), "%s", err);
	re.round = 3;
	cr_assert_eq(proto_rounds_end(r, &re, 100, err), -EPROTO);
	cr_assert(strstr(err, "ROUND_END 3 out of order (expected round 2)"), "%s", err);
	proto_rounds_abort(r, "channel 1 died");
	cr_assert_eq(proto_rounds_batch_begin(r, 0, 2, 100, err), -ECANCELED);
	cr_assert_str_eq(err, "channel 1 died");
	proto_rounds_free(r);
}
