/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the fuzzers hold tapflow's output to, written apart from the code
 * under test so that a shared mistake cannot pass: UTF-8 checked by code
 * point arithmetic (src/output.c works from the byte ranges of Unicode's
 * table 3-7), and a strict RFC 8259 parser that also decodes strings.
 *
 * A failed check aborts: libFuzzer keeps the input as a crash artifact.
 */
#ifndef TF_FUZZ_CHECK_H
#define TF_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
				__LINE__, #cond);				\
			abort();						\
		}								\
	} while (0)

/* The input as a C string: names and XML end at the first NUL anyway. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t len = nul ? (size_t)(nul - data) : size;
	char *s = malloc(len + 1);

	if (!s)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/*
 * Decode one UTF-8 character of s[0..n): its length, 0 if ill-formed
 * (overlong, surrogate, beyond U+10FFFF, bad or missing continuation).
 */
static inline size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const uint32_t min[4] = { 0, 0x80, 0x800, 0x10000 };
	size_t need, k;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0)
		need = 1;
	else if ((s[0] & 0xf0) == 0xe0)
		need = 2;
	else if ((s[0] & 0xf8) == 0xf0)
		need = 3;
	else
		return 0;
	if (n - 1 < need)
		return 0;
	*cp = s[0] & (0x3f >> need);
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[k] & 0x3f);
	}
	if (*cp < min[need] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return need + 1;
}

static inline bool utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t cp;
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = utf8_decode(s + i, n - i, &cp);
		if (!k)
			return false;
	}
	return true;
}

/* ---- JSON ------------------------------------------------------------- */

struct jparse {
	const char *s;
	size_t n, i;
	int depth;
	/* The top-level member named want: its decoded string value, if any. */
	const char *want;
	char *got;
	size_t got_len;
	bool found;
	char *scratch;		/* n bytes: a decoded string is never longer */
};

static bool j_value(struct jparse *p);

static inline void j_ws(struct jparse *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
			       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static inline bool j_lit(struct jparse *p, const char *lit)
{
	size_t len = strlen(lit);

	if (p->n - p->i < len || memcmp(p->s + p->i, lit, len))
		return false;
	p->i += len;
	return true;
}

static inline int j_hex4(struct jparse *p)
{
	int v = 0;

	if (p->n - p->i < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		char c = p->s[p->i++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static inline size_t utf8_encode(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at p->i, decoded into out (n bytes of room); lone surrogates fail. */
static inline bool j_string(struct jparse *p, char *out, size_t *outlen)
{
	size_t o = 0;

	if (p->i >= p->n || p->s[p->i] != '"')
		return false;
	p->i++;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];
		int u, lo;

		if (c == '"') {
			*outlen = o;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		if (p->i >= p->n)
			return false;
		c = (unsigned char)p->s[p->i++];
		switch (c) {
		case '"': case '\\': case '/': out[o++] = (char)c; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			u = j_hex4(p);
			if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
				return false;
			if (u >= 0xd800 && u <= 0xdbff) {
				if (!j_lit(p, "\\u"))
					return false;
				lo = j_hex4(p);
				if (lo < 0xdc00 || lo > 0xdfff)
					return false;
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			}
			o += utf8_encode((uint32_t)u, out + o);
			break;
		default:
			return false;
		}
	}
	return false;
}

static inline bool j_digits(struct jparse *p)
{
	size_t start = p->i;

	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > start;
}

static inline bool j_number(struct jparse *p)
{
	if (p->i < p->n && p->s[p->i] == '-')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '0')
		p->i++;
	else if (!j_digits(p))
		return false;
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (!j_digits(p))
			return false;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!j_digits(p))
			return false;
	}
	return true;
}

static inline bool j_member(struct jparse *p)
{
	size_t klen, vlen;
	bool wanted;

	if (!j_string(p, p->scratch, &klen))
		return false;
	wanted = p->depth == 1 && p->want && klen == strlen(p->want) &&
		 !memcmp(p->scratch, p->want, klen);
	j_ws(p);
	if (!j_lit(p, ":"))
		return false;
	j_ws(p);
	if (wanted && p->i < p->n && p->s[p->i] == '"') {
		if (!j_string(p, p->got, &vlen))
			return false;
		p->got_len = vlen;
		p->found = true;
		return true;
	}
	return j_value(p);
}

/* An object or array: members or values between open and close, comma-separated. */
static inline bool j_container(struct jparse *p, char close, bool members)
{
	if (++p->depth > 64)
		return false;
	p->i++;
	j_ws(p);
	if (j_lit(p, (char[]){ close, 0 })) {
		p->depth--;
		return true;
	}
	for (;;) {
		if (!(members ? j_member(p) : j_value(p)))
			return false;
		j_ws(p);
		if (j_lit(p, (char[]){ close, 0 }))
			break;
		if (!j_lit(p, ","))
			return false;
		j_ws(p);
	}
	p->depth--;
	return true;
}

static bool j_value(struct jparse *p)
{
	size_t len;

	if (p->i >= p->n)
		return false;
	switch (p->s[p->i]) {
	case '{': return j_container(p, '}', true);
	case '[': return j_container(p, ']', false);
	case '"': return j_string(p, p->scratch, &len);
	case 't': return j_lit(p, "true");
	case 'f': return j_lit(p, "false");
	case 'n': return j_lit(p, "null");
	default: return j_number(p);
	}
}

/*
 * s[0..n) is one JSON line as tapflow writes them: an object, '\n', valid
 * UTF-8. The string value of its top-level member want (may be NULL) is
 * decoded into got (n bytes of room), its length in *got_len, -1 if absent.
 */
static inline bool json_line_valid(const char *s, size_t n, const char *want, char *got,
				   long *got_len)
{
	struct jparse p = { .s = s, .n = n, .want = want, .got = got };
	bool ok;

	if (!n || s[n - 1] != '\n' || !utf8_valid(s, n))
		return false;
	p.n = n - 1;
	p.scratch = malloc(n);
	if (!p.scratch)
		abort();
	ok = p.s[0] == '{' && j_value(&p) && p.i == p.n;
	free(p.scratch);
	if (got_len)
		*got_len = p.found ? (long)p.got_len : -1;
	return ok;
}

/* s[0..n) is one JSON string, quotes included; decoded into out (n bytes). */
static inline bool json_string_valid(const char *s, size_t n, char *out, size_t *outlen)
{
	struct jparse p = { .s = s, .n = n };

	return utf8_valid(s, n) && j_string(&p, out, outlen) && p.i == n;
}

#endif /* TF_FUZZ_CHECK_H */
