// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "http.h"
#include "log.h"
#include "prom.h"

/*
 * How long a scrape waits for the run to render: the run answers between
 * two looks at the host, so only a long stall (libvirt hanging a reload)
 * comes near it; then the previous render is served, not an error.
 */
#define RENDER_WAIT_S 5

static const char index_page[] =
	"<html><head><title>tapflow agent</title></head><body>"
	"<h1>tapflow agent</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

int tf_http_parse_addr(const char *s, void *sa, unsigned int *salen, char *err, size_t errlen)
{
	struct sockaddr_in *v4 = sa;
	struct sockaddr_in6 *v6 = sa;
	const char *colon = strrchr(s, ':');
	char host[64];
	char *end;
	long port;
	size_t hl;

	if (!colon)
		goto bad;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		goto bad;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(sa, 0, sizeof(struct sockaddr_in6));
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
			goto bad;
		*salen = sizeof(*v6);
		return 0;
	}
	v4->sin_family = AF_INET;
	v4->sin_port = htons((uint16_t)port);
	/* ":PORT": every IPv4 address, only because the user said so. */
	if (hl && inet_pton(AF_INET, host, &v4->sin_addr) != 1)
		goto bad;
	*salen = sizeof(*v4);
	return 0;
bad:
	snprintf(err, errlen,
		 "invalid --prometheus '%s': expected ADDR:PORT, [IPV6]:PORT or :PORT "
		 "(every address)", s);
	return -1;
}

/* body gzip'ed into *out (malloc'ed): 0, or -1 (then serve it plain). */
static int gzip_body(const char *body, size_t len, char **out, size_t *outlen)
{
	z_stream z = {};
	size_t cap;
	char *buf;

	/* 15 + 16: a gzip header and trailer around the deflate stream. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&z, (uLong)len) + 64;
	buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)body;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)buf;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(buf);
		return -1;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	*out = buf;
	return 0;
}

static bool accepts_gzip(struct MHD_Connection *conn)
{
	const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *g = ae ? strstr(ae, "gzip") : NULL;

	/* "gzip;q=0" refuses it. */
	return g && strncmp(g + 4, ";q=0", 4) != 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode,
			     bool gzipped)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (gzipped)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Ask the run for a render and wait for it: a copy of it, or NULL (none at all). */
static char *fresh_render(struct tf_http *h, size_t *len)
{
	struct timespec until;
	uint64_t gen, one = 1;
	char *copy = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RENDER_WAIT_S;
	pthread_mutex_lock(&h->mu);
	gen = ++h->asked;
	if (write(h->wake_fd, &one, sizeof(one)) != sizeof(one))
		tf_debug("cannot wake the run for a scrape: %s", strerror(errno));
	while (h->served < gen)
		if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT)
			break;
	h->stale += h->served < gen;
	if (h->body) {
		copy = malloc(h->len + 1);
		if (copy) {
			memcpy(copy, h->body, h->len);
			*len = h->len;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return copy;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	static const char not_found[] = "404 page not found\n";
	static const char not_allowed[] = "405 method not allowed\n";
	static const char unavailable[] = "503 no metrics rendered yet\n";
	struct tf_http *h = cls;
	char *body, *gz;
	size_t len = 0, gzlen;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", (void *)not_allowed,
			     sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT, false);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/html", (void *)index_page,
			     sizeof(index_page) - 1, MHD_RESPMEM_PERSISTENT, false);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", (void *)not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT, false);
	body = fresh_render(h, &len);
	if (!body)
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", (void *)unavailable,
			     sizeof(unavailable) - 1, MHD_RESPMEM_PERSISTENT, false);
	__atomic_add_fetch(&h->scrapes, 1, __ATOMIC_RELAXED);
	if (accepts_gzip(conn) && !gzip_body(body, len, &gz, &gzlen)) {
		free(body);
		__atomic_add_fetch(&h->gzipped, 1, __ATOMIC_RELAXED);
		return reply(conn, MHD_HTTP_OK, TF_PROM_CONTENT_TYPE, gz, gzlen,
			     MHD_RESPMEM_MUST_FREE, true);
	}
	return reply(conn, MHD_HTTP_OK, TF_PROM_CONTENT_TYPE, body, len, MHD_RESPMEM_MUST_FREE,
		     false);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	tf_debug("http: %s", msg);
}

int tf_http_start(struct tf_http *h, const char *addr, char *err, size_t errlen)
{
	struct sockaddr_in6 sa;
	/*
	 * epoll (or poll), never select(): an agent on a few hundred
	 * interfaces holds over FD_SETSIZE descriptors (two TCX links each),
	 * and select() cannot take a connection numbered above it.
	 */
	unsigned int salen, flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;

	memset(h, 0, sizeof(*h));
	h->wake_fd = -1;
	if (tf_http_parse_addr(addr, &sa, &salen, err, errlen))
		return -1;
	snprintf(h->where, sizeof(h->where), "%s", addr);
	if (sa.sin6_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->wake_fd < 0) {
		snprintf(err, errlen, "cannot make an eventfd: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	/* Scrapes are served one at a time: each waits for the one run thread anyway. */
	/* The logger first: it takes the messages of the options after it. */
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, 64u,
				MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s for Prometheus: %s", addr,
			 errno ? strerror(errno) : "libmicrohttpd refused it");
		return -1;
	}
	return 0;
}

bool tf_http_wanted(struct tf_http *h, uint64_t *gen)
{
	uint64_t n;
	bool want;

	if (h->wake_fd < 0)
		return false;
	if (read(h->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		tf_debug("cannot read the scrape eventfd: %s", strerror(errno));
	pthread_mutex_lock(&h->mu);
	*gen = h->asked;
	want = h->asked > h->served;
	pthread_mutex_unlock(&h->mu);
	return want;
}

void tf_http_publish(struct tf_http *h, char *body, size_t len, uint64_t gen)
{
	pthread_mutex_lock(&h->mu);
	free(h->body);
	h->body = body;
	h->len = len;
	if (gen > h->served)
		h->served = gen;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void tf_http_stop(struct tf_http *h)
{
	if (h->d) {
		/* Wake a scrape that waits, so that the daemon's thread can end. */
		pthread_mutex_lock(&h->mu);
		h->served = h->asked;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		MHD_stop_daemon(h->d);
		h->d = NULL;
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
	}
	free(h->body);
	h->body = NULL;
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	h->wake_fd = -1;
}
