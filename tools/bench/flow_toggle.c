// SPDX-License-Identifier: GPL-2.0
/*
 * flow_toggle: the TC programs of `tapflow flows`, switched on and off
 * every few hundred ms, for nat.sh's close measure of what they cost.
 *
 *   flow_toggle --tap IFNAME... [--bridge IFNAME]... --uplink IFNAME
 *               [--count IFNAME] [--period-ms P] [--seconds S]
 *
 * Loads tapflow's programs (.output/tapflow.skel.h) set up as tapflow
 * sets them up for `flows --iface TAP... --uplink UPLINK` (the conntrack
 * type's BTF id for the join, the VMs' bridges: the masters of the --tap
 * interfaces, the uplink's arrivals counted), and attaches them with TCX
 * as tapflow would: tf_tap_ingress/egress on each --tap, the counters-only
 * tf_ingress/egress on each --bridge (the role libvirt's bridges get),
 * tf_uplink_* on the uplink. It starts detached and switches all the links every P ms
 * (default 250; a period counts from the end of its switch, and attaching
 * or detaching six TCX links takes 50-100 ms here: an RCU grace period
 * each) for S seconds (default 40). Every 10 ms it reads the
 * tx_packets counter of --count (default: the uplink) from sysfs. Prints
 * "switch <CLOCK_MONOTONIC ns> on|off" once each switch is done and
 * "count <ns> <tx_packets>", then one JSON line at the end.
 *
 * Why: iperf3 rounds seconds apart swing by +-10-30 % on a small VM, too
 * much to resolve a few % in reasonable time; against one long iperf3 run
 * each "on" period is compared with the "off" periods around it.
 * It runs the kernel side only: tapflow's userspace (a poll a second)
 * costs nothing per packet.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "tapflow.skel.h"
#include "toggle.h"

#define TCX_INGRESS 46	/* BPF_TCX_INGRESS, for headers older than 6.6 */
#define TCX_EGRESS 47
#define MAX_IFACES 8

