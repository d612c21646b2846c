// SPDX-License-Identifier: GPL-2.0
/*
 * tapflow top: a live full-screen view (ncurses) of the traced interfaces
 * (VM taps first) with their rates and totals, and their top flows.
 *
 * Keys: b/p/r sort flows by bytes/packets/rate; v cycles the filter
 * through the VMs (interfaces without a VM by name) and back to all; /
 * types a VM or interface name; q quits.
 *
 * Every line fits the terminal's width, which follows the tty (TIOCGWINSZ,
 * on SIGWINCH): the tables' columns give way in the priority order of
 * top_table.c, long names and addresses are cut with a marker.
 *
 * The terminal is restored on every way out: q, -d, the first SIGINT/
 * SIGTERM (the main loop sees tf_exiting and calls endwin), a second one
 * (the handler restores the saved termios and leaves the alternate screen
 * with async-signal-safe calls), an error, and exit() (atexit backstop).
 */
#include <curses.h>
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "collector.h"
#include "flows.h"
#include "log.h"
#include "output.h"
#include "report.h"
#include "session.h"
#include "signals.h"
#include "top_table.h"

/* ---- terminal restore --------------------------------------------------- */

static struct termios saved_tio;
static bool have_tio;
static volatile sig_atomic_t curses_on;

static void curses_off(void)
{
	if (curses_on && !isendwin())
		endwin();
	curses_on = 0;
}

/* Second signal: out now, but with the terminal as we found it. */
static void restore_terminal_now(void)
{
	static const char leave[] = "\033[?1049l\033[?25h\r\n";

	if (!curses_on)
		return;
	if (have_tio)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	if (write(STDOUT_FILENO, leave, sizeof(leave) - 1) < 0)
		return;
}

/*
 * The screen follows the tty's size (TIOCGWINSZ) on SIGWINCH. ncurses would
 * do it too, but only in a getch() that finds a key: with a timeout it
 * misses resizes until one is pressed. Our handler keeps ncurses' out.
 */
static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

static void follow_tty_size(void)
{
	struct winsize ws;

	resized = 0;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
		resizeterm(ws.ws_row, ws.ws_col);
	/* Paint it all anew: the terminal may have reflowed the old lines. */
	clearok(curscr, TRUE);
}

/* ---- the view's state ---------------------------------------------------- */

struct top {
	const struct tf_cli *cli;
	struct tf_session *s;
	struct tf_collector *c;
	struct tf_flows_run *run;
	enum tf_flow_sort sort;
	char filter[TF_NAME_MAX];	/* "" = all: a VM name or an interface name */
	bool prompt;			/* typing after '/' */
	char input[TF_NAME_MAX];
	size_t input_len;
	char message[160];		/* one-shot status message */
	int maxx;			/* the screen's width at this drawing */
	char *line, *line2;		/* a line of it, and one being built */
	size_t line_size;
};

/* The name a target is filtered by: its VM, else the interface. */
static const char *target_name(const struct tf_target *t)
{
	return t->has_vif ? t->vif.vm : t->ifname;
}

static bool target_shown(const struct top *tp, const struct tf_target *t)
{
	return !tp->filter[0] || !strcmp(tp->filter, target_name(t)) ||
	       !strcmp(tp->filter, t->ifname);
}

static bool name_known(const struct top *tp, const char *name)
{
	for (size_t i = 0; i < tp->c->n_targets; i++)
		if (!strcmp(name, target_name(&tp->c->targets[i])) ||
		    !strcmp(name, tp->c->targets[i].ifname))
			return true;
	return false;
}

