// SPDX-License-Identifier: GPL-2.0
/*
 * prog_cost: nanoseconds per packet of tapflow's TC programs, measured with
 * BPF_PROG_TEST_RUN and repeat, next to an empty TC program so that the cost
 * the test run itself adds (loop, timer, indirect call) can be subtracted.
 *
 *   prog_cost [--repeat N] [--rounds R] [--cpu C] [--json] [-v]
 *   prog_cost --watch PID [--json]
 *
 * The kernel returns the mean duration of one run in whole ns; the wall
 * clock around the syscall (divided by N) is shown too because it keeps
 * the fractions. Each (frame, program) pair is measured R times,
 * interleaved so that drift hits all of them alike; median and min are
 * reported. The tapflow counters entry of the test skb's interface is
 * created first, as tapflow does before it attaches, so the figure is the
 * hot path (lookup hit, three adds); the totals are checked afterwards.
 *
 * The flow path of the taps (tf_tap_ingress: counters, parse, flow map) is
 * measured in both flow map variants: tapflow's shared hash with atomic
 * adds, and a per-CPU hash with plain adds (the same source built with
 * -DTF_FLOWS_PERCPU). The frame is one flow, so after its first run every
 * run is a flow map hit; that every run was is checked afterwards too.
 * tools/bench/flow_cost measures the rest of that choice (contention,
 * inserts, a full map, memory, reading the map).
 *
 * --watch PID is the in-situ counterpart: it turns on the kernel's BPF
 * run-time statistics (BPF_ENABLE_STATS: they stay on only while this
 * process holds the fd, so a kill cannot leave them on), snapshots
 * run_time_ns/run_cnt of every BPF program PID holds, waits for
 * SIGINT/SIGTERM and reports ns per run over the interval. The statistics
 * cost two clock reads per run of every program on the host: never use
 * that interval for a throughput figure.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "bench_util.h"
#include "ifcounters.h"
#include "oncpu.h"
#include "tapflow.skel.h"
#include "empty.skel.h"
#include "tapflow_percpu.skel.h"

#define TC_ACT_UNSPEC (-1)
/* BPF_PROG_TEST_RUN builds its skb on the loopback device of the netns. */
#define TEST_IFINDEX 1

enum { P_EMPTY, P_INGRESS, P_EGRESS, P_TAP, P_TAP_PERCPU, P_UP_EGRESS, P_UP_INGRESS,
       P_TCP_OFF, P_TCP_ON, N_PROGS };
static const char *const prog_names[N_PROGS] = {
	"empty", "tf_ingress", "tf_egress",
	"tf_tap_ingress (flows: hash)", "tf_tap_ingress (flows: per-CPU hash)",
	"tf_uplink_egress (NAT join)", "tf_uplink_ingress (NAT join)",
	"tf_tap_ingress TCP (--tcp off)", "tf_tap_ingress TCP (--tcp on)",
};

/*
 * The TCP programs' frames: in the 64 row a pure ACK carrying timestamps
 * (66 bytes: the smallest segment a Linux peer sends), in the 1500 row a
 * data segment. The same data segment every run is a retransmission from
 * the second run on: the analysis' slowest path (two more counters), an
 * upper bound of what in-order data costs.
 */
static bool is_tcp_prog(int p)
{
	return p == P_TCP_OFF || p == P_TCP_ON;
}

static unsigned int tcp_frame_len(unsigned int len)
{
	return len < 66 ? 66 : len;
}

/*
 * The uplink programs' test skb: a forwarded packet (skb->skb_iif, read as
 * ingress_ifindex, one of the VM bridges) for the egress program. The test
 * run's skb has no conntrack entry, so this is the join's path for a
 * packet without one (a routed network): parse, flow map, counters; the
 * in-situ figures (nat.sh) add the entry's checks.
 */
#define TEST_BRIDGE_IFINDEX 1

static const unsigned int frame_lens[] = { 64, 1500 };
#define N_FRAMES (sizeof(frame_lens) / sizeof(frame_lens[0]))

struct samples {
	double *kern;	/* kernel's mean ns per run, one per round */
	double *wall;	/* wall ns per run, one per round */
};