static int master_of(const char *ifname)
{
	char path[128], buf[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/net/%s/master", ifname);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (int)if_nametoindex(strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf);
}

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

struct hook {
	int ifindex, attach_type, prog_fd, link_fd;
};

struct hooks {
	struct hook h[4 * MAX_IFACES + 2];
	int n;
	const char *count_path;
};

/* All the links at once, or none: a failed attach detaches the others. */
static int set_hooks(bool on, void *ctx)
{
	struct hooks *hs = ctx;

	for (int i = 0; i < hs->n; i++) {
		struct hook *h = &hs->h[i];

		if (!on) {
			if (h->link_fd >= 0)
				close(h->link_fd);
			h->link_fd = -1;
			continue;
		}
		h->link_fd = bpf_link_create(h->prog_fd, h->ifindex, h->attach_type, NULL);
		if (h->link_fd < 0) {
			perror("flow_toggle: TCX attach");
			return -1;
		}
	}
	return 0;
}

static void print_count(uint64_t now, void *ctx)
{
	const struct hooks *hs = ctx;

	printf("count %llu %lld\n", (unsigned long long)now, read_counter(hs->count_path));
}

int main(int argc, char **argv)
{
	const char *taps[MAX_IFACES], *bridges[MAX_IFACES], *uplink = NULL, *count = NULL;
	unsigned long period_ms = 250, secs = 40;
	int n_bridges = 0;
	struct hooks hs = { .n = 0 };
	struct tapflow_bpf *skel;
	char count_path[128];
	struct btf *btf;
	int n_taps = 0;
	long switches;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--tap") && a + 1 < argc && n_taps < MAX_IFACES)
			taps[n_taps++] = argv[++a];
		else if (!strcmp(argv[a], "--bridge") && a + 1 < argc && n_bridges < MAX_IFACES)
			bridges[n_bridges++] = argv[++a];
		else if (!strcmp(argv[a], "--uplink") && a + 1 < argc)
			uplink = argv[++a];
		else if (!strcmp(argv[a], "--count") && a + 1 < argc)
			count = argv[++a];
		else if (!strcmp(argv[a], "--period-ms") && a + 1 < argc)
			period_ms = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--seconds") && a + 1 < argc)
			secs = strtoul(argv[++a], NULL, 10);
		else {
			fprintf(stderr, "usage: flow_toggle --tap IFNAME... [--bridge IFNAME]... "
				"--uplink IFNAME [--count IFNAME] [--period-ms P] [--seconds S]\n");
			return 2;
		}
	}
	if (!n_taps || !uplink || !period_ms || !secs) {
		fprintf(stderr, "flow_toggle: needs --tap, --uplink, and periods above 0\n");
		return 2;
	}
	snprintf(count_path, sizeof(count_path), "/sys/class/net/%s/statistics/tx_packets",
		 count ? count : uplink);
	if (read_counter(count_path) < 0) {
		fprintf(stderr, "flow_toggle: cannot read %s\n", count_path);
		return 1;
	}
	libbpf_set_print(libbpf_warnings);
	skel = tapflow_bpf__open();
	if (!skel) {
		perror("flow_toggle: open");
		return 1;
	}
	/* As src/collector.c: the conntrack entry's type, for the join. */
	btf = btf__load_vmlinux_btf();
	if (btf) {
		int id = btf__find_by_name_kind(btf, "nf_conn", BTF_KIND_STRUCT);

		skel->rodata->tf_nf_conn_btf_id = id > 0 ? (__u32)id : 0;
		btf__free(btf);
	}
	if (tapflow_bpf__load(skel)) {
		perror("flow_toggle: load");
		return 1;
	}
	for (int i = 0; i < n_taps; i++) {
		int ifindex = (int)if_nametoindex(taps[i]), br = master_of(taps[i]);

		if (!ifindex) {
			fprintf(stderr, "flow_toggle: %s: no such interface\n", taps[i]);
			return 1;
		}
		if (br && skel->bss->tf_n_bridges < TF_MAX_BRIDGES) {
			bool known = false;

			for (__u32 k = 0; k < skel->bss->tf_n_bridges; k++)
				known |= skel->bss->tf_bridges[k] == (__u32)br;
			if (!known)
				skel->bss->tf_bridges[skel->bss->tf_n_bridges++] = (__u32)br;
		}
		hs.h[hs.n++] = (struct hook){ ifindex, TCX_INGRESS,
			bpf_program__fd(skel->progs.tf_tap_ingress), -1 };
		hs.h[hs.n++] = (struct hook){ ifindex, TCX_EGRESS,
			bpf_program__fd(skel->progs.tf_tap_egress), -1 };
	}
	for (int i = 0; i < n_bridges; i++) {
		int ifindex = (int)if_nametoindex(bridges[i]);

		if (!ifindex) {
			fprintf(stderr, "flow_toggle: %s: no such interface\n", bridges[i]);
			return 1;
		}
		hs.h[hs.n++] = (struct hook){ ifindex, TCX_INGRESS,
			bpf_program__fd(skel->progs.tf_ingress), -1 };
		hs.h[hs.n++] = (struct hook){ ifindex, TCX_EGRESS,
			bpf_program__fd(skel->progs.tf_egress), -1 };
	}
	{
		int ifindex = (int)if_nametoindex(uplink);

		if (!ifindex) {
			fprintf(stderr, "flow_toggle: %s: no such interface\n", uplink);
			return 1;
		}
		hs.h[hs.n++] = (struct hook){ ifindex, TCX_EGRESS,
			bpf_program__fd(skel->progs.tf_uplink_egress), -1 };
		hs.h[hs.n++] = (struct hook){ ifindex, TCX_INGRESS,
			bpf_program__fd(skel->progs.tf_uplink_ingress), -1 };
	}
	skel->bss->tf_uplink_rx_armed = 1;

	hs.count_path = count_path;
	switches = toggle_run(period_ms, secs, 10, set_hooks, print_count, &hs);
	printf("{\"switches\":%ld,\"hooks\":%d,\"bridges\":%u,\"flow_map_full\":%llu,"
	       "\"parse_errors\":%llu}\n", switches, hs.n, skel->bss->tf_n_bridges,
	       (unsigned long long)skel->bss->flow_map_full,
	       (unsigned long long)skel->bss->parse_errors);
	tapflow_bpf__destroy(skel);
	return switches < 0;
}