/* v: all -> first VM/interface name -> ... -> last -> all. */
static void cycle_filter(struct top *tp)
{
	const char *names[64];
	size_t n = 0, cur = 0;
	bool found = false;

	for (size_t i = 0; i < tp->c->n_targets && n < 64; i++) {
		const struct tf_target *t = &tp->c->targets[i];
		bool dup = false;

		if (!t->flows && !t->has_vif)
			continue;	/* bridges, uplinks: no flows of their own */
		for (size_t k = 0; k < n; k++)
			dup |= !strcmp(names[k], target_name(t));
		if (!dup)
			names[n++] = target_name(t);
	}
	for (size_t k = 0; k < n; k++) {
		if (!strcmp(names[k], tp->filter)) {
			cur = k;
			found = true;
		}
	}
	if (!tp->filter[0] || !found)
		snprintf(tp->filter, sizeof(tp->filter), "%s", n ? names[0] : "");
	else if (cur + 1 < n)
		snprintf(tp->filter, sizeof(tp->filter), "%s", names[cur + 1]);
	else
		tp->filter[0] = '\0';
}

/* ---- drawing -------------------------------------------------------------- */

static double row_rate(const struct tf_flow_row *r)
{
	return r->rx_bps + r->tx_bps;
}

static enum tf_flow_sort g_sort;

static int cmp_rows(const void *a, const void *b)
{
	const struct tf_flow_row *x = a, *y = b;
	uint64_t bx = x->v.rx.bytes + x->v.tx.bytes, by = y->v.rx.bytes + y->v.tx.bytes;
	uint64_t px = x->v.rx.packets + x->v.tx.packets, py = y->v.rx.packets + y->v.tx.packets;

	if (g_sort == TF_SORT_RATE && row_rate(x) != row_rate(y))
		return row_rate(x) > row_rate(y) ? -1 : 1;
	if (g_sort == TF_SORT_PACKETS && px != py)
		return px > py ? -1 : 1;
	if (bx != by)
		return bx > by ? -1 : 1;
	if (px != py)
		return px > py ? -1 : 1;
	return strcmp(x->t->ifname, y->t->ifname);
}

/* Every shown target's live flows and nonzero aggregates, sorted. */
static long collect_rows(struct top *tp, struct tf_flow_row **out)
{
	struct tf_flow_row *all = NULL;
	long n = 0;

	*out = NULL;
	tp->run->rep.top_n = 0;
	tp->run->rep.final = false;
	for (size_t i = 0; i < tp->c->n_targets; i++) {
		const struct tf_target *t = &tp->c->targets[i];
		struct tf_flow_row *rows, *grown;
		long k, m = 0;

		if (!t->flows || !target_shown(tp, t))
			continue;
		k = tf_flow_rows(&tp->run->rep, t, tp->sort, false, &rows);
		if (k < 0) {
			free(all);
			return -1;
		}
		grown = realloc(all, (size_t)(n + k + 1) * sizeof(*all));
		if (!grown) {
			free(rows);
			free(all);
			return -1;
		}
		all = grown;
		/* A live view: flows that ended are left out. */
		for (long r = 0; r < k; r++)
			if (!rows[r].expired)
				all[n + m++] = rows[r];
		n += m;
		free(rows);
	}
	g_sort = tp->sort;
	if (n > 1)
		qsort(all, (size_t)n, sizeof(*all), cmp_rows);
	*out = all;
	return n;
}

/*
 * Every line goes through here, cut to the screen's width: ncurses would
 * carry the rest over to the next line. Made safe for the terminal on the
 * way (a line tf_layout_line made safe already stays as it is).
 */
static void put_line(struct top *tp, int y, const char *s)
{
	tf_term_fit(s, tp->maxx, false, tp->line, tp->line_size);
	mvaddstr(y, 0, tp->line);
}

