// SPDX-License-Identifier: GPL-2.0
/*
 * BPF_PROG_TEST_RUN tests of the TCP analysis on the taps
 * (bpf/tcp_analysis.h, include/tcp_state.h), loaded with .rodata
 * tf_tcp_on: crafted Ethernet/IP/TCP frames through tf_tap_ingress (sent
 * by the VM: tx, direction [1]) and tf_tap_egress (delivered to it: rx,
 * [0]), then the exact state in tcp_flows (looked up by the flow key the
 * flow path makes, and counted by iterating the map) and the per-CPU
 * tcp_taps, summed:
 *   - the handshake both ways (flags, syn_dir, handshake time, SYNs), with
 *     Linux's SYN options (the timestamps found by the option walk) and
 *     without timestamps (timed by seq/ack);
 *   - retransmissions (again, filling a hole, SYN and FIN sent again), and
 *     what is none (keep-alives, pure ACKs);
 *   - zero windows, resets, refused and unanswered connection attempts
 *     (connect_failures counted once);
 *   - RTT samples by TSval/TSecr and by seq/ack (Karn), their epoch,
 *     min/max and the tap's histogram bucket and sum;
 *   - SACK blocks before the timestamps, malformed option lists;
 *   - sequence numbers and TSvals across 2^32, flows first seen
 *     mid-connection, IPv6 and VLAN-tagged frames;
 *   - off (tf_tcp_on false) nothing, and a full tcp_flows counted.
 *
 * Everything runs twice, as in test_flows.c: the flow path reading the
 * headers in place, then copying every header (.rodata
 * tf_test_copy_headers, as for non-linear skbs): the analysis gets its
 * header position from either and must come to the same state.
 *
 * RTTs are the time between two test runs: only > 0 is known, but where
 * two figures come from the same two clock readings they are compared
 * exactly.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "tapflow.h"
#include "tapflow.skel.h"
#include "netns_fixture.h"

#define TC_ACT_UNSPEC (-1)

#define DEV_A "tftcp0"
#define DEV_B "tftcp1"

#define TX true		/* tf_tap_ingress: sent by the VM, dir [1] */
#define RX false	/* tf_tap_egress: delivered to the VM, dir [0] */

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

static char skip_reason[256];
static int if_a, if_b;
static int ncpus;
static bool copy_headers;	/* this group: tf_test_copy_headers */

struct fixture {
	struct tapflow_bpf *skel;
	int flows_fd, tcp_fd, taps_fd;
	int tap_fd[2];		/* [TX] tf_tap_ingress, [RX] tf_tap_egress */
};

/* ---- frames -------------------------------------------------------- */

