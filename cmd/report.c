/* cmd/report.c: `smove report`, a migration's timeline drawn as an SVG from
 * the JSON events `smove move --json` prints (docs/control-socket.md): the
 * phases as bands, the storage copy's progress as a line, each memory round
 * as a bar (bytes sent, with its dirty rate and throttle), and the pause.
 * It reads the events only; it draws no conclusion the events do not hold. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "proto/proto.h"

static const char help[] =
    "Usage: smove report [-o FILE.svg] EVENTS.jsonl\n"
    "\n"
    "Draw a migration's timeline as an SVG image from the JSON events that\n"
    "'smove move --json' prints (one a line; EVENTS '-' reads standard input):\n"
    "its phases, the disks' copy, every memory round (bytes sent, dirty rate,\n"
    "throttle) and the pause, on one time axis, with the result above.\n"
    "\n"
    "  -o, --output FILE  write the SVG to FILE (default: standard output)\n"
    "  -h, --help         show this help\n";

#define W	  1000.0 /* image width */
#define LEFT	  110.0	 /* the tracks' labels */
#define RIGHT	  60.0
#define PLOT_W	  (W - LEFT - RIGHT)
#define MAX_ITEMS 4096

struct phase {
	double t;
	char name[24], detail[96];
};
struct point {
	double t, frac, rate;
};
struct round {
	double t, ms, bytes, dirty_rate, throttle, bandwidth, predicted;
	int n;
};

struct timeline {
	char name[80], to[80], result[24], error[200];
	double total_s, downtime_ms, pause_ms, end;
	double bytes_disk, bytes_memory, bytes_total;
	bool have_result;
	struct phase phases[64];
	size_t nphases;
	struct point points[MAX_ITEMS];
	size_t npoints;
	struct round rounds[1024];
	size_t nrounds;
	double switchover_t; /* -1: none */
};

static double num(const struct proto_json_value *v, const char *key)
{
	const struct proto_json_value *x = v ? proto_json_get(v, key) : NULL;

	return x && x->type == PROTO_JSON_NUMBER ? x->num : 0;
}

static void str(const struct proto_json_value *v, const char *key, char *out, size_t len)
{
	const struct proto_json_value *x = proto_json_get(v, key);

	snprintf(out, len, "%s", x && x->type == PROTO_JSON_STRING ? x->str : "");
}

static void add_event(struct timeline *tl, const struct proto_json_value *v)
{
	char event[24];
	double t = num(v, "t");

	str(v, "event", event, sizeof(event));
	if (t > tl->end)
		tl->end = t;
	if (strcmp(event, "started") == 0) {
		str(v, "name", tl->name, sizeof(tl->name));
	} else if (strcmp(event, "phase") == 0 && tl->nphases < 64) {
		struct phase *p = &tl->phases[tl->nphases++];

		p->t = t;
		str(v, "phase", p->name, sizeof(p->name));
		str(v, "detail", p->detail, sizeof(p->detail));
		if (strcmp(p->name, "switchover") == 0)
			tl->switchover_t = t;
	} else if (strcmp(event, "progress") == 0 && tl->npoints < MAX_ITEMS) {
		double total = num(v, "total");

		if (total > 0)
			tl->points[tl->npoints++] =
			    (struct point){t, num(v, "done") / total, num(v, "rate")};
	} else if (strcmp(event, "round") == 0 && tl->nrounds < 1024) {
		tl->rounds[tl->nrounds++] = (struct round){
		    t,
		    num(v, "elapsed_ms"),
		    num(v, "bytes"),
		    num(v, "dirty_rate"),
		    num(v, "throttle"),
		    num(v, "bandwidth"),
		    num(v, "predicted_downtime_ms"),
		    (int)num(v, "round"),
		};
	} else if (strcmp(event, "result") == 0) {
		const struct proto_json_value *b = proto_json_get(v, "bytes");

		tl->have_result = true;
		str(v, "result", tl->result, sizeof(tl->result));
		str(v, "error", tl->error, sizeof(tl->error));
		str(v, "to", tl->to, sizeof(tl->to));
		if (!tl->name[0])
			str(v, "name", tl->name, sizeof(tl->name));
		tl->total_s = num(v, "total_s");
		tl->downtime_ms = num(v, "downtime_ms");
		tl->pause_ms = num(v, "pause_ms");
		tl->bytes_disk = num(b, "disk");
		tl->bytes_memory = num(b, "memory");
		tl->bytes_total = num(b, "total");
	}
}

