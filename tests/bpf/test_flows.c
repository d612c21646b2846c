// SPDX-License-Identifier: GPL-2.0
/*
 * BPF_PROG_TEST_RUN tests of the tap flow path (bpf/tapflow.bpf.c,
 * bpf/parsing.h): crafted frames through tf_tap_ingress (sent by the VM,
 * tx) and tf_tap_egress (delivered to the VM, rx), then
 *   - the exact flow key in the VM's point of view, looked up as such;
 *   - exact packets/bytes/segs per direction, TCP flags, first/last seen;
 *   - truncated/malformed frames in tap_aggr unparsed_*, never in a flow,
 *     and counted in parse_errors;
 *   - a full flow map: packets of new flows in tap_aggr overflow_*, counted
 *     in flow_map_full;
 *   - after every test, the invariant, per tap and direction:
 *     sum(flows) + overflow + unparsed == if_counters (packets, bytes, segs).
 *
 * Runs in a network namespace of its own with a veth pair, like
 * test_counters.c (the test run needs ctx_in.ifindex to name a device of
 * the caller's namespace). The last test attaches the programs to the veth
 * for real and sends through it: offloaded VLAN tags and GSO (non-linear)
 * skbs, which BPF_PROG_TEST_RUN cannot make.
 *
 * Everything runs twice: with the headers read in place (the programs'
 * fast path when they are in the skb's linear area, all that the test run
 * makes) and with every header copied by bpf_skb_load_bytes() (their path
 * for headers in paged data), forced by the tests-only .rodata switch
 * tf_test_copy_headers.
 *
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
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <netinet/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "collector.h"
#include "ifcounters.h"
#include "oncpu.h"
#include "tapflow.h"
#include "tapflow.skel.h"
#include "netns_fixture.h"

#define TC_ACT_UNSPEC (-1)

#define DEV_A "tfflw0"
#define DEV_B "tfflw1"

#define TX true		/* tf_tap_ingress: sent by the VM */
#define RX false	/* tf_tap_egress: delivered to the VM */

static char skip_reason[256];
static int if_a, if_b;
static int ncpus;
static bool copy_headers;	/* this group: tf_test_copy_headers */

struct fixture {
	struct tapflow_bpf *skel;
	struct tf_ifc ifc;		/* the interface counters */
	int aggr_fd, flows_fd, uplink_fd;
	bool flows_percpu;		/* and so is uplink_flows (the same map type) */
	int tap_fd[2];		/* [tx], i.e. [0] = egress (rx), [1] = ingress (tx) */
};

/* ---- frames -------------------------------------------------------- */

static const uint8_t mac_vm[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t mac_peer[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t vm4[4] = { 10, 99, 0, 1 };
static const uint8_t peer4[4] = { 10, 99, 0, 2 };
static const uint8_t vm6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t peer6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 };

/*
 * A frame under construction. Headers are appended in order; fin() fills
 * in the IP and UDP lengths from what follows them.
 */
struct pkt {
	uint8_t b[4096];
	size_t len;
	size_t l3, l4;
	int fam;	/* 4, 6 or 0 */
	bool udp;
};

static void put8(struct pkt *p, uint8_t v)
{
	assert_true(p->len < sizeof(p->b));
	p->b[p->len++] = v;
}

static void put16(struct pkt *p, uint16_t v)
{
	put8(p, (uint8_t)(v >> 8));
	put8(p, (uint8_t)v);
}

static void put32(struct pkt *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p, (uint16_t)v);
}

static void putn(struct pkt *p, const void *d, size_t n)
{
	assert_true(p->len + n <= sizeof(p->b));
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void zeros(struct pkt *p, size_t n)
{
	assert_true(p->len + n <= sizeof(p->b));
	memset(p->b + p->len, 0, n);
	p->len += n;
}

static void set16(struct pkt *p, size_t off, uint16_t v)
{
	p->b[off] = (uint8_t)(v >> 8);
	p->b[off + 1] = (uint8_t)v;
}

/* Ethernet header: from the VM on tx, to it on rx. */
static void p_eth(struct pkt *p, bool tx, uint16_t type)
{
	memset(p, 0, sizeof(*p));
	putn(p, tx ? mac_peer : mac_vm, 6);
	putn(p, tx ? mac_vm : mac_peer, 6);
	put16(p, type);
}

/* A VLAN tag: VID vid, then EtherType next. */
static void p_tag(struct pkt *p, uint16_t vid, uint16_t next)
{
	put16(p, vid);
	put16(p, next);
}

/* IPv4, VM = 10.99.0.1, peer = 10.99.0.2; optlen bytes of NOP options. */
static void p_ipv4(struct pkt *p, bool tx, uint8_t proto, size_t optlen)
{
	p->l3 = p->len;
	p->fam = 4;
	put8(p, (uint8_t)(0x40 | (5 + optlen / 4)));
	put8(p, 0);
	put16(p, 0);		/* tot_len: fin() */
	put16(p, 0x4242);
	put16(p, 0);
	put8(p, 64);
	put8(p, proto);
	put16(p, 0);
	putn(p, tx ? vm4 : peer4, 4);
	putn(p, tx ? peer4 : vm4, 4);
	for (size_t i = 0; i < optlen; i++)
		put8(p, 1);
}

/* IPv6, VM = fd00::1, peer = fd00::2. */
static void p_ipv6(struct pkt *p, bool tx, uint8_t nexthdr)
{
	p->l3 = p->len;
	p->fam = 6;
	put32(p, 0x60000000);
	put16(p, 0);		/* payload_len: fin() */
	put8(p, nexthdr);
	put8(p, 64);
	putn(p, tx ? vm6 : peer6, 16);
	putn(p, tx ? peer6 : vm6, 16);
}

/* Hop-by-hop, routing or destination options: units of 8 bytes in all. */
static void p_ext(struct pkt *p, uint8_t next, uint8_t units)
{
	put8(p, next);
	put8(p, (uint8_t)(units - 1));
	zeros(p, (size_t)units * 8 - 2);	/* Pad1 options */
}

static void p_frag(struct pkt *p, uint8_t next, uint16_t offset8, bool more)
{
	put8(p, next);
	put8(p, 0);
	put16(p, (uint16_t)(offset8 << 3 | (more ? 1 : 0)));
	put32(p, 0xdeadbeef);
}

/* UDP (also the start of SCTP/DCCP/UDP-Lite): ports of the VM and the peer. */
static void p_udp(struct pkt *p, bool tx, uint16_t vm_port, uint16_t peer_port)
{
	p->l4 = p->len;
	p->udp = true;
	put16(p, tx ? vm_port : peer_port);
	put16(p, tx ? peer_port : vm_port);
	put16(p, 0);		/* fin() */
	put16(p, 0);
}

static void p_tcp(struct pkt *p, bool tx, uint16_t vm_port, uint16_t peer_port, uint8_t flags)
{
	p->l4 = p->len;
	put16(p, tx ? vm_port : peer_port);
	put16(p, tx ? peer_port : vm_port);
	put32(p, 1000);
	put32(p, 2000);
	put8(p, 5 << 4);
	put8(p, flags);
	put16(p, 65535);
	put16(p, 0);
	put16(p, 0);
}

static void p_icmp(struct pkt *p, uint8_t type, uint8_t code, uint16_t id)
{
	p->l4 = p->len;
	put8(p, type);
	put8(p, code);
	put16(p, 0);
	put16(p, id);
	put16(p, 1);
}

/* payload bytes, then the lengths; returns the frame length. */
static size_t fin(struct pkt *p, size_t payload)
{
	for (size_t i = 0; i < payload; i++)
		put8(p, (uint8_t)(0xa0 + i));
	if (p->fam == 4)
		set16(p, p->l3 + 2, (uint16_t)(p->len - p->l3));
	else if (p->fam == 6)
		set16(p, p->l3 + 4, (uint16_t)(p->len - p->l3 - 40));
	if (p->udp)
		set16(p, p->l4 + 4, (uint16_t)(p->len - p->l4));
	return p->len;
}

static void udp4(struct pkt *p, bool tx, uint16_t vm_port, uint16_t peer_port, size_t payload)
{
	p_eth(p, tx, 0x0800);
	p_ipv4(p, tx, 17, 0);
	p_udp(p, tx, vm_port, peer_port);
	fin(p, payload);
}

static void tcp4(struct pkt *p, bool tx, uint16_t vm_port, uint16_t peer_port, uint8_t flags,
		 size_t payload)
{
	p_eth(p, tx, 0x0800);
	p_ipv4(p, tx, 6, 0);
	p_tcp(p, tx, vm_port, peer_port, flags);
	fin(p, payload);
}

/* ---- expected keys ------------------------------------------------- */

static struct tf_flow_key key_ip(int ifindex, int fam, uint8_t proto, uint16_t lport,
				 uint16_t rport)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = (__u32)ifindex;
	k.family = (__u8)fam;
	k.proto = proto;
	k.ethertype = fam == 4 ? 0x0800 : 0x86dd;
	if (fam == 4) {
		memcpy(k.local_ip, vm4, 4);
		memcpy(k.remote_ip, peer4, 4);
	} else {
		memcpy(k.local_ip, vm6, 16);
		memcpy(k.remote_ip, peer6, 16);
	}
	k.local_port = lport;
	k.remote_port = rport;
	return k;
}

static struct tf_flow_key key_other(int ifindex, uint16_t ethertype)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = (__u32)ifindex;
	k.ethertype = ethertype;
	k.family = TF_FAM_OTHER;
	return k;
}

/* ---- kernel side helpers ------------------------------------------- */

static void add_dir(struct tf_dir_counters *to, const struct tf_dir_counters *d)
{
	to->packets += d->packets;
	to->bytes += d->bytes;
	to->segs += d->segs;
}

/* One CPU's value of a flow into the sum out. */
static void add_cpu_value(struct tf_flow_value *out, const struct tf_flow_value *v)
{
	if (!v->first_seen_ns)
		return;
	add_dir(&out->rx, &v->rx);
	add_dir(&out->tx, &v->tx);
	if (!out->first_seen_ns || v->first_seen_ns < out->first_seen_ns)
		out->first_seen_ns = v->first_seen_ns;
	if (v->last_seen_ns > out->last_seen_ns)
		out->last_seen_ns = v->last_seen_ns;
	out->tcp_flags_rx |= v->tcp_flags_rx;
	out->tcp_flags_tx |= v->tcp_flags_tx;
}

/*
 * The counts of a flow in map fd, whose values (vsz bytes, one per CPU
 * for a per-CPU map) start with a struct tf_flow_value, summed; -errno.
 */
