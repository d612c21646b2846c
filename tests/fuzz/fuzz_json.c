// SPDX-License-Identifier: GPL-2.0
/*
 * Any bytes as a name through the JSON writer: the record is valid JSON in
 * valid UTF-8, whatever the name; a name that is valid UTF-8 reads back
 * exactly; one that is not reads back valid, with U+FFFD where it was not;
 * cut to any room, the escape stays a valid string whose value is a prefix
 * of the whole one.
 */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "output.h"

/* Raw in the output, these would reach a terminal as controls (or end a JS line). */
static void check_no_raw_controls(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n; i++) {
		CHECK(u[i] != 0x7f && (u[i] >= 0x20 || u[i] == '\n'));
		CHECK(!(u[i] == 0xc2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f));
		CHECK(!(u[i] == 0xe2 && i + 2 < n && u[i + 1] == 0x80 &&
			(u[i + 2] == 0xa8 || u[i + 2] == 0xa9)));
	}
}

/* The record {"type":"vm","ts":..,"vm":NAME,"keys":{NAME:"value"}}; "vm" decoded into got. */
static size_t check_record(const char *name, char **got)
{
	const struct timespec ts = { 0 };
	struct tf_json j = {};
	char *buf = NULL;
	size_t len = 0;
	long got_len;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f);
	tf_json_begin(&j, "vm", &ts);
	tf_json_str(&j, "vm", name);
	/* As a key too (cut to the key buffer), a level down: it may be "vm". */
	tf_json_object_begin(&j, "keys");
	tf_json_str(&j, name, "value");
	tf_json_object_end(&j);
	CHECK(tf_json_end(&j, f) == 0);
	CHECK(fclose(f) == 0);
	tf_json_free(&j);
	*got = malloc(len);
	CHECK(*got);
	CHECK(json_line_valid(buf, len, "vm", *got, &got_len));
	CHECK(got_len >= 0);
	check_no_raw_controls(buf, len);
	free(buf);
	return (size_t)got_len;
}

/* Cut to outlen bytes: terminated, valid, a prefix of the whole value. */
static void check_cut(const char *name, size_t outlen, const char *whole, size_t whole_len,
		      size_t *prev)
{
	char *out = malloc(outlen + 1), *val = malloc(outlen + 1);
	size_t len, vlen;

	CHECK(out && val);
	memset(out, 'X', outlen + 1);
	tf_json_escape(name, out, outlen);
	CHECK(out[outlen] == 'X');		/* nothing written past outlen */
	if (outlen < 3) {
		CHECK(!outlen || !out[0]);
		goto out;
	}
	len = strlen(out);
	CHECK(len < outlen);
	CHECK(json_string_valid(out, len, val, &vlen));
	CHECK(vlen <= whole_len && !memcmp(val, whole, vlen));
	/* more room never gives less */
	CHECK(len >= *prev);
	*prev = len;
out:
	free(out);
	free(val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = fuzz_cstr(data, size), *got, *full;
	size_t n = strlen(name), got_len, full_len = 6 * n + 3, prev = 0;

	got_len = check_record(name, &got);
	if (utf8_valid(name, n))
		CHECK(got_len == n && !memcmp(got, name, n));
	else
		CHECK(memmem(got, got_len, "\xef\xbf\xbd", 3));

	/* The whole escape, then every room up to 24 bytes and the last few. */
	full = malloc(full_len);
	CHECK(full);
	tf_json_escape(name, full, full_len);
	full_len = strlen(full) + 1;
	for (size_t outlen = 0; outlen <= full_len; outlen++) {
		if (outlen == 25 && full_len > 33)
			outlen = full_len - 8;
		check_cut(name, outlen, got, got_len, &prev);
	}
	/* With room for it all, the cut is the whole. */
	CHECK(prev == full_len - 1);
	free(full);
	free(got);
	free(name);
	return 0;
}
