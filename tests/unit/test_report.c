// SPDX-License-Identifier: GPL-2.0
/*
 * Human tables and diagnostics with names no sane setup has but libvirt and
 * the kernel accept: escape sequences, newlines, bidi overrides, bytes that
 * are not UTF-8, wide characters. Each row stays one line, in its columns.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "report.h"

/* ESC [2J clears the screen, a newline would start a fake row. */
#define EVIL_VM "x\x1b[2J\ny"
#define EVIL_VM_SAFE "x\\x1b[2J\\x0ay"

static bool have_utf8;

static int setup(void **state)
{
	(void)state;
	/* A UTF-8 terminal; C.UTF-8 is built into glibc 2.35+, else the tests skip. */
	have_utf8 = setlocale(LC_CTYPE, "C.UTF-8") != NULL;
	tf_term_set_utf8(have_utf8);
	return 0;
}

/* What fill wrote, in a malloc'ed string. */
static char *capture(void (*fill)(FILE *f, const void *arg), const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fill(f, arg);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Nothing a terminal acts on: no byte below 0x20 but the newlines, no DEL. */
static void assert_no_controls(const char *s)
{
	for (; *s; s++)
		assert_true((unsigned char)*s >= 0x20 && *s != 0x7f ? true : *s == '\n');
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The screen column where what (in the line that holds it) starts. */
static size_t column_of(const char *out, const char *what)
{
	const char *at = strstr(out, what), *line = at;
	char prefix[1024];

	assert_non_null(at);
	while (line > out && line[-1] != '\n')
		line--;
	assert_true((size_t)(at - line) < sizeof(prefix));
	memcpy(prefix, line, (size_t)(at - line));
	prefix[at - line] = '\0';
	return tf_term_width(prefix);
}

static void fill_vm_table(FILE *f, const void *arg)
{
	const struct tf_inventory *inv = arg;
	enum tf_attach_state attached[4] = { TF_ATTACH_STATE_LIVE, TF_ATTACH_STATE_ORPHANED,
					     TF_ATTACH_STATE_UNKNOWN, TF_ATTACH_STATE_NONE };

	tf_report_vm_table(inv, attached, f);
	tf_report_vm_warnings(inv, f);
}

static void test_vm_table(void **state)
{
	struct tf_vif vifs[3] = {
		{ .vm = "web-01", .ifname = "vnet0", .mac = "52:54:00:00:00:01",
		  .network = "default", .bridge = "virbr0", .mode = TF_MODE_NAT,
		  .fdb = TF_FDB_OK, .tap_mac_ok = true, .ifindex = 5 },
		/* U+202E would reverse the rest of the line */
		{ .vm = EVIL_VM, .ifname = "vn\x1b", .mac = "52:54:00:00:00:02",
		  .network = "n\xe2\x80\xae", .bridge = "br\x7f", .mode = TF_MODE_BRIDGE,
		  .fdb = TF_FDB_OTHER_PORT, .fdb_port = "p\x1b", .ifindex = 6,
		  .note = "type='\x1b]0;owned\x07': not traced" },
		/* é is 1 column, 中 2, a byte that is not UTF-8 4 (\xff) */
		{ .vm = "vm-\xc3\xa9\xe4\xb8\xad", .ifname = "vnet2", .mac = "52:54:00:00:00:03",
		  .network = "\xff", .mode = TF_MODE_NAT },
	};
	struct tf_inventory inv = { .vifs = vifs, .n_vifs = 3 };
	char *out;

	(void)state;
	if (!have_utf8)
		skip();
	out = capture(fill_vm_table, &inv);
	assert_no_controls(out);
	/* header, three rows, two warnings about the second */
	assert_int_equal(count_lines(out), 6);
	assert_non_null(strstr(out,
		EVIL_VM_SAFE "    vn\\x1b     52:54:00:00:00:02 n\\u202e      br\\x7f     bridge   "
		"orphaned on p\\x1b (!)   type='\\x1b]0;owned\\x07': not traced\n"));
	/* Every row's MAC starts under the header's, whatever came before it. */
	assert_int_equal(column_of(out, "MAC"), 28);
	assert_int_equal(column_of(out, ":01"), 28 + 14);
	assert_int_equal(column_of(out, ":02"), 28 + 14);
	assert_int_equal(column_of(out, ":03"), 28 + 14);
	assert_int_equal(column_of(out, "nat      ?"), 70);
	assert_int_equal(column_of(out, "MODE"), 70);
	assert_non_null(strstr(out, "warning: " EVIL_VM_SAFE ": MAC 52:54:00:00:00:02 is "
			       "learned on bridge port p\\x1b, not on its tap vn\\x1b"));
	free(out);
}

static void fill_stats_table(FILE *f, const void *arg)
{
	const struct timespec now = { .tv_sec = 1795827723 };

	tf_report_stats_table(arg, &now, true, f);
}

static void test_stats_table(void **state)
{
	struct tf_target t[2] = {
		{ .ifname = "vnet\n0", .role = TF_ROLE_TAP, .has_vif = true,
		  .vif = { .vm = EVIL_VM } },
		{ .ifname = "br\x1b[0m", .role = TF_ROLE_BRIDGE },
	};
	struct tf_collector c = { .targets = t, .n_targets = 2 };
	char *out;

	(void)state;
	if (!have_utf8)
		skip();
	out = capture(fill_stats_table, &c);
	assert_no_controls(out);
	/* "final report" line, header, two rows, blank line */
	assert_int_equal(count_lines(out), 5);
	assert_non_null(strstr(out, "\n" EVIL_VM_SAFE "    vnet\\x0a0  tap     "));
	assert_non_null(strstr(out, "\n-                br\\x1b[0m  bridge  "));
	assert_int_equal(column_of(out, "tap "), 28);
	assert_int_equal(column_of(out, "bridge "), 28);
	free(out);
}

/* Diagnostics quote names too (tf_warn "interface %s of VM %s vanished"): one safe line. */
static void test_log_line(void **state)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	char line[512] = "";

	(void)state;
	if (!have_utf8)
		skip();
	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	tf_warn("interface %s of VM %s vanished", "vnet\x1b[8m", EVIL_VM);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	assert_non_null(fgets(line, sizeof(line), tmp));
	assert_string_equal(line, "tapflow: warning: interface vnet\\x1b[8m of VM " EVIL_VM_SAFE
			    " vanished\n");
	assert_null(fgets(line, sizeof(line), tmp));	/* one line */
	fclose(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_table),
		cmocka_unit_test(test_stats_table),
		cmocka_unit_test(test_log_line),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