static int get_counts(const struct fixture *f, int fd, size_t vsz,
		      const struct tf_flow_key *key, struct tf_flow_value *out)
{
	int n = f->flows_percpu ? ncpus : 1;
	char *v = calloc((size_t)n, vsz);
	int err = 0;

	assert_non_null(v);
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(fd, key, v))
		err = -errno;
	for (int i = 0; !err && i < n; i++)
		add_cpu_value(out, (const struct tf_flow_value *)(v + (size_t)i * vsz));
	free(v);
	return err;
}

static int get_flow(const struct fixture *f, const struct tf_flow_key *key,
		    struct tf_flow_value *out)
{
	return get_counts(f, f->flows_fd, sizeof(struct tf_flow_value), key, out);
}

/* An uplink flow's counts (map uplink_flows: its value starts with them). */
static int get_uplink(const struct fixture *f, const struct tf_flow_key *key,
		      struct tf_flow_value *out)
{
	_Static_assert(offsetof(struct tf_uplink_value, flow) == 0, "counts first");
	return get_counts(f, f->uplink_fd, sizeof(struct tf_uplink_value), key, out);
}

/* Which flow a lookup did not find (what: "flow", "uplink flow"). */
static void print_missing(const char *what, const struct tf_flow_key *key)
{
	char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];
	int af = key->family == 6 ? AF_INET6 : AF_INET;

	inet_ntop(af, key->local_ip, l, sizeof(l));
	inet_ntop(af, key->remote_ip, r, sizeof(r));
	print_message("# no %s if %u vlan %u/%u type 0x%04x fam %u proto %u %s:%u %s:%u\n", what,
		      key->ifindex, key->vlan, key->vlan_inner, key->ethertype, key->family,
		      key->proto, l, key->local_port, r, key->remote_port);
}

static struct tf_flow_value flow_of(const struct fixture *f, const struct tf_flow_key *key)
{
	struct tf_flow_value v;
	int err = get_flow(f, key, &v);

	if (err)
		print_missing("flow", key);
	assert_int_equal(err, 0);
	return v;
}

static struct tf_flow_value uplink_of(const struct fixture *f, const struct tf_flow_key *key)
{
	struct tf_flow_value v;
	int err = get_uplink(f, key, &v);

	if (err)
		print_missing("uplink flow", key);
	assert_int_equal(err, 0);
	return v;
}

/* Number of flow entries, and their keys into keys[] (up to max). */
static int list_flows(const struct fixture *f, struct tf_flow_key *keys, int max)
{
	struct tf_flow_key k, next;
	int n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(f->flows_fd, prev, &next)) {
		if (n < max)
			keys[n] = next;
		n++;
		k = next;
		prev = &k;
	}
	assert_int_equal(errno, ENOENT);
	return n;
}

static int n_flows(const struct fixture *f)
{
	return list_flows(f, NULL, 0);
}

static void print_flows(const struct fixture *f)
{
	struct tf_flow_key keys[64];
	int n = list_flows(f, keys, 64);

	for (int i = 0; i < n && i < 64; i++) {
		struct tf_flow_key *k = &keys[i];
		char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];
		int af = k->family == 6 ? AF_INET6 : AF_INET;

		inet_ntop(af, k->local_ip, l, sizeof(l));
		inet_ntop(af, k->remote_ip, r, sizeof(r));
		print_message("# flow if %u vlan %u/%u type 0x%04x fam %u proto %u %s:%u %s:%u\n",
			      k->ifindex, k->vlan, k->vlan_inner, k->ethertype, k->family,
			      k->proto, l, k->local_port, r, k->remote_port);
	}
}

/* The per-CPU values of key into per_cpu_buf (ncpus values); -errno. */
static int percpu_lookup(int fd, __u32 key, void *per_cpu_buf)
{
	return bpf_map_lookup_elem(fd, &key, per_cpu_buf) ? -errno : 0;
}

static struct tf_if_counters counters_of(const struct fixture *f, int ifindex)
{
	struct tf_if_counters sum;

	assert_int_equal(tf_ifc_read(&f->ifc, (__u32)ifindex, &sum), 0);
	return sum;
}

/* The tap's aggregate; all zero if it has no entry. */
static struct tf_tap_aggr aggr_of(const struct fixture *f, int ifindex)
{
	struct tf_tap_aggr *v = calloc((size_t)ncpus, sizeof(*v)), sum;

	assert_non_null(v);
	memset(&sum, 0, sizeof(sum));
	if (percpu_lookup(f->aggr_fd, (__u32)ifindex, v) == 0)
		for (int i = 0; i < ncpus; i++) {
			add_dir(&sum.overflow_rx, &v[i].overflow_rx);
			add_dir(&sum.overflow_tx, &v[i].overflow_tx);
			add_dir(&sum.unparsed_rx, &v[i].unparsed_rx);
			add_dir(&sum.unparsed_tx, &v[i].unparsed_tx);
		}
	free(v);
	return sum;
}

static void create_entries(const struct fixture *f, int ifindex)
{
	void *zero = calloc((size_t)ncpus, sizeof(struct tf_tap_aggr));
	__u32 key = (__u32)ifindex;

	assert_non_null(zero);
	assert_int_equal(tf_ifc_add(&f->ifc, key), 0);
	assert_int_equal(bpf_map_update_elem(f->aggr_fd, &key, zero, BPF_NOEXIST), 0);
	free(zero);
}

static void assert_dir_eq(struct tf_dir_counters got, uint64_t packets, uint64_t bytes,
			  uint64_t segs)
{
	assert_int_equal(got.packets, packets);
	assert_int_equal(got.bytes, bytes);
	assert_int_equal(got.segs, segs);
}

/*
 * The invariant of the flow path, for ifindex, both directions:
 * sum over its flows + overflow + unparsed == if_counters. Returns the
 * number of flows of ifindex.
 */
static int check_invariant(const struct fixture *f, int ifindex)
{
	struct tf_flow_key keys[4096];
	struct tf_dir_counters rx = {}, tx = {};
	struct tf_if_counters c = counters_of(f, ifindex);
	struct tf_tap_aggr a = aggr_of(f, ifindex);
	int n = list_flows(f, keys, 4096), mine = 0;

	assert_true(n <= 4096);
	for (int i = 0; i < n; i++) {
		struct tf_flow_value v;

		if (keys[i].ifindex != (__u32)ifindex)
			continue;
		mine++;
		assert_int_equal(get_flow(f, &keys[i], &v), 0);
		add_dir(&rx, &v.rx);
		add_dir(&tx, &v.tx);
		assert_true(v.first_seen_ns > 0);
		assert_true(v.first_seen_ns <= v.last_seen_ns);
		assert_true(v.rx.packets + v.tx.packets > 0);
	}
	add_dir(&rx, &a.overflow_rx);
	add_dir(&rx, &a.unparsed_rx);
	add_dir(&tx, &a.overflow_tx);
	add_dir(&tx, &a.unparsed_tx);
	assert_dir_eq(tx, c.dir[TF_HOOK_INGRESS].packets, c.dir[TF_HOOK_INGRESS].bytes,
		      c.dir[TF_HOOK_INGRESS].segs);
	assert_dir_eq(rx, c.dir[TF_HOOK_EGRESS].packets, c.dir[TF_HOOK_EGRESS].bytes,
		      c.dir[TF_HOOK_EGRESS].segs);
	return mine;
}

static void check_invariants(const struct fixture *f)
{
	check_invariant(f, if_a);
	check_invariant(f, if_b);
}

/* Run frame p through the tap program of direction tx on ifindex. */
static void run_on(const struct fixture *f, int ifindex, bool tx, const struct pkt *p,
		   __u32 gso_segs, int repeat)
{
	struct __sk_buff ctx;
	__u32 retval = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (__u32)ifindex;
	ctx.gso_segs = gso_segs;
	if (gso_segs > 1)
		ctx.gso_size = 1448;
	assert_int_equal(tf_test_run_tc(f->tap_fd[tx], p->b, p->len, &ctx, repeat, &retval), 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
}

static void run(const struct fixture *f, bool tx, const struct pkt *p)
{
	run_on(f, if_a, tx, p, 0, 1);
}

/* ---- fixtures ------------------------------------------------------ */

static int group_setup(void **state)
{
	(void)state;
	if (if_a || skip_reason[0])
		return 0;	/* the second group: same namespace and devices */
	return tf_test_netns_veths(DEV_A, DEV_B, &if_a, &if_b, &ncpus, skip_reason,
				   sizeof(skip_reason));
}

static int setup_opts(void **state, __u32 flows_max, bool entries)
{
	struct fixture *f;

	if (skip_reason[0])
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->skel = tapflow_bpf__open();
	if (!f->skel) {
		print_message("# tapflow_bpf__open: %s\n", strerror(errno));
		free(f);
		return -1;
	}
	if (flows_max && bpf_map__set_max_entries(f->skel->maps.flows, flows_max))
		goto fail;
	f->skel->rodata->tf_test_copy_headers = copy_headers;
	if (tapflow_bpf__load(f->skel)) {
		print_message("# tapflow_bpf__load: %s\n", strerror(errno));
		goto fail;
	}
	f->ifc = TF_IFC_OF(f->skel, ncpus);
	f->aggr_fd = bpf_map__fd(f->skel->maps.tap_aggr);
	f->flows_fd = bpf_map__fd(f->skel->maps.flows);
	f->uplink_fd = bpf_map__fd(f->skel->maps.uplink_flows);
	f->flows_percpu = bpf_map__type(f->skel->maps.flows) == BPF_MAP_TYPE_PERCPU_HASH;
	f->tap_fd[TX] = bpf_program__fd(f->skel->progs.tf_tap_ingress);
	f->tap_fd[RX] = bpf_program__fd(f->skel->progs.tf_tap_egress);
	if (entries) {
		create_entries(f, if_a);
		create_entries(f, if_b);
	}
	*state = f;
	return 0;
fail:
	tapflow_bpf__destroy(f->skel);
	free(f);
	return -1;
}

static int setup(void **state)
{
	return setup_opts(state, 0, true);
}

static int setup_tiny_flows(void **state)
{
	return setup_opts(state, 2, true);
}

static int setup_no_entries(void **state)
{
	return setup_opts(state, 0, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		tapflow_bpf__destroy(f->skel);
		free(f);
	}
	*state = NULL;
	return 0;
}

/* ---- tests: keys and counters -------------------------------------- */

/* The VM sends a UDP query and gets the answer: one flow, tx 1, rx 1. */
static void test_udp4_both_dirs(void **state)
{
	struct fixture *f = *state;
	struct pkt q, r;
	struct tf_flow_key k = key_ip(if_a, 4, 17, 40000, 53);
	struct tf_flow_value v;

	NEED_ENV();
	udp4(&q, TX, 40000, 53, 30);
	udp4(&r, RX, 40000, 53, 120);
	run(f, TX, &q);
	run(f, RX, &r);
	assert_int_equal(n_flows(f), 1);
	v = flow_of(f, &k);
	assert_dir_eq(v.tx, 1, q.len, 1);
	assert_dir_eq(v.rx, 1, r.len, 1);
	assert_int_equal(v.tcp_flags_tx, 0);
	assert_int_equal(v.tcp_flags_rx, 0);
	assert_true(v.first_seen_ns > 0 && v.first_seen_ns <= v.last_seen_ns);
	assert_int_equal(f->skel->bss->parse_errors, 0);
	assert_int_equal(f->skel->bss->flow_map_full, 0);
	assert_int_equal(f->skel->bss->map_full, 0);
	assert_int_equal(check_invariant(f, if_a), 1);
}

/* A peer connects to the VM: the key is the same shape (VM side local). */
static void test_tcp4_flags(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 6, 22, 51000);
	struct tf_flow_value v;
	struct pkt p;
	size_t tx_bytes = 0, rx_bytes = 0;

	NEED_ENV();
	tcp4(&p, RX, 22, 51000, 0x02, 0);	/* SYN from the peer */
	run(f, RX, &p);
	rx_bytes += p.len;
	tcp4(&p, TX, 22, 51000, 0x12, 0);	/* SYN|ACK */
	run(f, TX, &p);
	tx_bytes += p.len;
	tcp4(&p, RX, 22, 51000, 0x10, 0);	/* ACK */
	run(f, RX, &p);
	rx_bytes += p.len;
	tcp4(&p, RX, 22, 51000, 0x18, 100);	/* PSH|ACK */
	run(f, RX, &p);
	rx_bytes += p.len;
	tcp4(&p, TX, 22, 51000, 0x11, 0);	/* FIN|ACK */
	run(f, TX, &p);
	tx_bytes += p.len;
	assert_int_equal(n_flows(f), 1);
	v = flow_of(f, &k);
	assert_dir_eq(v.rx, 3, rx_bytes, 3);
	assert_dir_eq(v.tx, 2, tx_bytes, 2);
	assert_int_equal(v.tcp_flags_rx, 0x1a);
	assert_int_equal(v.tcp_flags_tx, 0x13);
	check_invariants(f);
}