static int draw_targets(struct top *tp, int y, int maxy)
{
	const struct tf_table *tab = &tf_top_targets;
	struct tf_top_cells cells;
	struct tf_layout l;
	bool on[TF_TT_COLS];
	int want[TF_TT_COLS];

	tf_top_targets_on(tp->c, tp->run->tcp_on ? &tp->run->tcp : NULL, on);
	tf_layout_want_init(tab, on, want);
	for (size_t i = 0; i < tp->c->n_targets; i++) {
		if (!target_shown(tp, &tp->c->targets[i]))
			continue;
		tf_top_target_cells(tp->c, tp->run->tcp_on ? &tp->run->tcp : NULL, i, &cells);
		tf_layout_want(tab, cells.cell, want);
	}
	tf_layout_fit(tab, want, tp->maxx, &l);
	attron(A_BOLD);
	put_line(tp, y++, tf_layout_head(tab, &l, tp->line2, tp->line_size));
	attroff(A_BOLD);
	for (size_t i = 0; i < tp->c->n_targets && y < maxy; i++) {
		if (!target_shown(tp, &tp->c->targets[i]))
			continue;
		tf_top_target_cells(tp->c, tp->run->tcp_on ? &tp->run->tcp : NULL, i, &cells);
		put_line(tp, y++, tf_layout_line(tab, &l, cells.cell, tp->line2, tp->line_size));
	}
	return y;
}

static void draw_flows(struct top *tp, int y, int maxy)
{
	const struct tf_table *tab = &tf_top_flows;
	struct tf_flow_row *rows;
	long n = collect_rows(tp, &rows), shown;
	struct tf_top_cells cells;
	struct tf_layout l;
	bool on[TF_FT_COLS];
	int want[TF_FT_COLS];

	/* The rows that fit below the head decide the widths. */
	shown = n < maxy - y - 1 ? n : maxy - y - 1;
	tf_top_flows_on(&tp->run->rep, on);
	tf_layout_want_init(tab, on, want);
	for (long i = 0; i < shown; i++) {
		tf_top_flow_cells(&rows[i], &cells);
		tf_layout_want(tab, cells.cell, want);
	}
	tf_layout_fit(tab, want, tp->maxx, &l);
	attron(A_BOLD);
	put_line(tp, y++, tf_layout_head(tab, &l, tp->line2, tp->line_size));
	attroff(A_BOLD);
	if (n < 0) {
		put_line(tp, y, "(out of memory)");
		return;
	}
	if (!n) {
		snprintf(tp->line2, tp->line_size, "(no flows%s%s)", tp->filter[0] ? " of " : "",
			 tp->filter);
		put_line(tp, y, tp->line2);
	}
	for (long i = 0; i < shown; i++) {
		tf_top_flow_cells(&rows[i], &cells);
		put_line(tp, y++, tf_layout_line(tab, &l, cells.cell, tp->line2, tp->line_size));
	}
	free(rows);
}

/* The title bar: its parts while they fit, the filter cut if need be. */
static void draw_title(struct top *tp)
{
	char ts[16], part[3][64];
	const char *parts[8];
	struct tf_losses l;
	time_t now = time(NULL);
	struct tm tm;
	size_t o = 0;
	int n = 0, width = 0;

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	tf_collector_losses(tp->c, &l);
	snprintf(part[0], sizeof(part[0]), "flows: %zu", tf_flows_n_live(&tp->run->fl));
	snprintf(part[1], sizeof(part[1]), "map_full: %llu", (unsigned long long)l.flow_map_full);
	snprintf(part[2], sizeof(part[2]), "parse_errors: %llu",
		 (unsigned long long)l.parse_errors);
	parts[n++] = "tapflow top";
	parts[n++] = ts;
	parts[n++] = tf_flow_sort_name(tp->sort);
	parts[n++] = tp->filter[0] ? tp->filter : "all";
	parts[n++] = part[0];
	parts[n++] = part[1];
	parts[n++] = part[2];
	for (int k = 0; k < n; k++) {
		static const char *const label[] = { " ", "  ", "  sort: ", "  filter: ",
						     "  ", "  ", "  " };
		int room = tp->maxx - width - (int)strlen(label[k]);
		int w = (int)tf_term_width(parts[k]);

		/* A long VM name is cut, rather than lose the counters after it. */
		if (k == 3 && w > room && room >= 8)
			w = room;
		if (w > room)
			break;
		o += (size_t)snprintf(tp->line2 + o, tp->line_size - o, "%s", label[k]);
		tf_term_fit(parts[k], w, false, tp->line2 + o, tp->line_size - o);
		o += strlen(tp->line2 + o);
		width += (int)strlen(label[k]) + w;
	}
	attron(A_REVERSE);
	mvprintw(0, 0, "%*s", tp->maxx, "");
	mvaddstr(0, 0, tp->line2);
	attroff(A_REVERSE);
}

