/* cmd/progress.c: a one-line progress bar on standard error (percent, bytes,
 * rate, time left), redrawn at most ten times a second, only on a terminal. */
#include <stdio.h>
#include <unistd.h>

#include "cmd/cmd.h"

#define BAR_WIDTH 30

void progress_init(struct progress *p, const char *label, uint64_t total, bool enabled)
{
	p->enabled = enabled && isatty(STDERR_FILENO);
	p->label = label;
	p->start = util_now();
	p->last_draw = 0;
	p->total = total;
}

static void draw(struct progress *p, uint64_t done, double now)
{
	char bar[BAR_WIDTH + 1], d[32], t[32], rate[32];
	double frac = p->total ? (double)done / (double)p->total : 1.0;
	double elapsed = now - p->start;
	double bps = elapsed > 0 ? (double)done / elapsed : 0;
	int filled = (int)(frac * BAR_WIDTH);

	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r%s [%s] %3.0f%% %s/%s %s/s", p->label, bar, frac * 100,
		format_size(done, d, sizeof d), format_size(p->total, t, sizeof t),
		format_size((uint64_t)bps, rate, sizeof rate));
	if (bps > 0 && done < p->total)
		fprintf(stderr, " %.0fs left ", (double)(p->total - done) / bps);
	else
		fputs("          ", stderr);
	fflush(stderr);
}

void progress_update(struct progress *p, uint64_t done)
{
	double now;

	if (!p->enabled)
		return;
	now = util_now();
	if (now - p->last_draw < 0.1)
		return;
	p->last_draw = now;
	draw(p, done, now);
}

void progress_done(struct progress *p)
{
	if (!p->enabled)
		return;
	draw(p, p->total, util_now());
	fputc('\n', stderr);
}