static const uint8_t mac_vm[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t mac_peer[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t vm4[4] = { 10, 99, 0, 1 };
static const uint8_t peer4[4] = { 10, 99, 0, 2 };
static const uint8_t vm6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t peer6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 };

/* A connection of the VM: the frames' addresses and the flow's key. */
struct conn {
	int fam;		/* 4 or 6 */
	uint16_t vlan;		/* an in-packet 802.1Q tag; 0: none */
	uint16_t vm_port, peer_port;
};

/* TCP options, as many bytes as the header carries (a multiple of 4). */
struct opts {
	uint8_t b[40];
	size_t len;
};

/* One segment: what differs between the frames of a test. */
struct seg {
	uint32_t seq, ack;
	uint8_t flags;
	bool win0;		/* a zero window; else 64240 */
	size_t len;		/* payload bytes */
	struct opts o;
};

struct pkt {
	uint8_t b[2048];
	size_t len;
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

static void set16(struct pkt *p, size_t off, uint16_t v)
{
	p->b[off] = (uint8_t)(v >> 8);
	p->b[off + 1] = (uint8_t)v;
}

static void o8(struct opts *o, uint8_t v)
{
	assert_true(o->len < sizeof(o->b));
	o->b[o->len++] = v;
}

static void o32(struct opts *o, uint32_t v)
{
	o8(o, (uint8_t)(v >> 24));
	o8(o, (uint8_t)(v >> 16));
	o8(o, (uint8_t)(v >> 8));
	o8(o, (uint8_t)v);
}

static void o_tsopt(struct opts *o, uint32_t tsval, uint32_t tsecr)
{
	o8(o, 8);
	o8(o, 10);
	o32(o, tsval);
	o32(o, tsecr);
}

/*
 * A Linux SYN's options, in its order: MSS, SACK permitted, timestamps,
 * NOP, window scale. They do not start with NOP NOP TS: the walk finds
 * the timestamps at byte 8.
 */
static struct opts o_syn(uint32_t tsval, uint32_t tsecr)
{
	struct opts o = {};

	o8(&o, 2), o8(&o, 4), o8(&o, 0x05), o8(&o, 0xb4);
	o8(&o, 4), o8(&o, 2);
	o_tsopt(&o, tsval, tsecr);
	o8(&o, 1);
	o8(&o, 3), o8(&o, 3), o8(&o, 7);
	assert_int_equal(o.len, 20);
	return o;
}

/* A SYN without timestamps: MSS, NOP, window scale, NOP, NOP, SACK permitted. */
static struct opts o_syn_nots(void)
{
	struct opts o = {};

	o8(&o, 2), o8(&o, 4), o8(&o, 0x05), o8(&o, 0xb4);
	o8(&o, 1);
	o8(&o, 3), o8(&o, 3), o8(&o, 7);
	o8(&o, 1), o8(&o, 1);
	o8(&o, 4), o8(&o, 2);
	return o;
}

/* A data segment's usual options: NOP NOP TS (the analysis' fast path). */
static struct opts o_ts(uint32_t tsval, uint32_t tsecr)
{
	struct opts o = {};

	o8(&o, 1), o8(&o, 1);
	o_tsopt(&o, tsval, tsecr);
	return o;
}

/* NOP NOP SACK with `blocks` blocks, then NOP NOP TS: 40 bytes with 3 blocks. */
static struct opts o_sack_ts(int blocks, uint32_t tsval, uint32_t tsecr)
{
	struct opts o = {};

	o8(&o, 1), o8(&o, 1);
	o8(&o, 5), o8(&o, (uint8_t)(2 + 8 * blocks));
	for (int i = 0; i < blocks; i++) {
		o32(&o, 0x10000 + 0x1000 * (uint32_t)i);
		o32(&o, 0x10800 + 0x1000 * (uint32_t)i);
	}
	o8(&o, 1), o8(&o, 1);
	o_tsopt(&o, tsval, tsecr);
	return o;
}

/* The Ethernet frame of segment s of connection c, sent by the VM if tx. */
static void seg_frame(struct pkt *p, const struct conn *c, bool tx, const struct seg *s)
{
	uint16_t ethertype = c->fam == 4 ? 0x0800 : 0x86dd;
	size_t l3;

	assert_int_equal(s->o.len % 4, 0);
	memset(p, 0, sizeof(*p));
	putn(p, tx ? mac_peer : mac_vm, 6);
	putn(p, tx ? mac_vm : mac_peer, 6);
	if (c->vlan) {
		put16(p, 0x8100);
		put16(p, c->vlan);
	}
	put16(p, ethertype);
	l3 = p->len;
	if (c->fam == 4) {
		put8(p, 0x45);
		put8(p, 0);
		put16(p, 0);		/* tot_len, below */
		put16(p, 0x4242);
		put16(p, 0x4000);	/* DF */
		put8(p, 64);
		put8(p, 6);
		put16(p, 0);
		putn(p, tx ? vm4 : peer4, 4);
		putn(p, tx ? peer4 : vm4, 4);
	} else {
		put32(p, 0x60000000);
		put16(p, 0);		/* payload_len, below */
		put8(p, 6);
		put8(p, 64);
		putn(p, tx ? vm6 : peer6, 16);
		putn(p, tx ? peer6 : vm6, 16);
	}
	put16(p, tx ? c->vm_port : c->peer_port);
	put16(p, tx ? c->peer_port : c->vm_port);
	put32(p, s->seq);
	put32(p, s->ack);
	put8(p, (uint8_t)((5 + s->o.len / 4) << 4));
	put8(p, s->flags);
	put16(p, s->win0 ? 0 : 64240);
	put16(p, 0);
	put16(p, 0);
	putn(p, s->o.b, s->o.len);
	for (size_t i = 0; i < s->len; i++)
		put8(p, (uint8_t)(0xa0 + i));
	if (c->fam == 4)
		set16(p, l3 + 2, (uint16_t)(p->len - l3));
	else
		set16(p, l3 + 4, (uint16_t)(p->len - l3 - 40));
}

static struct tf_flow_key key_of(const struct conn *c)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = (__u32)if_a;
	k.vlan = c->vlan;
	k.family = (__u8)c->fam;
	k.proto = 6;
	k.ethertype = c->fam == 4 ? 0x0800 : 0x86dd;
	if (c->fam == 4) {
		memcpy(k.local_ip, vm4, 4);
		memcpy(k.remote_ip, peer4, 4);
	} else {
		memcpy(k.local_ip, vm6, 16);
		memcpy(k.remote_ip, peer6, 16);
	}
	k.local_port = c->vm_port;
	k.remote_port = c->peer_port;
	return k;
}

/* ---- running and reading ------------------------------------------- */

static void run_frame(const struct fixture *f, bool tx, const struct pkt *p)
{
	struct __sk_buff ctx;
	__u32 retval = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (__u32)if_a;
	assert_int_equal(tf_test_run_tc(f->tap_fd[tx], p->b, p->len, &ctx, 1, &retval), 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
}

/* Segment s of connection c through the tap program of direction tx. */
static void send_seg(const struct fixture *f, const struct conn *c, bool tx, struct seg s)
{
	struct pkt p;

	seg_frame(&p, c, tx, &s);
	run_frame(f, tx, &p);
}

/* Entries of a hash map whose keys are struct tf_flow_key. */
static int n_keys(int fd)
{
	struct tf_flow_key k, next;
	void *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		n++;
		k = next;
		prev = &k;
	}
	assert_int_equal(errno, ENOENT);
	return n;
}

static int n_tcp(const struct fixture *f)
{
	return n_keys(f->tcp_fd);
}

/* The TCP state of connection c; fails the test if it has none. */
static struct tf_tcp_flow tcp_of(const struct fixture *f, const struct conn *c)
{
	struct tf_flow_key k = key_of(c);
	struct tf_tcp_flow v;

	if (bpf_map_lookup_elem(f->tcp_fd, &k, &v)) {
		print_message("# no TCP state for fam %d vlan %u port %u -> %u: %s\n", c->fam,
			      c->vlan, c->vm_port, c->peer_port, strerror(errno));
		fail();
	}
	return v;
}

/* The first key of a map of struct tf_flow_key keys; fails the test if it is empty. */
static struct tf_flow_key first_key(int fd)
{
	struct tf_flow_key k;

	assert_int_equal(bpf_map_get_next_key(fd, NULL, &k), 0);
	return k;
}

/*
 * One flow, and its TCP state under the very key the flow path made (the
 * reports find one by the other), which is connection c's.
 */
static void assert_same_key(const struct fixture *f, const struct conn *c)
{
	struct tf_flow_key flow, tcp, want = key_of(c);

	assert_int_equal(n_keys(f->flows_fd), 1);
	assert_int_equal(n_tcp(f), 1);
	flow = first_key(f->flows_fd);
	tcp = first_key(f->tcp_fd);
	assert_memory_equal(&tcp, &flow, sizeof(flow));
	assert_memory_equal(&tcp, &want, sizeof(want));
}

static bool has_tcp(const struct fixture *f, const struct conn *c)
{
	struct tf_flow_key k = key_of(c);
	struct tf_tcp_flow v;

	return bpf_map_lookup_elem(f->tcp_fd, &k, &v) == 0;
}

/* if_a's tcp_taps entry summed over the CPUs (every field a __u64); zero if none. */
static struct tf_tcp_tap tap_of(const struct fixture *f, bool *exists)
{
	struct tf_tcp_tap *v = calloc((size_t)ncpus, sizeof(*v)), sum;
	__u32 key = (__u32)if_a;

	_Static_assert(sizeof(sum) % sizeof(__u64) == 0, "an array of __u64");
	assert_non_null(v);
	memset(&sum, 0, sizeof(sum));
	if (exists)
		*exists = false;
	if (!bpf_map_lookup_elem(f->taps_fd, &key, v)) {
		if (exists)
			*exists = true;
		for (int c = 0; c < ncpus; c++)
			for (size_t i = 0; i < sizeof(sum) / sizeof(__u64); i++)
				((__u64 *)&sum)[i] += ((const __u64 *)&v[c])[i];
	}
	free(v);
	return sum;
}

/* The histogram bucket of an RTT, as include/tcp_state.h defines them. */
static unsigned int bucket_of(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned int b = 0;

	for (; us; us >>= 1)
		b++;
	return b < TF_TCP_HIST_BUCKETS ? b : TF_TCP_HIST_BUCKETS - 1;
}

static uint64_t hist_total(const struct tf_tcp_tap *t, int side)
{
	uint64_t n = 0;

	for (int b = 0; b < TF_TCP_HIST_BUCKETS; b++)
		n += t->rtt_hist[side][b];
	return n;
}

/* An RTT side with exactly one sample: min = max = sum, this epoch's too. */
static void assert_one_sample(const struct tf_tcp_rtt *r)
{
	assert_int_equal(r->count, 1);
	assert_true(r->sum_ns > 0);
	assert_int_equal(r->min_ns, r->sum_ns);
	assert_int_equal(r->max_ns, r->sum_ns);
	assert_int_equal(r->ep_min_ns, r->sum_ns);
	assert_int_equal(r->ep_max_ns, r->sum_ns);
}

static void assert_no_sample(const struct tf_tcp_rtt *r)
{
	assert_int_equal(r->count, 0);
	assert_int_equal(r->sum_ns, 0);
	assert_int_equal(r->min_ns, 0);
	assert_int_equal(r->max_ns, 0);
}

/*
 * The tap's RTT figures of a test with one flow: its samples, in the
 * histogram bucket of each when there is one.
 */
static void assert_tap_rtt(const struct tf_tcp_tap *t, const struct tf_tcp_flow *st)
{
	for (int s = 0; s < TF_TCP_SIDES; s++) {
		assert_int_equal(hist_total(t, s), st->rtt[s].count);
		assert_int_equal(t->rtt_sum_ns[s], st->rtt[s].sum_ns);
		if (st->rtt[s].count == 1)
			assert_int_equal(t->rtt_hist[s][bucket_of(st->rtt[s].sum_ns)], 1);
	}
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

static int setup_opts(void **state, bool tcp_on, __u32 tcp_max)
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
	f->skel->rodata->tf_tcp_on = tcp_on;
	f->skel->rodata->tf_test_copy_headers = copy_headers;
	if (tcp_max && bpf_map__set_max_entries(f->skel->maps.tcp_flows, tcp_max))
		goto fail;
	if (tapflow_bpf__load(f->skel)) {
		print_message("# tapflow_bpf__load: %s\n", strerror(errno));
		goto fail;
	}
	f->flows_fd = bpf_map__fd(f->skel->maps.flows);
	f->tcp_fd = bpf_map__fd(f->skel->maps.tcp_flows);
	f->taps_fd = bpf_map__fd(f->skel->maps.tcp_taps);
	f->tap_fd[TX] = bpf_program__fd(f->skel->progs.tf_tap_ingress);
	f->tap_fd[RX] = bpf_program__fd(f->skel->progs.tf_tap_egress);
	*state = f;
	return 0;
fail:
	tapflow_bpf__destroy(f->skel);
	free(f);
	return -1;
}

static int setup(void **state)
{
	return setup_opts(state, true, 0);
}

static int setup_off(void **state)
{
	return setup_opts(state, false, 0);
}

static int setup_one_state(void **state)
{
	return setup_opts(state, true, 1);
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

/* Nothing was lost, and the flow path parsed every frame. */
static void assert_clean(const struct fixture *f)
{
	assert_int_equal(f->skel->bss->tcp_flow_map_full, 0);
	assert_int_equal(f->skel->bss->parse_errors, 0);
	assert_int_equal(f->skel->bss->flow_map_full, 0);
}

/* ---- tests: the handshake ------------------------------------------ */

/*
 * The VM connects out with Linux's options: SYN, SYN-ACK, ACK. The SYN's
 * and SYN-ACK's timestamps come from the option walk, and each is timed:
 * the SYN until the SYN-ACK echoes it (outside), the SYN-ACK until the
 * VM's ACK echoes it (inside). The handshake and the outside sample are
 * the same two clock readings.
 */
static void test_handshake_out(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40000, 443 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;
	bool exists;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(100, 0) });
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, TF_TCPF_SYN);
	assert_int_equal(st.syn_dir, 1);
	assert_true(st.syn_ns > 0);
	assert_int_equal(st.handshake_ns, 0);
	assert_int_equal(st.dir[1].ts_val, 100);
	assert_int_equal(st.dir[1].ts_ns, st.syn_ns);
	assert_int_equal(st.dir[1].nxt, 1001);

	send_seg(f, &c, RX, (struct seg){ .seq = 5000, .ack = 1001, .flags = SYN | ACK,
					  .o = o_syn(7000, 100) });
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK,
					  .o = o_ts(101, 7000) });
	assert_same_key(f, &c);
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_ANSWERED);
	assert_int_equal(st.syn_dir, 1);
	assert_true(st.handshake_ns > 0);
	assert_int_equal(st.dir[1].syns, 1);
	assert_int_equal(st.dir[0].syns, 0);
	assert_int_equal(st.dir[1].nxt, 1001);
	assert_int_equal(st.dir[0].nxt, 5001);
	assert_int_equal(st.dir[1].flags, TF_TCPD_NXT | TF_TCPD_TS);
	assert_int_equal(st.dir[0].flags, TF_TCPD_NXT | TF_TCPD_TS);
	assert_int_equal(st.dir[1].ts_last, 101);
	assert_int_equal(st.dir[0].ts_last, 7000);
	assert_int_equal(st.dir[0].ts_val, 7000);
	assert_int_equal(st.dir[0].ts_ns, 0);	/* matched */
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_int_equal(st.dir[0].seq_ns, 0);	/* timestamps: seq/ack not used */
	assert_int_equal(st.dir[1].seq_ns, 0);
	assert_one_sample(&st.rtt[TF_TCP_OUTSIDE]);
	assert_one_sample(&st.rtt[TF_TCP_INSIDE]);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].sum_ns, st.handshake_ns);
	for (int d = 0; d < 2; d++) {
		assert_int_equal(st.dir[d].retrans, 0);
		assert_int_equal(st.dir[d].zero_win, 0);
		assert_int_equal(st.dir[d].resets, 0);
	}
	t = tap_of(f, &exists);
	assert_true(exists);
	assert_tap_rtt(&t, &st);
	for (int d = 0; d < 2; d++) {
		assert_int_equal(t.connect_failures[d], 0);
		assert_int_equal(t.retrans[d], 0);
		assert_int_equal(t.resets[d], 0);
		assert_int_equal(t.zero_win[d], 0);
	}
	assert_clean(f);
}