/* Reads the events; lines that are not JSON objects (a person's copy with
 * other output in it) are skipped. */
static int read_events(FILE *f, struct timeline *tl, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) >= 0) {
		struct proto_json_value *v;
		char perr[PROTO_ERR_LEN];

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0 || line[0] != '{' || proto_json_parse(line, (size_t)len, &v, perr) < 0)
			continue;
		if (v->type == PROTO_JSON_OBJECT && proto_json_get(v, "event")) {
			add_event(tl, v);
			n++;
		}
		proto_json_free(v);
	}
	free(line);
	if (n == 0) {
		snprintf(err, errlen,
			 "no migration events in it (the lines 'smove move --json' "
			 "prints)");
		return -1;
	}
	if (tl->total_s > tl->end)
		tl->end = tl->total_s;
	if (tl->end <= 0)
		tl->end = 1;
	return 0;
}

/* ---- drawing ---------------------------------------------------------------------- */

static void xml_text(FILE *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", o);
			break;
		case '>':
			fputs("&gt;", o);
			break;
		case '&':
			fputs("&amp;", o);
			break;
		case '"':
			fputs("&quot;", o);
			break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, o);
		}
	}
}

static double x_of(const struct timeline *tl, double t)
{
	return LEFT + PLOT_W * (t < 0 ? 0 : t > tl->end ? 1 : t / tl->end);
}

static const char *phase_color(const char *name)
{
	static const struct {
		const char *name, *color;
	} colors[] = {
	    {"connect", "#c6dbef"},  {"preflight", "#9ecae1"},	{"storage", "#a1d99b"},
	    {"memory", "#fdd0a2"},   {"switchover", "#fb6a4a"}, {"commit", "#bcbddc"},
	    {"rollback", "#d9d9d9"}, {"resolve", "#dadaeb"},
	};

	for (size_t i = 0; i < sizeof(colors) / sizeof(colors[0]); i++)
		if (strcmp(name, colors[i].name) == 0)
			return colors[i].color;
	return "#eeeeee";
}

/* A "nice" step for n ticks over span. */
static double tick_step(double span, int n)
{
	double raw = span / n, mag = pow(10, floor(log10(raw))), f = raw / mag;

	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void draw_header(FILE *o, const struct timeline *tl)
{
	char a[32], b[32], c[32];

	fprintf(o, "<text x=\"%.0f\" y=\"26\" font-size=\"18\" font-weight=\"bold\">", LEFT);
	xml_text(o, tl->name[0] ? tl->name : "migration");
	if (tl->to[0]) {
		fputs(" \xe2\x86\x92 ", o);
		xml_text(o, tl->to);
	}
	fputs(": ", o);
	xml_text(o, tl->have_result ? tl->result : "no result (unfinished)");
	fputs("</text>\n", o);
	fprintf(o, "<text x=\"%.0f\" y=\"46\" font-size=\"13\">", LEFT);
	if (tl->have_result && strcmp(tl->result, "done") == 0)
		fprintf(o,
			"total %.2f s, downtime %.1f ms (vCPUs stopped in %.2f ms); sent %s: "
			"disks %s, memory %s in %zu rounds",
			tl->total_s, tl->downtime_ms, tl->pause_ms,
			format_size((uint64_t)tl->bytes_total, a, sizeof(a)),
			format_size((uint64_t)tl->bytes_disk, b, sizeof(b)),
			format_size((uint64_t)tl->bytes_memory, c, sizeof(c)), tl->nrounds);
	else if (tl->error[0])
		xml_text(o, tl->error);
	else
		fprintf(o, "%.2f s of events", tl->end);
	fputs("</text>\n", o);
}

static void draw_axis(FILE *o, const struct timeline *tl, double top, double bottom)
{
	double step = tick_step(tl->end, 10);

	fprintf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
		LEFT, bottom, LEFT + PLOT_W, bottom);
	for (double t = 0; t <= tl->end * 1.0001; t += step) {
		double x = x_of(tl, t);

		fprintf(o,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%g "
			"s</text>\n",
			x, top, x, bottom, x, bottom + 14, t);
	}
}