struct summary {
	double kern_median, kern_min, wall_median, wall_min;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: prog_cost [--repeat N] [--rounds R] [--cpu C] [--json] [-v]\n"
"  ns per packet of tapflow's TC programs (BPF_PROG_TEST_RUN), next to an\n"
"  empty TC program, on a 64-byte and a 1500-byte frame; the taps' flow\n"
"  path in both flow map variants (shared hash, per-CPU hash); the uplink's\n"
"  NAT join programs on a forwarded packet and its reply.\n"
"  -n, --repeat N   runs per measurement (default 1000000)\n"
"  -r, --rounds R   measurements per program and frame (default 11)\n"
"  -c, --cpu C      pin to CPU C (default: not pinned)\n"
"      --json       one JSON object instead of the table\n"
"  -v, --verbose    libbpf diagnostics\n"
"Usage: prog_cost --watch PID [--json]\n"
"  in situ: turn on BPF run-time statistics, and on SIGINT/SIGTERM report the\n"
"  ns per run of every BPF program process PID holds (e.g. a running tapflow).\n"
"  \"watching\" on stderr says the first snapshot is taken.\n");
}

/*
 * Ethernet + IPv4 + UDP between two RFC 2544 benchmark addresses. Headers
 * are built in aligned locals and copied: at offset 14 the IP header is
 * not 4-byte aligned.
 */
