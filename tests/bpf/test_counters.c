// SPDX-License-Identifier: GPL-2.0
/*
 * BPF_PROG_TEST_RUN tests of the TC counting programs (bpf/tapflow.bpf.c):
 * crafted frames through tf_ingress/tf_egress, exact packets/bytes/segs in
 * the per-CPU interface counters (an if_counters slot, or if_spill; read
 * as tapflow reads them, src/ifcounters.c), TC_ACT_UNSPEC for every frame,
 * and the map_full loss counter.
 *
 * The test runs in a network namespace of its own (unshare(CLONE_NEWNET) in
 * the group setup) with a veth pair, because the kernel's test run
 * needs ctx_in.ifindex to name a device of the caller's namespace. The
 * namespace goes away with the process: nothing to clean up on the host.
 *
 * Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for unshare); skipped
 * with the reason otherwise.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "ifcounters.h"
#include "tapflow.h"
#include "tapflow.skel.h"
#include "netns_fixture.h"

#define TC_ACT_UNSPEC (-1)

/* A veth pair in the test's own namespace; lo (1) is the third device. */
#define DEV_A "tfcnt0"
#define DEV_B "tfcnt1"
/* A veth pair whose first device has if_a's counters slot (if_a + TF_IF_SLOTS). */
#define DEV_C "tfcnt2"
#define DEV_D "tfcnt3"

static char skip_reason[256];
static char skip_same_slot[256];
static int if_a, if_b, if_c;
static int ncpus;

/* Per test: a freshly loaded skeleton, entries created for if_a and if_b. */
struct fixture {
	struct tapflow_bpf *skel;
	struct tf_ifc ifc;
	int prog_fd[TF_HOOK_DIRS];
};

/* ---- frames -------------------------------------------------------- */

