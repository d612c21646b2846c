// SPDX-License-Identifier: GPL-2.0
/*
 * report_cost: what one poll and one report of `tapflow flows` cost in
 * userspace with many flows spread over 1 or many interfaces. tapflow's
 * own flow table and report code (libtapflow.a) run against a fake kernel
 * map of N flows (no BPF, no root), spread evenly over the interfaces:
 *
 *   poll     tf_flows_poll: read the map in batches, expiry, rates, and
 *            the index of the flows by interface
 *   index    tf_flows_index alone
 *   table    the `flows` table (biggest 20 per interface, the rest summed)
 *   json     `flows --json` (every flow a record)
 *   top      top's rows: every interface's flows, sorted by rate
 *
 * Each report is timed with the index (indexed) and again with the index
 * switched off, which makes every interface walk the whole table
 * (walk: what every report did before the index). A report's cost should
 * not depend on the number of interfaces: the ratio many/1 says how far
 * it does.
 *
 *   report_cost [--flows N] [--ifaces A,B,...] [--rounds R] [--walk-rounds R] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <linux/types.h>

#include "tapflow.h"
#include "collector.h"
#include "flows.h"
#include "output.h"
#include "report.h"

/* ---- a fake kernel flow map: arrays, read in batches ---------------------- */

struct fake_map {
	struct tf_flow_key *keys;
	struct tf_flow_value *vals;
	uint32_t n;
};

static int fake_batch(void *ctx, void *in, void *out, void *keys, void *values, uint32_t *count)
{
	struct fake_map *m = ctx;
	uint32_t pos = in ? *(uint32_t *)in : 0, n = *count;

	if (n > m->n - pos)
		n = m->n - pos;
	memcpy(keys, m->keys + pos, n * sizeof(*m->keys));
	memcpy(values, m->vals + pos, n * sizeof(*m->vals));
	pos += n;
	*count = n;
	*(uint32_t *)out = pos;
	return pos >= m->n ? -ENOENT : 0;
}

/* The flows never go idle here: nothing else is asked of the map. */
static int fake_next_key(void *ctx, const void *key, void *next)
{
	(void)ctx, (void)key, (void)next;
	return -EINVAL;
}

static int fake_lookup(void *ctx, const void *key, void *value)
{
	(void)ctx, (void)key, (void)value;
	return -EINVAL;
}

static int fake_delete(void *ctx, const void *key)
{
	(void)ctx, (void)key;
	return -EINVAL;
}

static const struct tf_flow_map_ops fake_ops = {
	.lookup_batch = fake_batch,
	.get_next_key = fake_next_key,
	.lookup = fake_lookup,
	.lookup_and_delete = fake_lookup,
	.delete_elem = fake_delete,
};

#define NOW_NS (1000ULL * 1000000000ULL)

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n), n >= 1 (v is sorted). */
static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Flow i: a UDP flow of its own on interface first_ifindex + i % nif. */
static void fill_map(struct fake_map *m, uint32_t nflows, uint32_t nif, uint32_t round)
{
	for (uint32_t i = 0; i < nflows; i++) {
		struct tf_flow_key *k = &m->keys[i];
		struct tf_flow_value *v = &m->vals[i];

		memset(k, 0, sizeof(*k));
		k->ifindex = 2 + i % nif;
		k->ethertype = 0x0800;
		k->family = TF_FAM_IPV4;
		k->proto = IPPROTO_UDP;
		k->local_ip[0] = 10;
		k->local_ip[1] = (uint8_t)(i >> 16);
		k->local_ip[2] = (uint8_t)(i >> 8);
		k->local_ip[3] = (uint8_t)i;
		k->remote_ip[0] = 198;
		k->remote_ip[1] = 18;
		k->local_port = (uint16_t)(1024 + i % 60000);
		k->remote_port = 53;
		memset(v, 0, sizeof(*v));
		/* Counts that differ from flow to flow, and grow by round: rates, sorting. */
		v->tx.packets = v->tx.segs = 1 + (i * 7919u) % 1000 + round;
		v->tx.bytes = v->tx.packets * 100;
		v->rx.packets = v->rx.segs = 1 + (i * 104729u) % 500;
		v->rx.bytes = v->rx.packets * 80;
		v->first_seen_ns = NOW_NS - 5000000000ULL;
		v->last_seen_ns = NOW_NS;
	}
	m->n = nflows;
}

