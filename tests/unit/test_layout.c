// SPDX-License-Identifier: GPL-2.0
/*
 * Table columns for a terminal width: the columns that give way as it
 * narrows, in top's priority order, and lines that never exceed it.
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
#include "top_table.h"

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

/* Just the heads: "VM REMOTE TX RATE". */
static const char *heads(const struct tf_table *t, const struct tf_layout *l)
{
	static char out[512];
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < t->n; i++)
		if (l->width[i])
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", o ? "|" : "",
					      t->cols[i].head[0] ? t->cols[i].head : "-");
	return out;
}

/* Lay rows out at width; every line (the head too) is no wider than width. */
static void lay(const struct tf_table *t, const bool *on, const char *const rows[][TF_FT_COLS],
		int n, int width, struct tf_layout *l)
{
	char line[TF_LAYOUT_LINE_SIZE(400)];
	int want[TF_LAYOUT_MAX_COLS];

	tf_layout_want_init(t, on, want);
	for (int r = 0; r < n; r++)
		tf_layout_want(t, rows[r], want);
	tf_layout_fit(t, want, width, l);
	assert_true(l->total <= (width > 0 ? width : 0));
	tf_layout_head(t, l, line, sizeof(line));
	assert_true((int)tf_term_width(line) <= (width > 0 ? width : 0));
	for (int r = 0; r < n; r++) {
		tf_layout_line(t, l, rows[r], line, sizeof(line));
		if ((int)tf_term_width(line) > (width > 0 ? width : 0))
			fail_msg("width %d: a line of %zu columns: '%s'", width,
				 tf_term_width(line), line);
	}
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

/* ---- top's flow table ---------------------------------------------------- */

/* A VM's flows as top shows them: NAT join and drop tracer on. */
static const char *const flows4[][TF_FT_COLS] = {
	{
		[TF_FT_VM] = "web-frontend-01", [TF_FT_IFACE] = "vnet12", [TF_FT_PROTO] = "tcp",
		[TF_FT_DETAIL] = "", [TF_FT_LOCAL] = "192.168.122.45:43822",
		[TF_FT_NAT] = "203.0.113.10:61000", [TF_FT_REMOTE] = "93.184.216.34:443",
		[TF_FT_TX_RATE] = "12.3 Mbit/s", [TF_FT_RX_RATE] = "1.23 Gbit/s",
		[TF_FT_TX_BYTES] = "123 MiB", [TF_FT_RX_BYTES] = "1.50 GiB",
		[TF_FT_TX_PKTS] = "123456", [TF_FT_RX_PKTS] = "1.23M", [TF_FT_DROPS] = "0",
	},
	{
		[TF_FT_VM] = "db", [TF_FT_IFACE] = "vnet3", [TF_FT_PROTO] = "udp",
		[TF_FT_DETAIL] = "", [TF_FT_LOCAL] = "192.168.122.9:53",
		[TF_FT_NAT] = "-", [TF_FT_REMOTE] = "192.168.122.45:5353",
		[TF_FT_TX_RATE] = "0 bit/s", [TF_FT_RX_RATE] = "880 bit/s",
		[TF_FT_TX_BYTES] = "1.2 KiB", [TF_FT_RX_BYTES] = "880 B",
		[TF_FT_TX_PKTS] = "10", [TF_FT_RX_PKTS] = "11", [TF_FT_DROPS] = "2",
	},
};

static const bool all_on[TF_FT_COLS] = {
	true, true, true, true, true, true, true, true, true, true, true, true, true, true,
};

static void test_top_flows_widths(void **state)
{
	static const struct { int width; const char *heads; } want[] = {
		{ 40, "VM|REMOTE|TX RATE" },
		{ 60, "VM|REMOTE|TX RATE|RX RATE" },
		{ 80, "VM|LOCAL|REMOTE|TX RATE|RX RATE" },
		{ 100, "VM|IFACE|PROTO|LOCAL|REMOTE|TX RATE|RX RATE" },
		{ 120, "VM|IFACE|PROTO|LOCAL|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES" },
		{ 160, "VM|IFACE|PROTO|LOCAL|NAT|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES|"
		       "TX PKTS|RX PKTS|DROPS" },
		{ 250, "VM|IFACE|PROTO|LOCAL|NAT|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES|"
		       "TX PKTS|RX PKTS|DROPS" },
	};
	struct tf_layout l;

	(void)state;
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		lay(&tf_top_flows, all_on, flows4, 2, want[k].width, &l);
		assert_string_equal(heads(&tf_top_flows, &l), want[k].heads);
	}
	/* at 40 the VM name and the peer's address are both cut */
	lay(&tf_top_flows, all_on, flows4, 2, 40, &l);
	assert_string_equal(shown(&tf_top_flows, &l), "VM:9 REMOTE:18 TX RATE:11");
	/* NAT and DROPS come in between 120 and 160 columns: NAT first */
	lay(&tf_top_flows, all_on, flows4, 2, 129, &l);
	assert_string_equal(heads(&tf_top_flows, &l),
			    "VM|IFACE|PROTO|LOCAL|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES");
	lay(&tf_top_flows, all_on, flows4, 2, 130, &l);
	assert_string_equal(heads(&tf_top_flows, &l),
			    "VM|IFACE|PROTO|LOCAL|NAT|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES");
	lay(&tf_top_flows, all_on, flows4, 2, 136, &l);
	assert_string_equal(heads(&tf_top_flows, &l),
			    "VM|IFACE|PROTO|LOCAL|NAT|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES|"
			    "DROPS");
	assert_int_equal(l.total, 136);
}