static void draw_status(struct top *tp, int y)
{
	static const char prompt[] = "VM or interface (Enter: apply, Esc: cancel): ";
	size_t len = strlen(tp->input);

	if (!tp->prompt) {
		put_line(tp, y, tp->message[0] ? tp->message :
			 "b/p/r: sort by bytes/packets/rate   v: next VM   /: VM name   q: quit");
		return;
	}
	/* Typing: the end of what was typed stays in sight. */
	if (strlen(prompt) + len <= (size_t)tp->maxx) {
		snprintf(tp->line2, tp->line_size, "%s%s", prompt, tp->input);
	} else {
		size_t keep = tp->maxx > 1 ? (size_t)tp->maxx - 1 : 0;

		snprintf(tp->line2, tp->line_size, "/%s", tp->input + (len > keep ? len - keep : 0));
	}
	put_line(tp, y, tp->line2);
}

/* Line buffers for the screen's width; false if there is no memory for them. */
static bool size_lines(struct top *tp, int maxx)
{
	size_t need = TF_LAYOUT_LINE_SIZE(maxx > 0 ? maxx : 1) + 64;
	char *a, *b;

	tp->maxx = maxx > 0 ? maxx : 0;
	if (need <= tp->line_size)
		return true;
	a = realloc(tp->line, need);
	if (a)
		tp->line = a;
	b = realloc(tp->line2, need);
	if (b)
		tp->line2 = b;
	if (!a || !b)
		return false;
	tp->line_size = need;
	return true;
}

static void draw(struct top *tp)
{
	int maxy, maxx;

	getmaxyx(stdscr, maxy, maxx);
	erase();
	if (!size_lines(tp, maxx)) {
		mvaddstr(0, 0, "(out of memory)");
		refresh();
		return;
	}
	draw_title(tp);
	draw_flows(tp, draw_targets(tp, 2, maxy / 2) + 1, maxy - 1);
	draw_status(tp, maxy - 1);
	refresh();
}

/* ---- keys ----------------------------------------------------------------- */

/* Returns true to quit. */
static bool key(struct top *tp, int ch)
{
	if (tp->prompt) {
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			tp->prompt = false;
			if (!tp->input_len || name_known(tp, tp->input))
				snprintf(tp->filter, sizeof(tp->filter), "%s", tp->input);
			else
				snprintf(tp->message, sizeof(tp->message),
					 "no traced VM or interface named '%.100s'", tp->input);
		} else if (ch == 27) {
			tp->prompt = false;
		} else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && tp->input_len) {
			tp->input[--tp->input_len] = '\0';
		} else if (ch >= 32 && ch < 127 && tp->input_len + 1 < sizeof(tp->input)) {
			tp->input[tp->input_len++] = (char)ch;
			tp->input[tp->input_len] = '\0';
		}
		return false;
	}
	tp->message[0] = '\0';
	switch (ch) {
	case 'q': case 'Q': return true;
	case 'b': tp->sort = TF_SORT_BYTES; break;
	case 'p': tp->sort = TF_SORT_PACKETS; break;
	case 'r': tp->sort = TF_SORT_RATE; break;
	case 'v': cycle_filter(tp); break;
	case '/':
		tp->prompt = true;
		tp->input[0] = '\0';
		tp->input_len = 0;
		break;
	}
	return false;
}