/* ---- a collector of nif interfaces, traced as --iface ----------------------- */

static int make_collector(struct tf_collector *c, uint32_t nif, uint32_t max_flows)
{
	memset(c, 0, sizeof(*c));
	c->targets = calloc(nif, sizeof(*c->targets));
	if (!c->targets)
		return -1;
	c->n_targets = nif;
	c->flows = true;
	c->max_flows = max_flows;
	c->ncpus = 1;
	for (uint32_t i = 0; i < nif; i++) {
		struct tf_target *t = &c->targets[i];

		snprintf(t->ifname, sizeof(t->ifname), "sa%u", i);
		t->ifindex = (int)(2 + i);
		t->role = TF_ROLE_IFACE;
		t->flows = true;
		t->now_t = 2;
		t->prev_t = 1;
	}
	return 0;
}

/* ---- the measurements ---------------------------------------------------------- */

enum { R_TABLE, R_JSON, R_TOP, N_REPORTS };
static const char *const report_names[N_REPORTS] = { "table", "json", "top" };

static FILE *devnull;
static struct tf_json json;

static void run_report(int kind, struct tf_flow_report *r, const struct tf_collector *c)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	switch (kind) {
	case R_TABLE:
		r->top_n = 20;
		tf_report_flows_table(r, &now, devnull);
		break;
	case R_JSON:
		r->top_n = 0;
		tf_report_flows_json(&json, r, &now, devnull);
		break;
	case R_TOP:
		/* What top does for its view: every interface's rows, by rate. */
		r->top_n = 0;
		for (size_t i = 0; i < c->n_targets; i++) {
			struct tf_flow_row *rows;

			if (tf_flow_rows(r, &c->targets[i], TF_SORT_RATE, false, &rows) >= 0)
				free(rows);
		}
		break;
	}
	fflush(devnull);
}

struct result {
	uint32_t nif;
	double poll_ms, index_ms;
	double ms[N_REPORTS][2];	/* [report][walk] median */
};

static int measure(uint32_t nflows, uint32_t nif, unsigned int rounds, unsigned int walk_rounds,
		   struct result *res)
{
	struct fake_map m = {};
	struct tf_collector c;
	struct tf_flows fl;
	struct tf_flow_map map = { .ops = &fake_ops, .ctx = &m, .nvalues = 1 };
	struct tf_flow_report r = {};
	double *t = calloc(rounds + walk_rounds + 1, sizeof(*t));
	int ret = -1;