static const uint8_t mac_vm[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t mac_peer[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };

static size_t put_eth(uint8_t *p, uint16_t type)
{
	uint16_t t = htons(type);

	memcpy(p, mac_peer, 6);
	memcpy(p + 6, mac_vm, 6);
	memcpy(p + 12, &t, 2);
	return 14;
}

static size_t put_vlan(uint8_t *p, uint16_t tpid_next, uint16_t vid)
{
	uint16_t tci = htons(vid), next = htons(tpid_next);

	memcpy(p, &tci, 2);
	memcpy(p + 2, &next, 2);
	return 4;
}

static uint16_t csum16(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* IPv4 header + L4 header/payload of l4len bytes with protocol proto. */
static size_t put_ipv4(uint8_t *p, uint8_t proto, size_t l4len)
{
	uint16_t tot = htons((uint16_t)(20 + l4len)), c;

	memset(p, 0, 20);
	p[0] = 0x45;
	memcpy(p + 2, &tot, 2);
	p[8] = 64;
	p[9] = proto;
	p[12] = 10; p[13] = 99; p[14] = 0; p[15] = 1;
	p[16] = 10; p[17] = 99; p[18] = 0; p[19] = 2;
	c = csum16(p, 20);
	memcpy(p + 10, &c, 2);
	return 20;
}

/* An IPv4/UDP frame of exactly len bytes (Ethernet header included). */
static size_t frame_ipv4_udp(uint8_t *buf, size_t len)
{
	size_t off = put_eth(buf, 0x0800);
	size_t l4 = len - off - 20;
	uint16_t v;

	memset(buf + off, 0xab, len - off);
	off += put_ipv4(buf + off, 17, l4);
	v = htons(40000); memcpy(buf + off, &v, 2);
	v = htons(5001); memcpy(buf + off + 2, &v, 2);
	v = htons((uint16_t)l4); memcpy(buf + off + 4, &v, 2);
	memset(buf + off + 6, 0, 2);
	return len;
}

static size_t frame_ipv4_tcp(uint8_t *buf, size_t len)
{
	size_t off = put_eth(buf, 0x0800);
	size_t l4 = len - off - 20;
	uint16_t v;

	memset(buf + off, 0, len - off);
	off += put_ipv4(buf + off, 6, l4);
	v = htons(40000); memcpy(buf + off, &v, 2);
	v = htons(22); memcpy(buf + off + 2, &v, 2);
	buf[off + 12] = 5 << 4;		/* data offset: 20 bytes */
	buf[off + 13] = 0x18;		/* PSH|ACK */
	v = htons(65535); memcpy(buf + off + 14, &v, 2);
	return len;
}

static size_t frame_ipv6_icmpv6(uint8_t *buf, size_t len)
{
	size_t off = put_eth(buf, 0x86dd);
	uint16_t plen = htons((uint16_t)(len - off - 40));

	memset(buf + off, 0, len - off);
	buf[off] = 0x60;
	memcpy(buf + off + 4, &plen, 2);
	buf[off + 6] = 58;		/* ICMPv6 */
	buf[off + 7] = 64;
	buf[off + 8] = 0xfd; buf[off + 23] = 1;		/* fd00::1 */
	buf[off + 24] = 0xfd; buf[off + 39] = 2;	/* fd00::2 */
	buf[off + 40] = 128;		/* echo request */
	return len;
}

static size_t frame_arp(uint8_t *buf)
{
	static const uint8_t arp[28] = {
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 99, 0, 1,
		0, 0, 0, 0, 0, 0, 10, 99, 0, 2,
	};
	size_t off = put_eth(buf, 0x0806);

	memset(buf, 0xff, 6);		/* broadcast */
	memcpy(buf + off, arp, sizeof(arp));
	return off + sizeof(arp);	/* 42: a runt, as ARP leaves a host */
}

/* 802.1Q tag (VID 100) in front of an IPv4/UDP packet; len in total. */
static size_t frame_vlan(uint8_t *buf, size_t len)
{
	uint8_t inner[16384];
	size_t off;

	frame_ipv4_udp(inner, len - 4);
	off = put_eth(buf, 0x8100);
	off += put_vlan(buf + off, 0x0800, 100);
	memcpy(buf + off, inner + 14, len - 4 - 14);
	return len;
}

/* QinQ: 802.1ad S-tag (VID 200), 802.1Q C-tag (VID 100), IPv4/UDP. */
static size_t frame_qinq(uint8_t *buf, size_t len)
{
	uint8_t inner[16384];
	size_t off;

	frame_ipv4_udp(inner, len - 8);
	off = put_eth(buf, 0x88a8);
	off += put_vlan(buf + off, 0x8100, 200);
	off += put_vlan(buf + off, 0x0800, 100);
	memcpy(buf + off, inner + 14, len - 8 - 14);
	return len;
}

/* ---- kernel side helpers ------------------------------------------- */

/* Sum of the per-CPU values of ifindex; -errno (ENOENT: no entry). */
static int read_counters(const struct fixture *f, int ifindex, struct tf_if_counters *sum)
{
	return tf_ifc_read(&f->ifc, (__u32)ifindex, sum);
}

static struct tf_if_counters counters_of(const struct fixture *f, int ifindex)
{
	struct tf_if_counters c;

	assert_int_equal(read_counters(f, ifindex, &c), 0);
	return c;
}

/* What userspace does before attaching: zeroed counters for ifindex. */
static void create_entry(const struct fixture *f, int ifindex)
{
	assert_int_equal(tf_ifc_add(&f->ifc, (__u32)ifindex), 0);
}

/* Whose is ifindex's counters slot (0: nobody's). */
static __u32 slot_owner(const struct fixture *f, int ifindex)
{
	return f->skel->bss->tf_if_owner[tf_ifc_slot((__u32)ifindex)];
}

/* Has ifindex an if_spill entry? */
static bool in_spill(const struct fixture *f, int ifindex)
{
	struct tf_if_counters *v = calloc((size_t)ncpus, sizeof(*v));
	__u32 key = (__u32)ifindex;
	bool found;

	assert_non_null(v);
	found = bpf_map_lookup_elem(f->ifc.spill_fd, &key, v) == 0;
	free(v);
	return found;
}

/*
 * Run a program on a frame: ctx_in carries the device (and gso_segs).
 * Returns 0 or the -errno of the test run; *retval is the program's.
 */
static int run_prog(int prog_fd, const void *frame, size_t len, int ifindex,
		    __u32 gso_segs, int repeat, __u32 *retval)
{
	struct __sk_buff ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (__u32)ifindex;
	ctx.gso_segs = gso_segs;
	if (gso_segs > 1)
		ctx.gso_size = 1448;
	return tf_test_run_tc(prog_fd, frame, len, &ctx, repeat, retval);
}

static void assert_dir_eq(const struct tf_dir_counters *got, uint64_t packets, uint64_t bytes,
			  uint64_t segs)
{
	assert_int_equal(got->packets, packets);
	assert_int_equal(got->bytes, bytes);
	assert_int_equal(got->segs, segs);
}

static void assert_untouched(const struct tf_if_counters *c)
{
	for (int d = 0; d < TF_HOOK_DIRS; d++)
		assert_dir_eq(&c->dir[d], 0, 0, 0);
}

/*
 * Run frame through the program of direction dir on if_a, repeat times, and
 * check that exactly that direction of if_a moved by (repeat, repeat * len,
 * repeat * segs), that the other direction and if_b did not move, and that
 * the program returned TC_ACT_UNSPEC.
 */
static void check_frame(struct fixture *f, int dir, const uint8_t *frame, size_t len,
			__u32 gso_segs, int repeat)
{
	struct tf_if_counters before = counters_of(f, if_a), after, other;
	uint64_t segs = gso_segs ? gso_segs : 1;
	__u32 retval = 0;

	assert_int_equal(run_prog(f->prog_fd[dir], frame, len, if_a, gso_segs, repeat,
				  &retval), 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	after = counters_of(f, if_a);
	assert_int_equal(after.dir[dir].packets - before.dir[dir].packets, (uint64_t)repeat);
	assert_int_equal(after.dir[dir].bytes - before.dir[dir].bytes,
			 (uint64_t)repeat * len);
	assert_int_equal(after.dir[dir].segs - before.dir[dir].segs, (uint64_t)repeat * segs);
	assert_memory_equal(&after.dir[!dir], &before.dir[!dir], sizeof(after.dir[0]));
	other = counters_of(f, if_b);
	assert_untouched(&other);
	assert_int_equal(f->skel->bss->map_full, 0);
}

/* Both directions, each from a clean entry, once per frame. */
static void check_both_dirs(struct fixture *f, const uint8_t *frame, size_t len)
{
	check_frame(f, TF_HOOK_INGRESS, frame, len, 0, 1);
	check_frame(f, TF_HOOK_EGRESS, frame, len, 0, 1);
	/* Each landed in its own slot: one packet each, nothing else. */
	struct tf_if_counters c = counters_of(f, if_a);

	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 1, len, 1);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], 1, len, 1);
}

