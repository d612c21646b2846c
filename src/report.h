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
#include "inventory.h"
#include "output.h"

const char *tf_fdb_state_name(enum tf_fdb_state state);

/* vm record (list). */
void tf_report_vm_json(struct tf_json *j, const struct tf_vif *vif, bool attached,
		       const struct timespec *now, FILE *f);
void tf_report_vm_table(const struct tf_inventory *inv, const bool *attached, FILE *f);
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

#endif /* TF_REPORT_H */