/*
 * A peer connects to the VM, without timestamps: timed by seq/ack. The
 * SYN delivered to the VM until its SYN-ACK is inside, the SYN-ACK until
 * the peer's ACK outside.
 */
static void test_handshake_in_no_ts(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 22, 51000 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	NEED_ENV();
	send_seg(f, &c, RX, (struct seg){ .seq = 7000, .flags = SYN, .o = o_syn_nots() });
	st = tcp_of(f, &c);
	assert_int_equal(st.syn_dir, 0);
	assert_int_equal(st.dir[0].seq_end, 7001);
	assert_int_equal(st.dir[0].seq_ns, st.syn_ns);
	assert_int_equal(st.dir[0].ts_ns, 0);
	send_seg(f, &c, TX, (struct seg){ .seq = 300, .ack = 7001, .flags = SYN | ACK,
					  .o = o_syn_nots() });
	send_seg(f, &c, RX, (struct seg){ .seq = 7001, .ack = 301, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_ANSWERED);
	assert_int_equal(st.syn_dir, 0);
	assert_true(st.handshake_ns > 0);
	assert_int_equal(st.dir[0].syns, 1);
	assert_int_equal(st.dir[1].syns, 0);
	assert_int_equal(st.dir[0].flags, TF_TCPD_NXT);
	assert_int_equal(st.dir[1].flags, TF_TCPD_NXT);
	assert_int_equal(st.dir[0].nxt, 7001);
	assert_int_equal(st.dir[1].nxt, 301);
	assert_int_equal(st.dir[0].seq_ns, 0);
	assert_int_equal(st.dir[1].seq_ns, 0);
	assert_one_sample(&st.rtt[TF_TCP_INSIDE]);
	assert_one_sample(&st.rtt[TF_TCP_OUTSIDE]);
	assert_int_equal(st.rtt[TF_TCP_INSIDE].sum_ns, st.handshake_ns);
	t = tap_of(f, NULL);
	assert_tap_rtt(&t, &st);
	assert_int_equal(t.connect_failures[0] + t.connect_failures[1], 0);
	assert_clean(f);
}

/*
 * TSvals are a random offset plus a clock (Linux since 4.10): half of the
 * flows start above 2^31, and a TSval that wraps past 2^32 is newer. The
 * first segment of each way is timed whatever its TSval.
 */
static void test_ts_high_and_wrapping(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40002, 443 };
	struct tf_tcp_flow st;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN,
					  .o = o_syn(0xfedcba98, 0) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_val, 0xfedcba98);
	assert_true(st.dir[1].ts_ns > 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 5000, .ack = 1001, .flags = SYN | ACK,
					  .o = o_syn(0x80000001, 0xfedcba98) });
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK,
					  .o = o_ts(0xfffffffe, 0x80000001) });
	st = tcp_of(f, &c);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 1);
	assert_int_equal(st.rtt[TF_TCP_INSIDE].count, 1);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].sum_ns, st.handshake_ns);
	/* The VM's clock wraps between two segments: the later one is timed. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK | PSH,
					  .len = 100, .o = o_ts(0x00000003, 0x80000001) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_val, 3);
	assert_int_equal(st.dir[1].ts_last, 3);
	assert_true(st.dir[1].ts_ns > 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 5001, .ack = 1101, .flags = ACK,
					  .o = o_ts(0x80000002, 3) });
	st = tcp_of(f, &c);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 2);
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_clean(f);
}

/* ---- retransmissions and windows ----------------------------------- */