/* ---- fixtures ------------------------------------------------------ */

static int group_setup(void **state)
{
	char cmd[128];

	(void)state;
	tf_test_netns_veths(DEV_A, DEV_B, &if_a, &if_b, &ncpus, skip_reason, sizeof(skip_reason));
	if (skip_reason[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "ip link add %s index %d type veth peer name %s",
		 DEV_C, if_a + TF_IF_SLOTS, DEV_D);
	if (system(cmd) || (if_c = (int)if_nametoindex(DEV_C)) != if_a + TF_IF_SLOTS)
		snprintf(skip_same_slot, sizeof(skip_same_slot),
			 "cannot create a device with ifindex %d (ip link add ... index)",
			 if_a + TF_IF_SLOTS);
	return 0;
}

static int setup_opts(void **state, __u32 spill_entries, bool entries)
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
	if (spill_entries &&
	    bpf_map__set_max_entries(f->skel->maps.if_spill, spill_entries)) {
		tapflow_bpf__destroy(f->skel);
		free(f);
		return -1;
	}
	if (tapflow_bpf__load(f->skel)) {
		print_message("# tapflow_bpf__load: %s\n", strerror(errno));
		tapflow_bpf__destroy(f->skel);
		free(f);
		return -1;
	}
	f->ifc = TF_IFC_OF(f->skel, ncpus);
	f->prog_fd[TF_HOOK_INGRESS] = bpf_program__fd(f->skel->progs.tf_ingress);
	f->prog_fd[TF_HOOK_EGRESS] = bpf_program__fd(f->skel->progs.tf_egress);
	if (entries) {
		create_entry(f, if_a);
		create_entry(f, if_b);
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_opts(state, 0, true);
}

static int setup_no_entries(void **state)
{
	return setup_opts(state, 0, false);
}

/*
 * lo and if_b in their slots, if_spill of two entries, both taken (by
 * ifindexes of no device): if_a, which userspace did not announce, finds
 * no place.
 */
static int setup_tiny_map(void **state)
{
	struct tf_if_counters *zero;
	struct fixture *f;

	if (setup_opts(state, 2, false))
		return -1;
	if (skip_reason[0])
		return 0;
	f = *state;
	create_entry(f, 1);
	create_entry(f, if_b);
	zero = calloc((size_t)ncpus, sizeof(*zero));
	assert_non_null(zero);
	for (__u32 key = 100001; key <= 100002; key++)
		assert_int_equal(bpf_map_update_elem(f->ifc.spill_fd, &key, zero, BPF_NOEXIST), 0);
	free(zero);
	return 0;
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

/* ---- tests --------------------------------------------------------- */

static void test_ipv4_udp(void **state)
{
	uint8_t buf[128];

	NEED_ENV();
	check_both_dirs(*state, buf, frame_ipv4_udp(buf, 100));
}

static void test_ipv4_tcp(void **state)
{
	uint8_t buf[128];

	NEED_ENV();
	check_both_dirs(*state, buf, frame_ipv4_tcp(buf, 66));
}

static void test_ipv6_icmpv6(void **state)
{
	uint8_t buf[128];

	NEED_ENV();
	check_both_dirs(*state, buf, frame_ipv6_icmpv6(buf, 118));
}

static void test_arp(void **state)
{
	uint8_t buf[64];
	size_t len = frame_arp(buf);

	NEED_ENV();
	assert_int_equal(len, 42);
	check_both_dirs(*state, buf, len);
}

static void test_vlan_8021q(void **state)
{
	uint8_t buf[256];

	NEED_ENV();
	check_both_dirs(*state, buf, frame_vlan(buf, 104));
}

static void test_qinq(void **state)
{
	uint8_t buf[256];

	NEED_ENV();
	check_both_dirs(*state, buf, frame_qinq(buf, 108));
}

/*
 * 14..59 bytes: below the Ethernet minimum, still one skb of that length.
 * The sweep uses the IEEE local experimental EtherType, because the kernel's
 * test run itself refuses IP frames whose IP header is cut (IPv4 below 34
 * bytes, IPv6 below 54: checked below); real runts reach TC all the same.
 * IPv4 runts from 34 bytes (a bare IPv4 header) up are counted too.
 */
static void test_runt_frames(void **state)
{
	struct fixture *f = *state;
	uint64_t bytes = 0, n = 0;
	uint8_t buf[64];

	NEED_ENV();
	memset(buf, 0x5a, sizeof(buf));
	put_eth(buf, 0x88b5);
	for (size_t len = 14; len < 60; len++) {
		for (int d = 0; d < TF_HOOK_DIRS; d++)
			check_frame(f, d, buf, len, 0, 1);
		bytes += len;
		n++;
	}
	frame_ipv4_udp(buf, 60);
	for (size_t len = 34; len < 60; len++) {
		for (int d = 0; d < TF_HOOK_DIRS; d++)
			check_frame(f, d, buf, len, 0, 1);
		bytes += len;
		n++;
	}
	struct tf_if_counters c = counters_of(f, if_a);

	assert_int_equal(n, 46 + 26);
	assert_int_equal(bytes, (14 + 59) * 46 / 2 + (34 + 59) * 26 / 2);
	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], n, bytes, n);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], n, bytes, n);
}