static void build_frame(unsigned char *buf, unsigned int len)
{
	static const unsigned char dst[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const unsigned char src[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x01 };
	struct ethhdr eth = { .h_proto = htons(ETH_P_IP) };
	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.ttl = 64,
		.protocol = IPPROTO_UDP,
		.tot_len = htons(len - sizeof(eth)),
		.saddr = htonl(0xc6120001),	/* 198.18.0.1 */
		.daddr = htonl(0xc6120002),	/* 198.18.0.2 */
	};
	struct udphdr udp = {
		.source = htons(40000),
		.dest = htons(5201),
		.len = htons(len - sizeof(eth) - sizeof(ip)),
	};
	const uint16_t *w = (const uint16_t *)&ip;
	unsigned int sum = 0;

	memcpy(eth.h_dest, dst, ETH_ALEN);
	memcpy(eth.h_source, src, ETH_ALEN);
	for (size_t i = 0; i < sizeof(ip) / 2; i++)
		sum += ntohs(w[i]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip.check = htons(~sum & 0xffff);

	memset(buf, 0, len);
	memcpy(buf, &eth, sizeof(eth));
	memcpy(buf + sizeof(eth), &ip, sizeof(ip));
	memcpy(buf + sizeof(eth) + sizeof(ip), &udp, sizeof(udp));
}

/* A TCP segment from 198.18.0.1:40000 to :5201 with NOP NOP TS: an ACK, or data if len > 66. */
static void build_tcp_frame(unsigned char *buf, unsigned int len)
{
	static const unsigned char opts[12] = { 1, 1, 8, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0 };
	size_t ip = sizeof(struct ethhdr), l4 = ip + sizeof(struct iphdr);

	build_frame(buf, len);
	buf[ip + 9] = IPPROTO_TCP;
	/* The checksum covers the protocol byte: the parser does not check it. */
	memset(buf + l4, 0, 32);
	buf[l4 + 0] = 40000 >> 8;
	buf[l4 + 1] = 40000 & 0xff;
	buf[l4 + 2] = 5201 >> 8;
	buf[l4 + 3] = 5201 & 0xff;
	buf[l4 + 7] = 1;		/* seq 1 */
	buf[l4 + 11] = 1;		/* ack 1 */
	buf[l4 + 12] = 8 << 4;		/* 32 bytes of header */
	buf[l4 + 13] = len > 66 ? 0x18 : 0x10;	/* PSH ACK, or ACK */
	buf[l4 + 14] = 0x01;		/* window 502 */
	buf[l4 + 15] = 0xf6;
	memcpy(buf + l4 + 20, opts, sizeof(opts));
}

/* The same frame the other way (B to A): what arrives on the uplink for A's flow. */
static void reverse_frame(unsigned char *buf)
{
	unsigned char t[4];
	size_t ip = sizeof(struct ethhdr), l4 = ip + sizeof(struct iphdr);

	memcpy(t, buf + ip + 12, 4);
	memcpy(buf + ip + 12, buf + ip + 16, 4);
	memcpy(buf + ip + 16, t, 4);
	memcpy(t, buf + l4, 2);
	memcpy(buf + l4, buf + l4 + 2, 2);
	memcpy(buf + l4 + 2, t, 2);
}

static unsigned char *frame_of(int p, size_t f, unsigned char **frames,
			       unsigned char **frames_back, unsigned char **frames_tcp)
{
	return is_tcp_prog(p) ? frames_tcp[f] : p == P_UP_INGRESS ? frames_back[f] : frames[f];
}

static unsigned int len_of(int p, size_t f)
{
	return is_tcp_prog(p) ? tcp_frame_len(frame_lens[f]) : frame_lens[f];
}

/*
 * The TCP programs took their paths: one TCP flow, and with the analysis
 * on its state, the data segment's repeats counted as retransmissions.
 */
static int check_tcp(const struct tapflow_bpf *o, bool on)
{
	struct tf_flow_key k, next;
	struct tf_tcp_flow st;
	int n = 0;

	for (void *prev = NULL; !bpf_map_get_next_key(bpf_map__fd(o->maps.tcp_flows), prev, &next);
	     prev = &k) {
		k = next;
		n++;
	}
	if (n != (on ? 1 : 0) || o->bss->parse_errors || o->bss->flow_map_full ||
	    o->bss->tcp_flow_map_full) {
		fprintf(stderr, "prog_cost: TCP (--tcp %s): %d states, parse_errors %llu\n",
			on ? "on" : "off", n, (unsigned long long)o->bss->parse_errors);
		return -1;
	}
	if (on && (bpf_map_lookup_elem(bpf_map__fd(o->maps.tcp_flows), &k, &st) ||
		   !st.dir[1].retrans)) {
		fprintf(stderr, "prog_cost: TCP (--tcp on): no retransmissions counted\n");
		return -1;
	}
	return 0;
}

/* One BPF_PROG_TEST_RUN of `repeat` runs. 0, or -errno. */
static int run_once(int prog_fd, const void *frame, unsigned int len, unsigned int repeat,
		    bool forwarded, double *kern_ns, double *wall_ns)
{
	struct __sk_buff ctx = { .ingress_ifindex = forwarded ? TEST_BRIDGE_IFINDEX : 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = len,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = repeat,
	);
	double t0, t1;
	int err;

	t0 = now_ns();
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	t1 = now_ns();
	if (err)
		return -errno;
	if ((int)opts.retval != TC_ACT_UNSPEC) {
		fprintf(stderr, "prog_cost: program returned %d, expected TC_ACT_UNSPEC\n",
			(int)opts.retval);
		return -EINVAL;
	}
	*kern_ns = opts.duration;
	*wall_ns = (t1 - t0) / repeat;
	return 0;
}

/* Create the per-CPU tap_aggr entry of the test interface, as tapflow does before attach. */
static int create_entry(const struct bpf_map *map, int ncpus)
{
	void *zero = calloc(ncpus, bpf_map__value_size(map));
	__u32 key = TEST_IFINDEX;
	int err;

	if (!zero)
		return -ENOMEM;
	err = bpf_map_update_elem(bpf_map__fd(map), &key, zero, BPF_NOEXIST) ? -errno : 0;
	free(zero);
	return err;
}

/* The flow of build_frame() in the VM's view of tf_tap_ingress (tx). */
static void frame_flow_key(struct tf_flow_key *k)
{
	static const unsigned char local[4] = { 198, 18, 0, 1 }, remote[4] = { 198, 18, 0, 2 };

	memset(k, 0, sizeof(*k));
	k->ifindex = TEST_IFINDEX;
	k->ethertype = ETH_P_IP;
	k->family = TF_FAM_IPV4;
	k->proto = IPPROTO_UDP;
	memcpy(k->local_ip, local, 4);
	memcpy(k->remote_ip, remote, 4);
	k->local_port = 40000;
	k->remote_port = 5201;
}

/*
 * The tap program took the flow path every time: one flow, all packets and
 * bytes in its tx, nothing in the aggregate nor in the loss counters.
 */
static int check_flows(const char *name, const struct bpf_map *flows, int ncpus,
		       unsigned long long runs, unsigned long long bytes, __u64 flow_map_full,
		       __u64 parse_errors)
{
	bool percpu = bpf_map__type(flows) == BPF_MAP_TYPE_PERCPU_HASH;
	struct tf_flow_value *v = calloc(percpu ? ncpus : 1, sizeof(*v));
	unsigned long long pk = 0, by = 0;
	struct tf_flow_key k, next;
	int n = 0, ret = -1;

	if (!v)
		return -1;
	frame_flow_key(&k);
	if (bpf_map_lookup_elem(bpf_map__fd(flows), &k, v)) {
		fprintf(stderr, "prog_cost: %s: no flow entry: %s\n", name, strerror(errno));
		goto out;
	}
	for (int c = 0; c < (percpu ? ncpus : 1); c++) {
		pk += v[c].tx.packets;
		by += v[c].tx.bytes;
	}
	for (void *prev = NULL; !bpf_map_get_next_key(bpf_map__fd(flows), prev, &next); prev = &k) {
		k = next;
		n++;
	}
	if (n != 1 || pk != runs || by != bytes || flow_map_full || parse_errors) {
		fprintf(stderr, "prog_cost: %s: %d flows, %llu packets, %llu bytes, flow_map_full "
			"%llu, parse_errors %llu; expected 1, %llu, %llu, 0, 0\n", name, n, pk, by,
			(unsigned long long)flow_map_full, (unsigned long long)parse_errors,
			runs, bytes);
		goto out;
	}
	ret = 0;
out:
	free(v);
	return ret;
}

/*
 * The programs must have taken the hot path every time: each run adds one
 * packet of `len` bytes to its direction, and nothing was lost.
 */
/*
 * The uplink programs took the join's path every time: one uplink flow
 * (A's, after the egress program made it), what left counted as its tx and
 * what came back as its rx, and no other flow.
 */
static int check_uplink_flow(const struct bpf_map *flows, const unsigned long long runs[2],
			     const unsigned long long bytes[2])
{
	struct tf_flow_key k, next;
	struct tf_uplink_value u;
	const struct tf_flow_value *v = &u.flow;
	int n = 0;

	frame_flow_key(&k);
	if (bpf_map_lookup_elem(bpf_map__fd(flows), &k, &u)) {
		fprintf(stderr, "prog_cost: uplink: no flow entry: %s\n", strerror(errno));
		return -1;
	}
	if (v->tx.packets != runs[0] || v->tx.bytes != bytes[0] || v->rx.packets != runs[1] ||
	    v->rx.bytes != bytes[1] || !(u.nat.flags & TF_NAT_UPLINK)) {
		fprintf(stderr, "prog_cost: uplink flow: tx %llu packets %llu bytes, rx %llu "
			"packets %llu bytes, flags %#x; expected %llu, %llu, %llu, %llu, uplink\n",
			(unsigned long long)v->tx.packets, (unsigned long long)v->tx.bytes,
			(unsigned long long)v->rx.packets, (unsigned long long)v->rx.bytes,
			u.nat.flags, runs[0], bytes[0], runs[1], bytes[1]);
		return -1;
	}
	for (void *prev = NULL; !bpf_map_get_next_key(bpf_map__fd(flows), prev, &next); prev = &k) {
		k = next;
		n++;
	}
	if (n != 1) {
		fprintf(stderr, "prog_cost: uplink: %d flows, expected 1\n", n);
		return -1;
	}
	return 0;
}

static int check_counters(const struct tf_ifc *ifc, __u64 map_full,
			  const unsigned long long runs[TF_HOOK_DIRS],
			  const unsigned long long bytes[TF_HOOK_DIRS])
{
	struct tf_if_counters sum;
	int err;

	err = tf_ifc_read(ifc, TEST_IFINDEX, &sum);
	if (err) {
		fprintf(stderr, "prog_cost: cannot read the counters: %s\n", strerror(-err));
		return -1;
	}
	for (int d = 0; d < TF_HOOK_DIRS; d++) {
		unsigned long long pk = sum.dir[d].packets, by = sum.dir[d].bytes;
		unsigned long long sg = sum.dir[d].segs;

		if (pk != runs[d] || by != bytes[d] || sg != runs[d]) {
			fprintf(stderr, "prog_cost: %s counted %llu packets, %llu bytes, %llu segs; "
				"expected %llu, %llu, %llu\n", d ? "egress" : "ingress", pk, by, sg,
				runs[d], bytes[d], runs[d]);
			return -1;
		}
	}
	if (map_full) {
		fprintf(stderr, "prog_cost: map_full = %llu\n", (unsigned long long)map_full);
		return -1;
	}
	return 0;
}

static int read_int_file(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void print_table(const struct summary s[N_FRAMES][N_PROGS], unsigned int repeat,
			unsigned int rounds, int jit, const char *kernel, int cpu)
{
	char where[32] = "not pinned";

	if (cpu >= 0)
		snprintf(where, sizeof(where), "pinned to CPU %d", cpu);
	printf("prog_cost: BPF_PROG_TEST_RUN, %u runs x %u rounds per figure, JIT %s, "
	       "kernel %s, %s\n", repeat, rounds, jit == 1 ? "on" : jit == 0 ? "off" : "?",
	       kernel, where);
	printf("%-6s %-36s %9s %7s %9s %8s %9s %8s\n", "FRAME", "PROGRAM", "MEDIAN ns", "MIN ns",
	       "WALL ns", "MIN wall", "+ns EMPTY", "x EMPTY");
	for (size_t f = 0; f < N_FRAMES; f++)
		for (int p = 0; p < N_PROGS; p++) {
			const struct summary *x = &s[f][p], *e = &s[f][P_EMPTY];
			char d[16] = "-", r[16] = "-";

			if (p != P_EMPTY) {
				snprintf(d, sizeof(d), "%+.0f", x->kern_median - e->kern_median);
				snprintf(r, sizeof(r), "%.2f", x->kern_median / e->kern_median);
			}
			printf("%-6u %-36s %9.0f %7.0f %9.2f %8.2f %9s %8s\n", frame_lens[f],
			       prog_names[p], x->kern_median, x->kern_min, x->wall_median,
			       x->wall_min, d, r);
		}
	printf("MEDIAN/MIN ns: the kernel's mean per run (whole ns); WALL: syscall time / runs;\n"
	       "+ns EMPTY, x EMPTY: difference and ratio of the kernel medians to the empty program's.\n");
}

static void print_json(const struct summary s[N_FRAMES][N_PROGS],
		       struct samples smp[N_FRAMES][N_PROGS], unsigned int repeat,
		       unsigned int rounds, int jit, const char *kernel, int cpu)
{
	printf("{\"type\":\"prog_cost\",\"repeat\":%u,\"rounds\":%u,\"jit\":%d,"
	       "\"kernel\":\"%s\",\"cpu\":", repeat, rounds, jit, kernel);
	if (cpu >= 0)
		printf("%d", cpu);
	else
		printf("null");
	printf(",\"results\":[");
	for (size_t f = 0; f < N_FRAMES; f++)
		for (int p = 0; p < N_PROGS; p++) {
			const struct summary *x = &s[f][p], *e = &s[f][P_EMPTY];

			printf("%s{\"frame\":%u,\"prog\":\"%s\",\"median_ns\":%.0f,\"min_ns\":%.0f,"
			       "\"wall_median_ns\":%.3f,\"wall_min_ns\":%.3f,", f || p ? "," : "",
			       frame_lens[f], prog_names[p], x->kern_median, x->kern_min,
			       x->wall_median, x->wall_min);
			if (p == P_EMPTY)
				printf("\"delta_ns\":null,\"ratio\":null,\"delta_min_ns\":null,"
				       "\"ratio_min\":null,\"wall_delta_ns\":null,\"wall_ratio\":null,");
			else
				printf("\"delta_ns\":%.1f,\"ratio\":%.3f,\"delta_min_ns\":%.1f,"
				       "\"ratio_min\":%.3f,\"wall_delta_ns\":%.3f,\"wall_ratio\":%.3f,",
				       x->kern_median - e->kern_median,
				       x->kern_median / e->kern_median,
				       x->kern_min - e->kern_min, x->kern_min / e->kern_min,
				       x->wall_median - e->wall_median,
				       x->wall_median / e->wall_median);
			printf("\"samples_ns\":[");
			for (unsigned int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? "," : "", smp[f][p].kern[r]);
			printf("]}");
		}
	printf("]}\n");
}


/* ---- --watch: the programs of a running process, in situ ---- */

#define MAX_WATCH 64

struct watched {
	__u32 id;
	int fd;
	char name[BPF_OBJ_NAME_LEN];
	const char *type;		/* libbpf's name of the program type, or NULL */
	__u64 run_time_ns, run_cnt;	/* at the first snapshot */
};

static int prog_snapshot(int fd, char *name, const char **type, __u64 *run_time_ns,
			 __u64 *run_cnt)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (name)
		snprintf(name, BPF_OBJ_NAME_LEN, "%s", info.name);
	if (type)
		*type = libbpf_bpf_prog_type_str(info.type);
	*run_time_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	return 0;
}

/* IDs of the BPF programs `pid` holds, from /proc/PID/fdinfo (prog_id:). */
static int find_prog_ids(pid_t pid, __u32 *ids, int max)
{
	char path[64], line[128];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		char fpath[320];
		unsigned int id;
		bool dup = false;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fpath, sizeof(fpath), "%s/%s", path, de->d_name);
		f = fopen(fpath, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "prog_id: %u", &id) == 1) {
				for (int i = 0; i < n; i++)
					dup |= ids[i] == id;
				if (!dup)
					ids[n++] = id;
				break;
			}
		fclose(f);
	}
	closedir(d);
	return n;
}