static void track_label(FILE *o, double y, const char *label)
{
	fprintf(o, "<text x=\"8\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", y,
		label);
}

static void draw_phases(FILE *o, const struct timeline *tl, double y, double h)
{
	track_label(o, y + h / 2 + 4, "phases");
	for (size_t i = 0; i < tl->nphases; i++) {
		const struct phase *p = &tl->phases[i];
		double end = i + 1 < tl->nphases ? tl->phases[i + 1].t : tl->end;
		double x0 = x_of(tl, p->t), x1 = x_of(tl, end);

		if (x1 - x0 < 1)
			x1 = x0 + 1;
		fputs("<g class=\"phase\"><title>", o);
		xml_text(o, p->name);
		fprintf(o, " at %.3f s", p->t);
		if (p->detail[0]) {
			fputs(": ", o);
			xml_text(o, p->detail);
		}
		fprintf(o,
			"</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			"fill=\"%s\" stroke=\"#fff\"/>",
			x0, y, x1 - x0, h, phase_color(p->name));
		if (x1 - x0 > 8.0 * (double)strlen(p->name)) {
			fprintf(o,
				"<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
				"text-anchor=\"middle\">",
				(x0 + x1) / 2, y + h / 2 + 4);
			xml_text(o, p->name);
			fputs("</text>", o);
		}
		fputs("</g>\n", o);
	}
}

static void draw_storage(FILE *o, const struct timeline *tl, double y, double h)
{
	track_label(o, y + h / 2 + 4, "disks");
	fprintf(o, "<text x=\"8\" y=\"%.1f\" font-size=\"11\">copied %%</text>\n", y + h / 2 + 18);
	fprintf(o,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		"stroke=\"#ccc\"/>\n",
		LEFT, y, PLOT_W, h);
	if (tl->npoints == 0) {
		fprintf(o,
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#777\">no storage "
			"progress events</text>\n",
			LEFT + 6, y + h / 2 + 4);
		return;
	}
	fputs("<polyline class=\"storage\" fill=\"none\" stroke=\"#31a354\" stroke-width=\"2\" "
	      "points=\"",
	      o);
	for (size_t i = 0; i < tl->npoints; i++)
		fprintf(o, "%.1f,%.1f ", x_of(tl, tl->points[i].t),
			y + h - h * (tl->points[i].frac > 1 ? 1 : tl->points[i].frac));
	fputs("\"/>\n", o);
	fprintf(o,
		"<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">100%%</text>\n",
		LEFT - 4, y + 10);
}

static void draw_rounds(FILE *o, const struct timeline *tl, double y, double h)
{
	double most = 1, most_rate = 1;
	char a[32], b[32], c[32];

	track_label(o, y + h / 2 + 4, "memory");
	fprintf(o, "<text x=\"8\" y=\"%.1f\" font-size=\"11\">bytes a round</text>\n",
		y + h / 2 + 18);
	fprintf(o,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		"stroke=\"#ccc\"/>\n",
		LEFT, y, PLOT_W, h);
	if (tl->nrounds == 0) {
		fprintf(o,
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#777\">no memory "
			"rounds</text>\n",
			LEFT + 6, y + h / 2 + 4);
		return;
	}
	for (size_t i = 0; i < tl->nrounds; i++) {
		most = fmax(most, tl->rounds[i].bytes);
		most_rate = fmax(most_rate, tl->rounds[i].dirty_rate);
	}
	for (size_t i = 0; i < tl->nrounds; i++) {
		const struct round *r = &tl->rounds[i];
		double x1 = x_of(tl, r->t), x0 = x_of(tl, r->t - r->ms / 1000);
		double bh = h * r->bytes / most;

		if (x1 - x0 < 2)
			x0 = x1 - 2;
		fprintf(o,
			"<g class=\"round\"><title>round %d: %s in %.0f ms (%s/s), dirty rate "
			"%s/s, throttle %.0f%%, predicted downtime %.1f ms</title>"
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
			r->n, format_size((uint64_t)r->bytes, a, sizeof(a)), r->ms,
			format_size((uint64_t)r->bandwidth, b, sizeof(b)),
			format_size((uint64_t)r->dirty_rate, c, sizeof(c)), r->throttle,
			r->predicted, x0, y + h - bh, x1 - x0, bh,
			r->throttle > 0 ? "#e6550d" : "#fd8d3c");
		if (r->throttle > 0)
			fprintf(o,
				"<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
				"text-anchor=\"middle\">%.0f%%</text>",
				(x0 + x1) / 2, y + h - bh - 3, r->throttle);
		fputs("</g>\n", o);
	}
	/* The dirty rate, on its own scale. */
	fputs("<polyline class=\"dirty\" fill=\"none\" stroke=\"#756bb1\" stroke-width=\"1.5\" "
	      "stroke-dasharray=\"4 2\" points=\"",
	      o);
	for (size_t i = 0; i < tl->nrounds; i++)
		fprintf(o, "%.1f,%.1f ", x_of(tl, tl->rounds[i].t),
			y + h - h * tl->rounds[i].dirty_rate / most_rate);
	fputs("\"/>\n", o);
	fprintf(
	    o,
	    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s</text>\n"
	    "<text x=\"8\" y=\"%.1f\" font-size=\"10\" fill=\"#756bb1\">- - dirty rate,</text>\n"
	    "<text x=\"8\" y=\"%.1f\" font-size=\"10\" fill=\"#756bb1\">up to %s/s</text>\n",
	    LEFT + PLOT_W + 4, y + 10, format_size((uint64_t)most, a, sizeof(a)), y + h / 2 + 34,
	    y + h / 2 + 46, format_size((uint64_t)most_rate, b, sizeof(b)));
}

