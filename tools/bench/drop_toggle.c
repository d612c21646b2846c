// SPDX-License-Identifier: GPL-2.0
/*
 * drop_toggle: tapflow's drop tracer, switched on and off every few
 * hundred ms, for drops.sh's precise measure of what it costs a flood.
 *
 *   drop_toggle IFNAME... [--period-ms P] [--seconds S]
 *
 * Opens tapflow's drop tracer for these interfaces with tapflow's own code
 * (tf_drop_tracer_open() of src/drops.c, from .output/libtapflow.a: the
 * same load, bitmap, namespace cookie and per-CPU cache), harvests it every
 * second as tapflow's poll does, and detaches and attaches its link in turn
 * every P ms (default 250) for S seconds (default 20), starting detached.
 * Prints "switch <CLOCK_MONOTONIC ns> on|off" as each switch is done, and
 * at the end one JSON line: {"switches": N, "drops": the drops it counted,
 * "cache": whether the per-CPU cache was on}.
 *
 * Why: a flood's rate swings by +-15 % within seconds on a small VM, so
 * states measured seconds apart (tapflow started and stopped) need many
 * rounds to show a 5 % difference. Switched every 250 ms against a flood
 * that reports its progress every 10 ms (flowgen --trace), each "on"
 * period is compared with the "off" periods around it.
 */
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drops.h"
#include "drops.skel.h"
#include "log.h"
#include "toggle.h"

struct tracer {
	struct tf_drop_tracer t;
	unsigned long long drops;
};

static int set_tracer(bool on, void *ctx)
{
	struct tracer *tr = ctx;
	char err[256];

	if (!on) {
		tf_drop_tracer_detach(&tr->t);
		return 0;
	}
	if (tf_drop_tracer_attach(&tr->t, err, sizeof(err))) {
		fprintf(stderr, "drop_toggle: %s\n", err);
		return -1;
	}
	return 0;
}

static void count_drops(const struct tf_drop_key *k, const struct tf_drop_counts *v, void *ctx)
{
	(void)k;
	*(unsigned long long *)ctx += v->packets;
}

/* Every second, as tapflow polls. */
static void poll_tracer(uint64_t now, void *ctx)
{
	struct tracer *tr = ctx;

	(void)now;
	tf_drop_tracer_harvest(&tr->t, count_drops, &tr->drops);
}

int main(int argc, char **argv)
{
	unsigned long period_ms = 250, secs = 20;
	int ifindexes[64];
	struct tracer tr = {};
	size_t n = 0;
	char err[256];
	long switches;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--period-ms") && a + 1 < argc) {
			period_ms = strtoul(argv[++a], NULL, 10);
		} else if (!strcmp(argv[a], "--seconds") && a + 1 < argc) {
			secs = strtoul(argv[++a], NULL, 10);
		} else if (argv[a][0] == '-' || n == sizeof(ifindexes) / sizeof(ifindexes[0])) {
			fprintf(stderr, "usage: drop_toggle IFNAME... [--period-ms P] [--seconds S]\n");
			return 2;
		} else if (!(ifindexes[n++] = (int)if_nametoindex(argv[a]))) {
			fprintf(stderr, "drop_toggle: %s: no such interface here\n", argv[a]);
			return 1;
		}
	}
	if (!n || !period_ms || !secs) {
		fprintf(stderr, "drop_toggle: needs interfaces, and --period-ms and --seconds above 0\n");
		return 2;
	}
	tf_log_init(false);
	if (tf_drop_tracer_open(&tr.t, ifindexes, n, 0, NULL, NULL, err, sizeof(err))) {
		fprintf(stderr, "drop_toggle: %s\n", err);
		return 1;
	}
	tf_drop_tracer_detach(&tr.t);	/* the toggle starts off */
	switches = toggle_run(period_ms, secs, 1000, set_tracer, poll_tracer, &tr);
	tf_drop_tracer_harvest(&tr.t, count_drops, &tr.drops);
	printf("{\"switches\":%ld,\"drops\":%llu,\"cache\":%s}\n", switches, tr.drops,
	       tr.t.skel->bss->tf_drop_cache_on ? "true" : "false");
	tf_drop_tracer_close(&tr.t);
	return switches < 0;
}
