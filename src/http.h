/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's HTTP endpoint (libmicrohttpd, its own thread): GET /metrics
 * serves the Prometheus exposition, gzip'ed when the scraper accepts it.
 *
 * Every piece of tracing state belongs to the run's thread. A scrape
 * therefore does not read it: it asks the run for a fresh render (through
 * an eventfd the run's wait watches) and waits for it, so that the
 * numbers are as of the scrape, and the top flows of --flow-metrics are
 * those of the time since the previous scrape.
 */
#ifndef TF_HTTP_H
#define TF_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Daemon;

struct tf_http {
	struct MHD_Daemon *d;
	int wake_fd;		/* eventfd: readable while a scrape waits */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t asked;		/* scrapes that asked for a render */
	uint64_t served;	/* the scrape the last render answers */
	char *body;		/* the last render; NULL: none yet */
	size_t len;
	uint64_t scrapes, gzipped, stale;	/* served; with gzip; from an older render */
	char where[80];		/* "127.0.0.1:9560", as said in messages */
};

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" (every address): 0, or -1 with a reason. */
int tf_http_parse_addr(const char *s, void *sa, unsigned int *salen, char *err, size_t errlen);
/* Listen on addr (see tf_http_parse_addr). 0, or -1 with a reason in err. */
int tf_http_start(struct tf_http *h, const char *addr, char *err, size_t errlen);
/*
 * The run's side. Called when wake_fd is readable: true if a scrape waits,
 * with *gen the scrape to answer with tf_http_publish.
 */
bool tf_http_wanted(struct tf_http *h, uint64_t *gen);
/* Hand the render over (h owns body from now on) and wake the scrapes up to gen. */
void tf_http_publish(struct tf_http *h, char *body, size_t len, uint64_t gen);
void tf_http_stop(struct tf_http *h);

#endif /* TF_HTTP_H */
