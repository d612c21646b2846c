/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What `tapflow agent` exposes to Prometheus, rendered from a session
 * after its poll: per-interface counters, drops, NAT forwarding loss, the
 * top flows per VM, and the agent's own health (README: "Metrics").
 *
 * Every *_total is a true counter: it never goes down while the agent
 * runs. A VM NIC keeps its series across VM restarts and tap re-creation
 * (its labels are those it was first seen with), and the flow series of
 * an interface add up to its interface series at every scrape.
 *
 * With --pin, the interface series go on across agents too (the kernel
 * counted on meanwhile; restarts and base totals are in the pin set). The
 * flow series, their "other" and the NAT forwarding loss of a target
 * carried on from an earlier agent start again at its first render, from
 * zero: what they held is the earlier agent's (a counter reset, as for any
 * exporter that restarts), and the flows' counts in the kernel map include
 * traffic those series already showed.
 */
#ifndef TF_AGENT_METRICS_H
#define TF_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ksyms.h"
#include "prom.h"
#include "session.h"

/* Indexes of a flow series' four counts. */
enum { TF_FS_RX_BYTES, TF_FS_RX_PACKETS, TF_FS_TX_BYTES, TF_FS_TX_PACKETS, TF_FS_N };

/* The labels of a flow series: flows that share them share the series. */
struct tf_series_label {
	char proto[24];
	char local[46];
	char remote[46];
	int remote_port;		/* -1: none */
	char nat[46];			/* the outside address, "routed", or "" */
};

/* A flow series (v: its values), or an interval's traffic of one (v: the gain). */
struct tf_flow_series {
	struct tf_series_label l;
	uint64_t v[TF_FS_N];
	bool exported;
};

/* A flow's totals at the last render, to tell what it did since. */
struct tf_flow_mark {
	struct tf_flow_key key;
	uint64_t tot[TF_FS_N];
};

/* The flow series a collector target has (its series' name: tf_target.first_ifname). */
struct tf_series_target {
	struct tf_flow_series *series;	/* exported flow series, sorted by label */
	size_t n_series;
	struct tf_flow_mark *marks;	/* its flows at the last render, sorted by key */
	size_t n_marks;
	uint64_t other[TF_FS_N];	/* the "other" flow series */
	uint64_t lost_tx, lost_rx;	/* NAT forwarding loss, the highest seen */
	/*
	 * A target carried on from an earlier agent: its flow series count
	 * from its first render (based), from these values of its counters.
	 */
	bool based, basing;		/* basing: this render takes the base */
	uint64_t iface_base[TF_FS_N];
	uint64_t lost_base_tx, lost_base_rx;
};

struct tf_ipfix;
struct tf_ipfix_flows;

struct tf_agent_health {
	uint64_t scrapes, scrapes_gzip, scrapes_stale;
	uint64_t reloads, reload_errors;
	double start_time;		/* CLOCK_REALTIME (s) */
	struct tf_ipfix *const *ipfix;	/* --ipfix destinations (n_ipfix) */
	size_t n_ipfix;
	const struct tf_ipfix_flows *ipfix_flows;	/* NULL: no export */
};

struct tf_agent_metrics {
	size_t flow_top;		/* --flow-metrics: flow series per interface */
	struct tf_series_target *t;	/* per collector target, by its index */
	size_t n_t;
	const struct tf_ksyms *ksyms;		/* drop locations; may be empty */
	const struct tf_drop_reasons *reasons;	/* NULL: drops not named */
};

/*
 * Render the session as it is after its last poll into p, and start the
 * next flow interval: the top flows of the next render are those of the
 * traffic between this call and that one. 0, or -ENOMEM.
 */
int tf_agent_metrics_render(struct tf_agent_metrics *m, struct tf_session *s,
			    const struct tf_agent_health *h, struct tf_prom *p);
void tf_agent_metrics_free(struct tf_agent_metrics *m);

/*
 * One interval of one interface's flow series (pure, unit-tested). gain:
 * what each label did in the interval, sorted and merged
 * (tf_flow_series_merge). Picks at most top labels by bytes of the
 * interval (a series already exported wins a tie, and keeps its place
 * while there is room), adds the gain to their series (a new series starts
 * from its gain), drops the others, and sets other so that series + other
 * == iface without other ever going down. Replaces *series. 0, or -ENOMEM
 * (nothing changed).
 */
int tf_flow_series_step(struct tf_flow_series **series, size_t *n_series,
			const struct tf_flow_series *gain, size_t n_gain, size_t top,
			const uint64_t iface[TF_FS_N], uint64_t other[TF_FS_N]);
/* Sort by label and merge equal labels (summing v); returns how many are left. */
size_t tf_flow_series_merge(struct tf_flow_series *g, size_t n);

#endif /* TF_AGENT_METRICS_H */
