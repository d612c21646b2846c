// SPDX-License-Identifier: GPL-2.0
/*
 * Any bytes as a name through tf_term_str, the way human tables print
 * names: nothing a terminal acts on comes out (no C0, DEL, C1, bidi
 * controls, line separators, no bytes that are not UTF-8, only ASCII for a
 * terminal that is not UTF-8), the width is what wcwidth says of the output,
 * cuts and padding keep to their columns, and making it safe twice changes
 * nothing. tf_term_fit, the cut with a marker, keeps to its columns too.
 *
 * Input: byte 0 picks UTF-8 or not, bytes 1 and 2 the min and max columns,
 * the rest is the name.
 */
#include <locale.h>
#include <stdint.h>
#include <wchar.h>

#include "check.h"
#include "output.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		abort();
	return 0;
}

static bool unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* out is safe; returns its width in columns. */
static size_t check_safe(const char *out, bool utf8)
{
	const unsigned char *s = (const unsigned char *)out;
	size_t n = strlen(out), width = 0, k;
	uint32_t cp;

	for (size_t i = 0; i < n; i += k) {
		k = utf8_decode(s + i, n - i, &cp);
		CHECK(k);
		CHECK(utf8 || cp < 0x80);
		CHECK(!unsafe(cp));
		CHECK(cp < 0x80 || wcwidth((wchar_t)cp) >= 0);
		width += cp < 0x80 ? 1 : (size_t)wcwidth((wchar_t)cp);
	}
	return width;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool utf8 = size > 0 && (data[0] & 1);
	int min = size > 1 ? data[1] % 40 : 0, max = size > 2 ? data[2] % 40 : 0;
	char *name = fuzz_cstr(data + (size > 3 ? 3 : size), size > 3 ? size - 3 : 0);
	size_t room = TF_TERM_SIZE(strlen(name)), width, len;
	char *whole = malloc(room), *cut = malloc(room), *again = malloc(room + 40);
	char small[24];

	CHECK(whole && cut && again);
	tf_term_set_utf8(utf8);

	/* Whole: as wide as tf_term_width says, and safe twice is safe once. */
	tf_term_str(name, 0, 0, whole, room);
	width = check_safe(whole, utf8);
	CHECK(width == tf_term_width(name));
	CHECK(width == tf_term_width(whole));
	CHECK(!strcmp(tf_term_str(whole, 0, 0, again, room), whole));

	/* Cut to max: a prefix of the whole, within max columns. */
	tf_term_str(name, 0, max, cut, room);
	width = check_safe(cut, utf8);
	len = strlen(cut);
	CHECK(!strncmp(cut, whole, len));
	CHECK(max ? width <= (size_t)max : !strcmp(cut, whole));

	/* Padded to min: that cut, then blanks up to min columns. */
	tf_term_str(name, min, max, again, room + (size_t)min);
	CHECK(!strncmp(again, cut, len));
	CHECK(strspn(again + len, " ") == strlen(again + len));
	CHECK(check_safe(again, utf8) == (width > (size_t)min ? width : (size_t)min));

	/* Cut by a small buffer: terminated, safe, a prefix of the whole. */
	for (size_t k = 1; k <= sizeof(small); k++) {
		tf_term_str(name, 0, 0, small, k);
		CHECK(strlen(small) < k);
		check_safe(small, utf8);
		CHECK(!strncmp(small, whole, strlen(small)));
	}
	/* Fit to max with a marker, at the end or in the middle: safe, never wider. */
	for (int middle = 0; middle <= 1; middle++) {
		tf_term_fit(name, max, middle, again, room + 40);
		width = check_safe(again, utf8);
		CHECK(width <= (size_t)max);
		CHECK(tf_term_width(name) > (size_t)max || !strcmp(again, whole));
	}
	free(whole);
	free(cut);
	free(again);
	free(name);
	return 0;
}
