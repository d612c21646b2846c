// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz test of the TC programs (bpf/tapflow.bpf.c) and of the drop tracer
 * (bpf/drops.bpf.c) through BPF_PROG_TEST_RUN.
 *
 * TC programs: a million frames per run (TF_FUZZ_FRAMES), from the seeded
 * generator of fuzz_frames.h, each through one of every TC program the
 * object has: the counters-only tf_ingress/tf_egress, the tap programs
 * tf_tap_ingress/tf_tap_egress, the NAT join's tf_uplink_ingress/egress
 * (egress as a VM's forwarded packet, as the host's own, or from another
 * device), with gso_segs and repeat counts of their own. Six rounds, each a
 * fresh load of another configuration: headers read in place or copied,
 * a flow map from 16 to 65536 entries (overflow), the uplink cache on or
 * off, capture off, on, filtered, or into a ring buffer too small.
 *
 * After every batch (the NAT join's per-CPU cache emptied as the collector
 * does), checked exactly:
 *   - per tap and direction: sum(flows) + expired + overflow + unparsed ==
 *     if_counters (packets, bytes, segs); per uplink direction the same
 *     with the frames the join leaves out (unparsed, the host's, not from
 *     a VM bridge, replies of no flow);
 *   - against a reference model in this file (a parser written from the
 *     rules of include/tapflow.h and bpf/parsing.h, and the accounting of
 *     tapflow.bpf.c): every flow key and its counters and TCP flags, the
 *     aggregates, parse_errors, flow_map_full, the interface counters, and
 *     every captured record byte for byte;
 *   - no map_full, no uplink_cache_lost, no nat_retired_full.
 * From time to time every flow is taken out as the collector's expiry
 * does, so that a full map gets room again.
 *
 * Drop tracer: a test run on a device makes a real skb there, which the
 * kernel frees with kfree_skb() at the end (reason NOT_SPECIFIED, in
 * bpf_prog_test_run_skb; test_drop_path checks that it does). 100000
 * fuzzed frames (a tenth of TF_FUZZ_FRAMES if more), on monitored and
 * other devices and input devices: exactly the expected drops per key
 * (device, input device, reason, location, the packet's MACs, addresses
 * and ports as the tracer may read them within the frame), packets and
 * bytes, once the per-CPU drop cache is flushed as userspace does.
 *
 * The seed is printed ("# seed N"); TF_FUZZ_SEED=N runs the same frames.
 * Needs root; skipped with the reason otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf/need_env.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "collector.h"
#include "counters.h"
#include "ctkey.h"
#include "drops.h"
#include "drops.skel.h"
#include "flows.h"
#include "ifcounters.h"
#include "ksyms.h"
#include "oncpu.h"
#include "tapflow.h"
#include "tapflow.skel.h"
#include "netns_fixture.h"
#include "fuzz_frames.h"

#define TC_ACT_UNSPEC (-1)
/* For printf: __u64 and uint64_t are not the same type everywhere. */
#define U(x) ((unsigned long long)(x))

/* ---- environment ---------------------------------------------------- */

enum fz_dev { D_TAP1, D_TAP2, D_CTR, D_UPLINK, D_DROP, D_OTHER, NDEV };

static const char *const dev_name[NDEV] = { "tffz0", "tffz1", "tffz2", "tffz3", "tffz4",
					    "tffz5" };
static int dev_if[NDEV];
/* Their MACs: a frame to another one is not for the host (eth_type_trans). */
static unsigned char dev_mac[NDEV][6];

static int read_mac(const char *dev, unsigned char mac[6])
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	err = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (!err)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return err;
}

/*
 * Input devices for the uplink's egress (skb->ingress_ifindex): the VMs'
 * bridge (in tf_bridges), and another one. Numbers only: nothing looks
 * them up.
 */
#define BRIDGE_IIF 4000
#define OTHER_IIF 4001

static char skip_reason[256];
static int ncpus;
static uint64_t seed;
static uint64_t total_frames = 1000000;
static uint32_t max_frame;	/* the largest frame the test run takes */

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hexdump(const char *what, const uint8_t *p, uint32_t len)
{
	print_message("# %s (%u bytes):", what, len);
	for (uint32_t i = 0; i < len && i < 128; i++)
		print_message("%s%02x", i % 32 ? " " : "\n#   ", p[i]);
	print_message("\n");
}

/* ---- a small open-addressing table (the models) ---------------------- */

struct tab {
	size_t ksz, vsz, cap, n;	/* cap: a power of 2 */
	uint8_t *used, *keys, *vals;
};

static void tab_init(struct tab *t, size_t ksz, size_t vsz, size_t cap)
{
	t->ksz = ksz;
	t->vsz = vsz;
	t->cap = cap;
	t->n = 0;
	t->used = calloc(cap, 1);
	t->keys = calloc(cap, ksz);
	t->vals = calloc(cap, vsz);
	assert_true(t->used && t->keys && t->vals);
}

static void tab_clear(struct tab *t)
{
	memset(t->used, 0, t->cap);
	t->n = 0;
}

static void tab_free(struct tab *t)
{
	free(t->used);
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof(*t));
}

/* The value of key, NULL if none; add: made (zeroed) if there is none. */
static void *tab_get(struct tab *t, const void *key, bool add)
{
	size_t i = tf_fnv1a(key, t->ksz) & (t->cap - 1);

	for (;; i = (i + 1) & (t->cap - 1)) {
		if (!t->used[i]) {
			if (!add)
				return NULL;
			assert_true(t->n < t->cap / 2 + t->cap / 4);
			t->used[i] = 1;
			memcpy(t->keys + i * t->ksz, key, t->ksz);
			memset(t->vals + i * t->vsz, 0, t->vsz);
			t->n++;
			return t->vals + i * t->vsz;
		}
		if (!memcmp(t->keys + i * t->ksz, key, t->ksz))
			return t->vals + i * t->vsz;
	}
}

/* ---- the reference flow key --------------------------------------------- */

/*
 * The flow key of a frame as include/tapflow.h and bpf/parsing.h define
 * it, written again from their rules: every header checked against the
 * frame's end, or the IP packet's (tot_len, payload_len) once known.
 */
struct rcur {
	const uint8_t *p;
	uint32_t off, end;
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static bool r_has(const struct rcur *c, uint32_t n)
{
	return c->off <= c->end && c->end - c->off >= n;
}

static const uint8_t *r_pull(struct rcur *c, uint32_t n)
{
	const uint8_t *h;

	if (!r_has(c, n))
		return NULL;
	h = c->p + c->off;
	c->off += n;
	return h;
}

static int r_skip(struct rcur *c, uint32_t n)
{
	return r_pull(c, n) ? 0 : -1;
}

static void ref_ports(struct tf_flow_key *k, bool tx, const uint8_t *h)
{
	k->local_port = be16(tx ? h : h + 2);
	k->remote_port = be16(tx ? h + 2 : h);
}

static int ref_l4(struct rcur *c, struct tf_flow_key *k, bool tx, uint32_t *flags)
{
	const uint8_t *h;
	uint32_t min_len;

	switch (k->proto) {
	case 6:
		h = r_pull(c, 20);
		if (!h || (h[12] >> 4) < 5 || r_skip(c, (h[12] >> 4) * 4u - 20))
			return -1;
		ref_ports(k, tx, h);
		*flags = h[13];
		return 0;
	case 17: case 136:
		min_len = 8;
		break;
	case 132: case 33:
		min_len = 12;
		break;
	case 1: case 58:
		if ((k->proto == 1) != (k->family == 4))
			return 0;
		h = r_pull(c, 8);
		if (!h)
			return -1;
		tf_icmp_key_ports(h[0], h[1], be16(h + 4), k->family == 6, &k->local_port,
				  &k->remote_port);
		return 0;
	default:
		return 0;
	}
	if (!r_has(c, min_len))
		return -1;
	ref_ports(k, tx, r_pull(c, 8));
	return 0;
}

static int ref_ipv4(struct rcur *c, struct tf_flow_key *k, bool tx, uint32_t *flags)
{
	uint32_t start = c->off, hlen, tot;
	const uint8_t *h = r_pull(c, 20);

	if (!h || h[0] >> 4 != 4)
		return -1;
	hlen = (h[0] & 0xf) * 4u;
	if (hlen < 20 || r_skip(c, hlen - 20))
		return -1;
	tot = be16(h + 2);
	if (tot) {
		if (tot < hlen)
			return -1;
		if (c->end - start > tot)
			c->end = start + tot;
	}
	k->family = 4;
	k->proto = h[9];
	memcpy(k->local_ip, tx ? h + 12 : h + 16, 4);
	memcpy(k->remote_ip, tx ? h + 16 : h + 12, 4);
	if (be16(h + 6) & 0x1fff)
		return 0;
	return ref_l4(c, k, tx, flags);
}

/* The upper-layer protocol after the extension headers, or -1. */
static int ref_ip6_ext(struct rcur *c, int next, bool *nonfirst)
{
	const uint8_t *h;

	for (int i = 0; i < 6; i++) {
		switch (next) {
		case 0:
			if (i)
				return -1;
			/* fall through */
		case 43: case 60:
			h = r_pull(c, 2);
			if (!h || r_skip(c, (h[1] + 1u) * 8 - 2))
				return -1;
			next = h[0];
			break;
		case 51:
			h = r_pull(c, 2);
			if (!h || r_skip(c, (h[1] + 2u) * 4 - 2))
				return -1;
			next = h[0];
			break;
		case 44:
			h = r_pull(c, 8);
			if (!h)
				return -1;
			next = h[0];
			if (be16(h + 2) & ~7) {
				*nonfirst = true;
				return next;
			}
			break;
		default:
			return next;
		}
	}
	return next == 0 || next == 43 || next == 60 || next == 51 || next == 44 ? -1 : next;
}

static int ref_ipv6(struct rcur *c, struct tf_flow_key *k, bool tx, uint32_t *flags)
{
	uint32_t start = c->off, plen;
	const uint8_t *h = r_pull(c, 40);
	bool nonfirst = false;
	int proto;

	if (!h || h[0] >> 4 != 6)
		return -1;
	plen = be16(h + 4);
	if (plen && c->end - start > plen + 40)
		c->end = start + plen + 40;
	memcpy(k->local_ip, tx ? h + 8 : h + 24, 16);
	memcpy(k->remote_ip, tx ? h + 24 : h + 8, 16);
	proto = ref_ip6_ext(c, h[6], &nonfirst);
	if (proto < 0)
		return -1;
	k->family = 6;
	k->proto = (uint8_t)proto;
	return nonfirst ? 0 : ref_l4(c, k, tx, flags);
}

static int ref_arp(struct rcur *c, struct tf_flow_key *k, bool tx)
{
	const uint8_t *h = r_pull(c, 8), *a;

	if (!h)
		return -1;
	if (be16(h) != 1 || be16(h + 2) != 0x0800 || h[4] != 6 || h[5] != 4)
		return 0;
	a = r_pull(c, 20);
	if (!a)
		return -1;
	memcpy(k->local_ip, tx ? a + 6 : a + 16, 4);
	memcpy(k->remote_ip, tx ? a + 16 : a + 6, 4);
	return 0;
}

/* The key of the frame on ifindex in the VM's view (tx: sent by it); 0 or -1. */
static int ref_key(const uint8_t *p, uint32_t len, uint32_t ifindex, bool tx,
		   struct tf_flow_key *k, uint32_t *flags)
{
	struct rcur c = { .p = p, .end = len };
	const uint8_t *h = r_pull(&c, 14);
	int proto;

