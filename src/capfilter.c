// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "capfilter.h"

static int parse_proto(const char *s, __u8 *proto, __u8 *family)
{
	char *end;
	long v;

	if (!strcasecmp(s, "any"))
		*proto = 0;
	else if (!strcasecmp(s, "tcp"))
		*proto = 6;
	else if (!strcasecmp(s, "udp"))
		*proto = 17;
	else if (!strcasecmp(s, "icmp"))
		*proto = 1, *family = 4;
	else if (!strcasecmp(s, "icmpv6"))
		*proto = 58, *family = 6;
	else {
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || end == s || *end || v < 0 || v > 255)
			return -1;
		*proto = (__u8)v;
	}
	return 0;
}

static int parse_port(const char *s, __u16 *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return -1;
	*port = (__u16)v;
	return 0;
}

/* One endpoint; *family gets 4 or 6 from its address (0: any address). */
static int parse_endpoint(char *s, struct tf_cap_endpoint *e, __u8 *family)
{
	char *port = NULL, *addr = s;
	int colons = 0;

	memset(e, 0, sizeof(*e));
	for (char *p = s; *p; p++)
		colons += *p == ':';
	if (s[0] == '[') {
		char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -1;
		*close = '\0';
		addr = s + 1;
		if (close[1] == ':')
			port = close + 2;
	} else if (colons == 1) {
		port = strchr(s, ':');
		*port++ = '\0';
	}
	if (port && parse_port(port, &e->port))
		return -1;
	if (!strcmp(addr, "*"))
		return 0;
	if (inet_pton(AF_INET, addr, e->ip) == 1) {
		*family = 4;
	} else if (inet_pton(AF_INET6, addr, e->ip) == 1) {
		*family = 6;
	} else {
		return -1;
	}
	e->ip_set = 1;
	return 0;
}

int tf_cap_filter_parse(const char *spec, struct tf_cap_filter *out, char *err, size_t errlen)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	__u8 fam_proto = 0, fam[2] = { 0, 0 };
	struct tf_cap_endpoint *eps[2];
	int n = 0, ret = -1;

	memset(out, 0, sizeof(*out));
	eps[0] = &out->a;
	eps[1] = &out->b;
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	tok = strtok_r(copy, " ,", &save);
	if (!tok || parse_proto(tok, &out->proto, &fam_proto)) {
		snprintf(err, errlen, "invalid --flow '%s': expected PROTO [ENDPOINT [ENDPOINT]], "
			 "PROTO tcp, udp, icmp, icmpv6, any or a number", spec);
		goto out;
	}
	while ((tok = strtok_r(NULL, " ,", &save))) {
		if (n == 2 || parse_endpoint(tok, eps[n], &fam[n])) {
			snprintf(err, errlen, "invalid --flow '%s': %s", spec,
				 n == 2 ? "at most two endpoints"
					: "an endpoint is IP, IP:PORT, [IPv6]:PORT, *:PORT or *");
			goto out;
		}
		n++;
	}
	/* The family: the addresses' and ICMP's must agree. */
	out->family = fam_proto;
	for (int i = 0; i < 2; i++) {
		if (!fam[i])
			continue;
		if (out->family && out->family != fam[i]) {
			snprintf(err, errlen, "invalid --flow '%s': IPv4 and IPv6 mixed", spec);
			goto out;
		}
		out->family = fam[i];
	}
	out->on = 1;
	ret = 0;
out:
	free(copy);
	return ret;
}