/* NAT without the join, DROPS without the drop tracer: never, at any width. */
static void test_top_flows_off(void **state)
{
	bool on[TF_FT_COLS];
	struct tf_layout l;

	(void)state;
	memcpy(on, all_on, sizeof(on));
	on[TF_FT_NAT] = on[TF_FT_DROPS] = false;
	lay(&tf_top_flows, on, flows4, 2, 250, &l);
	assert_string_equal(heads(&tf_top_flows, &l),
			    "VM|IFACE|PROTO|LOCAL|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES|"
			    "TX PKTS|RX PKTS");
	/* ... and the room they leave goes to the columns after them */
	lay(&tf_top_flows, on, flows4, 2, 127, &l);
	assert_string_equal(heads(&tf_top_flows, &l),
			    "VM|IFACE|PROTO|LOCAL|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES|"
			    "TX PKTS|RX PKTS");
}

/* IPv6 and ICMP details: addresses cut in the middle; details only when all else fits. */
static void test_top_flows_ipv6(void **state)
{
	static const char *const rows[][TF_FT_COLS] = {
		{
			[TF_FT_VM] = "a-rather-long-virtual-machine-name", [TF_FT_IFACE] = "vnet0",
			[TF_FT_PROTO] = "icmpv6", [TF_FT_DETAIL] = "echo id 4711 vlan 100",
			[TF_FT_LOCAL] = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
			[TF_FT_NAT] = "routed",
			[TF_FT_REMOTE] = "2001:db8:ffff:ffff:ffff:ffff:ffff:2",
			[TF_FT_TX_RATE] = "1.00 kbit/s", [TF_FT_RX_RATE] = "1.00 kbit/s",
			[TF_FT_TX_BYTES] = "1.2 KiB", [TF_FT_RX_BYTES] = "1.2 KiB",
			[TF_FT_TX_PKTS] = "10", [TF_FT_RX_PKTS] = "10", [TF_FT_DROPS] = "0",
		},
		{
			[TF_FT_VM] = "b", [TF_FT_IFACE] = "vnet1", [TF_FT_PROTO] = "tcp",
			[TF_FT_DETAIL] = "", [TF_FT_LOCAL] = "[fd00::1:2:3:4]:22",
			[TF_FT_NAT] = "-", [TF_FT_REMOTE] = "[fd00:1234:5678:9abc:def0::99]:60000",
			[TF_FT_TX_RATE] = "0 bit/s", [TF_FT_RX_RATE] = "0 bit/s",
			[TF_FT_TX_BYTES] = "0 B", [TF_FT_RX_BYTES] = "0 B",
			[TF_FT_TX_PKTS] = "0", [TF_FT_RX_PKTS] = "0", [TF_FT_DROPS] = "-",
		},
	};
	char line[TF_LAYOUT_LINE_SIZE(400)];
	struct tf_layout l;

	(void)state;
	if (!utf8_locale())
		skip();
	for (int w = 1; w <= 300; w++)
		lay(&tf_top_flows, all_on, rows, 2, w, &l);
	/* 80: the essential five, the addresses cut, keeping port and last group */
	lay(&tf_top_flows, all_on, rows, 2, 80, &l);
	assert_string_equal(heads(&tf_top_flows, &l), "VM|LOCAL|REMOTE|TX RATE|RX RATE");
	assert_string_equal(shown(&tf_top_flows, &l),
			    "VM:12 LOCAL:21 REMOTE:21 TX RATE:11 RX RATE:11");
	tf_layout_line(&tf_top_flows, &l, rows[1], line, sizeof(line));
	assert_string_equal(line, "b            [fd00::1:2:3:4]:22    "
			    "[fd00:1234\xe2\x80\xa6:99]:60000     0 bit/s     0 bit/s");
	/* 250: everything, the details after the protocol's name, under PROTO */
	lay(&tf_top_flows, all_on, rows, 2, 250, &l);
	assert_string_equal(heads(&tf_top_flows, &l),
			    "VM|IFACE|PROTO|-|LOCAL|NAT|REMOTE|TX RATE|RX RATE|TX BYTES|RX BYTES|"
			    "TX PKTS|RX PKTS|DROPS");
	tf_layout_head(&tf_top_flows, &l, line, sizeof(line));
	assert_true(!strncmp(line, "VM                       IFACE PROTO  "
			     "                      LOCAL", 59));
}

/* Any width, any cells: no line is ever wider than the terminal. */
static void test_top_flows_every_width(void **state)
{
	struct tf_layout l;

	(void)state;
	for (int w = -1; w <= 300; w++)
		lay(&tf_top_flows, all_on, flows4, 2, w, &l);
}