	memset(k, 0, sizeof(*k));
	*flags = 0;
	k->ifindex = ifindex;
	if (!h)
		return -1;
	proto = be16(h + 12);
	for (int i = 0; i < 2 && (proto == 0x8100 || proto == 0x88a8); i++) {
		h = r_pull(&c, 4);
		if (!h)
			return -1;
		if (i)
			k->vlan_inner = be16(h) & 0x0fff;
		else
			k->vlan = be16(h) & 0x0fff;
		proto = be16(h + 2);
	}
	k->ethertype = proto < 0x0600 ? 0x0001 : (uint16_t)proto;
	switch (k->ethertype) {
	case 0x0800:
		return ref_ipv4(&c, k, tx, flags);
	case 0x86dd:
		return ref_ipv6(&c, k, tx, flags);
	case 0x0806:
		return ref_arp(&c, k, tx);
	}
	return 0;
}

/* ---- the reference accounting -------------------------------------------- */

enum fz_kind { K_TAP, K_COUNTERS, K_UPLINK };

struct fz_target {
	const char *prog;
	enum fz_dev dev;
	int hook;		/* TF_HOOK_INGRESS / TF_HOOK_EGRESS */
	enum fz_kind kind;
	uint32_t weight;	/* percent of the frames */
};

/* Every TC program of the object (fz_setup checks that none is missing). */
static const struct fz_target targets[] = {
	{ "tf_tap_ingress", D_TAP1, TF_HOOK_INGRESS, K_TAP, 20 },
	{ "tf_tap_egress", D_TAP1, TF_HOOK_EGRESS, K_TAP, 20 },
	{ "tf_tap_ingress", D_TAP2, TF_HOOK_INGRESS, K_TAP, 5 },
	{ "tf_tap_egress", D_TAP2, TF_HOOK_EGRESS, K_TAP, 5 },
	{ "tf_ingress", D_CTR, TF_HOOK_INGRESS, K_COUNTERS, 5 },
	{ "tf_egress", D_CTR, TF_HOOK_EGRESS, K_COUNTERS, 5 },
	{ "tf_uplink_ingress", D_UPLINK, TF_HOOK_INGRESS, K_UPLINK, 15 },
	{ "tf_uplink_egress", D_UPLINK, TF_HOOK_EGRESS, K_UPLINK, 25 },
};

#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

struct mflow {
	struct tf_dir_counters rx, tx;
	uint32_t flags_rx, flags_tx;
	uint8_t nat;			/* TF_NAT_UPLINK, TF_NAT_HOST */
};

struct model {
	struct tab flows;		/* struct tf_flow_key -> struct mflow: the taps' */
	struct tab uplinks;		/* ... the uplink's (map uplink_flows) */
	uint32_t max_flows;		/* of each map */
	struct tf_dir_counters ctr[NDEV][TF_HOOK_DIRS];
	struct tf_tap_aggr aggr[NDEV];
	uint64_t cap_samples[NDEV][TF_HOOK_DIRS];
	/* Uplink frames in no flow: unparsed, the host's, no flow to join, map full. */
	struct tf_dir_counters not_joined[TF_HOOK_DIRS];
	uint64_t parse_errors, flow_map_full, uplink_flow_map_full;
	uint64_t joined_rx, host_taken;	/* coverage of the join, for the diagnostics */
	uint64_t natport[TF_NATPORT_BITS / 64];
	bool armed;			/* tf_uplink_rx_armed */
};

static void dir_add(struct tf_dir_counters *d, uint32_t len, uint32_t segs)
{
	d->packets++;
	d->bytes += len;
	d->segs += segs;
}

static void mflow_count(struct mflow *v, bool tx, uint32_t len, uint32_t segs, uint32_t flags)
{
	dir_add(tx ? &v->tx : &v->rx, len, segs);
	if (tx)
		v->flags_tx |= flags;
	else
		v->flags_rx |= flags;
}

/* A new flow: an entry while the map has room, else its device's overflow. */
static struct mflow *model_new_flow(struct model *m, const struct tf_flow_key *k,
				    enum fz_dev dev, bool tx, uint32_t len, uint32_t segs)
{
	if (m->flows.n < m->max_flows)
		return tab_get(&m->flows, k, true);
	m->flow_map_full++;
	dir_add(tx ? &m->aggr[dev].overflow_tx : &m->aggr[dev].overflow_rx, len, segs);
	return NULL;
}

/* A new uplink flow: an entry while uplink_flows has room, else joined with nothing. */
static struct mflow *model_new_uplink(struct model *m, const struct tf_flow_key *k,
				      uint32_t len, uint32_t segs)
{
	if (m->uplinks.n < m->max_flows)
		return tab_get(&m->uplinks, k, true);
	m->uplink_flow_map_full++;
	dir_add(&m->not_joined[TF_HOOK_EGRESS], len, segs);
	return NULL;
}

static void model_tap(struct model *m, const uint8_t *p, uint32_t len, enum fz_dev dev, bool tx,
		      uint32_t segs)
{
	struct tf_flow_key k;
	struct mflow *v;
	uint32_t flags;

	if (ref_key(p, len, (uint32_t)dev_if[dev], tx, &k, &flags)) {
		m->parse_errors++;
		dir_add(tx ? &m->aggr[dev].unparsed_tx : &m->aggr[dev].unparsed_rx, len, segs);
		return;
	}
	v = tab_get(&m->flows, &k, false);
	if (!v)
		v = model_new_flow(m, &k, dev, tx, len, segs);
	if (v)
		mflow_count(v, tx, len, segs, flags);
}

static bool natport_set(const struct model *m, uint16_t port)
{
	return m->natport[port / 64] & (1ULL << (port % 64));
}

/*
 * Uplink egress: a VM's forwarded packet (from the bridge) counts in its
 * uplink flow, made if new; the host's own (no input device) marks the
 * uplink flow whose tuple it reuses as the host's; the rest joins nothing.
 * The test run's skbs have no conntrack entry: the flows are untranslated.
 */
static void model_uplink_egress(struct model *m, const uint8_t *p, uint32_t len, uint32_t iif,
				uint32_t segs)
{
	uint32_t up = (uint32_t)dev_if[D_UPLINK], flags;
	struct tf_flow_key k;
	struct mflow *v;
	bool parsed = !ref_key(p, len, up, true, &k, &flags);

	if (!parsed || iif != BRIDGE_IIF) {
		if (parsed && !iif && natport_set(m, k.local_port)) {
			v = tab_get(&m->uplinks, &k, false);
			if (v && !(v->nat & TF_NAT_HOST)) {
				v->nat |= TF_NAT_HOST;
				m->host_taken++;
			}
		}
		dir_add(&m->not_joined[TF_HOOK_EGRESS], len, segs);
		return;
	}
	v = tab_get(&m->uplinks, &k, false);
	if (!v) {
		/* The port bit is set before the insert, which may find the map full. */
		m->natport[k.local_port / 64] |= 1ULL << (k.local_port % 64);
		v = model_new_uplink(m, &k, len, segs);
		if (!v)
			return;
		v->nat = TF_NAT_UPLINK;
	}
	mflow_count(v, true, len, segs, flags);
}

/* Uplink ingress: counts only into an uplink flow the host has not taken. */
static void model_uplink_ingress(struct model *m, const uint8_t *p, uint32_t len, uint32_t segs)
{
	struct tf_flow_key k;
	struct mflow *v = NULL;
	uint32_t flags;

	if (m->armed && !ref_key(p, len, (uint32_t)dev_if[D_UPLINK], false, &k, &flags))
		v = tab_get(&m->uplinks, &k, false);
	if (v && !(v->nat & TF_NAT_HOST)) {
		mflow_count(v, false, len, segs, flags);
		m->joined_rx++;
	} else
		dir_add(&m->not_joined[TF_HOOK_INGRESS], len, segs);
}

/* ---- a round: one load of the object, one configuration ------------------- */

enum fz_capture { CAP_OFF, CAP_ALL, CAP_FILTER, CAP_TINY_RING };

struct fz_config {
	const char *what;
	bool copy_headers;		/* tf_test_copy_headers */
	uint32_t max_flows;
	bool cache;			/* the NAT join's per-CPU cache */
	bool armed;			/* tf_uplink_rx_armed */
	enum fz_capture capture;
	uint32_t snaplen;
};

/* A capture record the programs must have written, in order. */
struct rec_expect {
	uint32_t off, len;		/* the frame in the batch's arena */
	uint8_t dev, hook;
};

#define BATCH 8192
#define ARENA_SIZE ((size_t)BATCH * FZ_FRAME_MAX)
#define CAP_RING (16u << 20)		/* a whole batch of the largest frames */

struct fz_run {
	const struct fz_config *cfg;
	struct tapflow_bpf *skel;
	struct tf_ifc ifc;
	int prog_fd[N_TARGETS];
	int flows_fd, uplinks_fd, aggr_fd, flush_fd;
	struct model m;
	/* Flows taken out (expiry), per device: [0] rx, [1] tx. */
	struct tf_dir_counters expired[NDEV][2];
	struct tf_flow_key *keys;	/* the flow map as read */
	struct tf_flow_value *vals;
	uint32_t n_read, read_cap;
	struct tf_flow_key *up_keys;	/* the uplink flow map as read */
	struct tf_uplink_value *up_vals;
	uint32_t n_up_read;
	/* This batch's frames, and the capture records they must make. */
	uint8_t *arena;
	size_t arena_used;
	struct rec_expect *rec;
	size_t n_rec, rec_seen;
	bool rec_bad;
	uint64_t records;
	struct ring_buffer *rb;
	struct fz_rng rng, expiry_rng;
	uint64_t frames, refused, batches, expiries;
};

/* libbpf's warnings (the verifier log of a failed load) as TAP diagnostics. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[8192];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		printf("# libbpf: %s\n", line);
	return 0;
}

static bool is_target(const char *name)
{
	for (size_t i = 0; i < N_TARGETS; i++)
		if (!strcmp(targets[i].prog, name))
			return true;
	return false;
}

/* Every SEC("tc") program is driven here: a new one must be added to targets[]. */
static void check_every_tc_program_driven(struct bpf_object *obj)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		if (strcmp(bpf_program__section_name(prog), "tc"))
			continue;
		if (!is_target(bpf_program__name(prog))) {
			print_message("# TC program %s is not fuzzed: add it to targets[]\n",
				      bpf_program__name(prog));
			fail();
		}
	}
}

