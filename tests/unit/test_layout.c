// SPDX-License-Identifier: GPL-2.0
/*
 * Table columns for a terminal width: the columns that give way as it
 * narrows, in priority order, and lines that never exceed it.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "layout.h"
#include "output.h"

static bool utf8_locale(void)
{
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		return false;
	tf_term_set_utf8(true);
	return true;
}

/* The shown columns' heads and widths: "VM:12 REMOTE:17" (a head-less one is "-"). */
static const char *shown(const struct tf_table *t, const struct tf_layout *l)
{
	static char out[512];
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < t->n; i++)
		if (l->width[i])
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s:%d", o ? " " : "",
					      t->cols[i].head[0] ? t->cols[i].head : "-",
					      l->width[i]);
	return out;
}

/* ---- the algorithm, on a small table ------------------------------------- */

static const struct tf_col small_cols[] = {
	{ .head = "NAME",  .prio = 1, .min = 4, .max = 10 },
	{ .head = "ADDR",  .prio = 2, .min = 6, .middle = true },
	{ .head = "RATE",  .prio = 3, .right = true },
	{ .head = "EXTRA", .prio = 4, .right = true },
};
static const struct tf_table small = { small_cols, 4, 3 };

static void small_fit(int width, const int *want, struct tf_layout *l)
{
	tf_layout_fit(&small, want, width, l);
	assert_true(l->total <= (width > 0 ? width : 0));
}

static void test_fit_priority(void **state)
{
	int want[] = { 8, 12, 6, 5 };
	struct tf_layout l;

	(void)state;
	/* all whole: 8 + 12 + 6 + 5 + 3 blanks */
	small_fit(34, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:8 ADDR:12 RATE:6 EXTRA:5");
	assert_int_equal(l.total, 34);
	/* EXTRA goes first, whole or not at all */
	small_fit(33, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:8 ADDR:12 RATE:6");
	assert_int_equal(l.total, 28);
	/*
	 * then the essential ones are cut, NAME to 4 and ADDR to 6, and get the
	 * room back a column at a time, in priority order
	 */
	small_fit(27, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:8 ADDR:11 RATE:6");
	small_fit(20, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:5 ADDR:7 RATE:6");
	small_fit(19, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:5 ADDR:6 RATE:6");
	small_fit(18, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:4 ADDR:6 RATE:6");
	/* RATE is never cut: it goes */
	small_fit(17, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:7 ADDR:9");
	small_fit(11, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:4 ADDR:6");
	small_fit(10, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:8");
	/* the first column takes what there is, below its min too */
	small_fit(3, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:3");
	small_fit(0, want, &l);
	assert_string_equal(shown(&small, &l), "");
	small_fit(-5, want, &l);
	assert_int_equal(l.total, 0);
}

static void test_fit_off_and_empty(void **state)
{
	/* ADDR off (-1), EXTRA empty (0): neither takes room or stops the next */
	int want[] = { 8, -1, 6, 0 };
	struct tf_layout l;

	(void)state;
	small_fit(15, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:8 RATE:6");
	/* NAME never wider than its max, whatever its cells */
	want[0] = 40;
	small_fit(100, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:10 RATE:6");
}

static void test_line(void **state)
{
	const char *cells[] = { "web-frontend-01", "[2001:db8::1234:5678]:443", "1.2 Mbit/s", "7" };
	int want[] = { 4, 4, 4, 5 };
	char line[256];
	struct tf_layout l;

	(void)state;
	if (!utf8_locale())
		skip();
	tf_layout_want(&small, cells, want);
	assert_int_equal(want[0], 15);
	assert_int_equal(want[1], 25);
	small_fit(31, want, &l);
	assert_string_equal(shown(&small, &l), "NAME:9 ADDR:10 RATE:10");
	/* names cut at the end, addresses in the middle, numbers right-aligned */
	assert_string_equal(tf_layout_line(&small, &l, cells, line, sizeof(line)),
			    "web-fron\xe2\x80\xa6 [200\xe2\x80\xa6]:443 1.2 Mbit/s");
	assert_string_equal(tf_layout_head(&small, &l, line, sizeof(line)),
			    "NAME      ADDR             RATE");
	/* a left-aligned last cell has no trailing blanks; a right-aligned one is padded */
	cells[2] = "0";
	assert_string_equal(tf_layout_line(&small, &l, cells, line, sizeof(line)),
			    "web-fron\xe2\x80\xa6 [200\xe2\x80\xa6]:443          0");
	/* names are made safe: an escape sequence is shown, never sent */
	cells[0] = "\x1b[2Jvm";
	assert_string_equal(tf_layout_line(&small, &l, cells, line, sizeof(line)),
			    "\\x1b[2Jvm [200\xe2\x80\xa6]:443          0");
	/* a buffer too small for the line: cut, terminated */
	tf_layout_line(&small, &l, cells, line, 12);
	assert_true(strlen(line) < 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_priority),
		cmocka_unit_test(test_fit_off_and_empty),
		cmocka_unit_test(test_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
