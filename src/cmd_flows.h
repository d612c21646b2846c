/* SPDX-License-Identifier: GPL-2.0 */
/* The state of a run that follows flows: shared by flows and top. */
#ifndef TF_CMD_FLOWS_H
#define TF_CMD_FLOWS_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "collector.h"
#include "flows.h"
#include "nat.h"
#include "output.h"
#include "report.h"

struct tf_flows_run {
	const struct tf_cli *cli;
	struct tf_collector *c;
	struct tf_flows fl;
	struct tf_flow_report rep;
	struct tf_nat_index nat;	/* rebuilt at every poll (NAT join on) */
	uint64_t natports[TF_NATPORT_BITS / 64];
	struct tf_json j;
	double last_poll;		/* CLOCK_MONOTONIC (s) */
	bool read_failed;		/* warned about it */
};

/* After tf_trace_begin with opts.flows. 0, or -1 (message printed). */
int tf_flows_run_init(struct tf_flows_run *r, const struct tf_cli *cli, struct tf_collector *c);
/* Read the interface counters and the flows (expiring as it goes). */
void tf_flows_run_poll(struct tf_flows_run *r);
void tf_flows_run_free(struct tf_flows_run *r);

#endif /* TF_CMD_FLOWS_H */