static int on_record(void *ctx, void *data, size_t size);

static int fz_load(struct fz_run *r)
{
	const struct fz_config *cfg = r->cfg;
	struct tapflow_bpf *s = tapflow_bpf__open();

	if (!s) {
		print_message("# tapflow_bpf__open: %s\n", strerror(errno));
		return -1;
	}
	r->skel = s;
	/* As the collector with the join on: both flow maps as large. */
	if (bpf_map__set_max_entries(s->maps.flows, cfg->max_flows) ||
	    bpf_map__set_max_entries(s->maps.uplink_flows, cfg->max_flows))
		return -1;
	s->rodata->tf_test_copy_headers = cfg->copy_headers;
	if (cfg->capture != CAP_OFF) {
		s->rodata->tf_cap_on = true;
		s->rodata->tf_cap_sample = 1;
		s->rodata->tf_cap_snaplen = cfg->snaplen;
		s->rodata->tf_cap_filter.on = cfg->capture == CAP_FILTER;
		s->rodata->tf_cap_filter.proto = 6;	/* TCP, either family */
		if (bpf_map__set_max_entries(s->maps.cap_rb,
					     cfg->capture == CAP_TINY_RING ? 4096 : CAP_RING))
			return -1;
	}
	if (tapflow_bpf__load(s)) {
		print_message("# tapflow_bpf__load (%s): %s\n", cfg->what, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Entries as the collector makes them for TAP1, CTR and the uplink; TAP2
 * gets none (the programs make its if_spill and tap_aggr entries).
 */
static void fz_entries(struct fz_run *r)
{
	void *zero = calloc((size_t)ncpus, sizeof(struct tf_tap_aggr));
	__u32 tap1 = (__u32)dev_if[D_TAP1];

	assert_non_null(zero);
	assert_int_equal(tf_ifc_add(&r->ifc, tap1), 0);
	assert_int_equal(bpf_map_update_elem(r->aggr_fd, &tap1, zero, BPF_NOEXIST), 0);
	assert_int_equal(tf_ifc_add(&r->ifc, (__u32)dev_if[D_CTR]), 0);
	assert_int_equal(tf_ifc_add(&r->ifc, (__u32)dev_if[D_UPLINK]), 0);
	free(zero);
}

static void fz_globals(struct fz_run *r)
{
	struct tapflow_bpf__bss *bss = r->skel->bss;

	bss->tf_bridges[0] = BRIDGE_IIF;
	bss->tf_n_bridges = 1;
	bss->tf_uplink_rx_armed = r->cfg->armed;
	/* Captured: TAP1, the counters-only device and the uplink; not TAP2. */
	for (int d = D_TAP1; d <= D_UPLINK; d++)
		if (d != D_TAP2)
			bss->tf_cap_if_bits[dev_if[d] / 64] |= 1ULL << (dev_if[d] % 64);
	if (r->cfg->cache) {
		/* As the collector: on once the flush program runs. */
		assert_int_equal(tf_run_on_cpu(r->flush_fd, -1), 0);
		bss->tf_uplink_cache_on = 1;
	}
}

static int fz_setup(void **state, const struct fz_config *cfg)
{
	struct fz_run *r;

	*state = NULL;
	if (skip_reason[0])
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	*state = r;
	r->cfg = cfg;
	if (fz_load(r))
		return -1;
	check_every_tc_program_driven(r->skel->obj);
	for (size_t i = 0; i < N_TARGETS; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(r->skel->obj,
									 targets[i].prog);

		assert_non_null(p);
		r->prog_fd[i] = bpf_program__fd(p);
	}
	r->ifc = TF_IFC_OF(r->skel, ncpus);
	r->flows_fd = bpf_map__fd(r->skel->maps.flows);
	r->uplinks_fd = bpf_map__fd(r->skel->maps.uplink_flows);
	r->aggr_fd = bpf_map__fd(r->skel->maps.tap_aggr);
	r->flush_fd = bpf_program__fd(r->skel->progs.tf_uplink_flush);
	assert_int_equal(bpf_map__type(r->skel->maps.flows), BPF_MAP_TYPE_HASH);
	fz_entries(r);
	fz_globals(r);
	tab_init(&r->m.flows, sizeof(struct tf_flow_key), sizeof(struct mflow),
		 cfg->max_flows >= 32768 ? 1u << 17 : 1u << 16);
	tab_init(&r->m.uplinks, sizeof(struct tf_flow_key), sizeof(struct mflow),
		 cfg->max_flows >= 32768 ? 1u << 17 : 1u << 16);
	r->m.max_flows = cfg->max_flows;
	r->m.armed = cfg->armed;
	r->read_cap = cfg->max_flows + 64;
	r->keys = calloc(r->read_cap, sizeof(*r->keys));
	r->vals = calloc(r->read_cap, sizeof(*r->vals));
	r->up_keys = calloc(r->read_cap, sizeof(*r->up_keys));
	r->up_vals = calloc(r->read_cap, sizeof(*r->up_vals));
	r->arena = malloc(ARENA_SIZE);
	r->rec = calloc(BATCH * 4, sizeof(*r->rec));
	assert_true(r->keys && r->vals && r->up_keys && r->up_vals && r->arena && r->rec);
	if (cfg->capture != CAP_OFF) {
		r->rb = ring_buffer__new(bpf_map__fd(r->skel->maps.cap_rb), on_record, r, NULL);
		assert_non_null(r->rb);
	}
	return 0;
}

static int fz_teardown(void **state)
{
	struct fz_run *r = *state;

	if (r) {
		ring_buffer__free(r->rb);
		tapflow_bpf__destroy(r->skel);
		tab_free(&r->m.flows);
		tab_free(&r->m.uplinks);
		free(r->keys);
		free(r->vals);
		free(r->up_keys);
		free(r->up_vals);
		free(r->arena);
		free(r->rec);
		free(r);
	}
	*state = NULL;
	return 0;
}

/* ---- running frames ----------------------------------------------------------- */

/* Does BPF_PROG_TEST_RUN take the frame (else -EINVAL, and no program runs)? */
static bool test_run_takes(const uint8_t *p, uint32_t len)
{
	uint16_t type;

	if (len < 14 || len > max_frame)
		return false;
	type = be16(p + 12);
	/* This kernel refuses an IP frame too short for the IP header. */
	if (type == 0x0800)
		return len - 14 >= 20;
	if (type == 0x86dd)
		return len - 14 >= 40;
	return true;
}

static int test_run(int prog_fd, const uint8_t *p, uint32_t len, uint32_t ifindex, uint32_t iif,
		    uint32_t segs, uint32_t repeat)
{
	struct __sk_buff ctx;
	__u32 retval = 0;
	int err;

	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = ifindex;
	ctx.ingress_ifindex = iif;
	ctx.gso_segs = segs;
	ctx.gso_size = segs ? 1448 : 0;
	err = tf_test_run_tc(prog_fd, p, len, &ctx, (int)repeat, &retval);
	if (err)
		return err;
	if (retval != (__u32)TC_ACT_UNSPEC) {
		print_message("# retval %d, not TC_ACT_UNSPEC\n", (int)retval);
		return -EPROTO;
	}
	return 0;
}

/* Would the capture of this program run have sampled the frame? */
static bool model_sampled(const struct fz_run *r, const struct fz_target *t, const uint8_t *p,
			  uint32_t len)
{
	struct tf_flow_key k;
	uint32_t flags;

	if (r->cfg->capture == CAP_OFF || t->dev == D_TAP2)
		return false;
	if (r->cfg->capture != CAP_FILTER)
		return true;
	return !ref_key(p, len, (uint32_t)dev_if[t->dev], t->hook == TF_HOOK_INGRESS, &k, &flags) &&
	       k.proto == 6;
}

/* One program run of the frame (at arena offset off), in the model. */
static void model_run(struct fz_run *r, const struct fz_target *t, uint32_t off, uint32_t len,
		      uint32_t iif, uint32_t segs)
{
	struct model *m = &r->m;
	const uint8_t *p = r->arena + off;

	dir_add(&m->ctr[t->dev][t->hook], len, segs);
	if (model_sampled(r, t, p, len)) {
		m->cap_samples[t->dev][t->hook]++;
		assert_true(r->n_rec < BATCH * 4);
		r->rec[r->n_rec++] = (struct rec_expect){ off, len, (uint8_t)t->dev,
							  (uint8_t)t->hook };
	}
	switch (t->kind) {
	case K_TAP:
		model_tap(m, p, len, t->dev, t->hook == TF_HOOK_INGRESS, segs);
		break;
	case K_UPLINK:
		if (t->hook == TF_HOOK_EGRESS)
			model_uplink_egress(m, p, len, iif, segs);
		else
			model_uplink_ingress(m, p, len, segs);
		break;
	case K_COUNTERS:
		break;
	}
}

static const struct fz_target *pick_target(struct fz_rng *g)
{
	uint32_t x = fz_below(g, 100);

	for (size_t i = 0; i < N_TARGETS; i++) {
		if (x < targets[i].weight)
			return &targets[i];
		x -= targets[i].weight;
	}
	return &targets[0];
}

/* Run one frame (already in the arena) as the model says it must go. */
static void shoot(struct fz_run *r, const struct fz_target *t, uint32_t off, uint32_t len)
{
	struct fz_rng *g = &r->rng;
	uint32_t iif = 0, segs, repeat, x = fz_below(g, 100);
	bool takes = test_run_takes(r->arena + off, len);
	int err;

	if (t->kind == K_UPLINK && t->hook == TF_HOOK_EGRESS)
		iif = x < 70 ? BRIDGE_IIF : x < 85 ? 0 : OTHER_IIF;
	x = fz_below(g, 100);
	segs = x < 70 ? 0 : x < 90 ? 1 + fz_below(g, 8) : fz_below(g, 65536);
	repeat = fz_chance(g, 95) ? 1 : 2 + fz_below(g, 3);
	err = test_run(r->prog_fd[t - targets], r->arena + off, len, (uint32_t)dev_if[t->dev], iif,
		       segs, repeat);
	if (err != (takes ? 0 : -EINVAL)) {
		print_message("# %s on %s: test run %d, expected %d\n", t->prog,
			      dev_name[t->dev], err, takes ? 0 : -EINVAL);
		hexdump("frame", r->arena + off, len);
		fail();
	}
	r->frames++;
	if (!takes) {
		r->refused++;
		return;
	}
	for (uint32_t i = 0; i < repeat; i++)
		model_run(r, t, off, len, iif, segs ? segs : 1);
}

/* A frame to the arena; 1% of the time every prefix of one (cut at every byte). */
static void batch_frames(struct fz_run *r, uint32_t n)
{
	static struct fz_frame f;

	r->arena_used = 0;
	r->n_rec = 0;
	r->rec_seen = 0;
	while (n) {
		const struct fz_target *t = pick_target(&r->rng);
		bool cuts = fz_chance(&r->rng, 1);
		uint32_t off = (uint32_t)r->arena_used;

		if (cuts)
			fz_structured(&r->rng, &f, max_frame);
		else
			fz_next_frame(&r->rng, &f, max_frame);
		if (r->arena_used + f.len > ARENA_SIZE)
			break;
		memcpy(r->arena + off, f.b, f.len);
		r->arena_used += f.len;
		for (uint32_t len = cuts ? 0 : f.len; len <= f.len && n; len++, n--)
			shoot(r, t, off, len);
	}
}

/* ---- checking a batch --------------------------------------------------------- */

static int on_record(void *ctx, void *data, size_t size)
{
	struct fz_run *r = ctx;
	const struct tf_cap_hdr *h = data;
	const struct rec_expect *e;
	uint32_t cap;

	r->records++;
	if (r->cfg->capture == CAP_TINY_RING || r->rec_bad)
		return 0;	/* a ring too small keeps some: only counted */
	if (r->rec_seen >= r->n_rec) {
		print_message("# capture record %zu: not expected\n", r->rec_seen);
		r->rec_bad = true;
		return 0;
	}
	e = &r->rec[r->rec_seen++];
	cap = e->len < r->cfg->snaplen ? e->len : r->cfg->snaplen;
	if (size < sizeof(*h) || h->ifindex != (__u32)dev_if[e->dev] || h->orig_len != e->len ||
	    h->cap_len != cap || size < sizeof(*h) + cap || h->sample != 1 || h->hook != e->hook ||
	    memcmp(h + 1, r->arena + e->off, cap)) {
		print_message("# capture record %zu: if %u len %u cap %u hook %u, expected if %d "
			      "len %u cap %u hook %u\n", r->rec_seen - 1, h->ifindex, h->orig_len,
			      h->cap_len, h->hook, dev_if[e->dev], e->len, cap, e->hook);
		hexdump("frame", r->arena + e->off, e->len);
		r->rec_bad = true;
	}
	return 0;
}

static void assert_dir(const char *what, const struct tf_dir_counters *got,
		       const struct tf_dir_counters *want)
{
	if (got->packets != want->packets || got->bytes != want->bytes ||
	    got->segs != want->segs) {
		print_message("# %s: %llu/%llu/%llu packets/bytes/segs, expected %llu/%llu/%llu\n",
			      what, U(got->packets), U(got->bytes), U(got->segs), U(want->packets),
			      U(want->bytes), U(want->segs));
		fail();
	}
}

static void check_counters(struct fz_run *r)
{
	static const char *const hook[] = { "ingress", "egress" };
	char what[96];

	for (int d = D_TAP1; d <= D_UPLINK; d++) {
		struct tf_if_counters c;
		int err = tf_ifc_read(&r->ifc, (__u32)dev_if[d], &c);

		assert_true(err == 0 || err == -ENOENT);
		for (int h = 0; h < TF_HOOK_DIRS; h++) {
			uint64_t want = r->m.cap_samples[d][h];

			snprintf(what, sizeof(what), "%s %s: if_counters", dev_name[d], hook[h]);
			assert_dir(what, &c.dir[h], &r->m.ctr[d][h]);
			if (r->cfg->capture == CAP_TINY_RING) {
				/* Sampled: taken, or lost to the full ring. */
				assert_int_equal(c.cap_samples[h] + c.cap_lost[h], want);
			} else {
				assert_int_equal(c.cap_samples[h], want);
				assert_int_equal(c.cap_lost[h], 0);
			}
		}
	}
}

static void check_aggr(struct fz_run *r)
{
	struct tf_tap_aggr *v = calloc((size_t)ncpus, sizeof(*v)), sum;
	char what[96];

	assert_non_null(v);
	for (int d = D_TAP1; d <= D_UPLINK; d++) {
		__u32 key = (__u32)dev_if[d];
		const struct tf_tap_aggr *w = &r->m.aggr[d];

		memset(&sum, 0, sizeof(sum));
		if (!bpf_map_lookup_elem(r->aggr_fd, &key, v)) {
			/* The counters-only programs have no aggregate. */
			assert_int_not_equal(d, D_CTR);
			for (int i = 0; i < ncpus; i++) {
				tf_dir_add(&sum.overflow_rx, &v[i].overflow_rx);
				tf_dir_add(&sum.overflow_tx, &v[i].overflow_tx);
				tf_dir_add(&sum.unparsed_rx, &v[i].unparsed_rx);
				tf_dir_add(&sum.unparsed_tx, &v[i].unparsed_tx);
			}
		}
		snprintf(what, sizeof(what), "%s overflow_rx", dev_name[d]);
		assert_dir(what, &sum.overflow_rx, &w->overflow_rx);
		snprintf(what, sizeof(what), "%s overflow_tx", dev_name[d]);
		assert_dir(what, &sum.overflow_tx, &w->overflow_tx);
		snprintf(what, sizeof(what), "%s unparsed_rx", dev_name[d]);
		assert_dir(what, &sum.unparsed_rx, &w->unparsed_rx);
		snprintf(what, sizeof(what), "%s unparsed_tx", dev_name[d]);
		assert_dir(what, &sum.unparsed_tx, &w->unparsed_tx);
	}
	free(v);
}

static void check_globals(struct fz_run *r)
{
	const struct tapflow_bpf__bss *bss = r->skel->bss;

	assert_int_equal(bss->parse_errors, r->m.parse_errors);
	assert_int_equal(bss->flow_map_full, r->m.flow_map_full);
	assert_int_equal(bss->uplink_flow_map_full, r->m.uplink_flow_map_full);
	assert_int_equal(bss->map_full, 0);
	assert_int_equal(bss->uplink_cache_lost, 0);
	assert_int_equal(bss->nat_retired_full, 0);
}

/* A whole map (fd) into keys/vals (vsz bytes a value, at most cap): how many. */
static uint32_t read_map(int fd, struct tf_flow_key *keys, void *vals, size_t vsz, uint32_t cap)
{
	uint64_t in_batch[8] = {}, out_batch[8] = {};
	bool first = true;
	uint32_t n = 0;

	for (;;) {
		DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 count = cap - n;
		int err = bpf_map_lookup_batch(fd, first ? NULL : in_batch, out_batch, keys + n,
					       (char *)vals + n * vsz, &count, &opts);

		if (err && errno != ENOENT) {
			print_message("# bpf_map_lookup_batch: %s\n", strerror(errno));
			fail();
		}
		n += count;
		if (err)
			return n;
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
}

/* Both flow maps into r->keys/r->vals and r->up_keys/r->up_vals. */
static void read_flows(struct fz_run *r)
{
	r->n_read = read_map(r->flows_fd, r->keys, r->vals, sizeof(*r->vals), r->read_cap);
	r->n_up_read = read_map(r->uplinks_fd, r->up_keys, r->up_vals, sizeof(*r->up_vals),
				r->read_cap);
}

static enum fz_dev dev_of(uint32_t ifindex)
{
	for (int d = 0; d < NDEV; d++)
		if ((uint32_t)dev_if[d] == ifindex)
			return (enum fz_dev)d;
	return NDEV;
}

static void print_key(const char *what, const struct tf_flow_key *k)
{
	hexdump(what, (const uint8_t *)k, sizeof(*k));
}

/*
 * One kernel flow against the model's (tab: the taps' or the uplink's;
 * nat: the uplink flow's VM side, NULL for a tap flow).
 */
static void check_flow(struct tab *tab, const struct tf_flow_key *k,
		       const struct tf_flow_value *v, const struct tf_nat_vm *nat)
{
	const struct mflow *w = tab_get(tab, k, false);
	enum fz_dev d = dev_of(k->ifindex);
	uint8_t nat_flags = nat ? nat->flags : 0;

	if (!w || (nat ? d != D_UPLINK : d != D_TAP1 && d != D_TAP2)) {
		print_key("a flow the reference has not, key", k);
		fail();
	}
	if (memcmp(&v->rx, &w->rx, sizeof(w->rx)) || memcmp(&v->tx, &w->tx, sizeof(w->tx)) ||
	    v->tcp_flags_rx != w->flags_rx || v->tcp_flags_tx != w->flags_tx ||
	    nat_flags != w->nat) {
		print_key("flow key", k);
		print_message("# kernel rx %llu/%llu/%llu tx %llu/%llu/%llu flags %x/%x nat %x\n",
			      U(v->rx.packets), U(v->rx.bytes), U(v->rx.segs), U(v->tx.packets),
			      U(v->tx.bytes), U(v->tx.segs), v->tcp_flags_rx, v->tcp_flags_tx,
			      nat_flags);
		print_message("# reference rx %llu/%llu/%llu tx %llu/%llu/%llu flags %x/%x "
			      "nat %x\n", U(w->rx.packets), U(w->rx.bytes), U(w->rx.segs), U(w->tx.packets),
			      U(w->tx.bytes), U(w->tx.segs), w->flags_rx, w->flags_tx, w->nat);
		fail();
	}
	assert_true(v->first_seen_ns > 0 && v->last_seen_ns >= v->first_seen_ns);
	assert_true(v->rx.packets + v->tx.packets > 0);
	if (nat)
		assert_int_equal(nat->vm.ifindex, BRIDGE_IIF);
}

/*
 * The invariant, from the kernel's maps (and, on the uplink, the model's
 * count of what the join leaves out): flows + expired + overflow +
 * unparsed == if_counters, per device and direction.
 */
static void check_invariant(struct fz_run *r, struct tf_dir_counters sums[NDEV][2])
{
	struct tf_tap_aggr *v = calloc((size_t)ncpus, sizeof(*v));
	const enum fz_dev devs[] = { D_TAP1, D_TAP2, D_UPLINK };
	char what[96];

	assert_non_null(v);
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		enum fz_dev d = devs[i];
		__u32 key = (__u32)dev_if[d];
		struct tf_if_counters c;
		struct tf_dir_counters dir[2];	/* [0] rx, [1] tx */

		memset(&c, 0, sizeof(c));
		assert_true(tf_ifc_read(&r->ifc, key, &c) == 0 || r->m.ctr[d][0].packets +
			    r->m.ctr[d][1].packets == 0);
		for (int tx = 0; tx < 2; tx++) {
			dir[tx] = sums[d][tx];
			tf_dir_add(&dir[tx], &r->expired[d][tx]);
		}
		if (!bpf_map_lookup_elem(r->aggr_fd, &key, v))
			for (int cpu = 0; cpu < ncpus; cpu++) {
				tf_dir_add(&dir[0], &v[cpu].overflow_rx);
				tf_dir_add(&dir[0], &v[cpu].unparsed_rx);
				tf_dir_add(&dir[1], &v[cpu].overflow_tx);
				tf_dir_add(&dir[1], &v[cpu].unparsed_tx);
			}
		if (d == D_UPLINK) {
			/* The uplink's rx is what arrives (ingress), its tx what leaves. */
			tf_dir_add(&dir[0], &r->m.not_joined[TF_HOOK_INGRESS]);
			tf_dir_add(&dir[1], &r->m.not_joined[TF_HOOK_EGRESS]);
			snprintf(what, sizeof(what), "invariant %s rx (ingress)", dev_name[d]);
			assert_dir(what, &dir[0], &c.dir[TF_HOOK_INGRESS]);
			snprintf(what, sizeof(what), "invariant %s tx (egress)", dev_name[d]);
			assert_dir(what, &dir[1], &c.dir[TF_HOOK_EGRESS]);
		} else {
			/* On a tap, TC ingress is what the VM sent (tx). */
			snprintf(what, sizeof(what), "invariant %s tx (ingress)", dev_name[d]);
			assert_dir(what, &dir[1], &c.dir[TF_HOOK_INGRESS]);
			snprintf(what, sizeof(what), "invariant %s rx (egress)", dev_name[d]);
			assert_dir(what, &dir[0], &c.dir[TF_HOOK_EGRESS]);
		}
	}
	free(v);
}

/*
 * Expiry as the collector does it: every flow taken out (atomically),
 * its counts kept; then the map has room (tf_flows_full_ns 0), cached
 * uplink flows are stale (tf_uplink_gen), and no live flow holds a NAT
 * port (the collector rebuilds the bitmap from the live flows).
 */
static void expire_all(struct fz_run *r)
{
	struct tapflow_bpf__bss *bss = r->skel->bss;

	for (uint32_t i = 0; i < r->n_read; i++) {
		struct tf_flow_value v;
		enum fz_dev d = dev_of(r->keys[i].ifindex);

		assert_int_equal(bpf_map_lookup_and_delete_elem(r->flows_fd, &r->keys[i], &v), 0);
		assert_true(d < NDEV);
		tf_dir_add(&r->expired[d][0], &v.rx);
		tf_dir_add(&r->expired[d][1], &v.tx);
	}
	for (uint32_t i = 0; i < r->n_up_read; i++) {
		struct tf_uplink_value v;

		assert_int_equal(bpf_map_lookup_and_delete_elem(r->uplinks_fd, &r->up_keys[i], &v),
				 0);
		tf_dir_add(&r->expired[D_UPLINK][0], &v.flow.rx);
		tf_dir_add(&r->expired[D_UPLINK][1], &v.flow.tx);
	}
	tab_clear(&r->m.flows);
	tab_clear(&r->m.uplinks);
	__atomic_store_n(&bss->tf_flows_full_ns, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bss->tf_uplink_gen, 1, __ATOMIC_SEQ_CST);
	memset(bss->tf_natport_bits, 0, sizeof(bss->tf_natport_bits));
	memset(r->m.natport, 0, sizeof(r->m.natport));
	r->expiries++;
}

static void check_batch(struct fz_run *r, bool expire)
{
	struct tf_dir_counters sums[NDEV][2];

	/* As the collector before it reads: the uplink cache into the map. */
	if (r->cfg->cache)
		assert_true(tf_uplink_cache_flush(r->skel, ncpus) >= 0);
	check_counters(r);
	check_aggr(r);
	check_globals(r);
	read_flows(r);
	memset(sums, 0, sizeof(sums));
	for (uint32_t i = 0; i < r->n_read; i++) {
		enum fz_dev d = dev_of(r->keys[i].ifindex);

		check_flow(&r->m.flows, &r->keys[i], &r->vals[i], NULL);
		tf_dir_add(&sums[d][0], &r->vals[i].rx);
		tf_dir_add(&sums[d][1], &r->vals[i].tx);
	}
	for (uint32_t i = 0; i < r->n_up_read; i++) {
		const struct tf_uplink_value *v = &r->up_vals[i];

		check_flow(&r->m.uplinks, &r->up_keys[i], &v->flow, &v->nat);
		tf_dir_add(&sums[D_UPLINK][0], &v->flow.rx);
		tf_dir_add(&sums[D_UPLINK][1], &v->flow.tx);
	}
	if (r->n_read != r->m.flows.n || r->n_up_read != r->m.uplinks.n)
		print_message("# %u + %u uplink flows in the maps, %zu + %zu in the reference\n",
			      r->n_read, r->n_up_read, r->m.flows.n, r->m.uplinks.n);
	assert_int_equal(r->n_read, r->m.flows.n);
	assert_int_equal(r->n_up_read, r->m.uplinks.n);
	assert_true(r->n_read <= r->cfg->max_flows);
	assert_true(r->n_up_read <= r->cfg->max_flows);
	check_invariant(r, sums);
	if (r->rb) {
		uint64_t before = r->records;

		assert_true(ring_buffer__consume(r->rb) >= 0);
		assert_false(r->rec_bad);
		if (r->cfg->capture != CAP_TINY_RING)
			assert_int_equal(r->records - before, r->n_rec);
	}
	if (expire)
		expire_all(r);
}

/* ---- the TC rounds ------------------------------------------------------------- */

static const struct fz_config configs[] = {
	{ "headers in place, 65536 flows, NAT cache", false, 65536, true, true, CAP_OFF, 0 },
	{ "headers copied, 64 flows (overflow)", true, 64, true, true, CAP_OFF, 0 },
	{ "headers in place, 16 flows, no NAT cache, uplink rx not armed", false, 16, false,
	  false, CAP_OFF, 0 },
	{ "headers copied, 4096 flows, capture all (snaplen 96)", true, 4096, true, true, CAP_ALL,
	  96 },
	{ "headers in place, 1024 flows, capture TCP only (flow filter)", false, 1024, true, true,
	  CAP_FILTER, TF_CAP_SNAPLEN_MAX },
	{ "headers in place, 256 flows, capture into a ring buffer too small", false, 256, false,
	  true, CAP_TINY_RING, TF_CAP_SNAPLEN_MAX },
};

#define N_ROUNDS (sizeof(configs) / sizeof(configs[0]))

static void fuzz_round(void **state, size_t round)
{
	struct fz_run *r = *state;
	uint64_t n = total_frames / N_ROUNDS + (round < total_frames % N_ROUNDS);
	double t0 = mono_s();

	NEED_ENV();
	/* Each round its own stream, so that one round can be run alone. */
	r->rng.s = seed ^ (0x9e3779b97f4a7c15ULL * (round + 1));
	r->expiry_rng.s = ~r->rng.s;
	while (r->frames < n) {
		uint64_t left = n - r->frames;

		batch_frames(r, left < BATCH ? (uint32_t)left : BATCH);
		r->batches++;
		check_batch(r, fz_chance(&r->expiry_rng, 30));
	}
	print_message("# %s: %llu frames (%llu refused by the test run), %llu batches, "
		      "%llu expiries, parse_errors %llu, flow_map_full %llu, uplink_flow_map_full "
		      "%llu, uplink replies joined %llu, taken by the host %llu, %llu captured, "
		      "%.1f s\n",
		      r->cfg->what, U(r->frames), U(r->refused), U(r->batches), U(r->expiries),
		      U(r->m.parse_errors), U(r->m.flow_map_full), U(r->m.uplink_flow_map_full),
		      U(r->m.joined_rx),
		      U(r->m.host_taken), U(r->records), mono_s() - t0);
}

#define ROUND(i)                                                          \
	static int setup_round##i(void **state)                           \
	{                                                                 \
		return fz_setup(state, &configs[i]);                      \
	}                                                                 \
	static void test_fuzz_round##i(void **state)                      \
	{                                                                 \
		fuzz_round(state, i);                                     \
	}

ROUND(0)
ROUND(1)
ROUND(2)
ROUND(3)
ROUND(4)
ROUND(5)

/* ---- the drop tracer ---------------------------------------------------------- */

struct drop_counts {
	uint64_t packets, bytes;
};

static struct tapflow_bpf *load_counters_only(void);

struct drop_fixture {
	struct tf_drop_tracer tracer;
	struct tapflow_bpf *skel;	/* only its tf_ingress: any TC program makes the skb */
	struct tf_ksyms ksyms;
	struct tf_drop_reasons reasons;
	struct tab seen;		/* struct tf_drop_key -> struct drop_counts */
	struct tab want;		/* the same, as the frames run must make them */
	uint64_t not_host_seen;		/* the tracer's drops_not_for_host so far */
};

/* The drop key's packet fields as the tracer reads them from the frame. */
static void ref_drop_l4(const uint8_t *h, struct tf_drop_pkt *o)
{
	switch (o->proto) {
	case 6: case 17: case 136: case 132: case 33:
		o->src_port = be16(h);
		o->dst_port = be16(h + 2);
		break;
	case 1: case 58:
		if ((o->proto == 58) != (o->family == 6))
			break;
		tf_icmp_key_ports(h[0], h[1], be16(h + 4), o->family == 6, &o->src_port,
				  &o->dst_port);
		break;
	}
}

/*
 * skb->protocol as eth_type_trans() sets it, the MACs, and the IPv4/IPv6
 * header and ports that lie within the frame (the skb's linear data).
 */
static void ref_drop_pkt(const uint8_t *p, uint32_t len, struct tf_drop_pkt *o)
{
	uint16_t type = be16(p + 12);
	const uint8_t *ip = p + 14;
	uint32_t n = len - 14, ihl;

	memset(o, 0, sizeof(*o));
	if (type >= 0x0600)
		o->ethertype = type;
	else
		o->ethertype = n >= 2 && p[14] == 0xff && p[15] == 0xff ? 0x0001 : 0x0004;
	memcpy(o->dst_mac, p, 6);
	memcpy(o->src_mac, p + 6, 6);
	if (o->ethertype == 0x0800) {
		if (n < 20 || ip[0] >> 4 != 4 || (ip[0] & 0xf) < 5)
			return;
		ihl = (ip[0] & 0xf) * 4u;
		o->family = 4;
		o->proto = ip[9];
		memcpy(o->src_ip, ip + 12, 4);
		memcpy(o->dst_ip, ip + 16, 4);
		if (!(be16(ip + 6) & 0x1fff) && ihl + 8 <= n)
			ref_drop_l4(ip + ihl, o);
	} else if (o->ethertype == 0x86dd) {
		if (n < 40 || ip[0] >> 4 != 6)
			return;
		o->family = 6;
		o->proto = ip[6];
		memcpy(o->src_ip, ip + 8, 16);
		memcpy(o->dst_ip, ip + 24, 16);
		if (n >= 48)
			ref_drop_l4(ip + 40, o);
	}
}

static void on_drop_entry(const struct tf_drop_key *k, const struct tf_drop_counts *v, void *ctx)
{
	struct drop_fixture *f = ctx;
	struct drop_counts *c = tab_get(&f->seen, k, true);

	c->packets += v->packets;
	c->bytes += v->bytes;
}

/* Take every drop out of the tracer (its per-CPU cache flushed first) into f->seen. */
static void harvest_drops(struct drop_fixture *f)
{
	assert_int_equal(tf_drop_tracer_harvest(&f->tracer, on_drop_entry, f), 0);
}

static int setup_drops(void **state)
{
	struct drop_fixture *f;
	struct btf *btf;
	char err[256];
	int monitored[2];
	FILE *ks;

	*state = NULL;
	if (skip_reason[0])
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	f->skel = load_counters_only();
	if (!f->skel)
		return -1;
	/* Drops on D_DROP, and of skbs that came in on D_CTR (a number only here). */
	monitored[0] = dev_if[D_DROP];
	monitored[1] = dev_if[D_CTR];
	if (tf_drop_tracer_open(&f->tracer, monitored, 2, 0, NULL, NULL, err, sizeof(err))) {
		print_message("# drop tracer: %s\n", err);
		return -1;
	}
	ks = fopen("/proc/kallsyms", "r");
	if (!ks || tf_ksyms_load(&f->ksyms, ks))
		return -1;
	fclose(ks);
	btf = btf__load_vmlinux_btf();
	if (!btf || tf_drop_reasons_load(&f->reasons, btf))
		return -1;
	btf__free(btf);
	tab_init(&f->seen, sizeof(struct tf_drop_key), sizeof(struct drop_counts), 1u << 18);
	tab_init(&f->want, sizeof(struct tf_drop_key), sizeof(struct drop_counts), 1u << 18);
	return 0;
}

static int teardown_drops(void **state)
{
	struct drop_fixture *f = *state;

	if (f) {
		tf_drop_tracer_close(&f->tracer);
		tapflow_bpf__destroy(f->skel);
		tf_ksyms_free(&f->ksyms);
		tf_drop_reasons_free(&f->reasons);
		tab_free(&f->seen);
		tab_free(&f->want);
		free(f);
	}
	*state = NULL;
	return 0;
}

/* The tracer's count of the host's copies of frames not for it, since the last call. */
static uint64_t kept_not_host(struct drop_fixture *f)
{
	uint64_t kept[TF_KEPT_KINDS], n;

	tf_drop_tracer_kept(&f->tracer, kept);
	n = kept[TF_KEPT_NOT_HOST] - f->not_host_seen;
	f->not_host_seen = kept[TF_KEPT_NOT_HOST];
	return n;
}

/*
 * eth_type_trans() on dev: is the frame for the host (PACKET_HOST)? The
 * others (broadcast, multicast, another host's) the tracer counts apart.
 */
static bool for_host(const struct fz_frame *fr, enum fz_dev dev)
{
	return fr->len >= 6 && !(fr->b[0] & 1) && !memcmp(fr->b, dev_mac[dev], 6);
}

/* What test_drop_path found: the reason and location of a test run's drop. */
static uint32_t test_run_reason;
static uint64_t test_run_location;

/* The only entry seen so far; its key into *k. */
static struct drop_counts only_drop(struct drop_fixture *f, struct tf_drop_key *k)
{
	assert_int_equal(f->seen.n, 1);
	for (size_t i = 0; i < f->seen.cap; i++)
		if (f->seen.used[i]) {
			memcpy(k, f->seen.keys + i * f->seen.ksz, sizeof(*k));
			return *(struct drop_counts *)(f->seen.vals + i * f->seen.vsz);
		}
	fail();
	return (struct drop_counts){ 0, 0 };
}

/*
 * The ground the drop fuzz stands on: a test run on a device frees its skb
 * with kfree_skb() (reason NOT_SPECIFIED, in bpf_prog_test_run_skb), one
 * drop per run, whatever the repeat count, and also when the run refuses
 * the frame after the skb was made (an IPv4 frame too short: skb->len
 * is then without the Ethernet header, not pushed back yet).
 */
static void test_drop_path(void **state)
{
	struct drop_fixture *f = *state;
	int fd;
	static struct fz_frame fr;
	struct fz_rng g = { seed };
	struct tf_drop_key k, want;
	struct drop_counts c;
	char name[64], loc[128];

	NEED_ENV();
	fd = bpf_program__fd(f->skel->progs.tf_ingress);
	do
		fz_structured(&g, &fr, 200);
	while (!test_run_takes(fr.b, fr.len));
	/* For the host: a copy of a frame for another one is no drop (below). */
	memcpy(fr.b, dev_mac[D_DROP], 6);
	assert_int_equal(test_run(fd, fr.b, fr.len, (uint32_t)dev_if[D_DROP], 0, 0, 3), 0);
	harvest_drops(f);
	c = only_drop(f, &k);
	tf_drop_reason_name(&f->reasons, k.reason, name, sizeof(name));
	tf_ksyms_name(&f->ksyms, k.location, loc, sizeof(loc));
	print_message("# a test run's skb: dropped, reason %s, at %s\n", name, loc);
	assert_int_equal(c.packets, 1);
	assert_int_equal(c.bytes, fr.len);
	assert_string_equal(name, "NOT_SPECIFIED");
	assert_true(!strncmp(loc, "bpf_prog_test_run_skb+", 22));
	memset(&want, 0, sizeof(want));
	want.ifindex = (__u32)dev_if[D_DROP];
	want.reason = k.reason;
	want.location = k.location;
	ref_drop_pkt(fr.b, fr.len, &want.pkt);
	assert_memory_equal(&k, &want, sizeof(k));
	test_run_reason = k.reason;
	test_run_location = k.location;
	/* Refused: 14 + 19 bytes of "IPv4". */
	tab_clear(&f->seen);
	fr.b[12] = 0x08;
	fr.b[13] = 0x00;
	assert_int_equal(test_run(fd, fr.b, 33, (uint32_t)dev_if[D_DROP], 0, 0, 1), -EINVAL);
	harvest_drops(f);
	c = only_drop(f, &k);
	assert_int_equal(c.packets, 1);
	assert_int_equal(c.bytes, 33 - 14);
	/* Too short for an skb at all: no drop. */
	tab_clear(&f->seen);
	assert_int_equal(test_run(fd, fr.b, 13, (uint32_t)dev_if[D_DROP], 0, 0, 1), -EINVAL);
	harvest_drops(f);
	harvest_drops(f);
	assert_int_equal(f->seen.n, 0);
	/*
	 * To another host: the host stack's copy of a frame that was not for
	 * it, freed NOT_SPECIFIED on a device that is no bridge port, is no
	 * drop but drops_not_for_host.
	 */
	fr.b[0] = 0x02;
	fr.b[12] = 0x08;
	fr.b[13] = 0x06;
	assert_int_equal(test_run(fd, fr.b, 60, (uint32_t)dev_if[D_DROP], 0, 0, 1), 0);
	harvest_drops(f);
	harvest_drops(f);
	assert_int_equal(f->seen.n, 0);
	assert_int_equal(kept_not_host(f), 1);
}

/* The calling thread on cpu only: a test run's skb is freed where it runs. */
static void pin(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
}

/* The packets of the only entry in the tracer's map, as it is now (no flush). */
static uint64_t drops_in_map(struct drop_fixture *f)
{
	int fd = bpf_map__fd(f->tracer.skel->maps.drops);
	struct tf_drop_key k;
	struct tf_drop_value v;

	if (bpf_map_get_next_key(fd, NULL, &k))
		return 0;
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &v), 0);
	assert_int_not_equal(bpf_map_get_next_key(fd, &k, &k), 0);
	return v.packets;
}

/*
 * The drop cache is flushed only on CPUs with drops pending, and a drop
 * that lands between the read of the slots and the flush is counted once:
 * on a CPU read with drops pending the flush takes it along, on a CPU read
 * idle it waits in its slot for the next harvest.
 */
static void test_drop_cache_pending_cpus(void **state)
{
	struct drop_fixture *f = *state;
	struct tf_percpu_cache pc;
	static struct fz_frame fr;
	struct fz_rng g = { seed };
	struct tf_drop_key k;
	struct drop_counts c;
	int fd, last = ncpus - 1;
	bool *cpus;

	NEED_ENV();
	if (!f->tracer.skel->bss->tf_drop_cache_on) {
		print_message("# SKIP: the drop tracer has no per-CPU cache here\n");
		skip();
	}
	cpus = calloc((size_t)ncpus, sizeof(*cpus));
	assert_non_null(cpus);
	fd = bpf_program__fd(f->skel->progs.tf_ingress);
	do
		fz_structured(&g, &fr, 200);
	while (!test_run_takes(fr.b, fr.len));
	memcpy(fr.b, dev_mac[D_DROP], 6);	/* for the host: a drop */
	tf_drop_tracer_cache(&f->tracer, &pc);
	pin(0);
	assert_int_equal(tf_cache_flush(&pc), 0);	/* nothing pending anywhere */
	for (int i = 0; i < 3; i++)
		assert_int_equal(test_run(fd, fr.b, fr.len, (uint32_t)dev_if[D_DROP], 0, 0, 1), 0);
	assert_int_equal(tf_cache_pending_cpus(&pc, cpus), 0);
	assert_true(cpus[0]);
	for (int cpu = 1; cpu < ncpus; cpu++)
		assert_false(cpus[cpu]);
	/* Between the read and the flush: one on CPU 0, two on the last CPU (read idle). */
	assert_int_equal(test_run(fd, fr.b, fr.len, (uint32_t)dev_if[D_DROP], 0, 0, 1), 0);
	if (last > 0) {
		pin(last);
		for (int i = 0; i < 2; i++)
			assert_int_equal(test_run(fd, fr.b, fr.len, (uint32_t)dev_if[D_DROP], 0, 0,
						  1), 0);
		pin(0);
	}
	assert_int_equal(tf_run_on_cpus(pc.flush_fd, cpus, ncpus), 1);
	assert_int_equal(drops_in_map(f), 4);
	memset(cpus, 0, (size_t)ncpus * sizeof(*cpus));
	assert_int_equal(tf_cache_pending_cpus(&pc, cpus), 0);
	assert_false(cpus[0]);
	if (last > 0)
		assert_true(cpus[last]);
	/* The next harvest: the last CPU's two as well, each drop once. */
	harvest_drops(f);
	c = only_drop(f, &k);
	assert_int_equal(c.packets, last > 0 ? 6 : 4);
	assert_int_equal(c.bytes, c.packets * fr.len);
	assert_int_equal(tf_cache_flush(&pc), 0);
	harvest_drops(f);
	c = only_drop(f, &k);
	assert_int_equal(c.packets, last > 0 ? 6 : 4);
	free(cpus);
}

/*
 * Where a drop fuzz frame runs: its device, and its input device if the
 * test run sets it (not when it refuses the frame: the skb is freed before
 * the context is applied). Traced: either is monitored.
 */
static void drop_place(struct fz_rng *g, bool takes, uint32_t *dev, uint32_t *iif,
		       uint32_t *skb_iif, bool *traced)
{
	uint32_t x = fz_below(g, 100);

	*dev = (uint32_t)dev_if[x < 60 ? D_DROP : D_OTHER];
	*iif = x < 40 ? 0 : x < 60 ? OTHER_IIF : x < 80 ? (uint32_t)dev_if[D_CTR] : 0;
	*skb_iif = takes ? *iif : 0;
	*traced = x < 60 || *skb_iif == (uint32_t)dev_if[D_CTR];
}

/* Every key expected was seen with exactly its counts, and nothing else. */
static void check_drops(struct drop_fixture *f, struct tab *want)
{
	uint64_t packets = 0;

	for (size_t i = 0; i < want->cap; i++) {
		const struct drop_counts *w = (const void *)(want->vals + i * want->vsz);
		const struct drop_counts *got;

		if (!want->used[i])
			continue;
		got = tab_get(&f->seen, want->keys + i * want->ksz, false);
		if (!got || got->packets != w->packets || got->bytes != w->bytes) {
			hexdump("drop key", want->keys + i * want->ksz, (uint32_t)want->ksz);
			print_message("# seen %llu/%llu, expected %llu/%llu packets/bytes\n",
				      U(got ? got->packets : 0), U(got ? got->bytes : 0),
				      U(w->packets), U(w->bytes));
			fail();
		}
		packets += w->packets;
	}
	if (f->seen.n != want->n)
		print_message("# %zu drop keys seen, %zu expected\n", f->seen.n, want->n);
	assert_int_equal(f->seen.n, want->n);
	print_message("# %llu drops in %zu keys, each exact\n", U(packets), want->n);
}

/*
 * Fuzzed frames through test runs, with the tracer on: each run that made
 * an skb on a monitored device, or with a monitored input device, is one
 * drop of exactly its key and length; the others are not seen.
 */
static void test_fuzz_drops(void **state)
{
	struct drop_fixture *f = *state;
	uint64_t n = total_frames / 10 > 100000 ? total_frames / 10 : total_frames < 100000 ?
		     total_frames : 100000;
	struct fz_rng g = { seed ^ 0xd0d0d0d0d0d0d0d0ULL };
	struct tf_drop_losses losses;
	static struct fz_frame fr;
	double t0 = mono_s();
	uint64_t runs = 0, not_host = 0;
	int fd;

	NEED_ENV();
	assert_int_not_equal(test_run_location, 0);	/* test_drop_path ran */
	kept_not_host(f);
	fd = bpf_program__fd(f->skel->progs.tf_ingress);
	tab_clear(&f->seen);
	for (uint64_t i = 0; i < n; i++) {
		uint32_t dev, iif, skb_iif;
		bool traced, takes;
		int err;

		fz_next_frame(&g, &fr, max_frame);
		takes = test_run_takes(fr.b, fr.len);
		drop_place(&g, takes, &dev, &iif, &skb_iif, &traced);
		/* Half of them for the host: the others are the host's copies (above). */
		if (fr.len >= 6 && fz_below(&g, 2))
			memcpy(fr.b, dev_mac[dev == (uint32_t)dev_if[D_DROP] ? D_DROP : D_OTHER], 6);
		err = test_run(fd, fr.b, fr.len, dev, iif, 0, 1);
		assert_int_equal(err, takes ? 0 : -EINVAL);
		/* No skb for a frame under an Ethernet header or over a page. */
		if (traced && fr.len >= 14 && fr.len <= max_frame &&
		    !for_host(&fr, dev == (uint32_t)dev_if[D_DROP] ? D_DROP : D_OTHER)) {
			not_host++;
		} else if (traced && fr.len >= 14 && fr.len <= max_frame) {
			struct tf_drop_key k;
			struct drop_counts *c;

			memset(&k, 0, sizeof(k));
			k.ifindex = dev;
			k.iif = skb_iif;
			k.reason = test_run_reason;
			k.location = test_run_location;
			ref_drop_pkt(fr.b, fr.len, &k.pkt);
			c = tab_get(&f->want, &k, true);
			c->packets++;
			c->bytes += takes ? fr.len : fr.len - 14;
			runs++;
		}
		/* Often enough that the kernel map (16384 keys) never fills. */
		if (i % 4096 == 4095)
			harvest_drops(f);
	}
	/* Entries leave the map after a poll without drops: two more polls. */
	harvest_drops(f);
	harvest_drops(f);
	tf_drop_tracer_losses(&f->tracer, &losses);
	assert_int_equal(losses.map_full, 0);
	assert_int_equal(losses.harvest_races, 0);
	check_drops(f, &f->want);
	assert_int_equal(kept_not_host(f), not_host);
	print_message("# %llu frames, %llu traced drops, %llu host copies of frames not for it, "
		      "%.1f s\n", U(n), U(runs), U(not_host), mono_s() - t0);
}

/* ---- main ------------------------------------------------------------------------ */

/*
 * The object with only tf_ingress loaded: a program that makes the test
 * run build an skb, without the verifier's time for the others.
 */
static struct tapflow_bpf *load_counters_only(void)
{
	struct tapflow_bpf *s = tapflow_bpf__open();
	struct bpf_program *prog;

	if (!s)
		return NULL;
	bpf_object__for_each_program(prog, s->obj)
		bpf_program__set_autoload(prog, prog == s->progs.tf_ingress);
	if (tapflow_bpf__load(s)) {
		tapflow_bpf__destroy(s);
		return NULL;
	}
	return s;
}

/* The largest frame BPF_PROG_TEST_RUN takes here (a page, less the skb's overhead). */
static uint32_t probe_max_frame(void)
{
	struct tapflow_bpf *s = load_counters_only();
	static uint8_t zero[FZ_FRAME_MAX];
	uint32_t lo = 64, hi = FZ_FRAME_MAX - 64;

	if (!s)
		return 0;
	zero[12] = 0x88;
	zero[13] = 0xb5;
	while (lo < hi) {
		uint32_t mid = (lo + hi + 1) / 2;

		if (test_run(bpf_program__fd(s->progs.tf_ingress), zero, mid,
			     (uint32_t)dev_if[D_OTHER], 0, 0, 1))
			hi = mid - 1;
		else
			lo = mid;
	}
	tapflow_bpf__destroy(s);
	return lo;
}

static int group_setup(void **state)
{
	char cmd[128];

	(void)state;
	tf_test_netns_veths(dev_name[D_TAP1], dev_name[D_TAP2], &dev_if[D_TAP1], &dev_if[D_TAP2],
			    &ncpus, skip_reason, sizeof(skip_reason));
	if (skip_reason[0])
		return 0;
	for (int d = D_CTR; d < NDEV; d += 2) {
		snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s", dev_name[d],
			 dev_name[d + 1]);
		if (system(cmd))
			return -1;
		dev_if[d] = (int)if_nametoindex(dev_name[d]);
		dev_if[d + 1] = (int)if_nametoindex(dev_name[d + 1]);
		if (dev_if[d] <= 1 || dev_if[d + 1] <= 1 || read_mac(dev_name[d], dev_mac[d]) ||
		    read_mac(dev_name[d + 1], dev_mac[d + 1]))
			return -1;
	}
	max_frame = probe_max_frame();
	print_message("# largest frame the test run takes: %u bytes\n", max_frame);
	return max_frame >= 1514 ? 0 : -1;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	uint64_t x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "%s: not a number: %s\n", name, v);
		exit(2);
	}
	return x;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fuzz_round0, setup_round0, fz_teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_round1, setup_round1, fz_teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_round2, setup_round2, fz_teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_round3, setup_round3, fz_teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_round4, setup_round4, fz_teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_round5, setup_round5, fz_teardown),
		cmocka_unit_test_setup_teardown(test_drop_path, setup_drops, teardown_drops),
		cmocka_unit_test_setup_teardown(test_drop_cache_pending_cpus, setup_drops,
						teardown_drops),
		cmocka_unit_test_setup_teardown(test_fuzz_drops, setup_drops, teardown_drops),
	};
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = env_u64("TF_FUZZ_SEED", (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
				       (uint64_t)getpid() << 32);
	total_frames = env_u64("TF_FUZZ_FRAMES", total_frames);
	printf("# seed %llu\n", U(seed));
	printf("# TF_FUZZ_SEED=%llu TF_FUZZ_FRAMES=%llu reproduce this run\n", U(seed),
	       U(total_frames));
	fflush(stdout);
	libbpf_set_print(libbpf_print);
	return cmocka_run_group_tests_name("fuzz", tests, group_setup, NULL);
}