static int watch(pid_t pid, bool json)
{
	struct watched w[MAX_WATCH];
	__u32 ids[MAX_WATCH];
	double t0, t1;
	int stats_fd, n, nw = 0, sig, ret = 1;
	sigset_t set;

	/* Block first: a SIGINT that comes early must still end in a report. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "prog_cost: cannot enable BPF run-time statistics: %s\n",
			strerror(errno));
		return 1;
	}
	n = find_prog_ids(pid, ids, MAX_WATCH);
	if (n <= 0) {
		fprintf(stderr, "prog_cost: process %d holds no BPF program%s%s\n", (int)pid,
			n < 0 ? ": " : "", n < 0 ? strerror(-n) : "");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		w[nw].id = ids[i];
		w[nw].fd = bpf_prog_get_fd_by_id(ids[i]);
		if (w[nw].fd < 0)
			continue;	/* unloaded meanwhile */
		if (prog_snapshot(w[nw].fd, w[nw].name, &w[nw].type, &w[nw].run_time_ns,
				  &w[nw].run_cnt)) {
			close(w[nw].fd);
			continue;
		}
		nw++;
	}
	t0 = now_ns();
	fprintf(stderr, "prog_cost: watching %d BPF programs of process %d; "
		"SIGINT/SIGTERM to report\n", nw, (int)pid);
	if (sigwait(&set, &sig))
		goto out;
	t1 = now_ns();
	if (json)
		printf("{\"type\":\"prog_insitu\",\"pid\":%d,\"seconds\":%.3f,\"progs\":[",
		       (int)pid, (t1 - t0) / 1e9);
	else
		printf("in situ, %.1f s, BPF run-time statistics on\n%-6s %-16s %-12s %12s %10s\n",
		       (t1 - t0) / 1e9, "ID", "PROGRAM", "TYPE", "RUNS", "ns/RUN");
	for (int i = 0; i < nw; i++) {
		__u64 rt = w[i].run_time_ns, rc = w[i].run_cnt;
		double per;

		prog_snapshot(w[i].fd, NULL, NULL, &rt, &rc);	/* on failure: no runs */
		rt -= w[i].run_time_ns;
		rc -= w[i].run_cnt;
		per = rc ? (double)rt / rc : 0;
		if (json) {
			printf("%s{\"id\":%u,\"name\":\"%s\",\"prog_type\":\"%s\",\"run_cnt\":%llu,"
			       "\"run_time_ns\":%llu,\"ns_per_run\":", i ? "," : "", w[i].id,
			       w[i].name, w[i].type ? w[i].type : "?", (unsigned long long)rc,
			       (unsigned long long)rt);
			if (rc)
				printf("%.2f}", per);
			else
				printf("null}");
		} else {
			printf("%-6u %-16s %-12s %12llu %10.1f\n", w[i].id, w[i].name,
			       w[i].type ? w[i].type : "?", (unsigned long long)rc, per);
		}
	}
	if (json)
		printf("]}\n");
	ret = fflush(stdout) ? 1 : 0;
