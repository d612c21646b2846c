/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers the bench programs (prog_cost, flow_cost) share. */
#ifndef TF_BENCH_UTIL_H
#define TF_BENCH_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

/* -v: libbpf's own messages; by default one line says what failed. */
static bool verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!verbose || level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n) (n >= 1), and its minimum in *min if min is not NULL. v is kept. */
static inline double median_min(const double *v, unsigned int n, double *min)
{
	double *s = malloc(n * sizeof(*s));
	double m;

	if (!s) {
		if (min)
			*min = v[0];
		return v[0];
	}
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	if (min)
		*min = s[0];
	free(s);
	return m;
}

#endif /* TF_BENCH_UTIL_H */
