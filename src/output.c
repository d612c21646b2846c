// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

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

void tf_json_escape(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 3) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[8];
		size_t n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20) {
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n + 2 > outlen)
			break;		/* truncated, but still valid JSON */
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
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