/* TCP with options (doff 8) still keys on the ports. */
static void test_tcp_options(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 6, 40001, 443);
	struct pkt p;

	NEED_ENV();
	tcp4(&p, TX, 40001, 443, 0x02, 0);
	p.b[p.l4 + 12] = 8 << 4;
	zeros(&p, 12);
	fin(&p, 0);
	run(f, TX, &p);
	assert_int_equal(n_flows(f), 1);
	struct tf_flow_value v = flow_of(f, &k);

	assert_dir_eq(v.tx, 1, p.len, 1);
	assert_int_equal(v.tcp_flags_tx, 0x02);
	check_invariants(f);
}

static void test_ipv6_tcp_udp(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key kt = key_ip(if_a, 6, 6, 40000, 80);
	struct tf_flow_key ku = key_ip(if_a, 6, 17, 5353, 5353);
	struct pkt p;
	size_t l1, l2, l3;

	NEED_ENV();
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 6);
	p_tcp(&p, TX, 40000, 80, 0x02);
	l1 = fin(&p, 0);
	run(f, TX, &p);
	p_eth(&p, RX, 0x86dd);
	p_ipv6(&p, RX, 6);
	p_tcp(&p, RX, 40000, 80, 0x12);
	l2 = fin(&p, 0);
	run(f, RX, &p);
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 17);
	p_udp(&p, TX, 5353, 5353);
	l3 = fin(&p, 50);
	run(f, TX, &p);
	assert_int_equal(n_flows(f), 2);
	struct tf_flow_value vt = flow_of(f, &kt), vu = flow_of(f, &ku);

	assert_dir_eq(vt.tx, 1, l1, 1);
	assert_dir_eq(vt.rx, 1, l2, 1);
	assert_int_equal(vt.tcp_flags_tx, 0x02);
	assert_int_equal(vt.tcp_flags_rx, 0x12);
	assert_dir_eq(vu.tx, 1, l3, 1);
	assert_dir_eq(vu.rx, 0, 0, 0);
	check_invariants(f);
}

/*
 * The VM pings out: request on tf_tap_ingress, reply on tf_tap_egress, one
 * flow tx 1 rx 1 keyed (id, 8 << 8 | 0). A peer pinging the VM: the same
 * shape with its own id. An error (port unreachable) is a flow of its own.
 */
static void test_icmp4(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key out = key_ip(if_a, 4, 1, 0x1234, 8 << 8);
	struct tf_flow_key in = key_ip(if_a, 4, 1, 0x0777, 8 << 8);
	struct tf_flow_key err = key_ip(if_a, 4, 1, 0, 3 << 8 | 3);
	struct tf_flow_key ts = key_ip(if_a, 4, 1, 0x0042, 13 << 8);
	struct pkt p;
	size_t req, rep;

	NEED_ENV();
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 1, 0);
	p_icmp(&p, 8, 0, 0x1234);
	req = fin(&p, 56);
	run(f, TX, &p);
	p_eth(&p, RX, 0x0800);
	p_ipv4(&p, RX, 1, 0);
	p_icmp(&p, 0, 0, 0x1234);
	rep = fin(&p, 56);
	run(f, RX, &p);
	struct tf_flow_value v = flow_of(f, &out);

	assert_int_equal(n_flows(f), 1);
	assert_dir_eq(v.tx, 1, req, 1);
	assert_dir_eq(v.rx, 1, rep, 1);

	p_eth(&p, RX, 0x0800);
	p_ipv4(&p, RX, 1, 0);
	p_icmp(&p, 8, 0, 0x0777);
	fin(&p, 8);
	run(f, RX, &p);
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 1, 0);
	p_icmp(&p, 0, 0, 0x0777);
	fin(&p, 8);
	run(f, TX, &p);
	v = flow_of(f, &in);
	assert_int_equal(v.tx.packets, 1);
	assert_int_equal(v.rx.packets, 1);

	p_eth(&p, RX, 0x0800);
	p_ipv4(&p, RX, 1, 0);
	p_icmp(&p, 3, 3, 0);
	fin(&p, 28);		/* the offending IP header + 8 bytes */
	run(f, RX, &p);
	v = flow_of(f, &err);
	assert_int_equal(v.rx.packets, 1);
	assert_int_equal(v.tx.packets, 0);

	/* Timestamp request/reply: another query type, one flow. */
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 1, 0);
	p_icmp(&p, 13, 0, 0x0042);
	fin(&p, 12);
	run(f, TX, &p);
	p_eth(&p, RX, 0x0800);
	p_ipv4(&p, RX, 1, 0);
	p_icmp(&p, 14, 0, 0x0042);
	fin(&p, 12);
	run(f, RX, &p);
	v = flow_of(f, &ts);
	assert_int_equal(v.tx.packets, 1);
	assert_int_equal(v.rx.packets, 1);
	assert_int_equal(n_flows(f), 4);
	check_invariants(f);
}

static void test_icmp6(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key echo = key_ip(if_a, 6, 58, 0xbeef, 128 << 8);
	struct tf_flow_key ns = key_ip(if_a, 6, 58, 0, 135 << 8);
	struct pkt p;
	size_t req, rep;

	NEED_ENV();
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 58);
	p_icmp(&p, 128, 0, 0xbeef);
	req = fin(&p, 56);
	run(f, TX, &p);
	p_eth(&p, RX, 0x86dd);
	p_ipv6(&p, RX, 58);
	p_icmp(&p, 129, 0, 0xbeef);
	rep = fin(&p, 56);
	run(f, RX, &p);
	/* Neighbour solicitation from the VM: no identifier. */
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 58);
	p_icmp(&p, 135, 0, 0);
	fin(&p, 16);
	run(f, TX, &p);
	assert_int_equal(n_flows(f), 2);
	struct tf_flow_value v = flow_of(f, &echo), n = flow_of(f, &ns);

	assert_dir_eq(v.tx, 1, req, 1);
	assert_dir_eq(v.rx, 1, rep, 1);
	assert_int_equal(n.tx.packets, 1);
	check_invariants(f);
}

/* CLOCK_MONOTONIC in ns: what bpf_ktime_get_ns() counts. */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * first_seen stays (bpf_ktime_get_ns() when the entry was made); last_seen
 * moves forward in kernel ticks from it (CONFIG_HZ): true to the tick.
 */
static void test_first_last_seen(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 17, 1000, 2000);
	struct tf_flow_value v1, v2, v3;
	unsigned int hz = f->skel->kconfig->CONFIG_HZ;
	/* Without CONFIG_HZ the programs read the precise clock every packet. */
	uint64_t tick = hz ? 1000000000ull / hz : 0;
	uint64_t t0, t1;
	struct pkt p;

	NEED_ENV();
	t0 = mono_ns();
	udp4(&p, TX, 1000, 2000, 10);
	run(f, TX, &p);
	v1 = flow_of(f, &k);
	assert_true(v1.first_seen_ns >= t0);
	assert_int_equal(v1.first_seen_ns, v1.last_seen_ns);
	usleep(30000);
	udp4(&p, RX, 1000, 2000, 10);
	run(f, RX, &p);
	t1 = mono_ns();
	v2 = flow_of(f, &k);
	assert_int_equal(v2.first_seen_ns, v1.first_seen_ns);
	/* 30 ms later, give or take a tick; not after the clock. */
	assert_true(v2.last_seen_ns + tick >= v1.last_seen_ns + 30000000);
	assert_true(v2.last_seen_ns <= t1 + tick);
	usleep(20000);
	udp4(&p, TX, 1000, 2000, 10);
	run(f, TX, &p);
	v3 = flow_of(f, &k);
	assert_int_equal(v3.first_seen_ns, v1.first_seen_ns);
	assert_true(v3.last_seen_ns + tick >= v2.last_seen_ns + 20000000);
	assert_true(v3.last_seen_ns <= mono_ns() + tick);
	if (hz)
		assert_int_equal((v3.last_seen_ns - v3.first_seen_ns) % tick, 0);
	check_invariants(f);
}

/* gso_segs per direction; packets stay skbs. */
static void test_segs_and_repeat(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 6, 40000, 5201);
	struct pkt p;

	NEED_ENV();
	tcp4(&p, TX, 40000, 5201, 0x10, 1448);
	run_on(f, if_a, TX, &p, 45, 1);
	run_on(f, if_a, TX, &p, 0, 1000);
	tcp4(&p, RX, 40000, 5201, 0x10, 0);
	run_on(f, if_a, RX, &p, 1, 10);
	struct tf_flow_value v = flow_of(f, &k);

	tcp4(&p, TX, 40000, 5201, 0x10, 1448);
	assert_dir_eq(v.tx, 1001, 1001 * p.len, 45 + 1000);
	tcp4(&p, RX, 40000, 5201, 0x10, 0);
	assert_dir_eq(v.rx, 10, 10 * p.len, 10);
	check_invariants(f);
}

