// SPDX-License-Identifier: GPL-2.0
/*
 * flow_toggle: the TC programs of `tapflow flows`, switched on and off
 * every few hundred ms, for nat.sh's close measure of what they cost.
 *
 *   flow_toggle --tap IFNAME... --uplink IFNAME [--count IFNAME]
 *               [--period-ms P] [--seconds S]
 *
 * Loads tapflow's programs (.output/tapflow.skel.h) set up as tapflow
 * sets them up for `flows --iface TAP... --uplink UPLINK` (the conntrack
 * type's BTF id for the join, the VMs' bridges: the masters of the --tap
 * interfaces, the uplink's arrivals counted), and attaches them with TCX
 * as tapflow would: tf_tap_ingress/egress on each --tap, tf_uplink_*
 * on the uplink. It starts detached and switches all the links every P ms
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "tapflow.skel.h"

#define TCX_INGRESS 46	/* BPF_TCX_INGRESS, for headers older than 6.6 */
#define TCX_EGRESS 47
#define MAX_IFACES 8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

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

int main(int argc, char **argv)
{
	const char *taps[MAX_IFACES], *uplink = NULL, *count = NULL;
	unsigned long period_ms = 250, secs = 40, switches = 0;
	struct hook hooks[2 * MAX_IFACES + 2];
	int n_taps = 0, n_hooks = 0;
	struct tapflow_bpf *skel;
	struct btf *btf;
	char count_path[128];
	uint64_t t0, next_switch, next_count;
	bool on = false, failed = false;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--tap") && a + 1 < argc && n_taps < MAX_IFACES)
			taps[n_taps++] = argv[++a];
		else if (!strcmp(argv[a], "--uplink") && a + 1 < argc)
			uplink = argv[++a];
		else if (!strcmp(argv[a], "--count") && a + 1 < argc)
			count = argv[++a];
		else if (!strcmp(argv[a], "--period-ms") && a + 1 < argc)
			period_ms = strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--seconds") && a + 1 < argc)
			secs = strtoul(argv[++a], NULL, 10);
		else {
			fprintf(stderr, "usage: flow_toggle --tap IFNAME... --uplink IFNAME "
				"[--count IFNAME] [--period-ms P] [--seconds S]\n");
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
	libbpf_set_print(libbpf_quiet);
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
		hooks[n_hooks++] = (struct hook){ ifindex, TCX_INGRESS,
			bpf_program__fd(skel->progs.tf_tap_ingress), -1 };
		hooks[n_hooks++] = (struct hook){ ifindex, TCX_EGRESS,
			bpf_program__fd(skel->progs.tf_tap_egress), -1 };
	}
	{
		int ifindex = (int)if_nametoindex(uplink);

		if (!ifindex) {
			fprintf(stderr, "flow_toggle: %s: no such interface\n", uplink);
			return 1;
		}
		hooks[n_hooks++] = (struct hook){ ifindex, TCX_EGRESS,
			bpf_program__fd(skel->progs.tf_uplink_egress), -1 };
		hooks[n_hooks++] = (struct hook){ ifindex, TCX_INGRESS,
			bpf_program__fd(skel->progs.tf_uplink_ingress), -1 };
	}
	skel->bss->tf_uplink_rx_armed = 1;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	t0 = now_ns();
	next_switch = t0 + period_ms * 1000000ULL;
	next_count = t0;
	printf("switch %llu off\n", (unsigned long long)t0);
	while (!stop) {
		uint64_t t = now_ns();

		if (t >= t0 + secs * 1000000000ULL)
			break;
		if (t >= next_count) {
			printf("count %llu %lld\n", (unsigned long long)t, read_counter(count_path));
			next_count += 10000000ULL;
		}
		if (t >= next_switch) {
			for (int i = 0; i < n_hooks; i++) {
				if (on) {
					close(hooks[i].link_fd);
					hooks[i].link_fd = -1;
				} else {
					hooks[i].link_fd = bpf_link_create(hooks[i].prog_fd,
									   hooks[i].ifindex,
									   hooks[i].attach_type, NULL);
					if (hooks[i].link_fd < 0) {
						perror("flow_toggle: TCX attach");
						failed = true;
						break;
					}
				}
			}
			if (failed)
				break;
			on = !on;
			switches++;
			printf("switch %llu %s\n", (unsigned long long)now_ns(), on ? "on" : "off");
			/* A period is counted from the switch's end: attaching takes time. */
			next_switch = now_ns() + period_ms * 1000000ULL;
		}
		usleep(1000);
	}
	for (int i = 0; i < n_hooks; i++)
		if (hooks[i].link_fd >= 0)
			close(hooks[i].link_fd);
	printf("{\"switches\":%lu,\"hooks\":%d,\"bridges\":%u,\"flow_map_full\":%llu,"
	       "\"parse_errors\":%llu}\n", switches, n_hooks, skel->bss->tf_n_bridges,
	       (unsigned long long)skel->bss->flow_map_full,
	       (unsigned long long)skel->bss->parse_errors);
	tapflow_bpf__destroy(skel);
	return failed ? 1 : 0;
}
