// SPDX-License-Identifier: GPL-2.0
/*
 * tapflow drops: which packets of which VM are dropped, by what, where.
 * The flows machinery runs too (taps, NAT join) so that each drop can be
 * put on a VM flow, including replies dropped before de-NAT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/btf.h>

#include "cli.h"
#include "collector.h"
#include "ksyms.h"
#include "log.h"
#include "output.h"
#include "preflight.h"
#include "report_drops.h"
#include "session.h"

struct drops_run {
	struct tf_session *s;
	struct tf_flows_run *fr;	/* the session's */
	struct tf_drop_report rep;
	struct tf_ksyms ksyms;
	struct tf_drop_reasons reasons;
	struct tf_json ej;		/* events */
	/*
	 * Events wait here for the next flows poll: a new flow's first packets
	 * are the ones that get dropped, and they are in the flow table only
	 * after the poll that read them (at most -i later). The kernel's rate
	 * limit bounds how many wait.
	 */
	struct tf_drop_event *pending;
	size_t n_pending, cap_pending;
	uint64_t pending_lost;		/* out of memory: counted, said at the end */
	struct tf_vm_addrs va;
};


static void report(struct drops_run *d, bool final)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	d->rep.final = final;
	if (d->fr->cli->json)
		tf_report_drops_json(&d->fr->j, &d->rep, &now, stdout);
	else
		tf_report_drops_table(&d->rep, &now, stdout);
}

static void on_event(const struct tf_drop_event *e, void *ctx)
{
	struct drops_run *d = ctx;

	if (d->n_pending == d->cap_pending) {
		size_t cap = d->cap_pending ? d->cap_pending * 2 : 256;
		struct tf_drop_event *p = realloc(d->pending, cap * sizeof(*p));

		if (!p) {
			d->pending_lost++;
			return;
		}
		d->pending = p;
		d->cap_pending = cap;
	}
	d->pending[d->n_pending++] = *e;
}

/* After a flows poll: attribute and print the events that waited for it. */
static void flush_events(struct drops_run *d)
{
	if (!d->n_pending)
		return;
	d->rep.va = tf_vm_addrs_build(&d->va, d->fr->c, &d->fr->fl) ? NULL : &d->va;
	for (size_t i = 0; i < d->n_pending; i++)
		tf_report_drop_event(&d->ej, &d->rep, &d->pending[i], d->fr->cli->json, stdout);
	d->n_pending = 0;
}

static void drops_idle(void *arg)
{
	struct drops_run *d = arg;

	tf_drop_tracer_poll_events(&d->fr->c->drop_tracer);
}

static void drops_tick(void *arg)
{
	struct drops_run *d = arg;

	tf_drop_tracer_poll_events(&d->fr->c->drop_tracer);
	tf_session_poll(d->s);
	flush_events(d);
	/* With --events the events are the live output; the table comes at the end. */
	if (!d->fr->cli->drop_events)
		report(d, false);
}

int tf_cmd_drops(const struct tf_cli *cli)
{
	static struct drops_run d;	/* the event callback's context outlives nothing */
	struct tf_collector_opts opts = {
		.attach_mode = cli->attach_mode, .flows = true, .max_flows = cli->max_flows,
		.nat = !cli->no_nat, .drops = true, .drop_events = cli->drop_events,
		.on_drop_event = on_event, .drop_event_ctx = &d,
	};
	struct tf_session s;
	struct tf_collector *c = &s.c;
	struct tf_summary sum;
	int ret = TF_EXIT_RUNTIME;
	struct timespec now;

	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	if (tf_preflight() || tf_drop_names_load(&d.reasons, &d.ksyms))
		goto out;
	if (tf_session_begin(&s, cli, &opts))
		goto out;
	if (!c->drops_on) {
		/* The tracer said why (a warning); for this command it is an error. */
		tf_err("cannot trace drops: %s", c->drops_off);
		goto out;
	}
	if (tf_session_follow_flows(&s))
		goto out;
	d.s = &s;
	d.fr = &s.fr;
	d.fr->rep.top_n = 0;
	d.rep.c = c;
	d.rep.fl = &d.fr->fl;
	d.rep.ksyms = &d.ksyms;
	d.rep.reasons = &d.reasons;
	d.rep.clock_offset = tf_mono_to_real_offset();
	tf_session_run(&s, drops_tick, cli->drop_events ? drops_idle : NULL, &d);
	/* The last events before the last poll: their flows are in it. */
	tf_collector_detach(c);
	tf_drop_tracer_poll_events(&c->drop_tracer);
	tf_session_poll(&s);
	flush_events(&d);
	if (d.pending_lost)
		tf_warn("%llu drop events not shown: out of memory",
			(unsigned long long)d.pending_lost);
	report(&d, true);
	tf_summary_fill(&sum, c);
	clock_gettime(CLOCK_REALTIME, &now);
	if (cli->json)
		tf_report_summary_json(&d.fr->j, c, &sum, &now, stdout);
	else
		tf_report_summary_table(c, &sum, stdout);
	ret = TF_EXIT_OK;
	if (tf_out_finish(stdout, "the report to stdout"))
		ret = TF_EXIT_RUNTIME;
out:
	tf_session_end(&s);
	tf_json_free(&d.ej);
	free(d.pending);
	tf_vm_addrs_free(&d.va);
	tf_ksyms_free(&d.ksyms);
	tf_drop_reasons_free(&d.reasons);
	return ret;
}