	m.keys = calloc(nflows, sizeof(*m.keys));
	m.vals = calloc(nflows, sizeof(*m.vals));
	if (!t || !m.keys || !m.vals || make_collector(&c, nif, nflows))
		goto out;
	if (tf_flows_init(&fl, &map, 30 * 1000000000ULL, 0, nflows))
		goto out;
	memset(res, 0, sizeof(*res));
	res->nif = nif;
	r.c = &c;
	r.fl = &fl;
	if (tf_flow_report_index(&r))
		goto free_fl;
	/* The first poll makes the table; the ones timed find every flow there. */
	fill_map(&m, nflows, nif, 0);
	if (tf_flows_poll(&fl, NOW_NS, 1.0))
		goto free_fl;
	for (unsigned int i = 0; i < rounds; i++) {
		double t0;

		fill_map(&m, nflows, nif, i + 1);
		t0 = now_ns();
		if (tf_flows_poll(&fl, NOW_NS + (i + 1) * 1000000000ULL, 1.0))
			goto free_fl;
		t[i] = (now_ns() - t0) / 1e6;
	}
	res->poll_ms = median(t, rounds);
	if (fl.n != nflows || !fl.ix.valid) {
		fprintf(stderr, "report_cost: %zu flows in the table, %u in the map\n", fl.n,
			nflows);
		goto free_fl;
	}
	for (unsigned int i = 0; i < rounds; i++) {
		double t0 = now_ns();

		tf_flows_index(&fl);
		t[i] = (now_ns() - t0) / 1e6;
	}
	res->index_ms = median(t, rounds);
	for (int kind = 0; kind < N_REPORTS; kind++) {
		for (int walk = 0; walk < 2; walk++) {
			unsigned int n = walk ? walk_rounds : rounds;

			if (!n)
				continue;
			/* Without the index every interface walks the whole table. */
			fl.ix.valid = !walk;
			for (unsigned int i = 0; i < n; i++) {
				double t0 = now_ns();

				run_report(kind, &r, &c);
				t[i] = (now_ns() - t0) / 1e6;
			}
			res->ms[kind][walk] = median(t, n);
			fl.ix.valid = true;
		}
	}
	ret = 0;
free_fl:
	tf_flow_report_free(&r);
	tf_flows_free(&fl);
out:
	free(c.targets);
	free(m.keys);
	free(m.vals);
	free(t);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: report_cost [--flows N] [--ifaces A,B,...] [--rounds R] "
		   "[--walk-rounds R] [--json]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "flows", required_argument, NULL, 'n' },
		{ "ifaces", required_argument, NULL, 'i' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "walk-rounds", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint32_t nflows = 1000000, ifs[16] = { 1, 512 };
	unsigned int nifs = 2, rounds = 5, walk_rounds = 1;
	struct result res[16];
	bool as_json = false;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n': nflows = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'r': rounds = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'w': walk_rounds = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'j': as_json = true; break;
		case 'i': {
			char *s = optarg, *end;

			for (nifs = 0; *s && nifs < 16; s = *end ? end + 1 : end) {
				ifs[nifs] = (uint32_t)strtoul(s, &end, 10);
				if (!ifs[nifs] || (*end && *end != ',')) {
					usage(stderr);
					return 2;
				}
				nifs++;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!nflows || !rounds || !nifs) {
		usage(stderr);
		return 2;
	}
	devnull = fopen("/dev/null", "w");
	if (!devnull) {
		perror("report_cost: /dev/null");
		return 1;
	}
	for (unsigned int i = 0; i < nifs; i++) {
		if (!as_json)
			fprintf(stderr, "# %u flows on %u interface(s)\n", nflows, ifs[i]);
		if (measure(nflows, ifs[i], rounds, walk_rounds, &res[i])) {
			fprintf(stderr, "report_cost: out of memory\n");
			return 1;
		}
	}
	if (as_json) {
		printf("{\"flows\": %u, \"rounds\": %u, \"walk_rounds\": %u, \"results\": [",
		       nflows, rounds, walk_rounds);
		for (unsigned int i = 0; i < nifs; i++) {
			printf("%s{\"interfaces\": %u, \"poll_ms\": %.2f, \"index_ms\": %.2f",
			       i ? ", " : "", res[i].nif, res[i].poll_ms, res[i].index_ms);
			for (int k = 0; k < N_REPORTS; k++) {
				printf(", \"%s_ms\": %.2f, \"%s_walk_ms\": ", report_names[k],
				       res[i].ms[k][0], report_names[k]);
				if (walk_rounds)
					printf("%.2f", res[i].ms[k][1]);
				else
					printf("null");
			}
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("%-10s %9s %9s", "interfaces", "poll ms", "index ms");
		for (int k = 0; k < N_REPORTS; k++)
			printf(" %9s %9s", report_names[k], "(walk)");
		printf("\n");
		for (unsigned int i = 0; i < nifs; i++) {
			printf("%-10u %9.1f %9.1f", res[i].nif, res[i].poll_ms, res[i].index_ms);
			for (int k = 0; k < N_REPORTS; k++)
				printf(" %9.1f %9.1f", res[i].ms[k][0], res[i].ms[k][1]);
			printf("\n");
		}
	}
	tf_json_free(&json);
	fclose(devnull);
	return 0;
}
