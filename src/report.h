/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records of the design notes (vm, stats, summary), as JSON lines and
 * as human tables. Shared by list, stats, and later top and the agent.
 */
#ifndef TF_REPORT_H
#define TF_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "collector.h"
#include "flows.h"
#include "inventory.h"
#include "nat.h"
#include "output.h"
#include "tcp_health.h"

const char *tf_fdb_state_name(enum tf_fdb_state state);

/* vm record (list). */
void tf_report_vm_json(struct tf_json *j, const struct tf_vif *vif,
		       enum tf_attach_state attached, const struct timespec *now, FILE *f);
void tf_report_vm_table(const struct tf_inventory *inv, const enum tf_attach_state *attached,
			FILE *f);
/* Lines warning about FDB/tap-MAC mismatches; returns how many. */
int tf_report_vm_warnings(const struct tf_inventory *inv, FILE *f);

/* stats records: one per target; final marks the end-of-run report. */
void tf_report_stats_json(struct tf_json *j, const struct tf_collector *c,
			  const struct timespec *now, bool final, FILE *f);
void tf_report_stats_table(const struct tf_collector *c, const struct timespec *now,
			   bool final, FILE *f);

struct tf_summary {
	double duration_s;
	const char *attach_mode;
	size_t vms, interfaces, vanished;
	struct tf_losses losses;
};
void tf_summary_fill(struct tf_summary *s, const struct tf_collector *c);
void tf_report_summary_json(struct tf_json *j, const struct tf_collector *c,
			    const struct tf_summary *s, const struct timespec *now, FILE *f);
void tf_report_summary_table(const struct tf_collector *c, const struct tf_summary *s,
			     FILE *f);

/*
 * flow records: per flow target (VM tap, --iface), its flows biggest first
 * (at most top_n, 0: all), then the aggregates that make the interface's
 * flow totals add up to its stats: "others" (flows beyond --top), "expired"
 * (ended flows dropped from memory), "overflow" (flow map full), "unparsed".
 */
struct tf_flow_report {
	const struct tf_collector *c;
	const struct tf_flows *fl;
	int64_t clock_offset;		/* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	size_t top_n;			/* 0: every flow */
	bool final;
	const struct tf_nat_index *nat;	/* the NAT join's index; NULL: join off */
	const struct tf_tcp_health *tcp;	/* --tcp: flows' TCP figures; NULL: off */
	/*
	 * The collector's targets by ifindex (position + 1, 0: free), for the
	 * lookups of every row; rebuilt every poll, checked on use, so that a
	 * target list changed since costs a walk, never a wrong answer.
	 */
	uint32_t *tslots;
	size_t n_tslots;		/* a power of 2, at least twice the targets */
};

/* (Re)build r's targets by ifindex: 0, or -ENOMEM (lookups then walk). */
int tf_flow_report_index(struct tf_flow_report *r);
void tf_flow_report_free(struct tf_flow_report *r);

/* One row as reported: a flow, or an aggregate of the interface. */
struct tf_flow_row {
	const struct tf_target *t;
	const char *aggregate;		/* NULL for a flow, else its kind */
	const struct tf_flow *flow;	/* a flow's entry in the table; NULL: aggregate */
	uint64_t flows;			/* others/expired: how many flows */
	struct tf_flow_view v;
	bool expired;
	double rx_bps, tx_bps;
	uint64_t first_seen_ns, last_seen_ns;	/* 0: unknown */
	/* NAT join (flows only, join on): in the row's view (swapped if mirrored). */
	bool joinable;			/* the join ran for this row */
	struct tf_nat_link nat;
	bool drops_known;		/* a flow, with the drop tracer on */
	uint64_t drops;			/* its packets dropped (attributed to this flow) */
};

/*
 * The NAT join over every flow of target t (not only the shown ones):
 * n_up = forwarded flows, counters and losses summed, in the row's view.
 */
void tf_flow_target_fwd(const struct tf_flow_report *r, const struct tf_target *t,
			struct tf_nat_link *out);

/*
 * The rows of target t: flows sorted by `by`, at most top_n, then the
 * aggregates (overflow/unparsed always, with_zero_aggr, else when nonzero).
 * *rows is malloc'ed. Returns the number of rows, -1 on out of memory.
 */
long tf_flow_rows(const struct tf_flow_report *r, const struct tf_target *t,
		  enum tf_flow_sort by, bool with_zero_aggr, struct tf_flow_row **rows);

void tf_report_flows_json(struct tf_json *j, const struct tf_flow_report *r,
			  const struct timespec *now, FILE *f);
void tf_report_flows_table(const struct tf_flow_report *r, const struct timespec *now,
			   FILE *f);
void tf_report_flows_summary_json(struct tf_json *j, const struct tf_flow_report *r,
				  const struct tf_summary *s, const struct timespec *now,
				  FILE *f);
void tf_report_flows_summary_table(const struct tf_flow_report *r, const struct tf_summary *s,
				   FILE *f);

/* A bpf_ktime_get_ns() time as RFC 3339 (null if 0); off: realtime - monotonic. */
void tf_report_json_ktime(struct tf_json *j, const char *key, uint64_t ns, int64_t off);

/* Table cells of a row: "udp", "10.0.0.1:53", "[fe80::1]:53", "icmp echo id 7". */
void tf_flow_row_proto(const struct tf_flow_row *row, char *out, size_t outlen);

/*
 * NAT cells of a row: nat "10.99.0.1:40000" translated, "routed" forwarded
 * as is, "never left" forwarded but all of it dropped on the way, "-" not
 * forwarded; lost "tx/rx" lost in forwarding, "-" not forwarded.
 */
void tf_flow_row_nat(const struct tf_flow_row *row, char *nat, char *lost, size_t outlen);

/*
 * Drops of target i: for a VM tap, the drops of the VM's packets wherever
 * they happened; for other interfaces, the drops on the device itself.
 * false if drops are not traced (the field is then null).
 */
bool tf_target_drops(const struct tf_collector *c, size_t i, uint64_t *out);

#endif /* TF_REPORT_H */
