// SPDX-License-Identifier: GPL-2.0
/*
 * Table columns for a terminal width (see layout.h). A column is either
 * shown whole or, for the essential ones only, cut: a line never trades a
 * cut VM name or address for a packet count.
 */
#include <string.h>

#include "layout.h"
#include "output.h"

/* What column c takes shown whole; 0 or less: not shown. */
static int capped(const struct tf_col *c, int want)
{
	return c->max > 0 && want > c->max ? c->max : want;
}

/* The columns' indices by priority, most important first. */
static int by_prio(const struct tf_table *t, int order[TF_LAYOUT_MAX_COLS])
{
	int n = t->n < TF_LAYOUT_MAX_COLS ? t->n : TF_LAYOUT_MAX_COLS;

	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && t->cols[order[k]].prio < t->cols[order[k - 1]].prio; k--) {
			int x = order[k];

			order[k] = order[k - 1];
			order[k - 1] = x;
		}
	return n;
}

void tf_layout_want_init(const struct tf_table *t, const bool *on, int *want)
{
	for (int i = 0; i < t->n && i < TF_LAYOUT_MAX_COLS; i++) {
		int w = (int)tf_term_width(t->cols[i].head);

		want[i] = !on || on[i] ? (w > t->cols[i].least ? w : t->cols[i].least) : -1;
	}
}

void tf_layout_want(const struct tf_table *t, const char *const *cells, int *want)
{
	for (int i = 0; i < t->n && i < TF_LAYOUT_MAX_COLS; i++) {
		int w;

		if (want[i] < 0)
			continue;
		w = (int)tf_term_width(cells[i]);
		if (w > want[i])
			want[i] = w;
	}
}

void tf_layout_fit(const struct tf_table *t, const int *want, int width,
		   struct tf_layout *layout)
{
	int order[TF_LAYOUT_MAX_COLS], n = by_prio(t, order), used = 0, shown = 0;
	int essential = 0, essential_shown = 0;

	memset(layout, 0, sizeof(*layout));
	if (width <= 0)
		return;
	for (int k = 0; k < n; k++)
		essential += want[order[k]] > 0 && t->cols[order[k]].prio <= t->n_keep;
	/* Every column whole, in priority order, while they fit. */
	for (int k = 0; k < n; k++) {
		int i = order[k], w = capped(&t->cols[i], want[i]);

		if (w <= 0)
			continue;	/* off or empty: takes no room, stops nothing */
		if (used + w + !!shown > width)
			break;
		layout->width[i] = w;
		used += w + !!shown;
		shown++;
		essential_shown += t->cols[i].prio <= t->n_keep;
	}
	if (essential_shown == essential) {
		layout->total = used;
		return;
	}
	/* Too narrow for that: the essential ones, cut down as far as needed. */
	memset(layout, 0, sizeof(*layout));
	used = shown = 0;
	for (int k = 0; k < n && t->cols[order[k]].prio <= t->n_keep; k++) {
		int i = order[k], w = capped(&t->cols[i], want[i]);

		if (w <= 0)
			continue;
		if (t->cols[i].min > 0 && w > t->cols[i].min)
			w = t->cols[i].min;
		if (used + w + !!shown > width) {
			/* The first one takes what there is, rather than nothing. */
			if (!shown) {
				layout->width[i] = width;
				used = width;
			}
			break;
		}
		layout->width[i] = w;
		used += w + !!shown;
		shown++;
	}
	/* A column at a time in priority order, so that all of them get some back. */
	for (bool grew = true; grew && used < width;) {
		grew = false;
		for (int k = 0; k < n && used < width; k++) {
			int i = order[k];

			if (layout->width[i] && layout->width[i] < capped(&t->cols[i], want[i])) {
				layout->width[i]++;
				used++;
				grew = true;
			}
		}
	}
	layout->total = used;
}

const char *tf_layout_line(const struct tf_table *t, const struct tf_layout *layout,
			   const char *const *cells, char *out, size_t outlen)
{
	size_t o = 0;
	int blanks = 0;
	bool first = true;

	if (!outlen)
		return out;
	for (int i = 0; i < t->n && i < TF_LAYOUT_MAX_COLS; i++) {
		const struct tf_col *c = &t->cols[i];
		int w = layout->width[i], pad;
		size_t len;

		if (!w)
			continue;
		blanks += !first;
		first = false;
		if (o + (size_t)blanks + 1 >= outlen)
			break;
		/* The cell after the blanks owed so far; right-aligned ones move right. */
		tf_term_fit(cells[i], w, c->middle, out + o + blanks, outlen - o - (size_t)blanks);
		len = strlen(out + o + blanks);
		pad = w - (int)tf_term_width(out + o + blanks);
		if (c->right && pad > 0) {
			if (o + (size_t)blanks + (size_t)pad + len + 1 > outlen)
				break;
			memmove(out + o + blanks + pad, out + o + blanks, len);
			blanks += pad;
			pad = 0;
		}
		memset(out + o, ' ', (size_t)blanks);
		o += (size_t)blanks + len;
		blanks = pad;
	}
	out[o] = '\0';
	return out;
}

const char *tf_layout_head(const struct tf_table *t, const struct tf_layout *layout, char *out,
			   size_t outlen)
{
	const char *heads[TF_LAYOUT_MAX_COLS];

	for (int i = 0; i < t->n && i < TF_LAYOUT_MAX_COLS; i++)
		heads[i] = t->cols[i].head;
	return tf_layout_line(t, layout, heads, out, outlen);
}
