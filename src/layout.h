/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Table columns for a terminal width, as htop or iftop do it: which columns
 * a table shows and how wide, so that no line is wider than the terminal.
 * Columns give way in priority order as the width shrinks; the essential
 * ones (the first n_keep by priority) are cut with a marker rather than
 * left out. Pure: no terminal, no I/O; the width comes from the caller.
 */
#ifndef TF_LAYOUT_H
#define TF_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#define TF_LAYOUT_MAX_COLS 16

struct tf_col {
	const char *head;
	int prio;		/* 1 goes last; columns of a table have distinct ones */
	int min;		/* an essential column is cut to no less than this (0: never cut) */
	int max;		/* never wider than this (0: as wide as its widest cell) */
	int least;		/* at least this wide: numbers keep their place as they change */
	bool right;		/* numbers: right-aligned */
	bool middle;		/* addresses: cut in the middle, keeping the port */
};

struct tf_table {
	const struct tf_col *cols;	/* in display order */
	int n;
	int n_keep;			/* the essential columns: priorities 1..n_keep */
};

struct tf_layout {
	int width[TF_LAYOUT_MAX_COLS];	/* 0: not shown */
	int total;			/* columns a line takes, blanks between included */
};

/*
 * The width each column wants: its widest cell (which need not be safe for
 * the terminal yet: measured as tf_term_str shows it). tf_layout_want_init
 * starts from the heads (or least), and -1 for a column that is off (no NAT join, no
 * drop tracer); tf_layout_want widens them by a row's cells. A column of
 * width 0 (empty head, empty cells) or off is never shown.
 */
void tf_layout_want_init(const struct tf_table *t, const bool *on, int *want);
void tf_layout_want(const struct tf_table *t, const char *const *cells, int *want);

/*
 * The layout for a terminal of width columns: columns in priority order, each
 * as wide as it wants, as long as they fit. If not even the essential ones
 * fit so, the essential ones alone, each cut down to at least its min as
 * needed (the first ones by priority that fit), and the room left widens
 * them again a column at a time, in priority order. layout->total <= width,
 * always.
 */
void tf_layout_fit(const struct tf_table *t, const int *want, int width,
		   struct tf_layout *layout);

/*
 * One line of the table: the cells of the shown columns, made safe for the
 * terminal, cut (with a marker) or padded to their widths, one blank apart,
 * trailing blanks left out. What does not fit in outlen bytes is left out
 * too (TF_LAYOUT_LINE_SIZE is enough unless cells hold combining marks,
 * which take bytes but no columns). Returns out.
 */
const char *tf_layout_line(const struct tf_table *t, const struct tf_layout *layout,
			   const char *const *cells, char *out, size_t outlen);
/* The header line: the columns' heads, as tf_layout_line. */
const char *tf_layout_head(const struct tf_table *t, const struct tf_layout *layout, char *out,
			   size_t outlen);

/* Bytes for a line of width columns: a character takes up to 4 bytes. */
#define TF_LAYOUT_LINE_SIZE(width) (4 * (size_t)(width) + 1)

#endif /* TF_LAYOUT_H */
