// SPDX-License-Identifier: GPL-2.0
/* Output formatting: JSON escaping and records, units, timestamps. */
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

#include "output.h"

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	tf_json_escape("plain", out, sizeof(out));
	assert_string_equal(out, "\"plain\"");
	tf_json_escape("a\"b\\c", out, sizeof(out));
	assert_string_equal(out, "\"a\\\"b\\\\c\"");
	tf_json_escape("tab\there\n", out, sizeof(out));
	assert_string_equal(out, "\"tab\\u0009here\\u000a\"");
	tf_json_escape("vm-é", out, sizeof(out));	/* UTF-8 passes through */
	assert_string_equal(out, "\"vm-é\"");
}

static void test_escape_truncates_validly(void **state)
{
	char out[8];

	(void)state;
	tf_json_escape("abcdefghij", out, sizeof(out));
	assert_string_equal(out, "\"abcde\"");
	/* An escape sequence is never cut in half. */
	tf_json_escape("abcd\"e", out, sizeof(out));
	assert_string_equal(out, "\"abcd\"");
	tf_json_escape("x", out, 2);
	assert_string_equal(out, "");
}

/* U+FFFD as UTF-8; a literal of its own, so no hex digit follows \xbd. */
#define FFFD "\xef\xbf\xbd"

static const char *esc(const char *s)
{
	static char out[256];

	tf_json_escape(s, out, sizeof(out));
	return out;
}

