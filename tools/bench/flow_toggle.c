// SPDX-License-Identifier: GPL-2.0
/*
 * flow_toggle: the TC programs of `tapflow flows`, switched on and off
 * every few hundred ms, for nat.sh's close measure of what they cost.
 *
 *   flow_toggle --tap IFNAME... [--bridge IFNAME]... --uplink IFNAME
 *               [--count IFNAME] [--period-ms P] [--seconds S]
 *
 * Opens tapflow's collector as `tapflow flows` does (src/collector.c, from
 * .output/libtapflow.a: flows and the NAT join, no drop tracer), with each
 * --tap as an --iface interface (the flow programs), each --bridge as a
 * VM bridge (the counters-only programs a libvirt bridge gets) and the
 * uplink, then attaches and detaches it all (tf_collector_attach/detach)
 * in turn every P ms (default 250; a period counts from the end of its
 * switch: attaching six TCX links takes 50-100 ms here, an RCU grace period
 * each) for S seconds (default 40), starting detached. Every 10 ms it
 * reads the tx_packets counter of --count (default: the uplink) from
 * sysfs. Prints "switch <CLOCK_MONOTONIC ns> on|off" once each switch is
 * done and "count <ns> <tx_packets>", then one JSON line at the end.
 *
 * Why: iperf3 rounds seconds apart swing by +-10-30 % on a small VM, too
 * much to resolve a few % in reasonable time; against one long iperf3 run
 * each "on" period is compared with the "off" periods around it.
 * It runs the kernel side only: tapflow's userspace (a poll a second)
 * costs nothing per packet, and no packet of the bench's traffic is
 * dropped (the drop tracer is left out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "tapflow.skel.h"
#include "toggle.h"

static long long read_counter(const char *path)
{
	FILE *f = fopen(path, "r");
	long long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

struct toggle {
	struct tf_collector c;
	char count_path[128];
};

static int set_collector(bool on, void *ctx)
{
	struct toggle *tg = ctx;
	char err[512];

	if (!on) {
		tf_collector_detach(&tg->c);
		return 0;
	}
	if (tf_collector_attach(&tg->c, err, sizeof(err))) {
		fprintf(stderr, "flow_toggle: %s\n", err);
		return -1;
	}
	return 0;
}

static void print_count(uint64_t now, void *ctx)
{
	const struct toggle *tg = ctx;

	printf("count %llu %lld\n", (unsigned long long)now, read_counter(tg->count_path));
}

int main(int argc, char **argv)
{
	const struct tf_collector_opts opts = { .attach_mode = TF_ATTACH_AUTO, .flows = true,
						.nat = true };
	unsigned long period_ms = 250, secs = 40;
	const char *uplink = NULL, *count = NULL;
	struct toggle tg = {};
	char err[512];
	long switches;

	tf_log_init(false);
	if (tf_collector_open(&tg.c, &opts, err, sizeof(err))) {
		fprintf(stderr, "flow_toggle: %s\n", err);
		return 1;
	}
	for (int a = 1; a < argc; a++) {
		enum tf_role role;

		if (!strcmp(argv[a], "--period-ms") && a + 1 < argc) {
			period_ms = strtoul(argv[++a], NULL, 10);
			continue;
		} else if (!strcmp(argv[a], "--seconds") && a + 1 < argc) {
			secs = strtoul(argv[++a], NULL, 10);
			continue;
		} else if (!strcmp(argv[a], "--count") && a + 1 < argc) {
			count = argv[++a];
			continue;
		} else if (!strcmp(argv[a], "--tap") && a + 1 < argc) {
			role = TF_ROLE_IFACE;
		} else if (!strcmp(argv[a], "--bridge") && a + 1 < argc) {
			role = TF_ROLE_BRIDGE;
		} else if (!strcmp(argv[a], "--uplink") && a + 1 < argc) {
			role = TF_ROLE_UPLINK;
			uplink = argv[a + 1];
		} else {
			fprintf(stderr, "usage: flow_toggle --tap IFNAME... [--bridge IFNAME]... "
				"--uplink IFNAME [--count IFNAME] [--period-ms P] [--seconds S]\n");
			return 2;
		}
		if (tf_collector_add(&tg.c, argv[++a], role, NULL, err, sizeof(err))) {
			fprintf(stderr, "flow_toggle: %s\n", err);
			return 1;
		}
	}
	if (!uplink || !period_ms || !secs) {
		fprintf(stderr, "flow_toggle: needs --uplink, and periods above 0\n");
		return 2;
	}
	snprintf(tg.count_path, sizeof(tg.count_path), "/sys/class/net/%s/statistics/tx_packets",
		 count ? count : uplink);
	if (read_counter(tg.count_path) < 0) {
		fprintf(stderr, "flow_toggle: cannot read %s\n", tg.count_path);
		return 1;
	}
	switches = toggle_run(period_ms, secs, 10, set_collector, print_count, &tg);
	printf("{\"switches\":%ld,\"targets\":%zu,\"bridges\":%u,\"flow_map_full\":%llu,"
	       "\"parse_errors\":%llu}\n", switches, tg.c.n_targets, tg.c.skel->bss->tf_n_bridges,
	       (unsigned long long)tg.c.skel->bss->flow_map_full,
	       (unsigned long long)tg.c.skel->bss->parse_errors);
	tf_collector_close(&tg.c);
	return switches < 0;
}
