// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_conf.h"
#include "cli.h"

/* A config file is a few lines: anything bigger is not one. */
#define CONF_MAX_BYTES (1 << 20)

static void conf_init(struct tf_agent_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->flow_metrics = -1;
	c->no_nat = c->no_drops = c->tcp = -1;
}

void tf_agent_conf_free(struct tf_agent_conf *c)
{
	for (size_t i = 0; i < c->n_vms; i++)
		free(c->vms[i]);
	for (size_t i = 0; i < c->n_ifaces; i++)
		free(c->ifaces[i]);
	free(c->vms);
	free(c->ifaces);
	free(c->prometheus);
	conf_init(c);
}

static int push(char ***arr, size_t *n, const char *v)
{
	char **a = realloc(*arr, (*n + 1) * sizeof(*a));

	if (!a)
		return -1;
	*arr = a;
	a[*n] = strdup(v);
	if (!a[*n])
		return -1;
	(*n)++;
	return 0;
}

static int parse_long(const char *v, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(v, &end, 10);
	return errno || end == v || *end || *out < min || *out > max ? -1 : 0;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One `key = value`: 0, or -1 with why in err. */
static int set(struct tf_agent_conf *c, const char *key, const char *v, char *err, size_t errlen)
{
	long n;
	char *end;

	if (!*v) {
		snprintf(err, errlen, "%s has no value", key);
		return -1;
	}
	if (!strcmp(key, "vm") || !strcmp(key, "iface")) {
		if (!strcmp(key, "vm") ? push(&c->vms, &c->n_vms, v)
				       : push(&c->ifaces, &c->n_ifaces, v)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	} else if (!strcmp(key, "flow-metrics")) {
		if (parse_long(v, 0, 100000, &c->flow_metrics))
			goto bad_number;
	} else if (!strcmp(key, "max-flows")) {
		if (parse_long(v, 1, 1L << 30, &n))
			goto bad_number;
		c->max_flows = n;
	} else if (!strcmp(key, "interval")) {
		errno = 0;
		c->interval = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(c->interval) ||
		    c->interval < TF_SECONDS_MIN || c->interval > TF_SECONDS_MAX) {
			snprintf(err, errlen, "interval '%s': expected seconds from %g to %g", v,
				 TF_SECONDS_MIN, TF_SECONDS_MAX);
			return -1;
		}
	} else if (!strcmp(key, "prometheus")) {
		free(c->prometheus);
		c->prometheus = strdup(v);
		if (!c->prometheus) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	} else if (!strcmp(key, "no-nat") || !strcmp(key, "no-drops") || !strcmp(key, "tcp")) {
		if (parse_bool(v, !strcmp(key, "no-nat")     ? &c->no_nat
				  : !strcmp(key, "no-drops") ? &c->no_drops
							     : &c->tcp)) {
			snprintf(err, errlen, "%s '%s': expected true or false", key, v);
			return -1;
		}
	} else {
		snprintf(err, errlen, "unknown key '%s' (vm, iface, flow-metrics, max-flows, "
			 "interval, prometheus, no-nat, no-drops, tcp)", key);
		return -1;
	}
	return 0;
bad_number:
	snprintf(err, errlen, "%s '%s': expected a whole number in range", key, v);
	return -1;
}

int tf_agent_conf_parse(const char *text, const char *name, struct tf_agent_conf *conf, char *err,
			size_t errlen)
{
	char *copy = strdup(text), *line, *save = NULL;
	unsigned int lineno = 0;
	char why[256];

	conf_init(conf);
	if (!copy) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	/* strtok_r would skip empty lines and so miscount them. */
	for (line = copy; line; line = save) {
		char *nl = strchr(line, '\n'), *eq, *hash;

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		line = trim(line);
		if (!*line)
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			snprintf(why, sizeof(why), "expected 'key = value'");
			goto fail;
		}
		*eq = '\0';
		if (set(conf, trim(line), trim(eq + 1), why, sizeof(why)))
			goto fail;
	}
	free(copy);
	return 0;
fail:
	snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
	free(copy);
	tf_agent_conf_free(conf);
	return -1;
}

int tf_agent_conf_load(const char *path, struct tf_agent_conf *conf, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *text;
	size_t n;
	int ret;

	conf_init(conf);
	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	text = malloc(CONF_MAX_BYTES + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	n = fread(text, 1, CONF_MAX_BYTES + 1, f);
	if (ferror(f) || n > CONF_MAX_BYTES) {
		snprintf(err, errlen, "%s: %s", path,
			 ferror(f) ? strerror(errno) : "more than 1 MiB: not a config file");
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		snprintf(err, errlen, "%s: holds a NUL byte: not a config file", path);
		free(text);
		return -1;
	}
	ret = tf_agent_conf_parse(text, path, conf, err, errlen);
	free(text);
	return ret;
}