/*
 * Truncated IP frames: kernels since about 6.x refuse them in the test run
 * (-EINVAL: then nothing may have been counted); older ones run them (then
 * they count like any frame). Either way, exactly.
 */
static void check_frame_or_refused(struct fixture *f, int dir, const uint8_t *frame,
				   size_t len, int *refused)
{
	struct tf_if_counters before = counters_of(f, if_a), after;
	int err = run_prog(f->prog_fd[dir], frame, len, if_a, 0, 1, NULL);

	if (err == 0) {
		after = counters_of(f, if_a);
		assert_int_equal(after.dir[dir].packets - before.dir[dir].packets, 1);
		assert_int_equal(after.dir[dir].bytes - before.dir[dir].bytes, len);
		return;
	}
	assert_int_equal(err, -EINVAL);
	after = counters_of(f, if_a);
	assert_memory_equal(&after, &before, sizeof(after));
	(*refused)++;
}

static void test_truncated_ip(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[64];
	int refused = 0;

	NEED_ENV();
	frame_ipv4_udp(buf, 60);
	for (size_t len = 14; len < 34; len++)
		check_frame_or_refused(f, TF_HOOK_INGRESS, buf, len, &refused);
	frame_ipv6_icmpv6(buf, 62);
	for (size_t len = 14; len < 54; len++)
		check_frame_or_refused(f, TF_HOOK_EGRESS, buf, len, &refused);
	print_message("# truncated IP frames refused by the kernel's test run: %d of 60\n",
		      refused);
	assert_int_equal(f->skel->bss->map_full, 0);
}