static void draw_pause(FILE *o, const struct timeline *tl, double top, double bottom)
{
	double t0 = tl->switchover_t, ms = tl->downtime_ms;
	double x0, x1;

	if (t0 < 0 || ms <= 0)
		return;
	x0 = x_of(tl, t0);
	x1 = x_of(tl, t0 + ms / 1000);
	if (x1 - x0 < 2)
		x1 = x0 + 2;
	fprintf(o,
		"<g class=\"pause\"><title>the VM paused: downtime %.1f ms</title>"
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#de2d26\" "
		"opacity=\"0.6\"/>"
		"<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#de2d26\" "
		"text-anchor=\"middle\">pause %.1f ms</text></g>\n",
		ms, x0, top, x1 - x0, bottom - top, (x0 + x1) / 2, top - 5, ms);
}

static void draw(FILE *o, const struct timeline *tl)
{
	const double phases_y = 70, storage_y = 120, rounds_y = 230, bottom = 380;

	fprintf(o,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		"viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
		W, bottom + 40, W, bottom + 40);
	draw_header(o, tl);
	draw_axis(o, tl, phases_y, bottom);
	draw_phases(o, tl, phases_y, 36);
	draw_storage(o, tl, storage_y, 90);
	draw_rounds(o, tl, rounds_y, 140);
	draw_pause(o, tl, phases_y, bottom);
	fputs("</svg>\n", o);
}

int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = "smove report", *out = NULL, *in;
	struct timeline *tl;
	char err[256];
	FILE *f, *o;
	int c, r;

	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else
			return help_or_unknown(c, prog, help);
	}
	if (optind != argc - 1)
		return usage_error(prog, "expected one EVENTS file ('-': standard input)");
	in = argv[optind];
	if (is_url(in) || (out && is_url(out)))
		return usage_error(prog, "%s: is a URL; report reads and writes local files",
				   is_url(in) ? in : out);
	f = strcmp(in, "-") == 0 ? stdin : fopen(in, "r");
	if (!f) {
		msg("%s: %s", in, strerror(errno));
		return EXIT_FAILURE;
	}
	tl = calloc(1, sizeof(*tl));
	if (!tl) {
		msg("out of memory");
		return EXIT_FAILURE;
	}
	tl->switchover_t = -1;
	r = read_events(f, tl, err, sizeof(err));
	if (f != stdin)
		fclose(f);
	if (r < 0) {
		msg("%s: %s", in, err);
		free(tl);
		return EXIT_FAILURE;
	}
	o = out ? fopen(out, "w") : stdout;
	if (!o) {
		msg("%s: %s", out, strerror(errno));
		free(tl);
		return EXIT_FAILURE;
	}
	draw(o, tl);
	r = ferror(o) ? -1 : 0;
	if (out && fclose(o) != 0)
		r = -1;
	free(tl);
	if (r < 0) {
		msg("%s: cannot write: %s", out ? out : "standard output", strerror(errno));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
