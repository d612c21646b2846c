/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's config file (--config): what SIGHUP reloads. One setting a
 * line, `key = value`, keys named as the long options; `#` starts a
 * comment; vm and iface may repeat. A command-line option wins over the
 * file's, at the start and at every reload.
 */
#ifndef TF_AGENT_CONF_H
#define TF_AGENT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tf_agent_conf {
	char **vms, **ifaces;		/* vm, iface: names or shell patterns */
	size_t n_vms, n_ifaces;
	long flow_metrics;		/* -1: not set */
	char *prometheus;		/* NULL: not set */
	long max_flows;			/* 0: not set */
	double interval;		/* 0: not set */
	int no_nat, no_drops, tcp;	/* -1: not set; else 0/1 */
};

/* Read path into conf. 0, or -1 with "PATH:LINE: why" in err (conf then empty). */
int tf_agent_conf_load(const char *path, struct tf_agent_conf *conf, char *err, size_t errlen);
/* The same from text, for the tests; name is what messages call it. */
int tf_agent_conf_parse(const char *text, const char *name, struct tf_agent_conf *conf, char *err,
			size_t errlen);
void tf_agent_conf_free(struct tf_agent_conf *conf);

#endif /* TF_AGENT_CONF_H */
