// SPDX-License-Identifier: GPL-2.0
/* Output formatting: JSON escaping and records, units, timestamps. */
#include <stdarg.h>
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
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