/* The tap is part of the key; each tap has its own invariant. */
static void test_two_taps(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key ka = key_ip(if_a, 4, 17, 40000, 53);
	struct tf_flow_key kb = key_ip(if_b, 4, 17, 40000, 53);
	struct pkt p;

	NEED_ENV();
	udp4(&p, TX, 40000, 53, 10);
	run_on(f, if_a, TX, &p, 0, 2);
	run_on(f, if_b, TX, &p, 0, 3);
	assert_int_equal(n_flows(f), 2);
	assert_int_equal(flow_of(f, &ka).tx.packets, 2);
	assert_int_equal(flow_of(f, &kb).tx.packets, 3);
	assert_int_equal(check_invariant(f, if_a), 1);
	assert_int_equal(check_invariant(f, if_b), 1);
}

/* The counters-only programs of bridges and uplinks make no flows. */
static void test_counters_only_programs(void **state)
{
	struct fixture *f = *state;
	struct __sk_buff ctx;
	struct pkt p;
	__u32 retval;

	NEED_ENV();
	udp4(&p, TX, 40000, 53, 10);
	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (__u32)if_b;
	assert_int_equal(tf_test_run_tc(bpf_program__fd(f->skel->progs.tf_ingress), p.b, p.len,
				      &ctx, 5, &retval), 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	assert_int_equal(tf_test_run_tc(bpf_program__fd(f->skel->progs.tf_egress), p.b, p.len,
				      &ctx, 5, &retval), 0);
	assert_int_equal(n_flows(f), 0);
	struct tf_if_counters c = counters_of(f, if_b);

	assert_dir_eq(c.dir[TF_HOOK_INGRESS], 5, 5 * p.len, 5);
	assert_dir_eq(c.dir[TF_HOOK_EGRESS], 5, 5 * p.len, 5);
}

/* ---- tests: link and network layer variants ------------------------ */

/* 802.1Q VID 100, and QinQ S-VID 200 + C-VID 100: separate from untagged. */
static void test_vlan(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k0 = key_ip(if_a, 4, 17, 40000, 53), k1 = k0, k2 = k0;
	struct pkt p;
	size_t l0, l1, l2;

	NEED_ENV();
	k1.vlan = 100;
	k2.vlan = 200;
	k2.vlan_inner = 100;
	udp4(&p, TX, 40000, 53, 10);
	l0 = p.len;
	run(f, TX, &p);
	p_eth(&p, TX, 0x8100);
	p_tag(&p, 100, 0x0800);
	p_ipv4(&p, TX, 17, 0);
	p_udp(&p, TX, 40000, 53);
	l1 = fin(&p, 10);
	run(f, TX, &p);
	p_eth(&p, RX, 0x88a8);
	p_tag(&p, 200, 0x8100);
	p_tag(&p, 0x2000 | 100, 0x0800);	/* PCP bits are not part of the VID */
	p_ipv4(&p, RX, 17, 0);
	p_udp(&p, RX, 40000, 53);
	l2 = fin(&p, 10);
	run(f, RX, &p);
	assert_int_equal(n_flows(f), 3);
	assert_dir_eq(flow_of(f, &k0).tx, 1, l0, 1);
	assert_dir_eq(flow_of(f, &k1).tx, 1, l1, 1);
	assert_dir_eq(flow_of(f, &k2).rx, 1, l2, 1);
	check_invariants(f);
}

/*
 * An offloaded tag (skb->vlan_tci/vlan_present) cannot be given to
 * BPF_PROG_TEST_RUN: bpf_prog_test_run_skb() only accepts mark, priority,
 * ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size and
 * hwtstamp in ctx_in and refuses anything else with -EINVAL. Check that it
 * still does (if a kernel ever accepts it, check the key instead); the
 * offload path itself is tested on a live veth in test_live_veth.
 */
static void test_vlan_offload_ctx_refused(void **state)
{
	struct fixture *f = *state;
	struct __sk_buff ctx;
	struct pkt p;
	__u32 retval;
	int err;

	NEED_ENV();
	udp4(&p, TX, 40000, 53, 10);
	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (__u32)if_a;
	ctx.vlan_present = 1;
	ctx.vlan_tci = 300;
	ctx.vlan_proto = htons(0x8100);
	err = tf_test_run_tc(f->tap_fd[TX], p.b, p.len, &ctx, 1, &retval);
	if (err == 0) {
		struct tf_flow_key k = key_ip(if_a, 4, 17, 40000, 53);

		k.vlan = 300;
		print_message("# this kernel's test run accepts an offloaded VLAN tag\n");
		assert_int_equal(flow_of(f, &k).tx.packets, 1);
	} else {
		assert_int_equal(err, -EINVAL);
		print_message("# offloaded VLAN tag in ctx_in: refused (-EINVAL), as expected\n");
		assert_int_equal(n_flows(f), 0);
	}
	check_invariants(f);
}

/* IPv4 with 12 bytes of options (ihl 8). */
static void test_ipv4_options(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 17, 4789, 4789);
	struct pkt p;

	NEED_ENV();
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 17, 12);
	p_udp(&p, TX, 4789, 4789);
	fin(&p, 20);
	run(f, TX, &p);
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 17, 40);		/* ihl 15, the maximum */
	p_udp(&p, TX, 4789, 4789);
	fin(&p, 0);
	run(f, TX, &p);
	assert_int_equal(n_flows(f), 1);
	assert_int_equal(flow_of(f, &k).tx.packets, 2);
	assert_int_equal(f->skel->bss->parse_errors, 0);
	check_invariants(f);
}

/*
 * IPv4 fragments: the first one has the ports; later ones cannot, and are
 * keyed with ports 0 (family, proto, addresses kept).
 */
static void test_ipv4_fragments(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 17, 40000, 9999), kf = key_ip(if_a, 4, 17, 0, 0);
	struct pkt p;

	NEED_ENV();
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 17, 0);
	set16(&p, p.l3 + 6, 0x2000);		/* MF, offset 0 */
	p_udp(&p, TX, 40000, 9999);
	fin(&p, 100);
	run(f, TX, &p);
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 17, 0);
	set16(&p, p.l3 + 6, 0x0000 | 14);	/* last fragment, offset 112 */
	fin(&p, 4);				/* too short for a UDP header: fine */
	run(f, TX, &p);
	assert_int_equal(n_flows(f), 2);
	assert_int_equal(flow_of(f, &k).tx.packets, 1);
	assert_int_equal(flow_of(f, &kf).tx.packets, 1);
	assert_int_equal(f->skel->bss->parse_errors, 0);
	check_invariants(f);
}

/* Hop-by-hop + destination options + routing + first fragment, then UDP. */
static void test_ipv6_ext_headers(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 6, 17, 40000, 4242), kf = key_ip(if_a, 6, 17, 0, 0);
	struct tf_flow_key kt = key_ip(if_a, 6, 6, 40000, 443);
	struct pkt p;
	size_t l1, l2;

	NEED_ENV();
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 0);
	p_ext(&p, 60, 1);		/* hop-by-hop, 8 bytes */
	p_ext(&p, 43, 3);		/* destination options, 24 bytes */
	p_ext(&p, 44, 1);		/* routing */
	p_frag(&p, 17, 0, true);	/* first fragment */
	p_udp(&p, TX, 40000, 4242);
	l1 = fin(&p, 64);
	run(f, TX, &p);
	p_eth(&p, RX, 0x86dd);
	p_ipv6(&p, RX, 0);
	p_ext(&p, 60, 2);
	p_ext(&p, 17, 1);
	p_udp(&p, RX, 40000, 4242);
	l2 = fin(&p, 8);
	run(f, RX, &p);
	/* A later fragment: no ports. */
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 44);
	p_frag(&p, 17, 100, false);
	fin(&p, 40);
	run(f, TX, &p);
	/* AH then TCP. */
	p_eth(&p, TX, 0x86dd);
	p_ipv6(&p, TX, 51);
	put8(&p, 6);
	put8(&p, 4);			/* (4 + 2) * 4 = 24 bytes */
	zeros(&p, 22);
	p_tcp(&p, TX, 40000, 443, 0x02);
	fin(&p, 0);
	run(f, TX, &p);
	if (n_flows(f) != 3)
		print_flows(f);
	assert_int_equal(n_flows(f), 3);
	struct tf_flow_value v = flow_of(f, &k);

	assert_dir_eq(v.tx, 1, l1, 1);
	assert_dir_eq(v.rx, 1, l2, 1);
	assert_int_equal(flow_of(f, &kf).tx.packets, 1);
	assert_int_equal(flow_of(f, &kt).tx.packets, 1);
	assert_int_equal(f->skel->bss->parse_errors, 0);
	check_invariants(f);
}

/* Other IP protocols: a flow with ports 0; SCTP keyed by its ports. */
static void test_other_ip_protocols(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key gre = key_ip(if_a, 4, 47, 0, 0);
	struct tf_flow_key sctp = key_ip(if_a, 4, 132, 36412, 38412);
	struct pkt p;

	NEED_ENV();
	p_eth(&p, TX, 0x0800);
	p_ipv4(&p, TX, 47, 0);
	fin(&p, 24);
	run(f, TX, &p);
	p_eth(&p, RX, 0x0800);
	p_ipv4(&p, RX, 132, 0);
	put16(&p, 38412);
	put16(&p, 36412);
	zeros(&p, 8);
	fin(&p, 16);
	run(f, RX, &p);
	assert_int_equal(n_flows(f), 2);
	assert_int_equal(flow_of(f, &gre).tx.packets, 1);
	assert_int_equal(flow_of(f, &sctp).rx.packets, 1);
	check_invariants(f);
}

/* ARP request out, reply in: one flow of the two protocol addresses. */
static void test_arp(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_other(if_a, 0x0806);
	struct pkt p;
	size_t l1, l2;

	NEED_ENV();
	memcpy(k.local_ip, vm4, 4);
	memcpy(k.remote_ip, peer4, 4);
	p_eth(&p, TX, 0x0806);
	memset(p.b, 0xff, 6);
	put16(&p, 1);
	put16(&p, 0x0800);
	put8(&p, 6);
	put8(&p, 4);
	put16(&p, 1);			/* request */
	putn(&p, mac_vm, 6);
	putn(&p, vm4, 4);
	zeros(&p, 6);
	putn(&p, peer4, 4);
	l1 = p.len;			/* 42: a runt, as ARP leaves a host */
	run(f, TX, &p);
	p_eth(&p, RX, 0x0806);
	put16(&p, 1);
	put16(&p, 0x0800);
	put8(&p, 6);
	put8(&p, 4);
	put16(&p, 2);			/* reply */
	putn(&p, mac_peer, 6);
	putn(&p, peer4, 4);
	putn(&p, mac_vm, 6);
	putn(&p, vm4, 4);
	zeros(&p, 18);			/* padded to 60 */
	l2 = p.len;
	run(f, RX, &p);
	assert_int_equal(n_flows(f), 1);
	struct tf_flow_value v = flow_of(f, &k);

	assert_int_equal(l1, 42);
	assert_dir_eq(v.tx, 1, l1, 1);
	assert_dir_eq(v.rx, 1, l2, 1);
	check_invariants(f);
}

