// SPDX-License-Identifier: GPL-2.0
/* tapflow flows: per-VM flows with packets, bytes and rates each way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "output.h"
#include "report.h"
#include "session.h"

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
	struct tf_session *s = arg;

	tf_session_poll(s);
	report(&s->fr, false);
}

int tf_cmd_flows(const struct tf_cli *cli)
{
	struct tf_collector_opts opts = {
		.attach_mode = cli->attach_mode, .flows = true, .max_flows = cli->max_flows,
		.nat = !cli->no_nat, .tcp = cli->tcp, .drops = !cli->no_drops,
	};
	struct tf_session s;
	struct tf_flows_run *r = &s.fr;
	struct tf_summary sum;
	int ret = TF_EXIT_RUNTIME;
	struct timespec now;

	if (tf_session_begin(&s, cli, &opts) || tf_session_follow_flows(&s))
		goto out;
	if (cli->top_n >= 0)
		r->rep.top_n = (size_t)cli->top_n;
	else
		r->rep.top_n = cli->json ? 0 : TF_TABLE_TOP_DEFAULT;
	tf_session_run(&s, flows_tick, NULL, &s);
	tf_session_finish(&s);
	report(r, true);
	tf_summary_fill(&sum, &s.c);
	clock_gettime(CLOCK_REALTIME, &now);
	if (cli->json)
		tf_report_flows_summary_json(&r->j, &r->rep, &sum, &now, stdout);
	else
		tf_report_flows_summary_table(&r->rep, &sum, stdout);
	ret = TF_EXIT_OK;
	if (tf_out_finish(stdout, "the report to stdout"))
		ret = TF_EXIT_RUNTIME;
out:
	tf_session_end(&s);
	return ret;
}
