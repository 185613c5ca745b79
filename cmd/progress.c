/* cmd/progress.c: a one-line progress bar on standard error (what is being
 * done, percent, bytes, rate, time left), redrawn at most ten times a second,
 * only on a terminal. Nothing is drawn before the total is known (no "0 B/0 B"
 * frame); a new phase ("verifying" after "mirroring") ends the line of the
 * last one and starts its own. */
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
	p->drawn = false;
}

static void draw(struct progress *p, uint64_t done, double now)
{
	char bar[BAR_WIDTH + 1], d[32], t[32], rate[32];
	double frac = p->total ? (double)done / (double)p->total : 1.0;
	double elapsed = now - p->start;
	double bps = elapsed > 0 ? (double)done / elapsed : 0;
	int filled;

	if (frac > 1)
		frac = 1;
	filled = (int)(frac * BAR_WIDTH);
	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r%-10s [%s] %3.0f%% %s/%s %s/s", p->label, bar, frac * 100,
		format_size(done, d, sizeof d), format_size(p->total, t, sizeof t),
		format_size((uint64_t)bps, rate, sizeof rate));
	if (bps > 0 && done < p->total)
		fprintf(stderr, " %.0fs left ", (double)(p->total - done) / bps);
	else
		fputs("          ", stderr);
	fflush(stderr);
	p->drawn = true;
}

void progress_update(struct progress *p, uint64_t done)
{
	double now;

	if (!p->enabled || p->total == 0)
		return;
	now = util_now();
	if (now - p->last_draw < 0.1)
		return;
	p->last_draw = now;
	draw(p, done, now);
}

void progress_phase(struct progress *p, const char *label, uint64_t total)
{
	if (p->enabled && p->drawn) {
		draw(p, p->total, util_now());
		fputc('\n', stderr);
	}
	progress_init(p, label, total, p->enabled);
}

void progress_end(struct progress *p, bool ok)
{
	if (!p->enabled)
		return;
	if (ok && p->total)
		draw(p, p->total, util_now());
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
}

void progress_done(struct progress *p)
{
	progress_end(p, true);
}