/*
 * The VM's segments (no handshake seen): the same data again, a segment
 * filling a hole after a later one, a FIN sent again are retransmissions;
 * keep-alives (0 or 1 byte at nxt - 1) and pure ACKs, even with an old
 * sequence number, are not. The other direction counts none.
 */
static void test_retransmissions(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40003, 80 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK, .len = 100 });
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK, .len = 100 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 1);
	assert_int_equal(st.dir[1].nxt, 1100);
	/* 1100..1300 missing at the tap, then sent: it starts below nxt. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1300, .ack = 1, .flags = ACK, .len = 100 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 1);
	assert_int_equal(st.dir[1].nxt, 1400);
	send_seg(f, &c, TX, (struct seg){ .seq = 1100, .ack = 1, .flags = ACK, .len = 200 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 2);
	assert_int_equal(st.dir[1].nxt, 1400);
	/* Keep-alives, empty and of one byte, and pure ACKs: none. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1399, .ack = 1, .flags = ACK });
	send_seg(f, &c, TX, (struct seg){ .seq = 1399, .ack = 1, .flags = ACK, .len = 1 });
	send_seg(f, &c, TX, (struct seg){ .seq = 1400, .ack = 1, .flags = ACK });
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK });
	/* The peer only ACKs, including a duplicate. */
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1400, .flags = ACK });
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1400, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 2);
	assert_int_equal(st.dir[0].retrans, 0);
	assert_int_equal(st.dir[1].nxt, 1400);
	/* A FIN takes a sequence number: sent again, it starts below nxt. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1400, .ack = 1, .flags = FIN | ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].nxt, 1401);
	assert_int_equal(st.dir[1].retrans, 2);
	send_seg(f, &c, TX, (struct seg){ .seq = 1400, .ack = 1, .flags = FIN | ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 3);
	assert_int_equal(st.dir[0].retrans, 0);
	assert_int_equal(st.flags, 0);		/* no SYN seen */
	t = tap_of(f, NULL);
	assert_int_equal(t.retrans[1], 3);
	assert_int_equal(t.retrans[0], 0);
	assert_clean(f);
}

/* Zero windows on ACKs and data count, each way; on SYN, FIN and RST not. */
static void test_zero_window(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40004, 80 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .win0 = true });
	send_seg(f, &c, RX, (struct seg){ .seq = 5000, .ack = 1001, .flags = SYN | ACK,
					  .win0 = true });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[0].zero_win + st.dir[1].zero_win, 0);
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK, .win0 = true });
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK | PSH, .len = 10,
					  .win0 = true });
	send_seg(f, &c, TX, (struct seg){ .seq = 1011, .ack = 5001, .flags = ACK });
	send_seg(f, &c, TX, (struct seg){ .seq = 1011, .ack = 5001, .flags = FIN | ACK,
					  .win0 = true });
	send_seg(f, &c, RX, (struct seg){ .seq = 5001, .ack = 1012, .flags = ACK, .win0 = true });
	send_seg(f, &c, RX, (struct seg){ .seq = 5001, .flags = RST, .win0 = true });
	send_seg(f, &c, RX, (struct seg){ .seq = 5001, .ack = 1012, .flags = RST | ACK,
					  .win0 = true });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].zero_win, 2);
	assert_int_equal(st.dir[0].zero_win, 1);
	assert_int_equal(st.dir[0].resets, 2);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_ANSWERED);	/* not refused */
	t = tap_of(f, NULL);
	assert_int_equal(t.zero_win[1], 2);
	assert_int_equal(t.zero_win[0], 1);
	assert_int_equal(t.resets[0], 2);
	assert_int_equal(t.resets[1], 0);
	assert_int_equal(t.connect_failures[0] + t.connect_failures[1], 0);
	assert_clean(f);
}

