// SPDX-License-Identifier: GPL-2.0
/* tapflow flows: per-VM flows with packets, bytes and rates each way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "collector.h"
#include "flows.h"
#include "log.h"
#include "output.h"
#include "report.h"
#include "session.h"
#include "signals.h"

#include "cmd_flows.h"

int tf_flows_run_init(struct tf_flows_run *r, const struct tf_cli *cli, struct tf_collector *c)
{
	struct tf_flow_map map;
	int err;

	memset(r, 0, sizeof(*r));
	r->cli = cli;
	r->c = c;
	tf_flow_map_bpf(&map, c->flows_fd, c->flows_percpu ? c->ncpus : 1);
	/* Ended flows are kept one by one up to the size of the kernel map. */
	err = tf_flows_init(&r->fl, &map, (uint64_t)(cli->idle_timeout * 1e9),
			    (uint64_t)(cli->active_timeout * 1e9), c->max_flows);
	if (err) {
		tf_err("out of memory");
		return -1;
	}
	r->rep.c = c;
	r->rep.fl = &r->fl;
	r->rep.clock_offset = tf_mono_to_real_offset();
	r->last_poll = c->attach_t;
	return 0;
}

void tf_flows_run_poll(struct tf_flows_run *r)
{
	double now = tf_now_mono();
	uint64_t harvests = r->fl.counts.expired + r->fl.counts.active;
	int err;

	tf_collector_poll(r->c);
	/*
	 * The drops before the flows: a packet's flow entry is made at the tap
	 * before the packet can be dropped further on, so every drop taken out
	 * now finds its flow in the table read below (taken after, a drop could
	 * be of a flow newer than the table, and lose its flow for good).
	 */
	if (tf_collector_harvest_drops(r->c))
		tf_debug("cannot read the drop tracer's map");
	/* Uplink flows' packets still in a CPU's cache into the map first. */
	err = tf_collector_flush_flows(r->c);
	if (err)
		tf_debug("cannot flush the NAT join's per-CPU cache: %s", strerror(-err));
	err = tf_flows_poll(&r->fl, tf_now_mono_ns(), now - r->last_poll);
	r->last_poll = now;
	if (r->fl.counts.expired + r->fl.counts.active != harvests)
		tf_collector_flows_freed(r->c);
	if (r->c->nat) {
		/* Before the index: a retired segment must be in it, not lost for a poll. */
		if (tf_nat_harvest_retired(r->c->nat_retired_fd, &r->fl))
			tf_debug("cannot read the retired uplink flows");
		/* Out of memory: no join this interval (nat null), counts unaffected. */
		r->rep.nat = tf_nat_index_build(&r->nat, &r->fl) ? NULL : &r->nat;
		/*
		 * Ports of ended mappings out: a bit the kernel set since the read
		 * above is set again at the next poll (until then, a host reusing
		 * that brand-new mapping's tuple would go unnoticed).
		 */
		tf_nat_ports_bitmap(&r->fl, r->natports);
		tf_collector_set_natports(r->c, r->natports);
	}
	if (tf_collector_attribute_drops(r->c, &r->fl))
		tf_debug("cannot attribute drops: out of memory");
	/* Out of memory: the rows find their targets by a walk. */
	tf_flow_report_index(&r->rep);
	if (err && !r->read_failed) {
		/* Say it once: the table keeps what it had, the next poll retries. */
		tf_warn("cannot read the flow map: %s", strerror(-err));
		r->read_failed = true;
	}
}

void tf_flows_run_free(struct tf_flows_run *r)
{
	tf_flows_free(&r->fl);
	tf_flow_report_free(&r->rep);
	tf_nat_index_free(&r->nat);
	tf_json_free(&r->j);
}

static void report(struct tf_flows_run *r, bool final)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	r->rep.final = final;
	if (r->cli->json)
		tf_report_flows_json(&r->j, &r->rep, &now, stdout);
	else
		tf_report_flows_table(&r->rep, &now, stdout);
}

static void flows_tick(void *arg)
{
	struct tf_flows_run *r = arg;

	tf_flows_run_poll(r);
	tf_warn_vanished(r->c);
	report(r, false);
}

int tf_cmd_flows(const struct tf_cli *cli)
{
	struct tf_collector_opts opts = {
		.attach_mode = cli->attach_mode, .flows = true, .max_flows = cli->max_flows,
		.nat = !cli->no_nat, .drops = !cli->no_drops,
	};
	struct tf_session s;
	struct tf_collector *c = &s.c;
	struct tf_flows_run r = {};
	struct tf_summary sum;
	int ret = TF_EXIT_RUNTIME;
	struct timespec now;
	double t;

	if (tf_session_begin(&s, cli, &opts))
		goto out;
	if (tf_flows_run_init(&r, cli, c))
		goto out;
	if (cli->top_n >= 0)
		r.rep.top_n = (size_t)cli->top_n;
	else
		r.rep.top_n = cli->json ? 0 : TF_TABLE_TOP_DEFAULT;
	tf_session_run(&s, flows_tick, NULL, &r);
	/*
	 * Detach first, then read: no packet changes a counter between the
	 * interface totals and the flows, so the final report adds up exactly.
	 */
	t = tf_now_mono();
	tf_collector_detach(c);
	tf_debug("detached from %zu interfaces in %.3f s", c->n_targets, tf_now_mono() - t);
	tf_flows_run_poll(&r);
	tf_warn_vanished(c);
	report(&r, true);
	tf_summary_fill(&sum, c);
	clock_gettime(CLOCK_REALTIME, &now);
	if (cli->json)
		tf_report_flows_summary_json(&r.j, &r.rep, &sum, &now, stdout);
	else
		tf_report_flows_summary_table(&r.rep, &sum, stdout);
	ret = TF_EXIT_OK;
	if (tf_out_finish(stdout, "the report to stdout"))
		ret = TF_EXIT_RUNTIME;
out:
	tf_session_end(&s);
	tf_flows_run_free(&r);
	return ret;
}