/* Unknown EtherType, and an 802.3 length field: "other" by EtherType. */
static void test_other_ethertype(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k1 = key_other(if_a, 0x88b5), k2 = key_other(if_a, 0x0001);
	struct tf_flow_key k3 = key_other(if_a, 0x88cc);
	struct pkt p;

	NEED_ENV();
	p_eth(&p, TX, 0x88b5);
	zeros(&p, 46);
	run(f, TX, &p);
	run(f, RX, &p);
	p_eth(&p, RX, 0x0026);		/* 38 bytes of LLC (STP BPDU size) */
	zeros(&p, 46);
	run(f, RX, &p);
	p_eth(&p, RX, 0x002e);
	zeros(&p, 46);
	run(f, RX, &p);
	p_eth(&p, RX, 0x8100);		/* LLDP in a VLAN: the inner type */
	p_tag(&p, 7, 0x88cc);
	zeros(&p, 42);
	run(f, RX, &p);
	k3.vlan = 7;
	assert_int_equal(n_flows(f), 3);
	struct tf_flow_value v = flow_of(f, &k1);

	assert_dir_eq(v.tx, 1, 60, 1);
	assert_dir_eq(v.rx, 1, 60, 1);
	assert_dir_eq(flow_of(f, &k2).rx, 2, 120, 2);
	assert_dir_eq(flow_of(f, &k3).rx, 1, 60, 1);
	assert_int_equal(f->skel->bss->parse_errors, 0);
	check_invariants(f);
}

/* ---- tests: malformed frames --------------------------------------- */

typedef void (*build_fn)(struct pkt *p);

static void bad_ihl4(struct pkt *p)
{
	udp4(p, TX, 1, 2, 20);
	p->b[14] = 0x44;
}

static void bad_ihl_beyond(struct pkt *p)
{
	udp4(p, TX, 1, 2, 0);		/* 42 bytes, ihl 15 wants 60 of IP header */
	p->b[14] = 0x4f;
}

static void bad_version(struct pkt *p)
{
	udp4(p, TX, 1, 2, 20);
	p->b[14] = 0x65;
}

static void bad_tot_len(struct pkt *p)
{
	udp4(p, TX, 1, 2, 20);
	set16(p, 14 + 2, 16);
}

/* tot_len says the IP packet ends after its header: the rest is padding. */
static void bad_udp_in_padding(struct pkt *p)
{
	udp4(p, TX, 1, 2, 10);
	set16(p, 14 + 2, 20);
}

static void bad_tcp_short(struct pkt *p)
{
	p_eth(p, TX, 0x0800);
	p_ipv4(p, TX, 6, 0);
	zeros(p, 12);
	fin(p, 0);
}

static void bad_tcp_doff(struct pkt *p)
{
	tcp4(p, TX, 1, 2, 0x10, 20);
	p->b[p->l4 + 12] = 4 << 4;
}

static void bad_tcp_doff_beyond(struct pkt *p)
{
	tcp4(p, TX, 1, 2, 0x10, 20);
	p->b[p->l4 + 12] = 15 << 4;
}

static void bad_udp_short(struct pkt *p)
{
	p_eth(p, TX, 0x0800);
	p_ipv4(p, TX, 17, 0);
	put16(p, 1);
	put16(p, 2);
	fin(p, 0);
}

static void bad_icmp_short(struct pkt *p)
{
	p_eth(p, TX, 0x0800);
	p_ipv4(p, TX, 1, 0);
	put8(p, 8);
	put8(p, 0);
	put16(p, 0);
	fin(p, 0);
}

static void bad_sctp_short(struct pkt *p)
{
	p_eth(p, TX, 0x0800);
	p_ipv4(p, TX, 132, 0);
	zeros(p, 8);
	fin(p, 0);
}

static void bad_ipv6_version(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 17);
	p_udp(p, TX, 1, 2);
	fin(p, 10);
	p->b[14] = 0x40;
}

static void bad_ipv6_udp_short(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 17);
	zeros(p, 6);
	fin(p, 0);
}

static void bad_ipv6_icmp_short(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 58);
	zeros(p, 4);
	fin(p, 0);
}

static void bad_ipv6_ext_beyond(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 0);
	put8(p, 17);
	put8(p, 10);			/* 88 bytes, 14 there */
	zeros(p, 12);
	fin(p, 0);
}

static void bad_ipv6_ext_truncated(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 60);
	put8(p, 17);			/* one byte of the two */
	fin(p, 0);
}

static void bad_ipv6_hbh_not_first(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 60);
	p_ext(p, 0, 1);
	p_ext(p, 17, 1);
	p_udp(p, TX, 1, 2);
	fin(p, 0);
}

static void bad_ipv6_too_many_ext(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 60);
	for (int i = 0; i < 7; i++)
		p_ext(p, i < 6 ? 60 : 17, 1);
	p_udp(p, TX, 1, 2);
	fin(p, 0);
}

static void bad_ipv6_frag_short(struct pkt *p)
{
	p_eth(p, TX, 0x86dd);
	p_ipv6(p, TX, 44);
	zeros(p, 6);
	fin(p, 0);
}

static void bad_vlan_short(struct pkt *p)
{
	p_eth(p, TX, 0x8100);
	put16(p, 100);			/* the tag's second half is missing */
}

static void bad_vlan_ipv4_short(struct pkt *p)
{
	/* Behind a tag the test run does not check the IP header: cut it. */
	p_eth(p, TX, 0x8100);
	p_tag(p, 100, 0x0800);
	put8(p, 0x45);
	zeros(p, 9);
}

static void bad_qinq_ipv6_short(struct pkt *p)
{
	p_eth(p, TX, 0x88a8);
	p_tag(p, 1, 0x8100);
	p_tag(p, 2, 0x86dd);
	put32(p, 0x60000000);
	zeros(p, 20);
}

static void bad_arp_short(struct pkt *p)
{
	p_eth(p, TX, 0x0806);
	put16(p, 1);
	put16(p, 0x0800);
	put8(p, 6);
}

static void bad_arp_addrs_short(struct pkt *p)
{
	p_eth(p, TX, 0x0806);
	put16(p, 1);
	put16(p, 0x0800);
	put8(p, 6);
	put8(p, 4);
	put16(p, 1);
	zeros(p, 10);
}

static const struct {
	const char *name;
	build_fn build;
} bad_frames[] = {
	{ "IPv4 ihl 4", bad_ihl4 },
	{ "IPv4 ihl beyond the frame", bad_ihl_beyond },
	{ "IPv4 version 6 in 0x0800", bad_version },
	{ "IPv4 tot_len < header", bad_tot_len },
	{ "IPv4 tot_len leaves the UDP header in padding", bad_udp_in_padding },
	{ "TCP header cut", bad_tcp_short },
	{ "TCP doff 4", bad_tcp_doff },
	{ "TCP doff beyond the frame", bad_tcp_doff_beyond },
	{ "UDP header cut", bad_udp_short },
	{ "ICMP header cut", bad_icmp_short },
	{ "SCTP common header cut", bad_sctp_short },
	{ "IPv6 version 4 in 0x86dd", bad_ipv6_version },
	{ "IPv6 UDP header cut", bad_ipv6_udp_short },
	{ "IPv6 ICMPv6 header cut", bad_ipv6_icmp_short },
	{ "IPv6 hop-by-hop longer than the frame", bad_ipv6_ext_beyond },
	{ "IPv6 destination options cut", bad_ipv6_ext_truncated },
	{ "IPv6 hop-by-hop not first", bad_ipv6_hbh_not_first },
	{ "IPv6 7 extension headers", bad_ipv6_too_many_ext },
	{ "IPv6 fragment header cut", bad_ipv6_frag_short },
	{ "802.1Q tag cut", bad_vlan_short },
	{ "IPv4 header cut behind a tag", bad_vlan_ipv4_short },
	{ "IPv6 header cut behind QinQ", bad_qinq_ipv6_short },
	{ "ARP header cut", bad_arp_short },
	{ "ARP addresses cut", bad_arp_addrs_short },
};

/*
 * Every malformed frame, both directions: one more unparsed packet of its
 * direction, one more parse error, no flow, the if_counters moved.
 */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	uint64_t errors = 0, bytes[2] = { 0, 0 };
	size_t n = sizeof(bad_frames) / sizeof(bad_frames[0]);
	struct pkt p;

	NEED_ENV();
	for (size_t i = 0; i < n; i++)
		for (int tx = 0; tx < 2; tx++) {
			bad_frames[i].build(&p);
			run(f, tx, &p);
			errors++;
			bytes[tx] += p.len;
			if (n_flows(f) || f->skel->bss->parse_errors != errors) {
				print_message("# %s: %zu bytes, %s\n", bad_frames[i].name, p.len,
					      tx ? "tx" : "rx");
				print_flows(f);
			}
			assert_int_equal(n_flows(f), 0);
			assert_int_equal(f->skel->bss->parse_errors, errors);
		}
	struct tf_tap_aggr a = aggr_of(f, if_a);

	assert_dir_eq(a.unparsed_tx, n, bytes[1], n);
	assert_dir_eq(a.unparsed_rx, n, bytes[0], n);
	assert_dir_eq(a.overflow_tx, 0, 0, 0);
	assert_dir_eq(a.overflow_rx, 0, 0, 0);
	assert_int_equal(f->skel->bss->flow_map_full, 0);
	check_invariants(f);
}