/*
 * A 1-byte zero-window probe (BSD and Windows peers send one byte of new
 * data; Linux's carry none) while the VM's window is zero is not new data
 * yet: neither it nor the data later sent at its place, once the window
 * opened, is a retransmission (tshark counts them so). A probe's byte sent
 * again while the window is still zero is not one either; after the window
 * opened, the same byte sent again below nxt is.
 */
static void test_zero_window_probe(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40014, 80 };
	struct tf_tcp_flow st;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN });
	send_seg(f, &c, RX, (struct seg){ .seq = 5000, .ack = 1001, .flags = SYN | ACK });
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK });
	send_seg(f, &c, RX, (struct seg){ .seq = 5001, .ack = 1001, .flags = ACK | PSH, .len = 100 });
	/* The VM's receiver is full. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5101, .flags = ACK, .win0 = true });
	send_seg(f, &c, RX, (struct seg){ .seq = 5101, .ack = 1001, .flags = ACK, .len = 1 });
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5101, .flags = ACK, .win0 = true });
	send_seg(f, &c, RX, (struct seg){ .seq = 5101, .ack = 1001, .flags = ACK, .len = 1 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[0].retrans, 0);
	assert_int_equal(st.dir[0].nxt, 5101);
	assert_true(st.dir[1].flags & TF_TCPD_WIN0);
	/* The window opens: the data at the probe's place is new. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1001, .ack = 5101, .flags = ACK });
	send_seg(f, &c, RX, (struct seg){ .seq = 5101, .ack = 1001, .flags = ACK | PSH, .len = 100 });
	st = tcp_of(f, &c);
	assert_false(st.dir[1].flags & TF_TCPD_WIN0);
	assert_int_equal(st.dir[0].retrans, 0);
	assert_int_equal(st.dir[0].nxt, 5201);
	assert_int_equal(st.dir[1].zero_win, 2);
	/* Now the same byte again is a retransmission. */
	send_seg(f, &c, RX, (struct seg){ .seq = 5101, .ack = 1001, .flags = ACK, .len = 1 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[0].retrans, 1);
	assert_clean(f);
}

/* ---- failed connection attempts ------------------------------------ */

/*
 * A RST answers the VM's SYN: refused, a failure of the VM's attempts,
 * counted once however many RSTs come. A RST from the VM to a peer's SYN:
 * a failure of the attempts to the VM.
 */
static void test_refused(void **state)
{
	struct fixture *f = *state;
	struct conn out = { 4, 0, 40005, 8080 }, in = { 4, 0, 8443, 52000 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	NEED_ENV();
	send_seg(f, &out, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn_nots() });
	send_seg(f, &out, RX, (struct seg){ .seq = 0, .ack = 1001, .flags = RST | ACK,
					    .win0 = true });
	st = tcp_of(f, &out);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_REFUSED | TF_TCPF_FAILED);
	assert_int_equal(st.syn_dir, 1);
	assert_int_equal(st.handshake_ns, 0);
	assert_int_equal(st.dir[1].syns, 1);
	assert_int_equal(st.dir[0].resets, 1);
	assert_int_equal(st.dir[1].resets, 0);
	assert_int_equal(st.dir[0].zero_win, 0);
	t = tap_of(f, NULL);
	assert_int_equal(t.connect_failures[1], 1);
	assert_int_equal(t.connect_failures[0], 0);
	assert_int_equal(t.resets[0], 1);
	send_seg(f, &out, RX, (struct seg){ .seq = 0, .ack = 1001, .flags = RST | ACK });
	st = tcp_of(f, &out);
	assert_int_equal(st.dir[0].resets, 2);
	t = tap_of(f, NULL);
	assert_int_equal(t.connect_failures[1], 1);
	assert_int_equal(t.resets[0], 2);

	send_seg(f, &in, RX, (struct seg){ .seq = 9000, .flags = SYN, .o = o_syn(55, 0) });
	send_seg(f, &in, TX, (struct seg){ .seq = 0, .ack = 9001, .flags = RST | ACK });
	st = tcp_of(f, &in);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_REFUSED | TF_TCPF_FAILED);
	assert_int_equal(st.syn_dir, 0);
	assert_int_equal(st.dir[0].syns, 1);
	assert_int_equal(st.dir[1].resets, 1);
	t = tap_of(f, NULL);
	assert_int_equal(t.connect_failures[0], 1);
	assert_int_equal(t.connect_failures[1], 1);
	assert_int_equal(t.resets[1], 1);
	assert_int_equal(t.resets[0], 2);
	assert_int_equal(n_tcp(f), 2);
	assert_clean(f);
}

/*
 * The VM's SYN sent again (unanswered for the initial RTO): one failure,
 * however many SYNs follow, and a RST after them counts none more. Each
 * SYN sent again is a retransmission too. Answered after a SYN sent
 * again: the attempt still failed once.
 */
static void test_syn_unanswered(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40006, 443 }, late = { 4, 0, 40007, 443 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(10, 0) });
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, TF_TCPF_SYN);
	assert_int_equal(tap_of(f, NULL).connect_failures[1], 0);
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(1010, 0) });
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_FAILED);
	assert_int_equal(st.dir[1].syns, 2);
	assert_int_equal(st.dir[1].retrans, 1);
	t = tap_of(f, NULL);
	assert_int_equal(t.connect_failures[1], 1);
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(3010, 0) });
	send_seg(f, &c, RX, (struct seg){ .seq = 0, .ack = 1001, .flags = RST | ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_FAILED | TF_TCPF_REFUSED);
	assert_int_equal(st.dir[1].syns, 3);
	assert_int_equal(st.dir[1].retrans, 2);
	assert_int_equal(st.dir[0].resets, 1);
	t = tap_of(f, NULL);
	assert_int_equal(t.connect_failures[1], 1);
	assert_int_equal(t.connect_failures[0], 0);
	assert_int_equal(t.retrans[1], 2);

	send_seg(f, &late, TX, (struct seg){ .seq = 2000, .flags = SYN, .o = o_syn(20, 0) });
	send_seg(f, &late, TX, (struct seg){ .seq = 2000, .flags = SYN, .o = o_syn(1020, 0) });
	send_seg(f, &late, RX, (struct seg){ .seq = 8000, .ack = 2001, .flags = SYN | ACK,
					     .o = o_syn(500, 1020) });
	st = tcp_of(f, &late);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_FAILED | TF_TCPF_ANSWERED);
	assert_int_equal(st.dir[1].syns, 2);
	assert_true(st.handshake_ns > 0);
	/* The first SYN's TSval was timed, the SYN-ACK echoes the second: no sample. */
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 0);
	assert_int_equal(st.dir[1].ts_ns, 0);
	t = tap_of(f, NULL);
	assert_int_equal(t.connect_failures[1], 2);
	assert_clean(f);
}