/* ---- top's interface table ----------------------------------------------- */

static void test_top_targets_widths(void **state)
{
	static const char *const rows[][TF_FT_COLS] = {
		{
			[TF_TT_VM] = "web-frontend-01", [TF_TT_IFACE] = "vnet12", [TF_TT_ROLE] = "tap",
			[TF_TT_RX_RATE] = "12.3 Mbit/s", [TF_TT_TX_RATE] = "1.23 Gbit/s",
			[TF_TT_RX_BYTES] = "123 MiB", [TF_TT_TX_BYTES] = "1.50 GiB",
			[TF_TT_RX_PKTS] = "123456", [TF_TT_TX_PKTS] = "1.23M", [TF_TT_DROPS] = "7",
			[TF_TT_RTT_OUT] = "12.3 ms", [TF_TT_RTT_IN] = "0.84 ms", [TF_TT_RETRANS] = "2.0",
		},
		{
			[TF_TT_VM] = "-", [TF_TT_IFACE] = "virbr0", [TF_TT_ROLE] = "bridge",
			[TF_TT_RX_RATE] = "0 bit/s", [TF_TT_TX_RATE] = "0 bit/s",
			[TF_TT_RX_BYTES] = "0 B", [TF_TT_TX_BYTES] = "0 B",
			[TF_TT_RX_PKTS] = "0", [TF_TT_TX_PKTS] = "0", [TF_TT_DROPS] = "0",
			[TF_TT_RTT_OUT] = "-", [TF_TT_RTT_IN] = "-", [TF_TT_RETRANS] = "0.0",
		},
	};
	static const struct { int width; const char *heads; } want[] = {
		{ 40, "VM|IFACE|RX RATE|TX RATE" },
		{ 60, "VM|IFACE|ROLE|RX RATE|TX RATE" },
		{ 80, "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|DROPS" },
		{ 100, "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|RX PKTS|TX PKTS|DROPS" },
		{ 120, "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|RX PKTS|TX PKTS|DROPS" },
		{ 160, "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|RX PKTS|TX PKTS|DROPS" },
		{ 250, "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|RX PKTS|TX PKTS|DROPS" },
	};
	bool on[TF_TT_COLS];
	struct tf_layout l;

	(void)state;
	for (int i = 0; i < TF_TT_COLS; i++)
		on[i] = true;
	/* --tcp: its columns are the first to go, and come at the end. */
	lay(&tf_top_targets, on, rows, 2, 250, &l);
	assert_string_equal(heads(&tf_top_targets, &l),
			    "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|RX PKTS|TX PKTS|DROPS|"
			    "RTT OUT|RTT IN|RETR/s");
	lay(&tf_top_targets, on, rows, 2, 100, &l);
	assert_string_equal(heads(&tf_top_targets, &l), want[3].heads);
	on[TF_TT_RTT_OUT] = on[TF_TT_RTT_IN] = on[TF_TT_RETRANS] = false;
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		lay(&tf_top_targets, on, rows, 2, want[k].width, &l);
		assert_string_equal(heads(&tf_top_targets, &l), want[k].heads);
	}
	for (int w = -1; w <= 300; w++)
		lay(&tf_top_targets, on, rows, 2, w, &l);
	on[TF_TT_DROPS] = false;
	lay(&tf_top_targets, on, rows, 2, 250, &l);
	assert_string_equal(heads(&tf_top_targets, &l),
			    "VM|IFACE|ROLE|RX RATE|TX RATE|RX BYTES|TX BYTES|RX PKTS|TX PKTS");
}

/* Rates take their widest from the start: columns stay put as traffic starts. */
static void test_top_rates_keep_their_place(void **state)
{
	static const char *const idle[][TF_FT_COLS] = {
		{
			[TF_TT_VM] = "-", [TF_TT_IFACE] = "eth0", [TF_TT_ROLE] = "uplink",
			[TF_TT_RX_RATE] = "0 bit/s", [TF_TT_TX_RATE] = "0 bit/s",
			[TF_TT_RX_BYTES] = "0 B", [TF_TT_TX_BYTES] = "0 B",
			[TF_TT_RX_PKTS] = "0", [TF_TT_TX_PKTS] = "0", [TF_TT_DROPS] = "0",
			[TF_TT_RTT_OUT] = "-", [TF_TT_RTT_IN] = "-", [TF_TT_RETRANS] = "0.0",
		},
	};
	struct tf_layout l;

	(void)state;
	lay(&tf_top_targets, NULL, idle, 1, 120, &l);
	assert_int_equal(l.width[TF_TT_RX_RATE], 11);
	assert_int_equal(l.width[TF_TT_TX_RATE], 11);
	assert_int_equal(l.width[TF_TT_RX_BYTES], 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_priority),
		cmocka_unit_test(test_fit_off_and_empty),
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_top_flows_widths),
		cmocka_unit_test(test_top_flows_off),
		cmocka_unit_test(test_top_flows_ipv6),
		cmocka_unit_test(test_top_flows_every_width),
		cmocka_unit_test(test_top_targets_widths),
		cmocka_unit_test(test_top_rates_keep_their_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