/* Shorter than an Ethernet header: the kernel refuses the run, nothing counts. */
static void test_too_short_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[64];

	NEED_ENV();
	frame_ipv4_udp(buf, 60);
	for (size_t len = 0; len < 14; len++)
		for (int d = 0; d < TF_HOOK_DIRS; d++)
			assert_int_equal(run_prog(f->prog_fd[d], buf, len, if_a, 0, 1, NULL),
					 -EINVAL);
	struct tf_if_counters a = counters_of(f, if_a), b = counters_of(f, if_b);

	assert_untouched(&a);
	assert_untouched(&b);
	assert_int_equal(f->skel->bss->map_full, 0);
}

static void test_1500(void **state)
{
	static uint8_t buf[1514];

	NEED_ENV();
	/* 1500 bytes of frame, and a full 1500-MTU frame (1514 with header). */
	check_both_dirs(*state, buf, frame_ipv4_udp(buf, 1500));
	check_frame(*state, TF_HOOK_INGRESS, buf, frame_ipv4_udp(buf, 1514), 0, 1);
}

/*
 * A 9000-byte frame: BPF_PROG_TEST_RUN builds a linear skb in one page, so
 * the kernel refuses data larger than that (-EINVAL) and nothing is counted.
 * Jumbo frames are counted for real in tests/netns/test_counters.sh. The
 * largest frame the kernel accepts here is counted exactly.
 */
static void test_jumbo(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[9014];
	size_t max_ok = 0;
	int err;

	NEED_ENV();
	err = run_prog(f->prog_fd[TF_HOOK_INGRESS], buf, frame_ipv4_udp(buf, 9000), if_a,
		       0, 1, NULL);
	if (err == 0) {
		struct tf_if_counters c = counters_of(f, if_a);

		assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 1, 9000, 1);
		check_frame(f, TF_HOOK_EGRESS, buf, 9000, 0, 1);
		return;
	}
	assert_int_equal(err, -EINVAL);
	struct tf_if_counters c = counters_of(f, if_a);

	assert_untouched(&c);
	/* Largest accepted size: binary search between 1514 and 9000. */
	for (size_t lo = 1514, hi = 9000; lo < hi;) {
		size_t mid = (lo + hi + 1) / 2;

		frame_ipv4_udp(buf, mid);
		if (run_prog(f->prog_fd[TF_HOOK_EGRESS], buf, mid, if_b, 0, 1, NULL) == 0)
			lo = mid;
		else
			hi = mid - 1;
		max_ok = lo;
	}
	print_message("# largest frame BPF_PROG_TEST_RUN accepts: %zu bytes\n", max_ok);
	assert_true(max_ok >= 1514);
	/* The search ran on if_b: announcing it again zeroes its counters. */
	create_entry(f, if_b);
	struct tf_if_counters zeroed = counters_of(f, if_b);

	assert_untouched(&zeroed);
	check_frame(f, TF_HOOK_INGRESS, buf, frame_ipv4_udp(buf, max_ok), 0, 1);
}