/* ---- RTT ------------------------------------------------------------ */

/*
 * With timestamps: a segment is timed by its TSval (the first segment of
 * a clock tick) and by its end sequence, until its TSval is echoed or an
 * ACK covers it, whichever comes first; one segment at a time.
 */
static void test_rtt_timestamps(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40008, 443 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;
	uint64_t before;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_ts(500, 9000) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_val, 500);
	assert_true(st.dir[1].ts_ns > 0);
	assert_int_equal(st.dir[1].seq_ns, st.dir[1].ts_ns);
	assert_int_equal(st.dir[1].seq_end, 1100);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1100, .flags = ACK,
					  .o = o_ts(9001, 500) });
	st = tcp_of(f, &c);
	assert_one_sample(&st.rtt[TF_TCP_OUTSIDE]);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].epoch, 0);
	assert_no_sample(&st.rtt[TF_TCP_INSIDE]);
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_int_equal(st.dir[1].seq_ns, 0);

	/* The same TSval (same clock tick): timed by its end only, its ACK completes it. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1100, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_ts(500, 9001) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_true(st.dir[1].seq_ns > 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1200, .flags = ACK,
					  .o = o_ts(9002, 500) });
	st = tcp_of(f, &c);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 2);
	assert_int_equal(st.dir[1].seq_ns, 0);

	/*
	 * 501 timed, 502 not (one at a time). An older echo (of 500) that does
	 * not cover it keeps it waiting; 502 echoed (501 never will be: it was
	 * in the middle of a burst), but that ACK covers 501: a sample.
	 */
	send_seg(f, &c, TX, (struct seg){ .seq = 1200, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_ts(501, 9002) });
	send_seg(f, &c, TX, (struct seg){ .seq = 1300, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_ts(502, 9002) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_val, 501);
	assert_int_equal(st.dir[1].ts_last, 502);
	assert_int_equal(st.dir[1].seq_end, 1300);
	assert_true(st.dir[1].ts_ns > 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1200, .flags = ACK,
					  .o = o_ts(9003, 500) });
	st = tcp_of(f, &c);
	assert_true(st.dir[1].ts_ns > 0);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 2);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1400, .flags = ACK,
					  .o = o_ts(9003, 502) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_int_equal(st.dir[1].seq_ns, 0);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 3);

	/* A newer echo on an ACK that does not cover it: still timed by its end. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1400, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_ts(503, 9003) });
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1400, .flags = ACK,
					  .o = o_ts(9004, 504) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_true(st.dir[1].seq_ns > 0);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 3);
	/* An answer without timestamps covers it: a sample. */
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1500, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].seq_ns, 0);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 4);
	before = st.rtt[TF_TCP_OUTSIDE].sum_ns;

	/* A new epoch: its min and max are the new sample's; the flow's cover all. */
	f->skel->bss->tf_tcp_epoch = 7;
	send_seg(f, &c, TX, (struct seg){ .seq = 1500, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_ts(505, 9004) });
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1600, .flags = ACK,
					  .o = o_ts(9005, 505) });
	st = tcp_of(f, &c);
	{
		const struct tf_tcp_rtt *r = &st.rtt[TF_TCP_OUTSIDE];
		uint64_t last = r->sum_ns - before;

		assert_int_equal(r->count, 5);
		assert_true(last > 0);
		assert_int_equal(r->epoch, 7);
		assert_int_equal(r->ep_min_ns, last);
		assert_int_equal(r->ep_max_ns, last);
		assert_true(r->min_ns <= last && r->max_ns >= last);
		assert_true(r->min_ns * 5 <= r->sum_ns && r->max_ns * 5 >= r->sum_ns);
	}

	/* Inside: data delivered to the VM, echoed by the VM's ACK. */
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1600, .flags = ACK | PSH, .len = 50,
					  .o = o_ts(9010, 505) });
	send_seg(f, &c, TX, (struct seg){ .seq = 1600, .ack = 51, .flags = ACK,
					  .o = o_ts(506, 9010) });
	st = tcp_of(f, &c);
	assert_one_sample(&st.rtt[TF_TCP_INSIDE]);
	assert_int_equal(st.rtt[TF_TCP_INSIDE].epoch, 7);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 5);
	assert_int_equal(st.dir[0].retrans + st.dir[1].retrans, 0);
	t = tap_of(f, NULL);
	assert_tap_rtt(&t, &st);
	assert_clean(f);
}

/*
 * Without timestamps: by the end sequence, until an ACK covers it (a
 * partial one does not). A segment sent again while timed is not timed
 * (Karn): its ACK could be the copy's.
 */
static void test_rtt_seq_karn(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40009, 80 };
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK | PSH, .len = 100 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].seq_end, 1100);
	assert_true(st.dir[1].seq_ns > 0);
	/* The next segment is not timed while one is. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1100, .ack = 1, .flags = ACK | PSH, .len = 100 });
	assert_int_equal(tcp_of(f, &c).dir[1].seq_end, 1100);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1050, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 0);
	assert_true(st.dir[1].seq_ns > 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1100, .flags = ACK });
	st = tcp_of(f, &c);
	assert_one_sample(&st.rtt[TF_TCP_OUTSIDE]);
	assert_int_equal(st.dir[1].seq_ns, 0);

	/* Karn. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1200, .ack = 1, .flags = ACK | PSH, .len = 100 });
	assert_int_equal(tcp_of(f, &c).dir[1].seq_end, 1300);
	send_seg(f, &c, TX, (struct seg){ .seq = 1200, .ack = 1, .flags = ACK | PSH, .len = 100 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 1);
	assert_int_equal(st.dir[1].seq_ns, 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1300, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 1);

	/* Then timed again. */
	send_seg(f, &c, TX, (struct seg){ .seq = 1300, .ack = 1, .flags = ACK | PSH, .len = 100 });
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1400, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 2);
	assert_no_sample(&st.rtt[TF_TCP_INSIDE]);
	t = tap_of(f, NULL);
	assert_tap_rtt(&t, &st);
	assert_int_equal(t.retrans[1], 1);
	assert_clean(f);
}

/* ---- options -------------------------------------------------------- */

/*
 * SACK blocks before the timestamps (NOP NOP SACK ... NOP NOP TS), up to
 * the 40 bytes of options with three blocks: the walk finds them.
 */
