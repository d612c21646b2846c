// SPDX-License-Identifier: GPL-2.0
/*
 * flow_cost: what decides the type of tapflow's flow map. Both variants of
 * the taps' programs are loaded: tapflow's own (BPF_MAP_TYPE_HASH, atomic
 * adds) and the same source built with -DTF_FLOWS_PERCPU
 * (BPF_MAP_TYPE_PERCPU_HASH, plain adds). For each:
 *
 *   hit, 1 CPU      tf_tap_ingress on one flow, one thread (as prog_cost)
 *   hit, N CPUs     one thread pinned per CPU at once, all on the same flow
 *                   (the cache line of the entry moves between CPUs), and
 *                   each on a flow of its own
 *   insert          mean of single runs that each create a new flow, next to
 *                   single runs that hit (the test run's fixed cost cancels)
 *   full            the map full: ns per packet of a new flow that finds no
 *                   room (failed insert, then the tap's overflow)
 *   memory          the kernel's memlock figure of the map (/proc fdinfo)
 *   read, expire    userspace: batch lookup of the full map, and batch
 *                   delete of all of it, as the flows collector would
 *
 * Every figure is checked against the counters afterwards (packets in the
 * flows, overflow, flow_map_full), so the programs ran the path measured.
 *
 *   flow_cost [--entries N] [--repeat N] [--rounds R] [--json] [-v]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "bench_util.h"
#include "ifcounters.h"
#include "tapflow.skel.h"
#include "tapflow_percpu.skel.h"

#define TC_ACT_UNSPEC (-1)
#define TEST_IFINDEX 1	/* BPF_PROG_TEST_RUN's skb is on lo */
#define FRAME_LEN 64
#define MAX_THREADS 256

enum { V_HASH, V_PERCPU, N_VARIANTS };
static const char *const variant_names[N_VARIANTS] = { "hash", "percpu_hash" };

struct variant {
	struct tapflow_bpf *skel;		/* one of the two is set */
	struct tapflow_percpu_bpf *pskel;
	int prog_fd, flows_fd, aggr_fd;
	struct tf_ifc ifc;
	volatile __u64 *flow_map_full, *parse_errors, *map_full;
	const char *name;
	/* results */
	double hit1, hit_same, hit_own, insert, insert_hit, full;
	unsigned long long memlock;
	double read_ms, read_next_ms, delete_ms;
	unsigned long long read_bytes;
	int read_count;
};

static int ncpus, nthreads;

/* A 64-byte IPv4/UDP frame 198.18.0.1:sport -> 198.18.x.y:dport (flow i). */
static void build_frame(unsigned char *b, unsigned int i)
{
	unsigned short sport = (unsigned short)(1024 + i % 60000), dport = 5201;
	unsigned short v;

	memset(b, 0, FRAME_LEN);
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	b[14] = 0x45;
	v = htons(FRAME_LEN - 14);
	memcpy(b + 16, &v, 2);
	b[22] = 64;
	b[23] = 17;
	memcpy(b + 26, "\xc6\x12\x00\x01", 4);
	b[30] = 198;
	b[31] = 18;
	b[32] = (unsigned char)(1 + i / 60000);
	b[33] = 2;
	v = htons(sport);
	memcpy(b + 34, &v, 2);
	v = htons(dport);
	memcpy(b + 36, &v, 2);
	v = htons(FRAME_LEN - 34);
	memcpy(b + 38, &v, 2);
}

/* One test run of `repeat` runs: the kernel's mean ns per run, or -1. */
static double run(int prog_fd, const void *frame, unsigned int repeat)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = FRAME_LEN,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts) || (int)opts.retval != TC_ACT_UNSPEC) {
		fprintf(stderr, "flow_cost: BPF_PROG_TEST_RUN failed: %s (retval %d)\n",
			strerror(errno), (int)opts.retval);
		return -1;
	}
	return opts.duration;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* ---- N threads at once --------------------------------------------- */

struct worker {
	pthread_t tid;
	int cpu, prog_fd;
	unsigned int repeat;
	unsigned char frame[FRAME_LEN];
	pthread_barrier_t *barrier;
	double ns;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (pin(w->cpu))
		w->ns = -1;
	pthread_barrier_wait(w->barrier);
	if (w->ns == 0)
		w->ns = run(w->prog_fd, w->frame, w->repeat);
	return NULL;
}