/* Each maximal ill-formed subpart becomes one U+FFFD, as Python decodes. */
static void test_escape_invalid_utf8(void **state)
{
	(void)state;
	/* overlongs: 2-, 3- and 4-byte forms of '/' */
	assert_string_equal(esc("a\xc0\xaf" "b"), "\"a" FFFD FFFD "b\"");
	assert_string_equal(esc("\xe0\x80\xaf"), "\"" FFFD FFFD FFFD "\"");
	assert_string_equal(esc("\xf0\x80\x80\xaf"), "\"" FFFD FFFD FFFD FFFD "\"");
	/* UTF-16 surrogate U+D800 */
	assert_string_equal(esc("\xed\xa0\x80"), "\"" FFFD FFFD FFFD "\"");
	/* beyond U+10FFFF, and lead bytes that exist in no sequence */
	assert_string_equal(esc("\xf4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\"");
	assert_string_equal(esc("\xf5\x80" "\xff"), "\"" FFFD FFFD FFFD "\"");
	/* stray continuation bytes */
	assert_string_equal(esc("\x80\xbf"), "\"" FFFD FFFD "\"");
	/* truncated sequences: by the end of the name, by an ASCII byte */
	assert_string_equal(esc("x\xe2\x82"), "\"x" FFFD "\"");
	assert_string_equal(esc("\xe2\x82" "y"), "\"" FFFD "y\"");
	assert_string_equal(esc("\xf0\x9f\x98"), "\"" FFFD "\"");
	assert_string_equal(esc("\xc2"), "\"" FFFD "\"");
	/* the edges of what is valid pass through */
	assert_string_equal(esc("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
	assert_string_equal(esc("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");
	assert_string_equal(esc("\xef\xbf\xbf"), "\"\xef\xbf\xbf\"");
	assert_string_equal(esc("\xed\x9f\xbf"), "\"\xed\x9f\xbf\"");	/* U+D7FF */
	assert_string_equal(esc(FFFD), "\"" FFFD "\"");
}

static void test_escape_controls(void **state)
{
	(void)state;
	/* ESC, CR, BS: a raw one would drive the terminal jq prints to */
	assert_string_equal(esc("vm\x1b[2J\r\b"), "\"vm\\u001b[2J\\u000d\\u0008\"");
	assert_string_equal(esc("\x01\x1f"), "\"\\u0001\\u001f\"");
	/* DEL and C1 (U+009B is CSI) are legal raw JSON, but escaped */
	assert_string_equal(esc("a\x7f" "b"), "\"a\\u007fb\"");
	assert_string_equal(esc("\xc2\x80\xc2\x9b\xc2\x9f"), "\"\\u0080\\u009b\\u009f\"");
	assert_string_equal(esc("\xc2\xa0"), "\"\xc2\xa0\"");	/* U+00A0 is printable */
	/* U+2028/U+2029 end a line in JavaScript */
	assert_string_equal(esc("\xe2\x80\xa8\xe2\x80\xa9"), "\"\\u2028\\u2029\"");
	/* quotes and spaces as they are in libvirt names */
	assert_string_equal(esc("my \"vm\" 'x' \\ "), "\"my \\\"vm\\\" 'x' \\\\ \"");
}

/* Cut to fit, the result stays valid UTF-8 and valid JSON. */
static void test_escape_truncates_between_characters(void **state)
{
	char out[16];

	(void)state;
	/* "ab€": 2 + 3 bytes; the euro sign fits whole or not at all */
	tf_json_escape("ab\xe2\x82\xac", out, 7);
	assert_string_equal(out, "\"ab\"");
	tf_json_escape("ab\xe2\x82\xac", out, 8);
	assert_string_equal(out, "\"ab\xe2\x82\xac\"");
	/* a 4-byte character one byte short of room */
	tf_json_escape("a\xf0\x9f\x98\x80", out, 7);
	assert_string_equal(out, "\"a\"");
	/* U+FFFD is 3 bytes for 1 invalid byte: never cut either */
	tf_json_escape("a\xff", out, 6);
	assert_string_equal(out, "\"a\"");
	tf_json_escape("a\xff", out, 7);
	assert_string_equal(out, "\"a" FFFD "\"");
	/* nor a \u escape */
	tf_json_escape("a\x1b", out, 9);
	assert_string_equal(out, "\"a\"");
	tf_json_escape("a\x1b", out, 10);
	assert_string_equal(out, "\"a\\u001b\"");
}

/*
 * A UTF-8 terminal, as tf_term_setup() finds it in the locale; C.UTF-8 is
 * built into glibc 2.35+, older ones may lack it: the test then skips.
 */
static bool utf8_locale(void)
{
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		return false;
	tf_term_set_utf8(true);
	return true;
}

static const char *term(const char *s, int min, int max)
{
	static char out[TF_TERM_SIZE(64)];

	return tf_term_str(s, min, max, out, sizeof(out));
}

static void test_term_escapes_controls(void **state)
{
	(void)state;
	if (!utf8_locale())
		skip();
	assert_string_equal(term("web-01", 0, 0), "web-01");
	/* OSC retitle, CSI clear screen, newline, CR, tab, BEL, DEL */
	assert_string_equal(term("vm\x1b]0;pwned\x07", 0, 0), "vm\\x1b]0;pwned\\x07");
	assert_string_equal(term("\x1b[2J\n\r\tx\x7f", 0, 0),
			    "\\x1b[2J\\x0a\\x0d\\x09x\\x7f");
	/* C1 CSI, bidi override (reverses the rest of the line), line separator */
	assert_string_equal(term("a\xc2\x9b" "b", 0, 0), "a\\u009bb");
	assert_string_equal(term("vm\xe2\x80\xae" "evil", 0, 0), "vm\\u202eevil");
	assert_string_equal(term("\xe2\x81\xa6\xe2\x80\xa8", 0, 0), "\\u2066\\u2028");
	/* not UTF-8: each byte, never a replacement that hides what it was */
	assert_string_equal(term("x\xff\xe2\x82", 0, 0), "x\\xff\\xe2\\x82");
	assert_string_equal(term("\xed\xa0\x80", 0, 0), "\\xed\\xa0\\x80");
	/* not printable in this locale (unassigned): by code point */
	assert_string_equal(term("\xf4\x8f\xbf\xbf", 0, 0), "\\U0010ffff");
	/* printable non-ASCII passes */
	assert_string_equal(term("vm-\xc3\xa9 \xe4\xb8\xad", 0, 0), "vm-\xc3\xa9 \xe4\xb8\xad");
	/* made safe twice is made safe once: cells can be measured again */
	assert_string_equal(term(term("\x1b\xc3\xa9\xff", 0, 0), 0, 0), "\\x1b\xc3\xa9\\xff");
}

/* Columns as the terminal counts them, so tables stay aligned. */
static void test_term_columns(void **state)
{
	(void)state;
	if (!utf8_locale())
		skip();
	assert_int_equal(tf_term_width("abc"), 3);
	assert_int_equal(tf_term_width("vm-\xc3\xa9"), 4);		/* é: 1 */
	assert_int_equal(tf_term_width("e\xcc\x81"), 1);		/* e + combining acute */
	assert_int_equal(tf_term_width("\xe4\xb8\xad\xe6\x96\x87"), 4);	/* two CJK: 2 each */
	assert_int_equal(tf_term_width("\xf0\x9f\x98\x80"), 2);	/* emoji */
	assert_int_equal(tf_term_width("a\x1b"), 5);			/* a\x1b */
	/* padded to the column by width, not by bytes */
	assert_string_equal(term("vm-\xc3\xa9", 6, 0), "vm-\xc3\xa9  ");
	assert_string_equal(term("\xe4\xb8\xad\xe6\x96\x87", 6, 0), "\xe4\xb8\xad\xe6\x96\x87  ");
	/* cut between characters: a wide one that would cross max is left out */
	assert_string_equal(term("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97", 0, 5),
			    "\xe4\xb8\xad\xe6\x96\x87");
	assert_string_equal(term("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97", 5, 5),
			    "\xe4\xb8\xad\xe6\x96\x87 ");
	assert_string_equal(term("ab\xc3\xa9" "cd", 0, 3), "ab\xc3\xa9");
	/* and never inside an escape */
	assert_string_equal(term("ab\x1b", 0, 5), "ab");
	assert_string_equal(term("ab\x1b", 6, 5), "ab    ");
	assert_string_equal(term("ab\x1b", 0, 6), "ab\\x1b");
	/* a name longer than its column pushes the row, as with %-16s */
	assert_string_equal(term("a-very-long-vm-name", 8, 0), "a-very-long-vm-name");
}

static void test_term_small_buffer(void **state)
{
	char out[6];

	(void)state;
	if (!utf8_locale())
		skip();
	/* "abc" + "\x1b" (4) does not fit in 6 with the NUL: cut before the escape */
	assert_string_equal(tf_term_str("abc\x1b", 0, 0, out, sizeof(out)), "abc");
	/* é (2 bytes) after 4 ASCII bytes: 4 + 2 + 1 > 6 */
	assert_string_equal(tf_term_str("abcd\xc3\xa9", 0, 0, out, sizeof(out)), "abcd");
	/* padding stops at the end of the buffer too */
	assert_string_equal(tf_term_str("a", 16, 0, out, sizeof(out)), "a    ");
	tf_term_str("x", 0, 0, out, 0);		/* no room at all: untouched, no crash */
}

static const char *fit(const char *s, int cols, bool middle)
{
	static char out[TF_TERM_SIZE(64)];

	return tf_term_fit(s, cols, middle, out, sizeof(out));
}

#define ELL "\xe2\x80\xa6"	/* U+2026, one column */

/* Cut to a column with a marker, never wider, never inside a character. */
static void test_term_fit(void **state)
{
	(void)state;
	if (!utf8_locale())
		skip();
	/* what fits is as tf_term_str makes it, unpadded */
	assert_string_equal(fit("web-01", 6, false), "web-01");
	assert_string_equal(fit("web-01", 20, true), "web-01");
	assert_string_equal(fit("vm\x1b", 6, false), "vm\\x1b");
	/* names lose their end, addresses their middle (the port stays) */
	assert_string_equal(fit("web-frontend-01", 8, false), "web-fro" ELL);
	assert_string_equal(fit("[2001:db8::1234:5678]:443", 11, true), "[2001" ELL "]:443");
	assert_string_equal(fit("[2001:db8::1234:5678]:443", 12, true), "[2001" ELL "8]:443");
	assert_int_equal(tf_term_width(fit("[2001:db8::1234:5678]:443", 12, true)), 12);
	/* an escape is cut whole: "ab\x1b" needs 6 columns */
	assert_string_equal(fit("ab\x1b" "cd", 5, false), "ab" ELL);
	assert_string_equal(fit("ab\x1b" "cd", 7, true), "ab" ELL "cd");
	/* a wide character that would cross the cut is left out: narrower, never wider */
	assert_string_equal(fit("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97", 5, false),
			    "\xe4\xb8\xad\xe6\x96\x87" ELL);
	assert_string_equal(fit("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97", 4, false),
			    "\xe4\xb8\xad" ELL);
	assert_int_equal(tf_term_width(fit("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97", 4, true)), 3);
	/* the narrowest */
	assert_string_equal(fit("abc", 1, false), ELL);
	assert_string_equal(fit("abc", 1, true), ELL);
	assert_string_equal(fit("abc", 0, false), "");
	assert_string_equal(fit("", 0, false), "");
	/* no room for the marker in the buffer: the cut part alone */
	{
		char out[4];

		assert_string_equal(tf_term_fit("abcdef", 4, false, out, sizeof(out)), "abc");
	}
}

/* Without UTF-8 the marker is ASCII: a terminal in another charset shows it too. */
static void test_term_fit_not_utf8(void **state)
{
	(void)state;
	tf_term_set_utf8(false);
	assert_string_equal(fit("web-frontend-01", 8, false), "web-fro~");
	assert_string_equal(fit("10.77.0.2:40000", 9, true), "10.7~0000");
	assert_string_equal(fit("vm-\xc3\xa9", 9, false), "vm-\\xc3~");
	tf_term_set_utf8(true);
}

/* A terminal that is not UTF-8 (LANG=C, Latin-1): every byte beyond ASCII escaped. */
static void test_term_not_utf8(void **state)
{
	(void)state;
	tf_term_set_utf8(false);
	assert_string_equal(term("vm-\xc3\xa9", 0, 0), "vm-\\xc3\\xa9");
	/* U+009B would be the raw bytes c2 9b; 0x9b alone is CSI in Latin-1 */
	assert_string_equal(term("\xc4\x9b", 0, 0), "\\xc4\\x9b");
	assert_int_equal(tf_term_width("\xc3\xa9"), 8);
	assert_string_equal(term("ok\x1b", 0, 0), "ok\\x1b");
	tf_term_set_utf8(true);
}

/* The terminal's character set comes from the locale, as the user set it. */
static void test_term_setup_from_locale(void **state)
{
	char *saved;

	(void)state;
	if (!utf8_locale())
		skip();
	saved = getenv("LC_ALL") ? strdup(getenv("LC_ALL")) : NULL;
	setenv("LC_ALL", "C.UTF-8", 1);
	tf_term_setup();
	if (strcmp(term("\xc3\xa9", 0, 0), "\xc3\xa9"))
		fail_msg("LC_ALL=C.UTF-8: '%s'", term("\xc3\xa9", 0, 0));
	setenv("LC_ALL", "C", 1);
	tf_term_setup();
	assert_string_equal(term("\xc3\xa9", 0, 0), "\\xc3\\xa9");
	if (saved)
		setenv("LC_ALL", saved, 1);
	else
		unsetenv("LC_ALL");
	free(saved);
	utf8_locale();
}

static char *record(void (*fill)(struct tf_json *j))
{
	static char buf[1024];
	struct timespec ts = { .tv_sec = 1795827723, .tv_nsec = 456789000 };
	struct tf_json j = {};
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(f);
	tf_json_begin(&j, "stats", &ts);
	fill(&j);
	assert_int_equal(tf_json_end(&j, f), 0);
	fclose(f);
	tf_json_free(&j);
	return buf;
}

static void fill_fields(struct tf_json *j)
{
	tf_json_str(j, "vm", "al\"pha");
	tf_json_str(j, "uuid", NULL);
	tf_json_u64(j, "rx_bytes", UINT64_MAX);
	tf_json_i64(j, "delta", -5);
	tf_json_num(j, "rx_bps", 8000);
	tf_json_num(j, "tx_bps", 1.5);
	tf_json_bool(j, "attached", true);
	tf_json_null(j, "drops");
}

static void test_record(void **state)
{
	(void)state;
	assert_string_equal(record(fill_fields),
		"{\"type\":\"stats\",\"ts\":\"2026-11-28T01:02:03.456Z\",\"vm\":\"al\\\"pha\","
		"\"uuid\":null,\"rx_bytes\":18446744073709551615,\"delta\":-5,"
		"\"rx_bps\":8000,\"tx_bps\":1.500,\"attached\":true,\"drops\":null}\n");
}

static void test_timestamp(void **state)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 999999999 };
	char out[64];

	(void)state;
	tf_format_ts(&ts, out, sizeof(out));
	/* Milliseconds are truncated, never rounded into the next second. */
	assert_string_equal(out, "1970-01-01T00:00:00.999Z");
	ts.tv_sec = 1795827723;
	ts.tv_nsec = 7000000;
	tf_format_ts(&ts, out, sizeof(out));
	assert_string_equal(out, "2026-11-28T01:02:03.007Z");
}

static void test_bytes(void **state)
{
	char out[32];

	(void)state;
	tf_format_bytes(0, out, sizeof(out));
	assert_string_equal(out, "0 B");
	tf_format_bytes(1023, out, sizeof(out));
	assert_string_equal(out, "1023 B");
	tf_format_bytes(1536, out, sizeof(out));
	assert_string_equal(out, "1.50 KiB");
	tf_format_bytes(10 * 1024 * 1024 + 512 * 1024, out, sizeof(out));
	assert_string_equal(out, "10.5 MiB");
	tf_format_bytes(300ULL << 30, out, sizeof(out));
	assert_string_equal(out, "300 GiB");
	tf_format_bytes(UINT64_MAX, out, sizeof(out));
	assert_string_equal(out, "16384 PiB");
}

static void test_rate(void **state)
{
	char out[32];

	(void)state;
	tf_format_rate(0, out, sizeof(out));
	assert_string_equal(out, "0 bit/s");
	tf_format_rate(999, out, sizeof(out));
	assert_string_equal(out, "999 bit/s");
	tf_format_rate(1500, out, sizeof(out));
	assert_string_equal(out, "1.50 kbit/s");
	tf_format_rate(94.2e6, out, sizeof(out));
	assert_string_equal(out, "94.2 Mbit/s");
	tf_format_rate(9.41e9, out, sizeof(out));
	assert_string_equal(out, "9.41 Gbit/s");
	tf_format_rate(-3, out, sizeof(out));
	assert_string_equal(out, "0 bit/s");
}

static void test_count(void **state)
{
	char out[32];

	(void)state;
	tf_format_count(999999, out, sizeof(out));
	assert_string_equal(out, "999999");
	tf_format_count(1234567, out, sizeof(out));
	assert_string_equal(out, "1.23M");
	tf_format_count(5000000000ULL, out, sizeof(out));
	assert_string_equal(out, "5.00G");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_truncates_validly),
		cmocka_unit_test(test_escape_invalid_utf8),
		cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_escape_truncates_between_characters),
		cmocka_unit_test(test_term_escapes_controls),
		cmocka_unit_test(test_term_columns),
		cmocka_unit_test(test_term_small_buffer),
		cmocka_unit_test(test_term_not_utf8),
		cmocka_unit_test(test_term_fit),
		cmocka_unit_test(test_term_fit_not_utf8),
		cmocka_unit_test(test_term_setup_from_locale),
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