/* Frames the test run accepts, 14 bytes and up, of every parsed type. */
static void test_cut_everywhere(void **state)
{
	struct fixture *f = *state;
	struct pkt full[6], p;
	int ran = 0;

	NEED_ENV();
	tcp4(&full[0], TX, 1, 2, 0x02, 0);
	p_eth(&full[1], TX, 0x86dd);
	p_ipv6(&full[1], TX, 0);
	p_ext(&full[1], 44, 1);
	p_frag(&full[1], 17, 0, true);
	p_udp(&full[1], TX, 1, 2);
	fin(&full[1], 0);
	p_eth(&full[2], TX, 0x88a8);
	p_tag(&full[2], 1, 0x8100);
	p_tag(&full[2], 2, 0x0800);
	p_ipv4(&full[2], TX, 1, 8);
	p_icmp(&full[2], 8, 0, 1);
	fin(&full[2], 0);
	bad_arp_addrs_short(&full[3]);
	zeros(&full[3], 10);
	p_eth(&full[4], TX, 0x8100);
	p_tag(&full[4], 5, 0x86dd);
	p_ipv6(&full[4], TX, 6);
	p_tcp(&full[4], TX, 1, 2, 0x02);
	fin(&full[4], 0);
	p_eth(&full[5], TX, 0x0800);
	p_ipv4(&full[5], TX, 17, 4);
	p_udp(&full[5], TX, 1, 2);
	fin(&full[5], 0);
	/*
	 * Every prefix: the frame is either whole (one flow packet) or cut
	 * (one parse error), and the invariant holds; the kernel refuses some
	 * cut IP frames itself (-EINVAL), which then count nowhere.
	 */
	for (int i = 0; i < 6; i++)
		for (size_t len = 14; len <= full[i].len; len++) {
			struct __sk_buff ctx;
			uint64_t before = f->skel->bss->parse_errors;
			int nf = n_flows(f);
			__u32 retval = 0;
			int err;

			memset(&ctx, 0, sizeof(ctx));
			ctx.ifindex = (__u32)if_a;
			p = full[i];
			err = tf_test_run_tc(f->tap_fd[TX], p.b, len, &ctx, 1, &retval);
			if (err) {
				assert_int_equal(err, -EINVAL);
				continue;
			}
			ran++;
			assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
			if (len == full[i].len) {
				assert_int_equal(f->skel->bss->parse_errors, before);
				assert_true(n_flows(f) >= nf);
			} else {
				assert_int_equal(f->skel->bss->parse_errors, before + 1);
				assert_int_equal(n_flows(f), nf);
			}
		}
	print_message("# %d cut frames ran\n", ran);
	assert_int_equal(n_flows(f), 6);
	check_invariants(f);
}

/* ---- tests: full map, aggregates ----------------------------------- */

/*
 * A flow map of 2: the third flow's packets go to the overflow of their
 * direction, exactly counted in flow_map_full; the two flows that have an
 * entry keep counting.
 */
static void test_map_full(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k1 = key_ip(if_a, 4, 17, 1, 53), k2 = key_ip(if_a, 4, 17, 2, 53);
	struct pkt p;
	size_t len;

	NEED_ENV();
	assert_int_equal(bpf_map__max_entries(f->skel->maps.flows), 2);
	udp4(&p, TX, 1, 53, 10);
	len = p.len;
	run(f, TX, &p);
	udp4(&p, TX, 2, 53, 10);
	run(f, TX, &p);
	assert_int_equal(f->skel->bss->flow_map_full, 0);
	udp4(&p, TX, 3, 53, 10);
	run_on(f, if_a, TX, &p, 0, 3);
	udp4(&p, RX, 3, 53, 10);
	run_on(f, if_a, RX, &p, 4, 2);
	assert_int_equal(f->skel->bss->flow_map_full, 5);
	struct tf_tap_aggr a = aggr_of(f, if_a);

	assert_dir_eq(a.overflow_tx, 3, 3 * len, 3);
	assert_dir_eq(a.overflow_rx, 2, 2 * len, 8);
	assert_dir_eq(a.unparsed_tx, 0, 0, 0);
	assert_dir_eq(a.unparsed_rx, 0, 0, 0);
	/* Existing flows still count, and are no overflow. */
	udp4(&p, RX, 1, 53, 10);
	run_on(f, if_a, RX, &p, 0, 7);
	assert_int_equal(flow_of(f, &k1).rx.packets, 7);
	assert_int_equal(flow_of(f, &k2).tx.packets, 1);
	assert_int_equal(f->skel->bss->flow_map_full, 5);
	assert_int_equal(n_flows(f), 2);
	/* Another tap's new flow overflows into its own aggregate. */
	udp4(&p, TX, 1, 53, 10);
	run_on(f, if_b, TX, &p, 0, 1);
	assert_int_equal(f->skel->bss->flow_map_full, 6);
	assert_dir_eq(aggr_of(f, if_b).overflow_tx, 1, len, 1);
	/* A malformed frame is a parse error, not an overflow. */
	bad_tcp_short(&p);
	run(f, TX, &p);
	assert_int_equal(f->skel->bss->flow_map_full, 6);
	assert_int_equal(f->skel->bss->parse_errors, 1);
	check_invariants(f);
	/* A failed insert said the map is full: new flows skip the insert for a while. */
	assert_true(f->skel->bss->tf_flows_full_ns != 0);
	assert_int_equal(bpf_map_delete_elem(f->flows_fd, &k2), 0);
	/* Known full (a time ahead of now: still within the retry interval). */
	f->skel->bss->tf_flows_full_ns = mono_ns() + 1000000000ULL;
	udp4(&p, TX, 3, 53, 10);
	run(f, TX, &p);
	struct tf_flow_key k3 = key_ip(if_a, 4, 17, 3, 53);

	assert_int_equal(f->skel->bss->flow_map_full, 7);
	assert_dir_eq(aggr_of(f, if_a).overflow_tx, 4, 4 * len, 4);
	assert_int_equal(n_flows(f), 1);
	/* Once an entry is freed, userspace clears it (expiry): new flows get in again. */
	f->skel->bss->tf_flows_full_ns = 0;
	run(f, TX, &p);
	assert_dir_eq(flow_of(f, &k3).tx, 1, len, 1);
	assert_int_equal(f->skel->bss->flow_map_full, 7);
	assert_int_equal(n_flows(f), 2);
	/* Known full long ago (over the retry interval): it tries the insert again. */
	f->skel->bss->tf_flows_full_ns = mono_ns() - 1000000000ULL;
	udp4(&p, TX, 4, 53, 10);
	run(f, TX, &p);
	assert_int_equal(f->skel->bss->flow_map_full, 8);
	assert_true(f->skel->bss->tf_flows_full_ns > mono_ns() - 1000000000ULL);
}

/* The invariant over a mix of everything, with a full map on the way. */
static void test_invariant_mix(void **state)
{
	struct fixture *f = *state;
	struct pkt p;

	NEED_ENV();
	for (int round = 0; round < 3; round++)
		for (int tx = 0; tx < 2; tx++) {
			int ifx = round == 1 ? if_b : if_a;

			udp4(&p, tx, (uint16_t)(1000 + round), 53, (size_t)round * 100);
			run_on(f, ifx, tx, &p, 0, 5);
			tcp4(&p, tx, 22, (uint16_t)(40000 + round), 0x10, 1400);
			run_on(f, ifx, tx, &p, 3, 2);
			bad_tcp_doff(&p);
			run_on(f, ifx, tx, &p, 0, 1);
			p_eth(&p, tx, 0x88b5);
			zeros(&p, 100);
			run_on(f, ifx, tx, &p, 0, 1);
			bad_vlan_ipv4_short(&p);
			run_on(f, ifx, tx, &p, 0, 3);
		}
	print_message("# flows %d, flow_map_full %llu, parse_errors %llu\n", n_flows(f),
		      (unsigned long long)f->skel->bss->flow_map_full,
		      (unsigned long long)f->skel->bss->parse_errors);
	assert_int_equal(f->skel->bss->parse_errors, 3 * 2 * 4);
	assert_true(f->skel->bss->flow_map_full > 0);
	check_invariants(f);
	struct tf_tap_aggr a = aggr_of(f, if_a), b = aggr_of(f, if_b);

	assert_int_equal(a.overflow_tx.packets + a.overflow_rx.packets +
			 b.overflow_tx.packets + b.overflow_rx.packets,
			 f->skel->bss->flow_map_full);
	assert_int_equal(a.unparsed_tx.packets + a.unparsed_rx.packets +
			 b.unparsed_tx.packets + b.unparsed_rx.packets,
			 f->skel->bss->parse_errors);
}

/* A tap without entries: the program creates both, nothing is lost. */
static void test_entries_created_by_program(void **state)
{
	struct fixture *f = *state;
	struct pkt p;

	NEED_ENV();
	udp4(&p, TX, 1, 2, 10);
	run(f, TX, &p);
	bad_udp_short(&p);
	run(f, RX, &p);
	assert_int_equal(f->skel->bss->map_full, 0);
	assert_int_equal(aggr_of(f, if_a).unparsed_rx.packets, 1);
	assert_int_equal(check_invariant(f, if_a), 1);
}

/* Up to the largest frame the test run takes: bytes are skb->len. */
static void test_large_frames(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_a, 4, 6, 40000, 5201);
	static struct pkt p;
	uint64_t bytes = 0, n = 0;

	NEED_ENV();
	for (size_t payload = 1000; payload <= 4000; payload += 250) {
		struct __sk_buff ctx;
		__u32 retval;

		tcp4(&p, TX, 40000, 5201, 0x10, payload);
		memset(&ctx, 0, sizeof(ctx));
		ctx.ifindex = (__u32)if_a;
		if (tf_test_run_tc(f->tap_fd[TX], p.b, p.len, &ctx, 1, &retval))
			break;	/* beyond a page: refused, counted nowhere */
		bytes += p.len;
		n++;
	}
	print_message("# largest test-run frame taken: %llu bytes of payload\n",
		      (unsigned long long)(1000 + (n - 1) * 250));
	assert_true(n >= 3);
	assert_dir_eq(flow_of(f, &k).tx, n, bytes, n);
	check_invariants(f);
}

/* ---- live: attached to the veth, real skbs ------------------------- */

/*
 * This kernel may lack 802.1Q devices (CONFIG_VLAN_8021Q): offloaded tags
 * are made by a TC program of the test instead, run before tapflow's on
 * the same hook: bpf_skb_vlan_push() of VID 100 on skbs marked 100, which
 * sets skb->vlan_tci as a VLAN device with tx offload would.
 */
#define LIVE_MARK_VLAN 100

/* Addresses and static neighbours on the veth (no ARP, no IPv6); once. */
static int live_setup(void)
{
	static int done;

	if (done)
		return done > 0 ? 0 : -1;
	done = -1;
	if (system("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
		   "net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1;"
		   "ip link set " DEV_A " up && ip link set " DEV_B " up && "
		   "ip addr add 10.199.0.1/24 dev " DEV_A " && "
		   "ip neigh replace 10.199.0.2 lladdr 02:00:00:00:00:02 dev " DEV_A
		   " nud permanent && "
		   "ip addr add 10.198.0.1/24 dev " DEV_A " && "
		   "ip neigh replace 10.198.0.2 lladdr 02:00:00:00:00:02 dev " DEV_A
		   " nud permanent"))
		return -1;
	done = 1;
	return 0;
}