static void test_sack_before_ts(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40010, 443 };
	struct tf_tcp_flow st;

	NEED_ENV();
	assert_int_equal(o_sack_ts(3, 0, 0).len, 40);
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_sack_ts(1, 700, 40) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].flags, TF_TCPD_NXT | TF_TCPD_TS);
	assert_int_equal(st.dir[1].ts_val, 700);
	assert_int_equal(st.dir[1].ts_last, 700);
	assert_true(st.dir[1].ts_ns > 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 1100, .flags = ACK,
					  .o = o_sack_ts(3, 41, 700) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[0].flags, TF_TCPD_TS);	/* no data: no nxt */
	assert_int_equal(st.dir[0].ts_last, 41);
	assert_one_sample(&st.rtt[TF_TCP_OUTSIDE]);
	send_seg(f, &c, TX, (struct seg){ .seq = 1100, .ack = 1, .flags = ACK | PSH, .len = 100,
					  .o = o_sack_ts(2, 701, 41) });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].ts_val, 701);
	assert_int_equal(st.dir[1].ts_last, 701);
	assert_clean(f);
}

/*
 * Option lists the walk must stop on without finding timestamps: an
 * option of length 0, an end-of-list before the timestamps, a TS option
 * running past the header. Segments without them: seq/ack timing.
 */
static void test_options_malformed(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40011, 443 };
	struct opts len0 = {}, eol = {}, past = {};
	struct tf_tcp_flow st;

	NEED_ENV();
	/* MSS of length 0, then a valid TS. */
	o8(&len0, 2), o8(&len0, 0), o8(&len0, 1), o8(&len0, 1);
	o_tsopt(&len0, 800, 0);
	o8(&len0, 1), o8(&len0, 1);
	/* NOP, EOL, then a TS that is no option any more. */
	o8(&eol, 1), o8(&eol, 0), o8(&eol, 1), o8(&eol, 1);
	o_tsopt(&eol, 801, 0);
	o8(&eol, 1), o8(&eol, 1);
	/* MSS, then TS of length 10 with 4 bytes of options left. */
	o8(&past, 2), o8(&past, 4), o8(&past, 0x05), o8(&past, 0xb4);
	o8(&past, 1), o8(&past, 1), o8(&past, 1), o8(&past, 1);
	o8(&past, 8), o8(&past, 10), o8(&past, 0), o8(&past, 0);
	assert_int_equal(len0.len % 4 + eol.len % 4 + past.len % 4, 0);

	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .ack = 1, .flags = ACK, .len = 10,
					  .o = len0 });
	send_seg(f, &c, TX, (struct seg){ .seq = 1010, .ack = 1, .flags = ACK, .len = 10,
					  .o = eol });
	send_seg(f, &c, TX, (struct seg){ .seq = 1020, .ack = 1, .flags = ACK, .len = 10,
					  .o = past });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].flags, TF_TCPD_NXT);
	assert_int_equal(st.dir[1].ts_last, 0);
	assert_int_equal(st.dir[1].ts_ns, 0);
	assert_int_equal(st.dir[1].nxt, 1030);
	assert_int_equal(st.dir[1].seq_end, 1010);	/* the first, by seq */
	assert_true(st.dir[1].seq_ns > 0);
	assert_int_equal(st.dir[1].retrans, 0);
	assert_clean(f);
}

/* ---- sequence space ------------------------------------------------- */

/*
 * Sequence numbers across 2^32: no false retransmission, nxt wraps, the
 * ACK past the wrap completes the sample of a segment before it, and a
 * segment sent again across the wrap is one.
 */
static void test_seq_wrap(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40012, 80 };
	struct tf_tcp_flow st;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 0xfffffa00, .ack = 1, .flags = ACK,
					  .len = 1000 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].nxt, 0xfffffde8);
	assert_int_equal(st.dir[1].seq_end, 0xfffffde8);
	send_seg(f, &c, TX, (struct seg){ .seq = 0xfffffde8, .ack = 1, .flags = ACK,
					  .len = 1000 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].nxt, 0x1d0);
	assert_int_equal(st.dir[1].retrans, 0);
	send_seg(f, &c, TX, (struct seg){ .seq = 0x1d0, .ack = 1, .flags = ACK, .len = 1000 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].nxt, 0x5b8);
	assert_int_equal(st.dir[1].retrans, 0);
	/* Acked past the wrap: covers the timed segment that ended before it. */
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 0x1d0, .flags = ACK });
	st = tcp_of(f, &c);
	assert_one_sample(&st.rtt[TF_TCP_OUTSIDE]);
	assert_int_equal(st.dir[1].seq_ns, 0);
	/* Timed after the wrap, acked. */
	send_seg(f, &c, TX, (struct seg){ .seq = 0x5b8, .ack = 1, .flags = ACK, .len = 100 });
	assert_int_equal(tcp_of(f, &c).dir[1].seq_end, 0x61c);
	send_seg(f, &c, RX, (struct seg){ .seq = 1, .ack = 0x61c, .flags = ACK });
	assert_int_equal(tcp_of(f, &c).rtt[TF_TCP_OUTSIDE].count, 2);
	/* The segment across the wrap, sent again. */
	send_seg(f, &c, TX, (struct seg){ .seq = 0xfffffde8, .ack = 1, .flags = ACK,
					  .len = 1000 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 1);
	assert_int_equal(st.dir[1].nxt, 0x61c);
	assert_clean(f);
}

/*
 * A flow first seen mid-connection (the analysis started late, or its
 * state was made again): its first segment is no retransmission whatever
 * its sequence number; that segment sent again is one.
 */
static void test_midstream(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40013, 80 };
	struct tf_tcp_flow st;

	NEED_ENV();
	assert_int_equal(n_tcp(f), 0);
	send_seg(f, &c, RX, (struct seg){ .seq = 0x12345678, .ack = 0x8badf00d, .flags = ACK });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[0].flags, 0);	/* nothing sent yet: no nxt */
	send_seg(f, &c, TX, (struct seg){ .seq = 0x8badf00d, .ack = 0x12345678,
					  .flags = ACK | PSH, .len = 300 });
	assert_int_equal(n_tcp(f), 1);
	st = tcp_of(f, &c);
	assert_int_equal(st.flags, 0);
	assert_int_equal(st.syn_ns, 0);
	assert_int_equal(st.dir[1].flags, TF_TCPD_NXT);
	assert_int_equal(st.dir[1].nxt, 0x8badf00d + 300);
	assert_int_equal(st.dir[1].retrans, 0);
	assert_int_equal(st.dir[1].syns + st.dir[0].syns, 0);
	send_seg(f, &c, TX, (struct seg){ .seq = 0x8badf00d, .ack = 0x12345678,
					  .flags = ACK | PSH, .len = 300 });
	st = tcp_of(f, &c);
	assert_int_equal(st.dir[1].retrans, 1);
	assert_int_equal(st.dir[0].retrans, 0);
	assert_int_equal(tap_of(f, NULL).retrans[1], 1);
	assert_clean(f);
}

