// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "prom.h"

static void put(struct tf_prom *p, const char *s, size_t n)
{
	if (p->oom)
		return;
	if (p->len + n + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *b;

		while (cap < p->len + n + 1)
			cap *= 2;
		b = realloc(p->buf, cap);
		if (!b) {
			p->oom = true;
			return;
		}
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void puts_(struct tf_prom *p, const char *s)
{
	put(p, s, strlen(s));
}

static void printf_(struct tf_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct tf_prom *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(p, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void tf_prom_escape(const char *s, char *out, size_t outlen)
{
	const unsigned char *c = (const unsigned char *)(s ? s : "");
	size_t o = 0;

	if (!outlen)
		return;
	while (*c) {
		char tmp[4];
		size_t n;
		uint32_t cp;
		int len = tf_utf8_next(c, &cp);

		if (len < 0) {
			memcpy(tmp, "\xef\xbf\xbd", 3);	/* U+FFFD */
			n = 3;
			c += -len;
		} else if (*c == '\\' || *c == '"' || *c == '\n') {
			tmp[0] = '\\';
			tmp[1] = *c == '\n' ? 'n' : (char)*c;
			n = 2;
			c++;
		} else {
			memcpy(tmp, c, (size_t)len);
			n = (size_t)len;
			c += len;
		}
		/* Whole characters and escapes only: a cut one would not parse. */
		if (o + n >= outlen)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
}

/* HELP text: only backslash and newline are escaped there. */
static void help_text(struct tf_prom *p, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(p, "\\\\");
		else if (*s == '\n')
			puts_(p, "\\n");
		else
			put(p, s, 1);
	}
}

void tf_prom_family(struct tf_prom *p, const char *name, const char *type, const char *help)
{
	printf_(p, "# HELP %s ", name);
	help_text(p, help);
	printf_(p, "\n# TYPE %s %s\n", name, type);
}

static void labels_(struct tf_prom *p, const char *name, const char *const *labels)
{
	puts_(p, name);
	if (!labels || !labels[0])
		return;
	put(p, "{", 1);
	for (size_t i = 0; labels[i]; i += 2) {
		/* A label value can be a whole path or domain name: 1 KiB of it at most. */
		char v[1024];

		tf_prom_escape(labels[i + 1], v, sizeof(v));
		printf_(p, "%s%s=\"", i ? "," : "", labels[i]);
		puts_(p, v);
		put(p, "\"", 1);
	}
	put(p, "}", 1);
}

void tf_prom_u64(struct tf_prom *p, const char *name, const char *const *labels, uint64_t v)
{
	labels_(p, name, labels);
	printf_(p, " %llu\n", (unsigned long long)v);
}

void tf_prom_num(struct tf_prom *p, const char *name, const char *const *labels, double v)
{
	labels_(p, name, labels);
	if (isnan(v))
		puts_(p, " NaN\n");
	else if (isinf(v))
		puts_(p, v > 0 ? " +Inf\n" : " -Inf\n");
	else
		printf_(p, " %.17g\n", v);
}

void tf_prom_reset(struct tf_prom *p)
{
	p->len = 0;
	p->oom = false;
	if (p->buf)
		p->buf[0] = '\0';
}

void tf_prom_free(struct tf_prom *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}