/* The tag pusher: if (skb->mark == 100) bpf_skb_vlan_push(skb, 802.1Q, 100). */
static int load_vlan_pusher(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_6, .src_reg = BPF_REG_1 },
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_6,
		  .off = offsetof(struct __sk_buff, mark) },
		{ .code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = BPF_REG_2, .off = 4,
		  .imm = LIVE_MARK_VLAN },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_6 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = htons(0x8100) },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 100 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_skb_vlan_push },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_UNSPEC },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "tf_test_vlan", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), NULL);
}

/* Attach with cls_bpf at priority prio (lower runs first). */
static int attach(int ifindex, enum bpf_tc_attach_point where, int prog_fd, __u32 prio)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .priority = prio);
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

static void detach_all(int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

	bpf_tc_hook_destroy(&hook);
}

/*
 * count datagrams of len bytes from src_ip:sport to dst_ip:dport; gso:
 * UDP_SEGMENT size; mark: SO_MARK.
 */
static void send_udp(const char *src_ip, uint16_t sport, const char *dst_ip, uint16_t dport,
		     int count, size_t len, int gso, int mark)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(dport) };
	static char buf[65000];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, src_ip, &src.sin_addr);
	inet_pton(AF_INET, dst_ip, &dst.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	if (gso)
		assert_int_equal(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof(gso)), 0);
	if (mark)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	memset(buf, 0x5a, len);
	for (int i = 0; i < count; i++)
		assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

static struct tf_flow_key key_live(int ifindex, bool tx, const uint8_t src[4], uint16_t sport,
				   const uint8_t dst[4], uint16_t dport, uint16_t vlan)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = (__u32)ifindex;
	k.vlan = vlan;
	k.ethertype = 0x0800;
	k.family = 4;
	k.proto = 17;
	memcpy(k.local_ip, tx ? src : dst, 4);
	memcpy(k.remote_ip, tx ? dst : src, 4);
	k.local_port = tx ? sport : dport;
	k.remote_port = tx ? dport : sport;
	return k;
}

/*
 * tf_tap_egress on tfflw0 (what a VM behind it would receive) and
 * tf_tap_ingress on tfflw1 (what it would send), real traffic across:
 *   F1  VLAN 100 offloaded (skb->vlan_tci, not in the data: on tfflw0's
 *       egress from the pusher, on tfflw1's ingress as veth hands it
 *       over), 5 datagrams of 100 bytes;
 *   F2  untagged UDP GSO (UDP_SEGMENT 1000): 3 skbs of 10 segments, their
 *       payload in page fragments (non-linear);
 *   F3  offloaded VLAN 100 and GSO: 2 sends of 5 segments.
 * Each skb is one packet, bytes are skb->len (the offloaded tag is not in
 * it), segs gso_segs; the invariant holds on both devices.
 */
static void test_live_veth(void **state)
{
	struct fixture *f = *state;
	static const uint8_t a1[4] = { 10, 199, 0, 1 }, a2[4] = { 10, 199, 0, 2 };
	static const uint8_t b1[4] = { 10, 198, 0, 1 }, b2[4] = { 10, 198, 0, 2 };

	int pusher;

	NEED_ENV();
	if (live_setup()) {
		print_message("# SKIP: cannot set up addresses on the veth\n");
		skip();
	}
	pusher = load_vlan_pusher();
	assert_true(pusher >= 0);
	assert_int_equal(attach(if_a, BPF_TC_EGRESS, pusher, 1), 0);
	assert_int_equal(attach(if_a, BPF_TC_EGRESS, f->tap_fd[RX], 2), 0);
	assert_int_equal(attach(if_b, BPF_TC_INGRESS, f->tap_fd[TX], 1), 0);
	send_udp("10.199.0.1", 6666, "10.199.0.2", 7777, 5, 100, 0, LIVE_MARK_VLAN);
	send_udp("10.198.0.1", 6667, "10.198.0.2", 7778, 3, 10000, 1000, 0);
	send_udp("10.199.0.1", 6668, "10.199.0.2", 7779, 2, 5000, 1000, LIVE_MARK_VLAN);
	usleep(200000);		/* the peer's ingress runs from the backlog */
	detach_all(if_a);
	detach_all(if_b);
	close(pusher);
	print_flows(f);

	for (int side = 0; side < 2; side++) {
		int ifx = side ? if_b : if_a;
		bool tx = side;		/* if_b ingress: tx; if_a egress: rx */
		struct tf_flow_key k1 = key_live(ifx, tx, a1, 6666, a2, 7777, 100);
		struct tf_flow_key k2 = key_live(ifx, tx, b1, 6667, b2, 7778, 0);
		struct tf_flow_key k3 = key_live(ifx, tx, a1, 6668, a2, 7779, 100);
		struct tf_flow_value v1 = flow_of(f, &k1), v2 = flow_of(f, &k2), v3 = flow_of(f, &k3);
		struct tf_dir_counters d1 = tx ? v1.tx : v1.rx, d2 = tx ? v2.tx : v2.rx;
		struct tf_dir_counters d3 = tx ? v3.tx : v3.rx, o3 = tx ? v3.rx : v3.tx;

		print_message("# %s: F1 %llu/%llu/%llu F2 %llu/%llu/%llu F3 %llu/%llu/%llu "
			      "(packets/bytes/segs)\n", side ? "tfflw1 ingress" : "tfflw0 egress",
			      (unsigned long long)d1.packets, (unsigned long long)d1.bytes,
			      (unsigned long long)d1.segs, (unsigned long long)d2.packets,
			      (unsigned long long)d2.bytes, (unsigned long long)d2.segs,
			      (unsigned long long)d3.packets, (unsigned long long)d3.bytes,
			      (unsigned long long)d3.segs);
		assert_dir_eq(d1, 5, 5 * (14 + 20 + 8 + 100), 5);
		assert_dir_eq(d2, 3, 3 * (14 + 20 + 8 + 10000), 30);
		/* The VLAN device may segment GSO itself: then 10 skbs. */
		if (d3.packets == 2)
			assert_dir_eq(d3, 2, 2 * (14 + 20 + 8 + 5000), 10);
		else
			assert_dir_eq(d3, 10, 10 * (14 + 20 + 8 + 1000), 10);
		assert_dir_eq(o3, 0, 0, 0);
		check_invariant(f, ifx);
	}
	assert_int_equal(f->skel->bss->parse_errors, 0);
	assert_int_equal(f->skel->bss->flow_map_full, 0);
	assert_int_equal(f->skel->bss->map_full, 0);
}

/* libbpf's warnings, but not the expected one of a second bpf_tc_hook_create(). */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || strstr(fmt, "Exclusivity flag on"))
		return 0;
	if (strcmp(fmt, "Kernel error message: %s\n") == 0) {
		va_list aq;
		const char *msg;

		va_copy(aq, ap);
		msg = va_arg(aq, const char *);
		va_end(aq);
		if (msg && strstr(msg, "Exclusivity flag on"))
			return 0;
	}
	return vfprintf(stderr, fmt, ap);
}

/* ---- the NAT join's per-CPU cache of uplink flows ------------------- */

/*
 * The uplink programs on if_b, the uplink, with if_a for the VMs' bridge:
 * egress = a VM's packet leaving (ingress_ifindex if_a), ingress = what
 * arrives. The test runs make skbs without conntrack: the flows are routed
 * ones (no translation), which the cache treats as any other. Pinned to
 * one CPU, so that what is pending is in that CPU's slots.
 */
static int setup_uplink(void **state)
{
	struct fixture *f;
	cpu_set_t one;

	if (setup_opts(state, 0, true))
		return -1;
	if (skip_reason[0])
		return 0;
	f = *state;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return -1;
	f->skel->bss->tf_bridges[0] = (__u32)if_a;
	f->skel->bss->tf_n_bridges = 1;
	f->skel->bss->tf_uplink_rx_armed = 1;
	/* As the collector: on once the flush program runs. */
	if (tf_run_on_cpu(bpf_program__fd(f->skel->progs.tf_uplink_flush), -1))
		return -1;
	f->skel->bss->tf_uplink_cache_on = 1;
	return 0;
}

static void run_uplink(const struct fixture *f, bool egress, const struct pkt *p, __u32 iif,
		       int repeat)
{
	struct __sk_buff ctx;
	__u32 retval = 0;
	int fd = egress ? bpf_program__fd(f->skel->progs.tf_uplink_egress)
			: bpf_program__fd(f->skel->progs.tf_uplink_ingress);

	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (__u32)if_b;
	ctx.ingress_ifindex = iif;
	assert_int_equal(tf_test_run_tc(fd, p->b, p->len, &ctx, repeat, &retval), 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
}

/* A poll's flush, as the collector's: how many CPUs it ran on. */
static int flush_uplinks(const struct fixture *f)
{
	int n = tf_uplink_cache_flush(f->skel, ncpus);

	assert_true(n >= 0);
	return n;
}

/* The calling thread on cpu only (test runs of TC programs run where it runs). */
static void pin(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
}

/* The CPUs whose uplink cache slots have packets pending, one bit each. */
static uint64_t pending_cpus(const struct fixture *f)
{
	struct tf_percpu_cache pc;
	bool *cpus = calloc((size_t)ncpus, sizeof(*cpus));
	uint64_t bits = 0;

	assert_non_null(cpus);
	tf_uplink_cache_of(f->skel, ncpus, &pc);
	assert_int_equal(tf_cache_pending_cpus(&pc, cpus), 0);
	for (int cpu = 0; cpu < ncpus && cpu < 64; cpu++)
		bits |= (uint64_t)cpus[cpu] << cpu;
	free(cpus);
	return bits;
}

/*
 * Packets of a cached flow wait in the slot until a flush, then are all in
 * the entry, exactly: the first made the entry, the second (map path)
 * filled the slot, the rest were counted there; replies too.
 */
static void test_uplink_cache_flush(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40000, 7);
	struct tf_flow_value v;
	struct pkt out, in;

	NEED_ENV();
	udp4(&out, TX, 40000, 7, 30);
	udp4(&in, RX, 40000, 7, 50);
	run_uplink(f, true, &out, (__u32)if_a, 10);
	run_uplink(f, false, &in, 0, 6);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 2, 2 * out.len, 2);
	assert_dir_eq(v.rx, 0, 0, 0);
	flush_uplinks(f);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 10, 10 * out.len, 10);
	assert_dir_eq(v.rx, 6, 6 * in.len, 6);
	/* A second flush moves nothing twice. */
	flush_uplinks(f);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 10, 10 * out.len, 10);
	assert_dir_eq(v.rx, 6, 6 * in.len, 6);
	assert_int_equal(f->skel->bss->uplink_cache_lost, 0);
}