static void test_repeat_1000(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[128];
	size_t len = frame_ipv4_udp(buf, 98);

	NEED_ENV();
	check_frame(f, TF_HOOK_INGRESS, buf, len, 0, 1000);
	check_frame(f, TF_HOOK_EGRESS, buf, len, 0, 1000);
	check_frame(f, TF_HOOK_INGRESS, buf, len, 0, 1000);
	struct tf_if_counters c = counters_of(f, if_a);

	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 2000, 2000 * len, 2000);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], 1000, 1000 * len, 1000);
}

/* segs is the sum of gso_segs, at least 1 per skb; packets stays 1 per skb. */
static void test_gso_segs(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[1514];
	size_t len = frame_ipv4_tcp(buf, 1514);

	NEED_ENV();
	check_frame(f, TF_HOOK_INGRESS, buf, len, 0, 1);	/* 0 -> 1 */
	check_frame(f, TF_HOOK_INGRESS, buf, len, 1, 1);
	check_frame(f, TF_HOOK_INGRESS, buf, len, 45, 1);
	check_frame(f, TF_HOOK_EGRESS, buf, len, 7, 10);
	struct tf_if_counters c = counters_of(f, if_a);

	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 3, 3 * len, 1 + 1 + 45);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], 10, 10 * len, 70);
}

/* The device of the skb decides the entry: lo (1) and if_b are separate. */
static void test_other_ifindex_untouched(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[128];
	size_t len = frame_ipv4_udp(buf, 77);
	__u32 retval = 0;

	NEED_ENV();
	create_entry(f, 1);
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_EGRESS], buf, len, if_b, 0, 3, &retval),
			 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	struct tf_if_counters a = counters_of(f, if_a), b = counters_of(f, if_b),
			      l = counters_of(f, 1);

	assert_untouched(&a);
	assert_untouched(&l);
	assert_dir_eq(&b.dir[TF_HOOK_EGRESS], 3, 3 * len, 3);
	assert_dir_eq(&b.dir[TF_HOOK_INGRESS], 0, 0, 0);
}

/* An interface userspace did not announce gets its entry from the program. */
static void test_entry_created_by_program(void **state)
{
	struct fixture *f = *state;
	struct tf_if_counters c;
	uint8_t buf[128];
	size_t len = frame_ipv4_udp(buf, 90);
	__u32 retval = 0;

	NEED_ENV();
	assert_int_equal(read_counters(f, if_a, &c), -ENOENT);
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_INGRESS], buf, len, if_a, 0, 5, &retval),
			 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	/* Not in the slot, which only userspace hands out: in if_spill. */
	assert_int_equal(slot_owner(f, if_a), 0);
	assert_true(in_spill(f, if_a));
	assert_int_equal(read_counters(f, if_a, &c), 0);
	/* The first packet, the one that created the entry, counts too. */
	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 5, 5 * len, 5);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], 0, 0, 0);
	assert_int_equal(read_counters(f, if_b, &c), -ENOENT);
	assert_int_equal(f->skel->bss->map_full, 0);
}

