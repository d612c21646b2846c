// SPDX-License-Identifier: GPL-2.0
/*
 * drop_toggle: tapflow's drop tracer, switched on and off every few
 * hundred ms, for drops.sh's precise measure of what it costs a flood.
 *
 *   drop_toggle IFNAME... [--period-ms P] [--seconds S]
 *
 * Loads the tracer of src/drops.c (.output/drops.skel.h: tf_kfree_skb on
 * tp_btf/kfree_skb) set up as tapflow sets it up for these interfaces (the
 * bitmap of their ifindexes, this network namespace's cookie, the per-CPU
 * cache and a flush of every CPU's slots each second, the entries taken out
 * as they are read), then attaches and detaches its link in turn every P
 * ms (default 250) for S seconds (default 20), starting detached. Prints
 * "switch <CLOCK_MONOTONIC ns> on|off" as each switch is done, and at the
 * end one JSON line: {"switches": N, "drops": the drops it counted}.
 *
 * Why: a flood's rate swings by +-15 % within seconds on a small VM, so
 * states measured seconds apart (tapflow started and stopped) need many
 * rounds to show a 5 % difference. Switched every 250 ms against a flood
 * that reports its progress every 10 ms (flowgen --trace), each "on"
 * period is compared with the "off" periods around it.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "dropkey.h"
#include "drops.skel.h"
#include "toggle.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* tf_drop_flush on CPU cpu (-1: here), as src/drops.c does every poll. */
static int flush_cpu(struct drops_bpf *skel, int cpu)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (cpu >= 0) {
		opts.flags = BPF_F_TEST_RUN_ON_CPU;
		opts.cpu = (unsigned int)cpu;
	}
	return bpf_prog_test_run_opts(bpf_program__fd(skel->progs.tf_drop_flush), &opts) ? -errno : 0;
}

/* Flush every CPU, then take every entry out: the drops they held. */
static unsigned long long poll_map(struct drops_bpf *skel, int ncpus)
{
	int fd = bpf_map__fd(skel->maps.drops);
	struct tf_drop_key k;
	struct tf_drop_value v;
	unsigned long long n = 0;

	for (int cpu = 0; cpu < ncpus; cpu++)
		flush_cpu(skel, cpu);
	while (!bpf_map_get_next_key(fd, NULL, &k))
		if (!bpf_map_lookup_and_delete_elem(fd, &k, &v))
			n += v.packets;
	return n;
}

struct tracer {
	struct drops_bpf *skel;
	struct bpf_link *link;
	int ncpus;
	unsigned long long drops;
};

static int set_tracer(bool on, void *ctx)
{
	struct tracer *t = ctx;

	if (!on) {
		bpf_link__destroy(t->link);
		t->link = NULL;
		return 0;
	}
	t->link = bpf_program__attach(t->skel->progs.tf_kfree_skb);
	if (!t->link) {
		perror("drop_toggle: attach");
		return -1;
	}
	return 0;
}

/* Every second, as tapflow polls. */
static void poll_tracer(uint64_t now, void *ctx)
{
	struct tracer *t = ctx;

	(void)now;
	t->drops += poll_map(t->skel, t->ncpus);
}

int main(int argc, char **argv)
{
	unsigned long period_ms = 250, secs = 20;
	struct tracer t = {};
	struct drops_bpf *skel;
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int sock, n_ifaces = 0;
	long switches;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--period-ms") && a + 1 < argc) {
			period_ms = strtoul(argv[++a], NULL, 10);
		} else if (!strcmp(argv[a], "--seconds") && a + 1 < argc) {
			secs = strtoul(argv[++a], NULL, 10);
		} else if (argv[a][0] == '-') {
			fprintf(stderr, "usage: drop_toggle IFNAME... [--period-ms P] [--seconds S]\n");
			return 2;
		}
	}
	if (!period_ms || !secs) {
		fprintf(stderr, "drop_toggle: --period-ms and --seconds must be above 0\n");
		return 2;
	}
	libbpf_set_print(libbpf_warnings);
	skel = drops_bpf__open();
	if (!skel) {
		perror("drop_toggle: open");
		return 1;
	}
	bpf_program__set_autoload(skel->progs.tf_kfree_skb_raw, false);
	bpf_map__set_max_entries(skel->maps.drop_events, 4096);	/* no --events */
	if (drops_bpf__load(skel)) {
		perror("drop_toggle: load");
		return 1;
	}
	for (int a = 1; a < argc; a++) {
		unsigned int ifindex;

		if (argv[a][0] == '-') {
			a++;
			continue;
		}
		ifindex = if_nametoindex(argv[a]);
		if (!ifindex || ifindex >= TF_DROP_IF_BITS) {
			fprintf(stderr, "drop_toggle: %s: no such interface here (or ifindex too big)\n",
				argv[a]);
			return 1;
		}
		skel->bss->tf_drop_if_bits[ifindex / 64] |= 1ULL << (ifindex % 64);
		n_ifaces++;
	}
	if (!n_ifaces) {
		fprintf(stderr, "drop_toggle: no interface given\n");
		return 2;
	}
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock >= 0 && !getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		skel->bss->tf_netns_cookie = cookie;
	if (sock >= 0)
		close(sock);
	t.skel = skel;
	t.ncpus = libbpf_num_possible_cpus();
	skel->bss->tf_drop_cache_on = t.ncpus > 0 && !flush_cpu(skel, -1);
	switches = toggle_run(period_ms, secs, 1000, set_tracer, poll_tracer, &t);
	t.drops += poll_map(skel, t.ncpus);
	printf("{\"switches\":%ld,\"drops\":%llu,\"cache\":%s}\n", switches, t.drops,
	       skel->bss->tf_drop_cache_on ? "true" : "false");
	drops_bpf__destroy(skel);
	return switches < 0;
}