out:
	for (int i = 0; i < nw; i++)
		close(w[i].fd);
	close(stats_fd);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "repeat", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct samples smp[N_FRAMES][N_PROGS] = {};
	struct summary sum[N_FRAMES][N_PROGS];
	unsigned char *frames[N_FRAMES] = {};
	unsigned long repeat = 1000000, rounds = 11;
	unsigned long long runs[N_PROGS] = {}, bytes[N_PROGS] = {};
	struct tapflow_percpu_bpf *tfp = NULL;
	struct tapflow_bpf *tf = NULL, *tfu = NULL, *tcp_off = NULL, *tcp_on = NULL;
	struct tf_ifc ifc_tcp_off, ifc_tcp_on;
	unsigned char *frames_tcp[N_FRAMES] = {};
	struct tf_ifc ifc, ifc_percpu, ifc_uplink;
	unsigned char *frames_back[N_FRAMES] = {};
	struct empty_bpf *empty = NULL;
	int prog_fd[N_PROGS];
	bool json = false;
	struct utsname un;
	int cpu = -1, ncpus, opt, err, ret = 1;
	long watch_pid = -1;
	char *end;

	while ((opt = getopt_long(argc, argv, "n:r:c:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
		case 'r':
		case 'c': {
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || (opt != 'c' && !v) ||
			    v > (opt == 'n' ? 100000000UL : 10000UL)) {
				fprintf(stderr, "prog_cost: invalid -%c '%s'\n", opt, optarg);
				return 2;
			}
			if (opt == 'n')
				repeat = v;
			else if (opt == 'r')
				rounds = v;
			else
				cpu = (int)v;
			break;
		}
		case 'w':
			errno = 0;
			watch_pid = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || watch_pid <= 0 || watch_pid > INT32_MAX) {
				fprintf(stderr, "prog_cost: invalid --watch '%s': expected a PID\n",
					optarg);
				return 2;
			}
			break;
		case 'j': json = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "prog_cost: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_print);
	if (watch_pid > 0)
		return watch((pid_t)watch_pid, json);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			fprintf(stderr, "prog_cost: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
			return 1;
		}
	}
	if (uname(&un))
		strcpy(un.release, "?");

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		fprintf(stderr, "prog_cost: cannot count possible CPUs\n");
		return 1;
	}
	tf = tapflow_bpf__open_and_load();
	tfp = tapflow_percpu_bpf__open_and_load();
	empty = empty_bpf__open_and_load();
	/* The uplink programs: maps of their own, so each check stays exact. */
	tfu = tapflow_bpf__open_and_load();
	/* The TCP analysis off and on: objects of their own, the same TCP frames. */
	tcp_off = tapflow_bpf__open_and_load();
	tcp_on = tapflow_bpf__open();
	if (tcp_on) {
		tcp_on->rodata->tf_tcp_on = true;
		if (tapflow_bpf__load(tcp_on)) {
			tapflow_bpf__destroy(tcp_on);
			tcp_on = NULL;
		}
	}
	if (!tf || !tfp || !empty || !tfu || !tcp_off || !tcp_on) {
		fprintf(stderr, "prog_cost: cannot load the BPF programs: %s "
			"(root and a kernel with BTF needed; -v shows why)\n", strerror(errno));
		goto out;
	}
	ifc = TF_IFC_OF(tf, ncpus);
	ifc_percpu = TF_IFC_OF(tfp, ncpus);
	ifc_uplink = TF_IFC_OF(tfu, ncpus);
	err = tf_ifc_add(&ifc, TEST_IFINDEX);
	if (!err)
		err = create_entry(tf->maps.tap_aggr, ncpus);
	if (!err)
		err = tf_ifc_add(&ifc_percpu, TEST_IFINDEX);
	if (!err)
		err = create_entry(tfp->maps.tap_aggr, ncpus);
	if (!err)
		err = tf_ifc_add(&ifc_uplink, TEST_IFINDEX);
	ifc_tcp_off = TF_IFC_OF(tcp_off, ncpus);
	ifc_tcp_on = TF_IFC_OF(tcp_on, ncpus);
	if (!err)
		err = tf_ifc_add(&ifc_tcp_off, TEST_IFINDEX);
	if (!err)
		err = create_entry(tcp_off->maps.tap_aggr, ncpus);
	if (!err)
		err = tf_ifc_add(&ifc_tcp_on, TEST_IFINDEX);
	if (!err)
		err = create_entry(tcp_on->maps.tap_aggr, ncpus);
	if (err) {
		fprintf(stderr, "prog_cost: cannot create the counters entry: %s\n", strerror(-err));
		goto out;
	}
	prog_fd[P_EMPTY] = bpf_program__fd(empty->progs.tf_empty);
	prog_fd[P_INGRESS] = bpf_program__fd(tf->progs.tf_ingress);
	prog_fd[P_EGRESS] = bpf_program__fd(tf->progs.tf_egress);
	prog_fd[P_TAP] = bpf_program__fd(tf->progs.tf_tap_ingress);
	prog_fd[P_TAP_PERCPU] = bpf_program__fd(tfp->progs.tf_tap_ingress);
	prog_fd[P_UP_EGRESS] = bpf_program__fd(tfu->progs.tf_uplink_egress);
	prog_fd[P_UP_INGRESS] = bpf_program__fd(tfu->progs.tf_uplink_ingress);
	prog_fd[P_TCP_OFF] = bpf_program__fd(tcp_off->progs.tf_tap_ingress);
	prog_fd[P_TCP_ON] = bpf_program__fd(tcp_on->progs.tf_tap_ingress);
	/* As tapflow sets them: the VMs' bridge, and arrivals counted (taps attached). */
	tfu->bss->tf_bridges[0] = TEST_BRIDGE_IFINDEX;
	tfu->bss->tf_n_bridges = 1;
	tfu->bss->tf_uplink_rx_armed = 1;
	/* The per-CPU cache of uplink flows, where the flush program runs (as tapflow). */
	tfu->bss->tf_uplink_cache_on =
		tf_run_on_cpu(bpf_program__fd(tfu->progs.tf_uplink_flush), -1) == 0;

	for (size_t f = 0; f < N_FRAMES; f++) {
		frames[f] = malloc(frame_lens[f]);
		frames_back[f] = malloc(frame_lens[f]);
		frames_tcp[f] = malloc(tcp_frame_len(frame_lens[f]));
		if (!frames[f] || !frames_back[f] || !frames_tcp[f])
			goto out;
		build_tcp_frame(frames_tcp[f], tcp_frame_len(frame_lens[f]));
		build_frame(frames[f], frame_lens[f]);
		build_frame(frames_back[f], frame_lens[f]);
		reverse_frame(frames_back[f]);
		for (int p = 0; p < N_PROGS; p++) {
			smp[f][p].kern = calloc(rounds, sizeof(double));
			smp[f][p].wall = calloc(rounds, sizeof(double));
			if (!smp[f][p].kern || !smp[f][p].wall)
				goto out;
		}
	}
	/* Warm up caches, JIT image and branch predictors before the first figure. */
	for (size_t f = 0; f < N_FRAMES; f++)
		for (int p = 0; p < N_PROGS; p++) {
			double k, w;

			err = run_once(prog_fd[p], frame_of(p, f, frames, frames_back, frames_tcp),
				       len_of(p, f), repeat / 10 + 1, p == P_UP_EGRESS, &k, &w);
			if (err)
				goto run_failed;
			runs[p] += repeat / 10 + 1;
			bytes[p] += (repeat / 10 + 1) * frame_lens[f];
		}
	for (unsigned long r = 0; r < rounds; r++)
		for (size_t f = 0; f < N_FRAMES; f++)
			for (int p = 0; p < N_PROGS; p++) {
				err = run_once(prog_fd[p],
					       frame_of(p, f, frames, frames_back, frames_tcp),
					       len_of(p, f), repeat, p == P_UP_EGRESS,
					       &smp[f][p].kern[r], &smp[f][p].wall[r]);
				if (err)
					goto run_failed;
				runs[p] += repeat;
				bytes[p] += (unsigned long long)repeat * frame_lens[f];
			}
	{
		/* tf_ingress and tf_tap_ingress count into the same slot. */
		unsigned long long r[TF_HOOK_DIRS] = { runs[P_INGRESS] + runs[P_TAP], runs[P_EGRESS] };
		unsigned long long b[TF_HOOK_DIRS] = { bytes[P_INGRESS] + bytes[P_TAP],
						       bytes[P_EGRESS] };
		unsigned long long rp[TF_HOOK_DIRS] = { runs[P_TAP_PERCPU], 0 };
		unsigned long long bp[TF_HOOK_DIRS] = { bytes[P_TAP_PERCPU], 0 };
		unsigned long long ru[TF_HOOK_DIRS] = { runs[P_UP_INGRESS], runs[P_UP_EGRESS] };
		unsigned long long bu[TF_HOOK_DIRS] = { bytes[P_UP_INGRESS], bytes[P_UP_EGRESS] };
		unsigned long long rf[2] = { runs[P_UP_EGRESS], runs[P_UP_INGRESS] };
		unsigned long long bf[2] = { bytes[P_UP_EGRESS], bytes[P_UP_INGRESS] };

		/* What the uplink programs hold in a CPU's cache into their flow map first. */
		if (tf_run_on_each_cpu(bpf_program__fd(tfu->progs.tf_uplink_flush), ncpus)) {
			fprintf(stderr, "prog_cost: cannot flush the uplink cache\n");
			goto out;
		}
		if (check_counters(&ifc, tf->bss->map_full, r, b) ||
		    check_counters(&ifc_percpu, tfp->bss->map_full, rp, bp) ||
		    check_counters(&ifc_uplink, tfu->bss->map_full, ru, bu) ||
		    check_uplink_flow(tfu->maps.uplink_flows, rf, bf) ||
		    check_flows(prog_names[P_TAP], tf->maps.flows, ncpus, runs[P_TAP], bytes[P_TAP],
				tf->bss->flow_map_full, tf->bss->parse_errors) ||
		    check_flows(prog_names[P_TAP_PERCPU], tfp->maps.flows, ncpus,
				runs[P_TAP_PERCPU], bytes[P_TAP_PERCPU],
				tfp->bss->flow_map_full, tfp->bss->parse_errors) ||
		    check_tcp(tcp_off, false) || check_tcp(tcp_on, true))
			goto out;
	}

	for (size_t f = 0; f < N_FRAMES; f++)
		for (int p = 0; p < N_PROGS; p++) {
			struct summary *x = &sum[f][p];

			x->kern_median = median_min(smp[f][p].kern, rounds, &x->kern_min);
			x->wall_median = median_min(smp[f][p].wall, rounds, &x->wall_min);
		}
	if (json)
		print_json(sum, smp, repeat, rounds,
			   read_int_file("/proc/sys/net/core/bpf_jit_enable"), un.release, cpu);
	else
		print_table(sum, repeat, rounds,
			    read_int_file("/proc/sys/net/core/bpf_jit_enable"), un.release, cpu);
	ret = fflush(stdout) ? 1 : 0;
	goto out;

run_failed:
	fprintf(stderr, "prog_cost: BPF_PROG_TEST_RUN failed: %s\n", strerror(-err));
out:
	for (size_t f = 0; f < N_FRAMES; f++) {
		free(frames[f]);
		free(frames_back[f]);
		free(frames_tcp[f]);
		for (int p = 0; p < N_PROGS; p++) {
			free(smp[f][p].kern);
			free(smp[f][p].wall);
		}
	}
	empty_bpf__destroy(empty);
	tapflow_percpu_bpf__destroy(tfp);
	tapflow_bpf__destroy(tf);
	tapflow_bpf__destroy(tfu);
	tapflow_bpf__destroy(tcp_off);
	tapflow_bpf__destroy(tcp_on);
	return ret;
}