/* Off (no flush program, or an old kernel): every packet in the entry at once. */
static void test_uplink_cache_off(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40001, 7);
	struct tf_flow_value v;
	struct pkt out, in;

	NEED_ENV();
	f->skel->bss->tf_uplink_cache_on = 0;
	udp4(&out, TX, 40001, 7, 30);
	udp4(&in, RX, 40001, 7, 50);
	run_uplink(f, true, &out, (__u32)if_a, 10);
	run_uplink(f, false, &in, 0, 6);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 10, 10 * out.len, 10);
	assert_dir_eq(v.rx, 6, 6 * in.len, 6);
}

/*
 * More flows than slots, interleaved: flows keep taking each other's
 * slots (each take-over flushes the slot), and every count ends up in its
 * own entry.
 */
static void test_uplink_cache_many_flows(void **state)
{
	struct fixture *f = *state;
	enum { FLOWS = 40, ROUNDS = 5 };
	struct pkt out, in;

	NEED_ENV();
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < FLOWS; i++) {
			udp4(&out, TX, (uint16_t)(41000 + i), 7, (size_t)i);
			udp4(&in, RX, (uint16_t)(41000 + i), 7, (size_t)(2 * i));
			run_uplink(f, true, &out, (__u32)if_a, 1 + i % 3);
			run_uplink(f, false, &in, 0, 1 + i % 2);
		}
	flush_uplinks(f);
	for (int i = 0; i < FLOWS; i++) {
		struct tf_flow_key k = key_ip(if_b, 4, 17, (uint16_t)(41000 + i), 7);
		struct tf_flow_value v = uplink_of(f, &k);
		uint64_t nout = ROUNDS * (1 + i % 3), nin = ROUNDS * (1 + i % 2);

		udp4(&out, TX, (uint16_t)(41000 + i), 7, (size_t)i);
		udp4(&in, RX, (uint16_t)(41000 + i), 7, (size_t)(2 * i));
		assert_dir_eq(v.tx, nout, nout * out.len, nout);
		assert_dir_eq(v.rx, nin, nin * in.len, nin);
	}
	assert_int_equal(f->skel->bss->uplink_cache_lost, 0);
}

/*
 * Expiry: every poll makes the cached flows stale before it reads the
 * slots, so that after userspace deleted an idle flow nothing is counted
 * in its slot, although that poll ran no flush on its CPU (nothing was
 * pending there); a flow deleted while its slot still held packets loses
 * them, counted.
 */
static void test_uplink_cache_expired(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40002, 7);
	struct tf_flow_value v;
	struct pkt out, in;

	NEED_ENV();
	udp4(&out, TX, 40002, 7, 30);
	udp4(&in, RX, 40002, 7, 50);
	run_uplink(f, true, &out, (__u32)if_a, 3);
	assert_int_equal(flush_uplinks(f), 1);	/* one pending packet: run on CPU 0 */
	assert_int_equal(flush_uplinks(f), 0);	/* idle: run nowhere */
	assert_int_equal(bpf_map_delete_elem(f->uplink_fd, &k), 0);
	run_uplink(f, false, &in, 0, 4);	/* no flow: not counted, not lost */
	flush_uplinks(f);
	assert_int_equal(f->skel->bss->uplink_cache_lost, 0);
	assert_int_equal(get_uplink(f, &k, &v), -ENOENT);
	/* Deleted under pending packets (expired between a flush and a hit). */
	run_uplink(f, true, &out, (__u32)if_a, 2);	/* made again, then cached */
	run_uplink(f, true, &out, (__u32)if_a, 3);	/* pending */
	assert_int_equal(bpf_map_delete_elem(f->uplink_fd, &k), 0);
	flush_uplinks(f);
	assert_int_equal(f->skel->bss->uplink_cache_lost, 3);
}

/*
 * An active timeout deletes a busy flow (after a flush, as the collector
 * does); the collector then moves the generation. The flow's next packet
 * takes the map path and makes the entry again, so nothing is lost; had the
 * slot stayed current, every later packet would wait there for an entry
 * no packet makes.
 */
static void test_uplink_cache_harvested_busy(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40004, 7);
	struct tf_uplink_value u;
	struct tf_flow_value v;
	struct pkt out;

	NEED_ENV();
	udp4(&out, TX, 40004, 7, 30);
	run_uplink(f, true, &out, (__u32)if_a, 5);	/* made, cached, 3 pending */
	flush_uplinks(f);
	assert_false(f->flows_percpu);
	assert_int_equal(bpf_map_lookup_and_delete_elem(f->uplink_fd, &k, &u), 0);
	assert_dir_eq(u.flow.tx, 5, 5 * out.len, 5);
	f->skel->bss->tf_uplink_gen++;	/* tf_collector_flows_freed() */
	run_uplink(f, true, &out, (__u32)if_a, 4);
	flush_uplinks(f);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 4, 4 * out.len, 4);
	assert_int_equal(f->skel->bss->uplink_cache_lost, 0);
}

/*
 * The host takes over a flow's tuple (its own packet leaves the uplink
 * with it): from then on what arrives is not the VM's, cached or not; what
 * arrived before still is.
 */
static void test_uplink_cache_host_takeover(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40003, 7);
	struct tf_uplink_value u;
	struct tf_flow_value v;
	struct pkt out, in;
	__u32 gen;

	NEED_ENV();
	udp4(&out, TX, 40003, 7, 30);
	udp4(&in, RX, 40003, 7, 50);
	run_uplink(f, true, &out, (__u32)if_a, 2);
	run_uplink(f, false, &in, 0, 3);	/* cached: pending */
	gen = f->skel->bss->tf_uplink_gen;
	run_uplink(f, true, &out, 0, 1);	/* the host's own packet */
	assert_int_not_equal(f->skel->bss->tf_uplink_gen, gen);
	assert_false(f->flows_percpu);
	assert_int_equal(bpf_map_lookup_elem(f->uplink_fd, &k, &u), 0);
	assert_true(u.nat.flags & TF_NAT_HOST);
	run_uplink(f, false, &in, 0, 5);	/* the host's replies */
	flush_uplinks(f);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 2, 2 * out.len, 2);
	assert_dir_eq(v.rx, 3, 3 * in.len, 3);
}

/*
 * A poll runs the flush only where packets are pending: on no CPU while
 * none are, then on each CPU that counted some, alone, and every count is
 * then in the entry.
 */
static void test_uplink_cache_only_pending_cpus(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40005, 7);
	int cpus[2] = { 0, ncpus - 1 };
	struct tf_flow_value v;
	struct pkt out;

	NEED_ENV();
	udp4(&out, TX, 40005, 7, 30);
	assert_int_equal(pending_cpus(f), 0);
	assert_int_equal(flush_uplinks(f), 0);
	for (int i = 0; i < (ncpus > 1 ? 2 : 1); i++) {
		pin(cpus[i]);
		/* The entry made or counted, the slot filled, then pending. */
		run_uplink(f, true, &out, (__u32)if_a, 4);
		assert_int_equal(pending_cpus(f), 1ULL << cpus[i]);
		assert_int_equal(flush_uplinks(f), 1);
		assert_int_equal(pending_cpus(f), 0);
		v = uplink_of(f, &k);
		assert_dir_eq(v.tx, 4 * (i + 1), 4 * (i + 1) * out.len, 4 * (i + 1));
		assert_int_equal(flush_uplinks(f), 0);
	}
	assert_int_equal(f->skel->bss->uplink_cache_lost, 0);
}

/*
 * Packets that land between the read of the slots and the flush: on a CPU
 * read with packets pending, the flush takes them along; on a CPU read
 * idle, they wait in its slot for the next poll's read. Every packet
 * counted before the read is in the entry after the flush, and each one
 * is counted once.
 */
static void test_uplink_cache_between_read_and_flush(void **state)
{
	struct fixture *f = *state;
	struct tf_flow_key k = key_ip(if_b, 4, 17, 40006, 7);
	int last = ncpus - 1;
	struct tf_percpu_cache pc;
	struct tf_flow_value v;
	bool *cpus;
	struct pkt out;

	NEED_ENV();
	if (ncpus < 2)
		skip();
	cpus = calloc((size_t)ncpus, sizeof(*cpus));
	assert_non_null(cpus);
	udp4(&out, TX, 40006, 7, 30);
	run_uplink(f, true, &out, (__u32)if_a, 4);	/* CPU 0: 1 + 1 in the entry, 2 pending */
	tf_uplink_cache_of(f->skel, ncpus, &pc);
	assert_int_equal(tf_cache_pending_cpus(&pc, cpus), 0);
	assert_true(cpus[0]);
	assert_false(cpus[last]);
	run_uplink(f, true, &out, (__u32)if_a, 3);	/* CPU 0 after the read: pending */
	pin(last);
	run_uplink(f, true, &out, (__u32)if_a, 3);	/* 1 in the entry (map path), 2 pending */
	assert_int_equal(tf_run_on_cpus(pc.flush_fd, cpus, ncpus), 1);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 4 + 3 + 1, 8 * out.len, 8);
	assert_int_equal(pending_cpus(f), 1ULL << last);
	/* The next poll. */
	assert_int_equal(flush_uplinks(f), 1);
	v = uplink_of(f, &k);
	assert_dir_eq(v.tx, 10, 10 * out.len, 10);
	assert_int_equal(pending_cpus(f), 0);
	assert_int_equal(f->skel->bss->uplink_cache_lost, 0);
	free(cpus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_udp4_both_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp4_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_tcp_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_last_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segs_and_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_taps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_only_programs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlan_offload_ctx_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_ext_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_ip_protocols, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_ethertype, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup_tiny_flows, teardown),
		cmocka_unit_test_setup_teardown(test_invariant_mix, setup_tiny_flows, teardown),
		cmocka_unit_test_setup_teardown(test_entries_created_by_program, setup_no_entries,
						teardown),
		cmocka_unit_test_setup_teardown(test_large_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_veth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_flush, setup_uplink, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_off, setup_uplink, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_many_flows, setup_uplink, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_expired, setup_uplink, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_host_takeover, setup_uplink,
						teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_harvested_busy, setup_uplink,
						teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_only_pending_cpus, setup_uplink,
						teardown),
		cmocka_unit_test_setup_teardown(test_uplink_cache_between_read_and_flush,
						setup_uplink, teardown),
	};
	int failed;

	libbpf_set_print(libbpf_print);
	copy_headers = false;
	failed = cmocka_run_group_tests_name("flows, headers read in place", tests, group_setup,
					     NULL);
	copy_headers = true;
	failed += cmocka_run_group_tests_name("flows, headers copied (bpf_skb_load_bytes)", tests,
					      group_setup, NULL);
	return failed;
}