static void note_to_status(const char *msg, void *ctx)
{
	struct top *tp = ctx;
	char safe[TF_TERM_SIZE(sizeof(tp->message))];

	/* Notes quote VM and interface names: shown as the terminal cannot misread them. */
	snprintf(tp->message, sizeof(tp->message), "%s",
		 tf_term_str(msg, 0, 0, safe, sizeof(safe)));
}

static void loop(struct top *tp)
{
	double start = tf_now_mono(), next = start + tp->cli->interval;
	double end = tp->cli->duration > 0 ? start + tp->cli->duration : 1e300;

	draw(tp);
	while (!tf_exiting) {
		int ch = getch();	/* waits up to 100 ms; ERR on timeout or a signal */
		bool polled = tf_session_wait(tp->s, 0);
		double now;

		if (ch != ERR && ch != KEY_RESIZE && key(tp, ch))
			break;
		if (resized) {
			follow_tty_size();
			ch = KEY_RESIZE;
		}
		now = tf_now_mono();
		if (now >= end)
			break;
		if (now >= next) {
			while (next <= now)
				next += tp->cli->interval;
			tf_session_poll(tp->s);
			polled = true;
		}
		if (ch != ERR || polled)
			draw(tp);
	}
}

int tf_cmd_top(const struct tf_cli *cli)
{
	struct tf_collector_opts opts = {
		.attach_mode = cli->attach_mode, .flows = true, .max_flows = cli->max_flows,
		.nat = !cli->no_nat, .tcp = cli->tcp, .drops = !cli->no_drops,
	};
	struct tf_session s;
	struct tf_collector *c = &s.c;
	struct top tp = { .cli = cli, .s = &s, .c = c, .run = &s.fr };
	struct tf_summary sum;
	struct sigaction winch;
	int ret = TF_EXIT_RUNTIME;

	memset(&s, 0, sizeof(s));
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		tf_err("top needs a terminal (use flows --json for a pipe)");
		return TF_EXIT_RUNTIME;
	}
	if (tf_session_begin(&s, cli, &opts))
		goto out;
	if (tf_session_follow_flows(&s))
		goto out;
	/* What the session notes (a VM started or gone) goes to the status line. */
	tf_log_note_to(note_to_status, &tp);
	/* After tf_session_begin's handlers: a second signal must restore the terminal. */
	tf_signals_install();
	tf_signals_on_abort(restore_terminal_now);
	have_tio = tcgetattr(STDIN_FILENO, &saved_tio) == 0;
	atexit(curses_off);
	setlocale(LC_ALL, "");
	/*
	 * The tty's size (TIOCGWINSZ), never LINES/COLUMNS: a COLUMNS left
	 * over from another terminal would make every line wrap.
	 */
	use_env(FALSE);
	use_tioctl(TRUE);
	memset(&winch, 0, sizeof(winch));
	winch.sa_handler = on_winch;
	winch.sa_flags = SA_RESTART;	/* a resize is no reason to fail a read of the maps */
	sigemptyset(&winch.sa_mask);
	sigaction(SIGWINCH, &winch, NULL);
	if (!initscr()) {
		tf_err("cannot set up the terminal");
		goto out;
	}
	curses_on = 1;
	cbreak();	/* Ctrl-C stays a signal: the loop ends on tf_exiting */
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	timeout(100);
	loop(&tp);
	curses_off();
	tf_log_note_to(NULL, NULL);
	tf_session_finish(&s);
	tf_summary_fill(&sum, c);
	tf_report_flows_summary_table(&s.fr.rep, &sum, stdout);
	ret = TF_EXIT_OK;
	if (tf_out_finish(stdout, "the report to stdout"))
		ret = TF_EXIT_RUNTIME;
out:
	curses_off();
	tf_log_note_to(NULL, NULL);
	tf_session_end(&s);
	free(tp.line);
	free(tp.line2);
	return ret;
}