/* Mean ns per run over the threads, all running at once; own: a flow each. */
static double run_parallel(int prog_fd, unsigned int repeat, bool own, unsigned int flow0)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_t barrier;
	double sum = 0;
	int n = nthreads;

	pthread_barrier_init(&barrier, NULL, (unsigned int)n);
	for (int i = 0; i < n; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].cpu = i;
		w[i].prog_fd = prog_fd;
		w[i].repeat = repeat;
		w[i].barrier = &barrier;
		build_frame(w[i].frame, own ? flow0 + 1 + (unsigned int)i : flow0);
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			fprintf(stderr, "flow_cost: pthread_create failed\n");
			exit(1);
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].ns < 0)
			sum = -1e18;
		sum += w[i].ns;
	}
	pthread_barrier_destroy(&barrier);
	return sum < 0 ? -1 : sum / n;
}

/* ---- map helpers --------------------------------------------------- */

static int create_entry(int fd, size_t value_size)
{
	void *zero = calloc((size_t)ncpus, value_size);
	__u32 key = TEST_IFINDEX;
	int err;

	if (!zero)
		return -ENOMEM;
	err = bpf_map_update_elem(fd, &key, zero, BPF_NOEXIST) ? -errno : 0;
	free(zero);
	return err;
}

static unsigned long long memlock_of(int fd)
{
	unsigned long long v = 0;
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Total tx packets over all flows, entries counted in *n. */
static unsigned long long flows_tx_packets(const struct variant *v, bool percpu, int *n)
{
	struct tf_flow_value *val = calloc(percpu ? (size_t)ncpus : 1, sizeof(*val));
	struct tf_flow_key k, next;
	unsigned long long sum = 0;

	*n = 0;
	if (!val)
		return 0;
	for (void *prev = NULL; !bpf_map_get_next_key(v->flows_fd, prev, &next); prev = &k) {
		k = next;
		if (bpf_map_lookup_elem(v->flows_fd, &k, val))
			continue;
		for (int c = 0; c < (percpu ? ncpus : 1); c++)
			sum += val[c].tx.packets;
		(*n)++;
	}
	free(val);
	return sum;
}

static unsigned long long aggr_overflow_tx(const struct variant *v)
{
	struct tf_tap_aggr *a = calloc((size_t)ncpus, sizeof(*a));
	__u32 key = TEST_IFINDEX;
	unsigned long long sum = 0;

	if (a && !bpf_map_lookup_elem(v->aggr_fd, &key, a))
		for (int c = 0; c < ncpus; c++)
			sum += a[c].overflow_tx.packets;
	free(a);
	return sum;
}

static int load(struct variant *v, int which, unsigned int entries)
{
	struct bpf_map *flows;
	int err;

	v->name = variant_names[which];
	if (which == V_HASH) {
		v->skel = tapflow_bpf__open();
		if (!v->skel)
			return -errno;
		flows = v->skel->maps.flows;
		if (bpf_map__set_max_entries(flows, entries) || tapflow_bpf__load(v->skel))
			return -errno;
		v->prog_fd = bpf_program__fd(v->skel->progs.tf_tap_ingress);
		v->aggr_fd = bpf_map__fd(v->skel->maps.tap_aggr);
		v->ifc = TF_IFC_OF(v->skel, ncpus);
		v->flow_map_full = &v->skel->bss->flow_map_full;
		v->parse_errors = &v->skel->bss->parse_errors;
		v->map_full = &v->skel->bss->map_full;
	} else {
		v->pskel = tapflow_percpu_bpf__open();
		if (!v->pskel)
			return -errno;
		flows = v->pskel->maps.flows;
		if (bpf_map__set_max_entries(flows, entries) || tapflow_percpu_bpf__load(v->pskel))
			return -errno;
		v->prog_fd = bpf_program__fd(v->pskel->progs.tf_tap_ingress);
		v->aggr_fd = bpf_map__fd(v->pskel->maps.tap_aggr);
		v->ifc = TF_IFC_OF(v->pskel, ncpus);
		v->flow_map_full = &v->pskel->bss->flow_map_full;
		v->parse_errors = &v->pskel->bss->parse_errors;
		v->map_full = &v->pskel->bss->map_full;
	}
	v->flows_fd = bpf_map__fd(flows);
	err = tf_ifc_add(&v->ifc, TEST_IFINDEX);
	if (err)
		return err;
	if (create_entry(v->aggr_fd, sizeof(struct tf_tap_aggr)))
		return -errno;
	v->memlock = memlock_of(v->flows_fd);
	return 0;
}

static void unload(struct variant *v)
{
	tapflow_bpf__destroy(v->skel);
	tapflow_percpu_bpf__destroy(v->pskel);
}

/* ---- the measurements ---------------------------------------------- */

/*
 * Hits: flow 0 is the single-thread one, flows 1..nthreads the own ones;
 * all created by the warm-up. Rounds alternate between the variants, so
 * that drift of the machine hits both alike.
 */
static int measure_hits(struct variant *var, unsigned int repeat, unsigned int rounds,
			unsigned long long runs[N_VARIANTS])
{
	double *s[N_VARIANTS][3];
	unsigned char frame[FRAME_LEN];
	int ret = -1;

	memset(s, 0, sizeof(s));
	for (int i = 0; i < N_VARIANTS; i++)
		for (int m = 0; m < 3; m++)
			if (!(s[i][m] = calloc(rounds, sizeof(double))))
				goto out;
	build_frame(frame, 0);
	for (int i = 0; i < N_VARIANTS; i++) {
		if (pin(0) || run(var[i].prog_fd, frame, repeat / 10 + 1) < 0 ||
		    run_parallel(var[i].prog_fd, repeat / 10 + 1, true, 0) < 0)
			goto out;
		runs[i] += (unsigned long long)(repeat / 10 + 1) * (1 + (unsigned int)nthreads);
	}
	for (unsigned int r = 0; r < rounds; r++)
		for (int m = 0; m < 3; m++)
			for (int k = 0; k < N_VARIANTS; k++) {
				/* ABBA: which variant goes first alternates. */
				int i = (r + (unsigned int)m) % 2 ? N_VARIANTS - 1 - k : k;
				double x;

				if (m == 0)
					x = pin(0) ? -1 : run(var[i].prog_fd, frame, repeat);
				else
					x = run_parallel(var[i].prog_fd, repeat, m == 2, 0);
				if (x < 0)
					goto out;
				s[i][m][r] = x;
				runs[i] += (unsigned long long)repeat *
					   (m == 0 ? 1 : (unsigned int)nthreads);
			}
	for (int i = 0; i < N_VARIANTS; i++) {
		var[i].hit1 = median_min(s[i][0], rounds, NULL);
		var[i].hit_same = median_min(s[i][1], rounds, NULL);
		var[i].hit_own = median_min(s[i][2], rounds, NULL);
	}
	ret = 0;
out:
	for (int i = 0; i < N_VARIANTS; i++)
		for (int m = 0; m < 3; m++)
			free(s[i][m]);
	return ret;
}

/*
 * Inserts: every remaining entry, one single run each, on CPU 0; then as
 * many single runs that hit, for the fixed cost of a run. Then the map is
 * full: a new flow's packets all go to the overflow. Then check it all.
 */
static int measure_fill(struct variant *v, bool percpu, unsigned int entries, unsigned int repeat,
			unsigned int rounds, unsigned long long runs)
{
	unsigned int first = 1 + (unsigned int)nthreads, n_ins = entries - first;
	double *s = calloc(rounds, sizeof(double)), *ins = calloc(entries, sizeof(double));
	unsigned char frame[FRAME_LEN];
	unsigned long long expect_full;
	int n, ret = -1;

	if (!s || !ins || pin(0))
		goto out;
	for (unsigned int i = 0; i < n_ins; i++) {
		build_frame(frame, first + i);
		if ((ins[i] = run(v->prog_fd, frame, 1)) < 0)
			goto out;
	}
	runs += n_ins;
	v->insert = median_min(ins, n_ins, NULL);
	for (unsigned int i = 0; i < n_ins; i++) {
		build_frame(frame, first + i);
		if ((ins[i] = run(v->prog_fd, frame, 1)) < 0)
			goto out;
	}
	runs += n_ins;
	v->insert_hit = median_min(ins, n_ins, NULL);

	build_frame(frame, entries + 1);
	for (unsigned int r = 0; r < rounds; r++)
		if ((s[r] = run(v->prog_fd, frame, repeat)) < 0)
			goto out;
	v->full = median_min(s, rounds, NULL);
	expect_full = (unsigned long long)repeat * rounds;

	if (flows_tx_packets(v, percpu, &n) != runs || (unsigned int)n != entries ||
	    *v->flow_map_full != expect_full || aggr_overflow_tx(v) != expect_full ||
	    *v->parse_errors || *v->map_full) {
		fprintf(stderr, "flow_cost: %s: counters do not add up: %d flows (%u), %llu "
			"packets in flows (%llu), flow_map_full %llu (%llu), parse_errors %llu, "
			"map_full %llu\n", v->name, n, entries, flows_tx_packets(v, percpu, &n), runs,
			(unsigned long long)*v->flow_map_full, expect_full,
			(unsigned long long)*v->parse_errors, (unsigned long long)*v->map_full);
		goto out;
	}
	ret = 0;
out:
	free(s);
	free(ins);
	return ret;
}

/*
 * Userspace: read the full map with batch lookups (what the collector
 * does every interval), key by key (the fallback), and delete it all in
 * batches (expiry of everything).
 */
static int measure_read(struct variant *v, bool percpu, unsigned int entries)
{
	size_t vsz = sizeof(struct tf_flow_value) * (percpu ? (size_t)ncpus : 1);
	unsigned int batch = 4096, total = 0;
	struct tf_flow_key *keys = calloc(entries, sizeof(*keys));
	char *vals = calloc(entries, vsz);
	struct tf_flow_key k, next;
	__u32 out_batch = 0;
	void *in = NULL;
	double t0;
	int err = 0;

	if (!keys || !vals)
		return -ENOMEM;
	t0 = now_ns();
	while (!err) {
		__u32 count = batch;

		if (total + count > entries)
			count = entries - total;
		if (!count)
			break;
		err = bpf_map_lookup_batch(v->flows_fd, in, &out_batch, keys + total,
					   vals + (size_t)total * vsz, &count, NULL);
		if (err && errno != ENOENT) {
			fprintf(stderr, "flow_cost: batch lookup: %s\n", strerror(errno));
			goto out;
		}
		total += count;
		in = &out_batch;
	}
	v->read_ms = (now_ns() - t0) / 1e6;
	v->read_count = (int)total;
	v->read_bytes = (unsigned long long)total * (sizeof(*keys) + vsz);

	t0 = now_ns();
	for (void *prev = NULL; !bpf_map_get_next_key(v->flows_fd, prev, &next); prev = &k) {
		k = next;
		if (bpf_map_lookup_elem(v->flows_fd, &k, vals))
			break;
	}
	v->read_next_ms = (now_ns() - t0) / 1e6;

	t0 = now_ns();
	for (unsigned int done = 0; done < total;) {
		__u32 count = total - done < batch ? total - done : batch;

		if (bpf_map_delete_batch(v->flows_fd, keys + done, &count, NULL)) {
			fprintf(stderr, "flow_cost: batch delete: %s\n", strerror(errno));
			err = -1;
			goto out;
		}
		done += count;
	}
	v->delete_ms = (now_ns() - t0) / 1e6;
	err = bpf_map_get_next_key(v->flows_fd, NULL, &next) ? 0 : -1;
	if (err)
		fprintf(stderr, "flow_cost: map not empty after the batch delete\n");
	if (total != entries) {
		fprintf(stderr, "flow_cost: batch lookup read %u of %u entries\n", total, entries);
		err = -1;
	}
out:
	free(keys);
	free(vals);
	return err ? -1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: flow_cost [--entries N] [--repeat N] [--rounds R] [--json] [-v]\n"
"  The flow map type choice: tf_tap_ingress with a shared hash (atomic adds)\n"
"  and with a per-CPU hash (plain adds): hits on 1 and on all CPUs, inserts,\n"
"  a full map, memory, and userspace reading and deleting the map.\n"
"  -e, --entries N  flow map size (default %d, tapflow's default)\n"
"  -n, --repeat N   runs per measurement (default 1000000)\n"
"  -r, --rounds R   measurements per figure (default 7)\n"
"      --json       one JSON object instead of the table\n"
"  -v, --verbose    libbpf diagnostics\n", TF_FLOWS_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "entries", required_argument, NULL, 'e' },
		{ "repeat", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long entries = TF_FLOWS_DEFAULT, repeat = 1000000, rounds = 7;
	struct variant var[N_VARIANTS] = {};
	unsigned long long runs[N_VARIANTS] = {};
	bool json = false;
	int opt, ret = 1;
	char *end;

	while ((opt = getopt_long(argc, argv, "e:n:r:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
		case 'n':
		case 'r': {
			unsigned long x;

			errno = 0;
			x = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || !x || x > 100000000UL ||
			    (opt == 'e' && (x < 1000 || x > 16000000))) {
				fprintf(stderr, "flow_cost: invalid -%c '%s'\n", opt, optarg);
				return 2;
			}
			if (opt == 'e')
				entries = x;
			else if (opt == 'n')
				repeat = x;
			else
				rounds = x;
			break;
		}
		case 'j': json = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_print);
	ncpus = libbpf_num_possible_cpus();
	nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus <= 0 || nthreads <= 0) {
		fprintf(stderr, "flow_cost: cannot count CPUs\n");
		return 1;
	}
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;

	for (int i = 0; i < N_VARIANTS; i++) {
		int err = load(&var[i], i, (unsigned int)entries);

		if (err) {
			fprintf(stderr, "flow_cost: cannot load the %s variant: %s (root and a "
				"kernel with BTF needed; -v shows why)\n", variant_names[i],
				strerror(-err));
			goto out;
		}
	}
	fprintf(stderr, "# hits, both variants\n");
	if (measure_hits(var, (unsigned int)repeat, (unsigned int)rounds, runs))
		goto out;
	for (int i = 0; i < N_VARIANTS; i++) {
		fprintf(stderr, "# %s: inserts, full map, userspace read and delete\n",
			var[i].name);
		if (measure_fill(&var[i], i == V_PERCPU, (unsigned int)entries,
				 (unsigned int)repeat, (unsigned int)rounds, runs[i]) ||
		    measure_read(&var[i], i == V_PERCPU, (unsigned int)entries))
			goto out;
		unload(&var[i]);
		var[i].skel = NULL;
		var[i].pskel = NULL;
	}

	if (json) {
		printf("{\"type\":\"flow_cost\",\"entries\":%lu,\"repeat\":%lu,\"rounds\":%lu,"
		       "\"possible_cpus\":%d,\"threads\":%d,\"frame\":%d,\"variants\":[",
		       entries, repeat, rounds, ncpus, nthreads, FRAME_LEN);
		for (int i = 0; i < N_VARIANTS; i++) {
			const struct variant *v = &var[i];

			printf("%s{\"map\":\"%s\",\"hit_1cpu_ns\":%.0f,\"hit_all_cpus_same_flow_ns\":"
			       "%.0f,\"hit_all_cpus_own_flow_ns\":%.0f,\"insert_ns\":%.0f,"
			       "\"insert_baseline_ns\":%.0f,\"full_ns\":%.0f,\"memlock_bytes\":%llu,"
			       "\"read_batch_ms\":%.2f,\"read_bytes\":%llu,\"read_by_key_ms\":%.2f,"
			       "\"delete_batch_ms\":%.2f}", i ? "," : "", v->name, v->hit1,
			       v->hit_same, v->hit_own, v->insert, v->insert_hit, v->full, v->memlock,
			       v->read_ms, v->read_bytes, v->read_next_ms, v->delete_ms);
		}
		printf("]}\n");
	} else {
		printf("flow_cost: tf_tap_ingress, %d-byte frames, flow map of %lu entries, "
		       "%d possible CPUs, %d threads; medians of %lu rounds of %lu runs\n",
		       FRAME_LEN, entries, ncpus, nthreads, rounds, repeat);
		printf("%-40s %14s %14s\n", "", variant_names[0], variant_names[1]);
#define ROW(label, fmt, field) \
		printf("%-40s " fmt " " fmt "\n", label, var[0].field, var[1].field)
		ROW("hit, 1 CPU: ns/packet", "%14.0f", hit1);
		ROW("hit, all CPUs, same flow: ns/packet", "%14.0f", hit_same);
		ROW("hit, all CPUs, own flows: ns/packet", "%14.0f", hit_own);
		ROW("new flow (single runs): ns", "%14.0f", insert);
		ROW("  hit (single runs, same frames): ns", "%14.0f", insert_hit);
		ROW("map full, new flow: ns/packet", "%14.0f", full);
		ROW("memory (memlock): bytes", "%14llu", memlock);
		ROW("userspace batch read: ms", "%14.2f", read_ms);
		ROW("  bytes copied", "%14llu", read_bytes);
		ROW("userspace read key by key: ms", "%14.2f", read_next_ms);
		ROW("userspace batch delete: ms", "%14.2f", delete_ms);
#undef ROW
	}
	ret = fflush(stdout) ? 1 : 0;
out:
	for (int i = 0; i < N_VARIANTS; i++)
		unload(&var[i]);
	return ret;
}
