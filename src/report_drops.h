/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records of `tapflow drops`: per VM, its drops by reason,
 * location and device with the last dropped packet's flow; the host's
 * drops as one aggregate per reason; live events with --events.
 */
#ifndef TF_REPORT_DROPS_H
#define TF_REPORT_DROPS_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "collector.h"
#include "drops.h"
#include "ksyms.h"
#include "output.h"

struct tf_drop_report {
	const struct tf_collector *c;
	const struct tf_flows *fl;	/* for attributing events (may be NULL) */
	const struct tf_vm_addrs *va;	/* ... and the VMs' addresses (may be NULL) */
	const struct tf_ksyms *ksyms;	/* may be empty: locations print as addresses */
	const struct tf_drop_reasons *reasons;
	int64_t clock_offset;		/* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	bool final;
};

void tf_report_drops_json(struct tf_json *j, const struct tf_drop_report *r,
			  const struct timespec *now, FILE *f);
void tf_report_drops_table(const struct tf_drop_report *r, const struct timespec *now,
			   FILE *f);
/* One --events record (attributed here) as a JSON line or a text line. */
void tf_report_drop_event(struct tf_json *j, const struct tf_drop_report *r,
			  const struct tf_drop_event *e, bool json, FILE *f);

#endif /* TF_REPORT_DROPS_H */