/* Full map: every packet that found no entry is one map_full, no more. */
static void test_map_full_counted(void **state)
{
	struct fixture *f = *state;
	struct tf_if_counters c;
	uint8_t buf[128];
	size_t len = frame_ipv4_udp(buf, 64);
	__u32 retval = 0;

	NEED_ENV();
	assert_int_equal(bpf_map__max_entries(f->skel->maps.if_spill), 2);
	assert_int_equal(f->skel->bss->map_full, 0);
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_INGRESS], buf, len, if_a, 0, 1, &retval),
			 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	assert_int_equal(f->skel->bss->map_full, 1);
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_EGRESS], buf, len, if_a, 0, 37, &retval),
			 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	assert_int_equal(f->skel->bss->map_full, 38);
	assert_int_equal(read_counters(f, if_a, &c), -ENOENT);
	/* The interfaces that have an entry keep counting, and are not misses. */
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_EGRESS], buf, len, if_b, 0, 4, &retval),
			 0);
	assert_int_equal(read_counters(f, if_b, &c), 0);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], 4, 4 * len, 4);
	assert_int_equal(read_counters(f, 1, &c), 0);
	assert_untouched(&c);
	assert_int_equal(f->skel->bss->map_full, 38);
}

/*
 * Two interfaces with the same slot (ifindexes TF_IF_SLOTS apart): the one
 * announced first has the slot, the other an if_spill entry; each counts
 * its own packets, exactly, and neither sees the other's.
 */
static void test_same_slot(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[128];
	size_t len = frame_ipv4_udp(buf, 81);
	__u32 retval = 0;

	NEED_ENV();
	if (skip_same_slot[0]) {
		print_message("# SKIP: %s\n", skip_same_slot);
		skip();
	}
	assert_int_equal(tf_ifc_slot((__u32)if_c), tf_ifc_slot((__u32)if_a));
	create_entry(f, if_c);
	assert_int_equal(slot_owner(f, if_c), (__u32)if_a);
	assert_true(in_spill(f, if_c));
	assert_false(in_spill(f, if_a));
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_INGRESS], buf, len, if_c, 0, 7, &retval),
			 0);
	assert_int_equal(retval, (__u32)TC_ACT_UNSPEC);
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_EGRESS], buf, len, if_a, 0, 3, &retval),
			 0);
	struct tf_if_counters a = counters_of(f, if_a), c = counters_of(f, if_c);

	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 7, 7 * len, 7);
	assert_dir_eq(&c.dir[TF_HOOK_EGRESS], 0, 0, 0);
	assert_dir_eq(&a.dir[TF_HOOK_INGRESS], 0, 0, 0);
	assert_dir_eq(&a.dir[TF_HOOK_EGRESS], 3, 3 * len, 3);
	/* Announced again (re-attach): still in if_spill, zeroed. */
	create_entry(f, if_c);
	c = counters_of(f, if_c);
	assert_untouched(&c);
	assert_int_equal(slot_owner(f, if_c), (__u32)if_a);
	assert_int_equal(f->skel->bss->map_full, 0);
}

/* The slot goes to the first announced: here if_c, and if_a spills. */
static void test_same_slot_first_wins(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[128];
	size_t len = frame_ipv4_udp(buf, 70);

	NEED_ENV();
	if (skip_same_slot[0]) {
		print_message("# SKIP: %s\n", skip_same_slot);
		skip();
	}
	create_entry(f, if_c);
	create_entry(f, if_a);
	assert_int_equal(slot_owner(f, if_a), (__u32)if_c);
	assert_true(in_spill(f, if_a));
	assert_false(in_spill(f, if_c));
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_INGRESS], buf, len, if_a, 0, 2, NULL), 0);
	assert_int_equal(run_prog(f->prog_fd[TF_HOOK_INGRESS], buf, len, if_c, 0, 5, NULL), 0);
	struct tf_if_counters a = counters_of(f, if_a), c = counters_of(f, if_c);

	assert_dir_eq(&a.dir[TF_HOOK_INGRESS], 2, 2 * len, 2);
	assert_dir_eq(&c.dir[TF_HOOK_INGRESS], 5, 5 * len, 5);
	assert_int_equal(f->skel->bss->map_full, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ipv4_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_icmpv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlan_8021q, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qinq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runt_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_ip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_short_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_1500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jumbo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_1000, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gso_segs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_ifindex_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_created_by_program, setup_no_entries,
						teardown),
		cmocka_unit_test_setup_teardown(test_map_full_counted, setup_tiny_map, teardown),
		cmocka_unit_test_setup_teardown(test_same_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_slot_first_wins, setup_no_entries,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
