/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Prometheus text exposition format (version 0.0.4): metric families,
 * each a # HELP and a # TYPE line followed by all of its samples, built in
 * memory so that a scrape gets one consistent snapshot.
 */
#ifndef TF_PROM_H
#define TF_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tf_prom {
	char *buf;
	size_t len, cap;
	bool oom;		/* a write did not fit: the text is incomplete */
};

/* The content type a scraper is told. */
#define TF_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* # HELP and # TYPE (counter, gauge) of the family whose samples follow. */
void tf_prom_family(struct tf_prom *p, const char *name, const char *type, const char *help);
/*
 * One sample: name{labels} value. labels: pairs of name and value, ended
 * by a NULL name; a NULL value is written as "". Values are escaped and
 * what is not UTF-8 becomes U+FFFD, so any name from libvirt or the
 * kernel gives a line the format accepts.
 */
void tf_prom_u64(struct tf_prom *p, const char *name, const char *const *labels, uint64_t v);
void tf_prom_num(struct tf_prom *p, const char *name, const char *const *labels, double v);
/* Escape a label value (without the quotes) into out (always terminated). */
void tf_prom_escape(const char *s, char *out, size_t outlen);
void tf_prom_reset(struct tf_prom *p);
void tf_prom_free(struct tf_prom *p);

#endif /* TF_PROM_H */