/* ---- frames the flow path parses in full ---------------------------- */

/* A connection's life for the IPv6 and VLAN tests: the same state either way. */
static void life(const struct fixture *f, const struct conn *c)
{
	struct tf_tcp_flow st;
	struct tf_tcp_tap t;

	send_seg(f, c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(100, 0) });
	send_seg(f, c, RX, (struct seg){ .seq = 5000, .ack = 1001, .flags = SYN | ACK,
					 .o = o_syn(7000, 100) });
	send_seg(f, c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK,
					 .o = o_ts(101, 7000) });
	send_seg(f, c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK | PSH,
					 .len = 200, .o = o_ts(102, 7000) });
	send_seg(f, c, TX, (struct seg){ .seq = 1001, .ack = 5001, .flags = ACK | PSH,
					 .len = 200, .o = o_ts(110, 7000) });
	send_seg(f, c, RX, (struct seg){ .seq = 5001, .ack = 1201, .flags = ACK, .win0 = true,
					 .o = o_ts(7001, 110) });
	st = tcp_of(f, c);
	assert_int_equal(st.flags, TF_TCPF_SYN | TF_TCPF_ANSWERED);
	assert_int_equal(st.syn_dir, 1);
	assert_true(st.handshake_ns > 0);
	assert_int_equal(st.dir[1].syns, 1);
	assert_int_equal(st.dir[1].nxt, 1201);
	assert_int_equal(st.dir[0].nxt, 5001);
	assert_int_equal(st.dir[1].retrans, 1);
	assert_int_equal(st.dir[0].retrans, 0);
	assert_int_equal(st.dir[0].zero_win, 1);
	/* The SYN and the SYN-ACK; 102's echo never came (110's did). */
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].count, 1);
	assert_int_equal(st.rtt[TF_TCP_INSIDE].count, 1);
	assert_int_equal(st.rtt[TF_TCP_OUTSIDE].sum_ns, st.handshake_ns);
	assert_int_equal(st.dir[1].ts_ns, 0);
	t = tap_of(f, NULL);
	assert_tap_rtt(&t, &st);
	assert_int_equal(t.retrans[1], 1);
	assert_int_equal(t.zero_win[0], 1);
	assert_same_key(f, c);
	assert_clean(f);
}

static void test_ipv4_life(void **state)
{
	struct conn c = { 4, 0, 40014, 443 };

	NEED_ENV();
	life(*state, &c);
}

static void test_ipv6(void **state)
{
	struct conn c = { 6, 0, 40015, 443 };

	NEED_ENV();
	life(*state, &c);
}

static void test_vlan(void **state)
{
	struct conn c = { 4, 100, 40016, 443 };

	NEED_ENV();
	life(*state, &c);
}

/* Not TCP, or no TCP header in the frame: no state. */
static void test_not_analysed(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40017, 80 };
	struct pkt p;

	NEED_ENV();
	/* A later fragment of a TCP segment: no header to read (IPv4 at 14). */
	seg_frame(&p, &c, TX, &(struct seg){ .seq = 1, .flags = ACK, .len = 100 });
	set16(&p, 14 + 6, 0x0010);	/* fragment offset 16 * 8, DF off */
	run_frame(f, TX, &p);
	/* UDP: the same frame with protocol 17 (a UDP header of the ports). */
	seg_frame(&p, &c, TX, &(struct seg){ .seq = 1, .flags = ACK, .len = 100 });
	p.b[14 + 9] = 17;
	set16(&p, 14 + 20 + 4, (uint16_t)(p.len - 14 - 20));
	run_frame(f, TX, &p);
	assert_int_equal(n_keys(f->flows_fd), 2);
	assert_int_equal(n_tcp(f), 0);
	assert_false(has_tcp(f, &c));
	assert_clean(f);
}

/* ---- off, full ------------------------------------------------------ */

/* tf_tcp_on false: flows are counted, the TCP maps stay empty. */
static void test_off(void **state)
{
	struct fixture *f = *state;
	struct conn c = { 4, 0, 40018, 443 };
	bool exists;

	NEED_ENV();
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(100, 0) });
	send_seg(f, &c, RX, (struct seg){ .seq = 0, .ack = 1001, .flags = RST | ACK });
	send_seg(f, &c, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(100, 0) });
	assert_int_equal(n_keys(f->flows_fd), 1);
	assert_int_equal(n_tcp(f), 0);
	tap_of(f, &exists);
	assert_false(exists);
	assert_clean(f);
}

/*
 * tcp_flows full (one entry): a second flow's segments get no state and
 * are counted in tcp_flow_map_full; the first flow carries on.
 */
static void test_state_map_full(void **state)
{
	struct fixture *f = *state;
	struct conn a = { 4, 0, 40019, 443 }, b = { 4, 0, 40020, 443 };

	NEED_ENV();
	send_seg(f, &a, TX, (struct seg){ .seq = 1000, .flags = SYN, .o = o_syn(100, 0) });
	send_seg(f, &b, TX, (struct seg){ .seq = 2000, .flags = SYN, .o = o_syn(200, 0) });
	send_seg(f, &b, TX, (struct seg){ .seq = 2000, .flags = SYN, .o = o_syn(300, 0) });
	send_seg(f, &a, RX, (struct seg){ .seq = 5000, .ack = 1001, .flags = SYN | ACK,
					  .o = o_syn(7000, 100) });
	assert_int_equal(n_keys(f->flows_fd), 2);
	assert_int_equal(n_tcp(f), 1);
	assert_false(has_tcp(f, &b));
	assert_int_equal(f->skel->bss->tcp_flow_map_full, 2);
	assert_int_equal(tcp_of(f, &a).flags, TF_TCPF_SYN | TF_TCPF_ANSWERED);
	assert_int_equal(tap_of(f, NULL).connect_failures[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_in_no_ts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ts_high_and_wrapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retransmissions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_window_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syn_unanswered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtt_timestamps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtt_seq_karn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sack_before_ts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_options_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_midstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_life, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_analysed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off, setup_off, teardown),
		cmocka_unit_test_setup_teardown(test_state_map_full, setup_one_state, teardown),
	};
	int failed;

	copy_headers = false;
	failed = cmocka_run_group_tests_name("tcp analysis, headers read in place", tests,
					     group_setup, NULL);
	copy_headers = true;
	failed += cmocka_run_group_tests_name("tcp analysis, headers copied (bpf_skb_load_bytes)",
					      tests, group_setup, NULL);
	return failed;
}
