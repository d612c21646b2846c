// SPDX-License-Identifier: GPL-2.0
/* tapflow stats: per-VM/per-interface counters and rates. */
#include <time.h>

#include "cli.h"
#include "collector.h"
#include "output.h"
#include "report.h"
#include "session.h"
#include "signals.h"

struct stats_run {
	const struct tf_cli *cli;
	struct tf_session *s;
	struct tf_collector *c;
	struct tf_json j;
};

static void report(struct stats_run *r, bool final)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (r->cli->json)
		tf_report_stats_json(&r->j, r->c, &now, final, stdout);
	else
		tf_report_stats_table(r->c, &now, final, stdout);
}

static void stats_tick(void *arg)
{
	struct stats_run *r = arg;

	tf_session_poll(r->s);
	report(r, false);
}

int tf_cmd_stats(const struct tf_cli *cli)
{
	struct tf_collector_opts opts = {
		.attach_mode = cli->attach_mode, .drops = !cli->no_drops,
	};
	struct tf_session s;
	struct stats_run r = { .cli = cli, .s = &s, .c = &s.c };
	struct tf_summary sum;
	int ret = TF_EXIT_RUNTIME;
	struct timespec now;

	if (tf_session_begin(&s, cli, &opts))
		goto out;
	tf_session_run(&s, stats_tick, NULL, &r);
	tf_session_finish(&s);
	report(&r, true);
	tf_summary_fill(&sum, &s.c);
	clock_gettime(CLOCK_REALTIME, &now);
	if (cli->json)
		tf_report_summary_json(&r.j, &s.c, &sum, &now, stdout);
	else
		tf_report_summary_table(&s.c, &sum, stdout);
	ret = TF_EXIT_OK;
	if (tf_out_finish(stdout, "the report to stdout"))
		ret = TF_EXIT_RUNTIME;
out:
	tf_session_end(&s);
	tf_json_free(&r.j);
	return ret;
}
