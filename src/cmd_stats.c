// SPDX-License-Identifier: GPL-2.0
/* tapflow stats: per-VM/per-interface counters and rates. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cli.h"
#include "collector.h"
#include "fdb.h"
#include "log.h"
#include "output.h"
#include "preflight.h"
#include "report.h"
#include "signals.h"

/* What a tracing command needs before it can load programs (privileges: main.c). */
int tf_preflight(void)
{
	char err[512];

	if (tf_check_btf(err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	return 0;
}

static bool has_forwarding_mode(const struct tf_inventory *inv)
{
	for (size_t i = 0; i < inv->n_vifs; i++)
		if (inv->vifs[i].ifindex > 0 &&
		    (inv->vifs[i].mode == TF_MODE_NAT || inv->vifs[i].mode == TF_MODE_ROUTE))
			return true;
	return false;
}

/* Add the uplink(s): the default-route interface of each address family. */
static int add_uplinks(struct tf_collector *c, char *err, size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < 2; f++) {
		int ifindex = tf_netlink_default_route_ifindex(families[f]);
		char name[IF_NAMESIZE];

		if (ifindex <= 0 || !if_indextoname((unsigned int)ifindex, name))
			continue;
		if (tf_collector_add(c, name, TF_ROLE_UPLINK, NULL, err, errlen))
			return -1;
	}
	return 0;
}

/*
 * Targets: the selected VMs' taps, the bridges they sit on (and --bridge),
 * the uplink for NAT/routed networks (or --uplink), and --iface. 0, or -1
 * (message printed).
 */
int tf_collector_add_targets(struct tf_collector *c, const struct tf_cli *cli,
			     const struct tf_inventory *inv)
{
	char err[512];

	for (size_t i = 0; inv && i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];

		if (v->ifindex <= 0) {
			tf_warn("%s: NIC %s has no tap to trace (%s)", v->vm, v->mac,
				v->note[0] ? v->note : "no target device");
			continue;
		}
		if (!tf_collector_add(c, v->ifname, TF_ROLE_TAP, v, err, sizeof(err)))
			continue;
		if (if_nametoindex(v->ifname))
			goto fail;
		/* Stopped since the inventory: the others are still worth tracing. */
		tf_warn("VM %s stopped before tapflow could attach to its tap %s; not traced",
			v->vm, v->ifname);
	}
	for (size_t i = 0; inv && i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];

		if (v->ifindex > 0 && v->bridge[0] &&
		    tf_collector_add(c, v->bridge, TF_ROLE_BRIDGE, NULL, err, sizeof(err)))
			goto fail;
	}
	for (size_t i = 0; i < cli->n_bridges; i++)
		if (tf_collector_add(c, cli->bridges[i], TF_ROLE_BRIDGE, NULL, err, sizeof(err)))
			goto fail;
	if (inv && !cli->no_uplink && !cli->n_uplinks && has_forwarding_mode(inv) &&
	    add_uplinks(c, err, sizeof(err)))
		goto fail;
	for (size_t i = 0; i < cli->n_uplinks; i++)
		if (tf_collector_add(c, cli->uplinks[i], TF_ROLE_UPLINK, NULL, err, sizeof(err)))
			goto fail;
	for (size_t i = 0; i < cli->n_ifaces; i++)
		if (tf_collector_add(c, cli->ifaces[i], TF_ROLE_IFACE, NULL, err, sizeof(err)))
			goto fail;
	if (!c->n_targets) {
		tf_err("nothing to trace: no running VM with a tap%s",
		       cli->n_vms ? " among the selected VMs" : "");
		return -1;
	}
	return 0;
fail:
	tf_err("%s", err);
	return -1;
}

int tf_trace_begin(const struct tf_cli *cli, const struct tf_collector_opts *opts,
		   struct tf_collector *c, struct tf_inventory *inv)
{
	char err[512];

	if (tf_preflight())
		return -1;
	tf_attach_clean_stale(cli->verbose);
	if (!cli->no_libvirt && tf_load_selected_inventory(cli, inv))
		return -1;
	if (tf_collector_open(c, opts, err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	if (tf_collector_add_targets(c, cli, cli->no_libvirt ? NULL : inv))
		return -1;
	/* Signals first: a SIGTERM right after attach must still detach. */
	tf_signals_install();
	if (tf_collector_attach(c, err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	return 0;
}

void tf_run_intervals(const struct tf_cli *cli, void (*tick)(void *arg), void *arg)
{
	tf_run_intervals_idle(cli, tick, NULL, arg);
}

void tf_run_intervals_idle(const struct tf_cli *cli, void (*tick)(void *arg),
			   void (*idle)(void *arg), void *arg)
{
	double start = tf_now_mono();
	double next = start + cli->interval;
	double end = cli->duration > 0 ? start + cli->duration : 1e300;

	/* A report that cannot be written ends the run as a signal does. */
	while (!tf_exiting && !tf_out_error() && !tf_out_reader_gone(stdout)) {
		double t = tf_now_mono();
		double wake = next < end ? next : end;

		if (t >= end)
			break;
		if (idle && wake - t > TF_IDLE_PERIOD)
			wake = t + TF_IDLE_PERIOD;
		tf_sleep(wake - t);
		if (idle && !tf_exiting) {
			idle(arg);
			tf_out_check(stdout);
		}
		if (tf_exiting || tf_now_mono() < next)
			continue;
		/* Every interval once, however late: no burst of reports to catch up. */
		while (next <= tf_now_mono())
			next += cli->interval;
		if (tf_now_mono() >= end)
			break;	/* the final report covers this instant */
		tick(arg);
		tf_out_check(stdout);
	}
}

void tf_warn_vanished(struct tf_collector *c)
{
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		if (t->gone && !t->gone_warned) {
			t->gone_warned = true;
			tf_warn("interface %s%s%s vanished during the run; its counters stop there",
				t->ifname, t->has_vif ? " of VM " : "",
				t->has_vif ? t->vif.vm : "");
		}
	}
}

struct stats_run {
	const struct tf_cli *cli;
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

	tf_collector_poll(r->c);
	tf_collector_poll_drops(r->c, NULL);
	tf_warn_vanished(r->c);
	report(r, false);
}

int tf_cmd_stats(const struct tf_cli *cli)
{
	struct tf_collector_opts opts = {
		.attach_mode = cli->attach_mode, .drops = !cli->no_drops,
	};
	struct tf_collector c = {};
	struct tf_inventory inv = {};
	struct stats_run r = { .cli = cli, .c = &c };
	struct tf_summary sum;
	int ret = TF_EXIT_RUNTIME;
	struct timespec now;

	if (tf_trace_begin(cli, &opts, &c, &inv))
		goto out;
	tf_run_intervals(cli, stats_tick, &r);
	tf_collector_poll(&c);
	tf_collector_poll_drops(&c, NULL);
	tf_warn_vanished(&c);
	report(&r, true);
	tf_summary_fill(&sum, &c);
	clock_gettime(CLOCK_REALTIME, &now);
	if (cli->json)
		tf_report_summary_json(&r.j, &c, &sum, &now, stdout);
	else
		tf_report_summary_table(&c, &sum, stdout);
	ret = sum.vanished ? TF_EXIT_RUNTIME : TF_EXIT_OK;
	if (tf_out_finish(stdout, "the report to stdout"))
		ret = TF_EXIT_RUNTIME;
out:
	tf_collector_close(&c);
	tf_json_free(&r.j);
	tf_inventory_free(&inv);
	return ret;
}
