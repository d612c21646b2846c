// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "log.h"
#include "output.h"

static int out_errno;

int tf_out_check(FILE *f)
{
	/*
	 * glibc drops what a failed write() could not write and reports the
	 * error only through ferror(), so errno is the failed write's: taken
	 * before fflush(), which succeeds on an empty buffer.
	 */
	int err = errno;

	if (fflush(f))
		err = errno;
	else if (!ferror(f))
		return 0;
	if (!out_errno)
		out_errno = err ? err : EIO;
	clearerr(f);
	return -1;
}

bool tf_out_reader_gone(FILE *f)
{
	/* Asked for nothing, poll() still reports an error or hang-up. */
	struct pollfd p = { .fd = fileno(f) };

	if (out_errno == EPIPE)
		return true;
	if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLERR | POLLHUP)))
		return false;
	if (!out_errno)
		out_errno = EPIPE;
	return true;
}

int tf_out_error(void)
{
	return out_errno;
}

int tf_out_finish(FILE *f, const char *what)
{
	tf_out_check(f);
	if (!out_errno || out_errno == EPIPE)
		return 0;
	tf_err("cannot write %s: %s", what, strerror(out_errno));
	return -1;
}

static void put(struct tf_json *j, const char *s, size_t n)
{
	if (j->oom)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 512;
		char *nb;

		while (cap < j->len + n + 1)
			cap *= 2;
		nb = realloc(j->buf, cap);
		if (!nb) {
			j->oom = true;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void puts_(struct tf_json *j, const char *s)
{
	put(j, s, strlen(s));
}

/*
 * One character of s: its length in bytes and its code point; or, where s
 * is not well-formed UTF-8 (Unicode table 3-7: no overlongs, no surrogates,
 * nothing past U+10FFFF), minus the length of the maximal ill-formed
 * subpart there: the bytes one U+FFFD replaces, as browsers and Python
 * decode. The NUL that ends s is no continuation byte, so a sequence cut
 * short by the end of s is such a subpart.
 */
int tf_utf8_next(const unsigned char *s, uint32_t *cp)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		lo = s[0] == 0xe0 ? 0xa0 : lo;	/* overlong below U+0800 */
		hi = s[0] == 0xed ? 0x9f : hi;	/* UTF-16 surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		lo = s[0] == 0xf0 ? 0x90 : lo;	/* overlong below U+10000 */
		hi = s[0] == 0xf4 ? 0x8f : hi;	/* beyond U+10FFFF */
	} else {
		return -1;	/* continuation byte, C0/C1 overlong lead, F5..FF */
	}
	*cp = s[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if (s[i] < lo || s[i] > hi)
			return -i;
		*cp = *cp << 6 | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

/*
 * One character of a JSON string into tmp; returns its length. Valid JSON
 * needs only C0 escaped; DEL and the C1 controls are escaped too because a
 * terminal acts on them raw, U+2028/U+2029 because JavaScript ends a line
 * there. Bytes that are not UTF-8 become U+FFFD: JSON text is UTF-8.
 */
static size_t json_char(const unsigned char *p, int n, uint32_t cp, char tmp[8])
{
	if (n < 0) {
		memcpy(tmp, "\xef\xbf\xbd", 3);	/* U+FFFD */
		return 3;
	}
	if (cp == '"' || cp == '\\') {
		tmp[0] = '\\';
		tmp[1] = (char)cp;
		return 2;
	}
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
		return (size_t)snprintf(tmp, 8, "\\u%04x", (unsigned int)cp);
	memcpy(tmp, p, (size_t)n);
	return (size_t)n;
}

void tf_json_escape(const char *s, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (outlen < 3) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	while (*p) {
		char tmp[8];
		uint32_t cp;
		int n = tf_utf8_next(p, &cp);
		size_t m = json_char(p, n, cp, tmp);

		/* A character or escape goes whole or not at all: still valid JSON. */
		if (o + m + 2 > outlen)
			break;
		memcpy(out + o, tmp, m);
		o += m;
		p += n < 0 ? -n : n;
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* ---- names on a terminal ----------------------------------------------- */

static bool term_utf8;

void tf_term_set_utf8(bool utf8)
{
	term_utf8 = utf8;
}

void tf_term_setup(void)
{
	/* LC_CTYPE only: numbers keep their C format in tables and JSON. */
	tf_term_set_utf8(setlocale(LC_CTYPE, "") && !strcmp(nl_langinfo(CODESET), "UTF-8"));
}

/*
 * Characters a terminal acts on (C0, DEL, C1: ESC and CSI start escape
 * sequences, CR and BS overwrite a line) or that reorder or break the rest
 * of the line (bidi embeddings, overrides and isolates; line and paragraph
 * separators).
 */
static bool term_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c ||
	       cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * The next character of s as the terminal gets it, into tmp: the character
 * itself, or its escape (\xNN for a byte, \uNNNN or \UNNNNNNNN for a code
 * point). Returns the bytes of s it stands for; *len and *cols are its
 * length in tmp and its width on the screen.
 */
static size_t term_char(const unsigned char *p, char tmp[16], size_t *len, int *cols)
{
	uint32_t cp;
	int n = tf_utf8_next(p, &cp), w = 1;

	/* Not UTF-8, or a terminal that is not: it could take them for C1 controls. */
	if (n < 0 || (!term_utf8 && p[0] >= 0x80)) {
		*len = (size_t)snprintf(tmp, 16, "\\x%02x", p[0]);
		*cols = (int)*len;
		return 1;
	}
	/* 0: combining, 2: wide (CJK, emoji), -1: not printable here. */
	if (cp >= 0x80 && !term_unsafe(cp))
		w = wcwidth((wchar_t)cp);
	if (term_unsafe(cp) || w < 0) {
		*len = (size_t)snprintf(tmp, 16, cp < 0x80 ? "\\x%02x" :
					cp > 0xffff ? "\\U%08x" : "\\u%04x", (unsigned int)cp);
		*cols = (int)*len;
		return (size_t)n;
	}
	memcpy(tmp, p, (size_t)n);
	*len = (size_t)n;
	*cols = w;
	return (size_t)n;
}

size_t tf_term_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t width = 0, len;
	char tmp[16];
	int cols;

	while (*p) {
		p += term_char(p, tmp, &len, &cols);
		width += (size_t)cols;
	}
	return width;
}

const char *tf_term_str(const char *s, int min, int max, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, len;
	int width = 0, cols;
	char tmp[16];

	if (!outlen)
		return out;
	while (*p) {
		size_t n = term_char(p, tmp, &len, &cols);

		/* Cut between characters, never inside one or inside an escape. */
		if ((max > 0 && width + cols > max) || o + len + 1 > outlen)
			break;
		memcpy(out + o, tmp, len);
		o += len;
		width += cols;
		p += n;
	}
	for (; width < min && o + 1 < outlen; width++)
		out[o++] = ' ';
	out[o] = '\0';
	return out;
}

/* Append the characters of p, as the terminal gets them, up to max columns. */
static size_t term_put(const unsigned char *p, int max, char *out, size_t o, size_t outlen,
		       int *width)
{
	size_t len;
	char tmp[16];
	int cols;

	while (*p) {
		size_t n = term_char(p, tmp, &len, &cols);

		if (*width + cols > max || o + len + 1 > outlen)
			break;
		memcpy(out + o, tmp, len);
		o += len;
		*width += cols;
		p += n;
	}
	return o;
}

const char *tf_term_fit(const char *s, int cols, bool middle, char *out, size_t outlen)
{
	/* U+2026 only where it is a character; elsewhere an ASCII stand-in. */
	const char *mark = term_utf8 ? "\xe2\x80\xa6" : "~";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, total = tf_term_width(s), len;
	int width = 0, head, tail, c;
	char tmp[16];

	if (!outlen)
		return out;
	out[0] = '\0';
	if (cols >= 0 && total <= (size_t)cols)
		return tf_term_str(s, 0, 0, out, outlen);
	if (cols <= 0)
		return out;
	/* Room for the marker; addresses keep more of their end (the port). */
	head = middle ? (cols - 1) / 2 : cols - 1;
	tail = cols - 1 - head;
	o = term_put(p, head, out, o, outlen, &width);
	if (o + strlen(mark) + 1 > outlen) {
		out[o] = '\0';
		return out;
	}
	memcpy(out + o, mark, strlen(mark));
	o += strlen(mark);
	if (tail > 0) {
		/* The tail starts at the first character after which tail columns are left. */
		size_t skipped = 0;

		while (*p && total - skipped > (size_t)tail) {
			p += term_char(p, tmp, &len, &c);
			skipped += (size_t)c;
		}
		width = 0;
		o = term_put(p, tail, out, o, outlen, &width);
	}
	out[o] = '\0';
	return out;
}

static void key(struct tf_json *j, const char *k)
{
	char esc[128];

	if (j->need_comma)
		put(j, ",", 1);
	j->need_comma = true;
	tf_json_escape(k, esc, sizeof(esc));
	puts_(j, esc);
	put(j, ":", 1);
}

void tf_json_begin(struct tf_json *j, const char *type, const struct timespec *now)
{
	char ts[64];

	j->len = 0;
	j->oom = false;
	j->need_comma = false;
	put(j, "{", 1);
	tf_json_str(j, "type", type);
	tf_format_ts(now, ts, sizeof(ts));
	tf_json_str(j, "ts", ts);
}

void tf_json_int_or_null(struct tf_json *j, const char *k, int v)
{
	if (v < 0)
		tf_json_null(j, k);
	else
		tf_json_i64(j, k, v);
}

void tf_json_u64_or_null(struct tf_json *j, const char *k, bool set, uint64_t v)
{
	if (set)
		tf_json_u64(j, k, v);
	else
		tf_json_null(j, k);
}

void tf_json_object_begin(struct tf_json *j, const char *k)
{
	key(j, k);
	put(j, "{", 1);
	j->need_comma = false;
}

void tf_json_object_end(struct tf_json *j)
{
	put(j, "}", 1);
	j->need_comma = true;
}

void tf_json_str(struct tf_json *j, const char *k, const char *val)
{
	/* 6 bytes per byte is the worst case (\u00XX). */
	size_t n = val ? strlen(val) * 6 + 3 : 0;
	char *esc;

	key(j, k);
	if (!val) {
		puts_(j, "null");
		return;
	}
	esc = malloc(n);
	if (!esc) {
		j->oom = true;
		return;
	}
	tf_json_escape(val, esc, n);
	puts_(j, esc);
	free(esc);
}

void tf_json_u64(struct tf_json *j, const char *k, uint64_t val)
{
	char b[32];

	key(j, k);
	snprintf(b, sizeof(b), "%" PRIu64, val);
	puts_(j, b);
}

void tf_json_i64(struct tf_json *j, const char *k, int64_t val)
{
	char b[32];

	key(j, k);
	snprintf(b, sizeof(b), "%" PRId64, val);
	puts_(j, b);
}

void tf_json_num(struct tf_json *j, const char *k, double val)
{
	char b[48];

	key(j, k);
	/* Integral rates print without exponent so that jq compares exactly. */
	if (val >= 0 && val < 1e18 && val == (double)(uint64_t)val)
		snprintf(b, sizeof(b), "%" PRIu64, (uint64_t)val);
	else
		snprintf(b, sizeof(b), "%.3f", val);
	puts_(j, b);
}

void tf_json_bool(struct tf_json *j, const char *k, bool val)
{
	key(j, k);
	puts_(j, val ? "true" : "false");
}

void tf_json_null(struct tf_json *j, const char *k)
{
	key(j, k);
	puts_(j, "null");
}

int tf_json_end(struct tf_json *j, FILE *f)
{
	int ret = 0;

	put(j, "}\n", 2);
	if (j->oom)
		return -1;
	if (fwrite(j->buf, 1, j->len, f) != j->len)
		ret = -1;
	j->len = 0;
	return ret;
}

void tf_json_free(struct tf_json *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

void tf_format_ts(const struct timespec *ts, char *out, size_t outlen)
{
	struct tm tm;
	char base[32];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03dZ", base, (int)((ts->tv_nsec / 1000000) % 1000));
}

void tf_format_bytes(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(out, outlen, "%" PRIu64 " B", bytes);
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, outlen, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s",
		 v, unit[u]);
}

void tf_format_rate(double bps, char *out, size_t outlen)
{
	static const char *const unit[] = { "bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s" };
	int u = 0;

	if (bps < 0)
		bps = 0;
	while (bps >= 1000 && u < 4) {
		bps /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%.0f %s", bps, unit[u]);
	else
		snprintf(out, outlen, bps < 10 ? "%.2f %s" : bps < 100 ? "%.1f %s" : "%.0f %s",
			 bps, unit[u]);
}

void tf_format_count(uint64_t n, char *out, size_t outlen)
{
	if (n < 1000000)
		snprintf(out, outlen, "%" PRIu64, n);
	else if (n < 1000000000)
		snprintf(out, outlen, "%.2fM", (double)n / 1e6);
	else
		snprintf(out, outlen, "%.2fG", (double)n / 1e9);
}
