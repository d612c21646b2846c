// SPDX-License-Identifier: GPL-2.0
/*
 * The NAT join: the pure helpers of src/nat.h and include/ctkey.h,
 * and tf_nat_index_build + tf_nat_join over a flow table read from a fake
 * kernel map holding tap flows and uplink flows made the way the uplink
 * program makes them (VM side = the uplink key, ifindex = the bridge, then
 * tf_ct_vm_key() of the conntrack tuple of the packet's direction).
 *
 * Port collisions, ICMP id translation, several uplink flows for one VM
 * flow, the same tuple on another bridge, related/unknown VM sides, later
 * fragments, IPv6, routed flows without conntrack, forwarding loss, and an
 * index big enough to grow.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "nat.h"
#include "ctkey.h"

#define SEC 1000000000ULL

/* ifindexes of the fake host */
#define UPLINK 5
#define BRIDGE 3	/* VMs 1 and 2: taps 10 and 11 */
#define BRIDGE_B 4	/* another network with the same subnet: tap 12 */
#define TAP1 10
#define TAP2 11
#define TAP3 12

static struct tf_flow_key key4(uint32_t ifindex, uint8_t proto, const char *local, int lport,
			       const char *remote, int rport)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = ifindex;
	k.ethertype = 0x0800;
	k.family = TF_FAM_IPV4;
	k.proto = proto;
	assert_int_equal(inet_pton(AF_INET, local, k.local_ip), 1);
	assert_int_equal(inet_pton(AF_INET, remote, k.remote_ip), 1);
	k.local_port = (uint16_t)lport;
	k.remote_port = (uint16_t)rport;
	return k;
}

static struct tf_flow_key key6(uint32_t ifindex, uint8_t proto, const char *local, int lport,
			       const char *remote, int rport)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = ifindex;
	k.ethertype = 0x86dd;
	k.family = TF_FAM_IPV6;
	k.proto = proto;
	assert_int_equal(inet_pton(AF_INET6, local, k.local_ip), 1);
	assert_int_equal(inet_pton(AF_INET6, remote, k.remote_ip), 1);
	k.local_port = (uint16_t)lport;
	k.remote_port = (uint16_t)rport;
	return k;
}

/* A conntrack tuple (struct tf_ct_tuple) of ports, or of an ICMP query. */
static struct tf_ct_tuple tuple(int family, uint8_t proto, const char *src, int sport,
				const char *dst, int dport)
{
	int af = family == TF_FAM_IPV6 ? AF_INET6 : AF_INET;
	struct tf_ct_tuple t;

	/* Junk past an IPv4 address: only the first 4 bytes may be read. */
	memset(&t, 0xaa, sizeof(t));
	t.family = (uint8_t)family;
	t.proto = proto;
	t.icmp_type = t.icmp_code = 0;
	assert_int_equal(inet_pton(af, src, t.src_ip), 1);
	assert_int_equal(inet_pton(af, dst, t.dst_ip), 1);
	t.src_port = (uint16_t)sport;
	t.dst_port = (uint16_t)dport;
	return t;
}

static struct tf_ct_tuple icmp_tuple(int family, uint8_t type, uint8_t code, int id,
				     const char *src, const char *dst)
{
	struct tf_ct_tuple t = tuple(family, family == TF_FAM_IPV6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP,
				     src, id, dst, 0);

	t.icmp_type = type;
	t.icmp_code = code;
	return t;
}

static struct tf_flow_value val(uint64_t txp, uint64_t txb, uint64_t rxp, uint64_t rxb,
				uint64_t last)
{
	struct tf_flow_value v;

	memset(&v, 0, sizeof(v));
	v.tx.packets = txp;
	v.tx.bytes = txb;
	v.tx.segs = txp;
	v.rx.packets = rxp;
	v.rx.bytes = rxb;
	v.rx.segs = rxp;
	v.first_seen_ns = last > SEC ? last - SEC : 1;
	v.last_seen_ns = last;
	return v;
}

/*
 * The value of an uplink flow as tf_uplink_egress writes it (nat_vm_side):
 * the VM side starts as the uplink key with the bridge's ifindex and no
 * VLAN; with a readable conntrack entry it is rewritten from the tuple of
 * the packet's direction (t; NULL: no conntrack, the tuple as it is).
 */
static struct tf_uplink_value uplink_val(const struct tf_flow_key *up, uint32_t bridge,
					 const struct tf_ct_tuple *t, uint8_t flags,
					 uint32_t ct_status, struct tf_flow_value counts)
{
	struct tf_uplink_value v = { .flow = counts };

	v.nat.vm = *up;
	v.nat.vm.ifindex = bridge;
	v.nat.vm.vlan = 0;
	v.nat.vm.vlan_inner = 0;
	if (t && !(flags & TF_NAT_RELATED))
		tf_ct_vm_key(&v.nat.vm, t);
	v.nat.flags = (uint8_t)(flags | TF_NAT_UPLINK);
	v.nat.ct_status = ct_status;
	v.ct_id = t ? 0xffff888800001000ULL : 0;
	return v;
}

/* ---- pure helpers ------------------------------------------------------------ */

static void test_vm_key_and_lost(void **state)
{
	struct tf_flow_key k = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_key out, want;

	(void)state;
	k.vlan = 42;
	k.vlan_inner = 7;
	tf_nat_vm_key(&k, BRIDGE, &out);
	want = k;
	want.ifindex = BRIDGE;
	want.vlan = 0;
	want.vlan_inner = 0;
	assert_memory_equal(&out, &want, sizeof(out));
	/* In place is fine too. */
	tf_nat_vm_key(&k, BRIDGE_B, &k);
	assert_int_equal(k.ifindex, BRIDGE_B);
	assert_int_equal(k.vlan, 0);

	assert_int_equal(tf_nat_lost(10, 5), 5);
	assert_int_equal(tf_nat_lost(5, 10), 0);	/* never negative */
	assert_int_equal(tf_nat_lost(7, 7), 0);
	assert_int_equal(tf_nat_lost(0, 0), 0);
	assert_true(tf_nat_lost(UINT64_MAX, 0) == UINT64_MAX);
	assert_int_equal(tf_nat_lost(0, UINT64_MAX), 0);
}

static void test_icmp_key_ports(void **state)
{
	/* type, v6, id, code -> local, remote */
	static const struct {
		uint8_t type, code;
		int v6;
		uint16_t local, remote;
	} c[] = {
		{ 8, 0, 0, 4660, 8 << 8 }, { 0, 0, 0, 4660, 8 << 8 },		/* echo */
		{ 13, 0, 0, 4660, 13 << 8 }, { 14, 0, 0, 4660, 13 << 8 },	/* timestamp */
		{ 15, 0, 0, 4660, 15 << 8 }, { 16, 0, 0, 4660, 15 << 8 },	/* information */
		{ 17, 0, 0, 4660, 17 << 8 }, { 18, 0, 0, 4660, 17 << 8 },	/* mask */
		{ 3, 3, 0, 0, 3 << 8 | 3 },	/* port unreachable: no identifier */
		{ 11, 1, 0, 0, 11 << 8 | 1 },	/* time exceeded */
		{ 128, 0, 0, 0, 128 << 8 },	/* not an ICMPv4 query */
		{ 128, 0, 1, 4660, 128 << 8 }, { 129, 0, 1, 4660, 128 << 8 },	/* echo v6 */
		{ 139, 2, 1, 4660, 139 << 8 | 2 }, { 140, 2, 1, 4660, 139 << 8 | 2 },
		{ 1, 4, 1, 0, 1 << 8 | 4 },	/* v6 port unreachable */
		{ 135, 0, 1, 0, 135 << 8 },	/* neighbour solicitation */
		{ 8, 0, 1, 0, 8 << 8 },		/* not an ICMPv6 query */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		__u16 local = 0xdead, remote = 0xbeef;

		tf_icmp_key_ports(c[i].type, c[i].code, 4660, c[i].v6, &local, &remote);
		if (local != c[i].local || remote != c[i].remote)
			fail_msg("type %u code %u v6 %d: got %u/%#x, want %u/%#x", c[i].type,
				 c[i].code, c[i].v6, local, remote, c[i].local, c[i].remote);
	}
}

static void test_ct_vm_key_ports(void **state)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, 136, 132, 33 };

	(void)state;
	for (size_t i = 0; i < sizeof(protos); i++) {
		/* The uplink's key after SNAT (port 58238); the tuple before it. */
		struct tf_flow_key vm = key4(BRIDGE, protos[i], "10.201.0.1", 58238,
					     "10.201.0.2", 7001);
		struct tf_ct_tuple t = tuple(TF_FAM_IPV4, protos[i], "10.200.0.3", 41000,
					     "10.201.0.2", 7001);
		struct tf_flow_key want = key4(BRIDGE, protos[i], "10.200.0.3", 41000,
					       "10.201.0.2", 7001);

		tf_ct_vm_key(&vm, &t);
		assert_memory_equal(&vm, &want, sizeof(vm));
	}
}

static void test_ct_vm_key_other(void **state)
{
	struct tf_flow_key vm, want;
	struct tf_ct_tuple t;

	(void)state;
	/* A later fragment (ports 0): addresses from the tuple, ports stay 0 as on the tap. */
	vm = key4(BRIDGE, IPPROTO_UDP, "10.201.0.1", 0, "10.201.0.2", 0);
	t = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 40040, "10.201.0.2", 7000);
	tf_ct_vm_key(&vm, &t);
	want = key4(BRIDGE, IPPROTO_UDP, "10.200.0.2", 0, "10.201.0.2", 0);
	assert_memory_equal(&vm, &want, sizeof(vm));

	/* Another protocol (GRE): addresses only. */
	vm = key4(BRIDGE, 47, "10.201.0.1", 0, "10.201.0.2", 0);
	t = tuple(TF_FAM_IPV4, 47, "10.200.0.2", 0, "10.201.0.2", 0);
	tf_ct_vm_key(&vm, &t);
	want = key4(BRIDGE, 47, "10.200.0.2", 0, "10.201.0.2", 0);
	assert_memory_equal(&vm, &want, sizeof(vm));

	/* IPv6: all 16 bytes. */
	vm = key6(BRIDGE, IPPROTO_UDP, "fd00:201::1", 40600, "fd00:201::2", 7600);
	t = tuple(TF_FAM_IPV6, IPPROTO_UDP, "fd00:200::2", 40600, "fd00:201::2", 7600);
	tf_ct_vm_key(&vm, &t);
	want = key6(BRIDGE, IPPROTO_UDP, "fd00:200::2", 40600, "fd00:201::2", 7600);
	assert_memory_equal(&vm, &want, sizeof(vm));

	/* ICMP in IPv6 (or ICMPv6 in IPv4): no identifier to trust, ports untouched. */
	vm = key6(BRIDGE, IPPROTO_ICMP, "fd00:201::1", 0, "fd00:201::2", 0);
	t = icmp_tuple(TF_FAM_IPV6, 8, 0, 4660, "fd00:200::2", "fd00:201::2");
	t.proto = IPPROTO_ICMP;
	tf_ct_vm_key(&vm, &t);
	want = key6(BRIDGE, IPPROTO_ICMP, "fd00:200::2", 0, "fd00:201::2", 0);
	assert_memory_equal(&vm, &want, sizeof(vm));
}

static void test_ct_vm_key_icmp(void **state)
{
	struct tf_flow_key vm, want;
	struct tf_ct_tuple t;

	(void)state;
	/* Echo, id translated 4660 -> 2252: the uplink key has 2252, the VM side 4660. */
	vm = key4(BRIDGE, IPPROTO_ICMP, "10.201.0.1", 2252, "10.201.0.2", 8 << 8);
	t = icmp_tuple(TF_FAM_IPV4, 8, 0, 4660, "10.200.0.3", "10.201.0.2");
	tf_ct_vm_key(&vm, &t);
	want = key4(BRIDGE, IPPROTO_ICMP, "10.200.0.3", 4660, "10.201.0.2", 8 << 8);
	assert_memory_equal(&vm, &want, sizeof(vm));

	/* The reply direction's tuple (an echo the VM answers): keyed as the request. */
	vm = key4(BRIDGE, IPPROTO_ICMP, "10.201.0.1", 99, "10.201.0.2", 8 << 8);
	t = icmp_tuple(TF_FAM_IPV4, 0, 0, 99, "10.200.0.3", "10.201.0.2");
	tf_ct_vm_key(&vm, &t);
	want = key4(BRIDGE, IPPROTO_ICMP, "10.200.0.3", 99, "10.201.0.2", 8 << 8);
	assert_memory_equal(&vm, &want, sizeof(vm));

	/* ICMPv6 echo reply: keyed as the request, 128. */
	vm = key6(BRIDGE, IPPROTO_ICMPV6, "fd00:201::1", 300, "fd00:201::2", 128 << 8);
	t = icmp_tuple(TF_FAM_IPV6, 129, 0, 77, "fd00:200::2", "fd00:201::2");
	tf_ct_vm_key(&vm, &t);
	want = key6(BRIDGE, IPPROTO_ICMPV6, "fd00:200::2", 77, "fd00:201::2", 128 << 8);
	assert_memory_equal(&vm, &want, sizeof(vm));
}

/*
 * A later fragment of an ICMP echo: on the tap it is keyed with both ports
 * 0 (include/tapflow.h: "ICMP with both ports 0 means later fragments"),
 * and so at the uplink; its VM side must stay a fragment key too, as for
 * UDP (test_ct_vm_key_other), or the uplink's fragment flow is joined with
 * the echo flow on the tap instead of the tap's fragment flow.
 * tests/netns/test_nat.sh shows it live (2000-byte pings at MTU 1500).
 */
static void test_ct_vm_key_icmp_fragment(void **state)
{
	struct tf_flow_key vm = key4(BRIDGE, IPPROTO_ICMP, "10.201.0.1", 0, "10.201.0.2", 0);
	struct tf_ct_tuple t = icmp_tuple(TF_FAM_IPV4, 8, 0, 777, "10.200.0.2", "10.201.0.2");
	struct tf_flow_key want = key4(BRIDGE, IPPROTO_ICMP, "10.200.0.2", 0, "10.201.0.2", 0);

	(void)state;
	tf_ct_vm_key(&vm, &t);
	if (memcmp(&vm, &want, sizeof(vm)))
		fail_msg("tapflow bug: an ICMP later fragment's VM side got ports %u/%#x, "
			 "want 0/0 (the tap keys later fragments with ports 0)",
			 vm.local_port, vm.remote_port);
}

/* ---- the join over a flow table from a fake kernel map ------------------------ */

#define FAKE_MAX 1024
/* Batches of at most 7: the table must follow the position across calls. */
#define FAKE_BATCH 7
#include "fake_flow_map.h"

struct fixture {
	struct fake_map m;
	struct fake_map up_m;		/* the uplink flow map */
	struct tf_flows fl;
	struct tf_nat_index ix;
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_flow_map map = { .ops = &fake_ops, .nvalues = 1 };

	assert_non_null(f);
	map.ctx = &f->m;
	assert_int_equal(tf_flows_init(&f->fl, &map, 30 * SEC, 0, 0), 0);
	f->up_m.uplink = true;
	map.ctx = &f->up_m;
	assert_int_equal(tf_flows_init_uplinks(&f->fl, &map), 0);
	return f;
}

static void fixture_free(struct fixture *f)
{
	tf_nat_index_free(&f->ix);
	tf_flows_free(&f->fl);
	free(f);
}

/* Put a flow into the kernel map (or replace its value). */
static void put(struct fixture *f, const struct tf_flow_key *k, const struct tf_flow_value *v)
{
	f->m.vals[fake_slot(&f->m, k)][0] = *v;
}

/* Put an uplink flow into the kernel's uplink flow map (or replace its value). */
static void put_uplink(struct fixture *f, const struct tf_flow_key *k,
		       const struct tf_uplink_value *v)
{
	f->up_m.up_vals[fake_slot(&f->up_m, k)][0] = *v;
}

/* Poll the table at now and index its uplink flows. */
static void poll_index(struct fixture *f, uint64_t now)
{
	assert_int_equal(tf_flows_poll(&f->fl, now, 1.0), 0);
	assert_int_equal(tf_nat_index_build(&f->ix, &f->fl), 0);
}

/* Join the tap flow of key (its totals from the table) on bridge. */
static void join(struct fixture *f, const struct tf_flow_key *k, int bridge, struct tf_nat_link *l)
{
	const struct tf_flow *fl = tf_flows_find(&f->fl, k);
	struct tf_flow_value tot;

	assert_non_null(fl);
	tf_flow_total(fl, &tot);
	tf_nat_join(&f->ix, k, bridge, &tot, l);
}

static void assert_link(const struct tf_nat_link *l, size_t n_up, uint64_t up_txp,
			uint64_t up_txb, uint64_t up_rxp, uint64_t up_rxb, uint64_t lost_tx,
			uint64_t lost_rx)
{
	assert_int_equal(l->n_up, n_up);
	assert_int_equal(l->up_tx.packets, up_txp);
	assert_int_equal(l->up_tx.bytes, up_txb);
	assert_int_equal(l->up_rx.packets, up_rxp);
	assert_int_equal(l->up_rx.bytes, up_rxb);
	assert_int_equal(l->lost_tx, lost_tx);
	assert_int_equal(l->lost_rx, lost_rx);
}

static void test_join_port_collision(void **state)
{
	struct fixture *f = fixture_new();
	/* Both VMs from port 41000 to 10.201.0.2:7001; VM 2 leaves as port 58238. */
	struct tf_flow_key t1 = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 41000, "10.201.0.2", 7001);
	struct tf_flow_key t2 = key4(TAP2, IPPROTO_UDP, "10.200.0.3", 41000, "10.201.0.2", 7001);
	struct tf_flow_key u1 = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 41000, "10.201.0.2", 7001);
	struct tf_flow_key u2 = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 58238, "10.201.0.2", 7001);
	struct tf_ct_tuple c1 = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 41000, "10.201.0.2", 7001);
	struct tf_ct_tuple c2 = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.3", 41000, "10.201.0.2", 7001);
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;
	char ip[64];

	(void)state;
	/* VM 1: 4 sent, all left; 4 answers arrived, 3 delivered. */
	v = val(4, 968, 3, 726, 10 * SEC);
	put(f, &t1, &v);
	uv = uplink_val(&u1, BRIDGE, &c1, TF_NAT_CT, TF_IPS_SRC_NAT, val(4, 968, 4, 968, 10 * SEC));
	put_uplink(f, &u1, &uv);
	/* VM 2: 4 sent, 2 left; 2 answers, both delivered. */
	v = val(4, 968, 2, 484, 10 * SEC);
	put(f, &t2, &v);
	uv = uplink_val(&u2, BRIDGE, &c2, TF_NAT_CT, TF_IPS_SRC_NAT, val(2, 484, 2, 484, 10 * SEC));
	put_uplink(f, &u2, &uv);
	poll_index(f, 11 * SEC);
	assert_int_equal(f->ix.n, 2);	/* the uplink flows only */

	join(f, &t1, BRIDGE, &l);
	assert_link(&l, 1, 4, 968, 4, 968, 0, 1);
	assert_memory_equal(&l.up_key, &u1, sizeof(u1));
	assert_true(l.translated);
	tf_flow_ip_str(l.up_key.family, l.up_key.local_ip, ip, sizeof(ip));
	assert_string_equal(ip, "10.201.0.1");
	assert_int_equal(l.up_key.local_port, 41000);

	join(f, &t2, BRIDGE, &l);
	assert_link(&l, 1, 2, 484, 2, 484, 2, 0);
	assert_memory_equal(&l.up_key, &u2, sizeof(u2));
	assert_int_equal(l.up_key.local_port, 58238);
	assert_true(l.translated);
	assert_int_equal(l.nat.ct_status, TF_IPS_SRC_NAT);
	fixture_free(f);
}

static void test_join_icmp_id_translation(void **state)
{
	struct fixture *f = fixture_new();
	/* Both VMs ping 10.201.0.2 with id 4660; VM 2's is translated to 2252. */
	struct tf_flow_key t1 = key4(TAP1, IPPROTO_ICMP, "10.200.0.2", 4660, "10.201.0.2", 8 << 8);
	struct tf_flow_key t2 = key4(TAP2, IPPROTO_ICMP, "10.200.0.3", 4660, "10.201.0.2", 8 << 8);
	struct tf_flow_key u1 = key4(UPLINK, IPPROTO_ICMP, "10.201.0.1", 4660, "10.201.0.2", 8 << 8);
	struct tf_flow_key u2 = key4(UPLINK, IPPROTO_ICMP, "10.201.0.1", 2252, "10.201.0.2", 8 << 8);
	struct tf_ct_tuple c1 = icmp_tuple(TF_FAM_IPV4, 8, 0, 4660, "10.200.0.2", "10.201.0.2");
	struct tf_ct_tuple c2 = icmp_tuple(TF_FAM_IPV4, 8, 0, 4660, "10.200.0.3", "10.201.0.2");
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;

	(void)state;
	v = val(6, 588, 6, 588, 5 * SEC);
	put(f, &t1, &v);
	uv = uplink_val(&u1, BRIDGE, &c1, TF_NAT_CT, TF_IPS_SRC_NAT, val(6, 588, 6, 588, 5 * SEC));
	put_uplink(f, &u1, &uv);
	v = val(3, 294, 3, 294, 5 * SEC);
	put(f, &t2, &v);
	uv = uplink_val(&u2, BRIDGE, &c2, TF_NAT_CT, TF_IPS_SRC_NAT, val(3, 294, 3, 294, 5 * SEC));
	put_uplink(f, &u2, &uv);
	poll_index(f, 6 * SEC);

	join(f, &t1, BRIDGE, &l);
	assert_link(&l, 1, 6, 588, 6, 588, 0, 0);
	assert_int_equal(l.up_key.local_port, 4660);
	join(f, &t2, BRIDGE, &l);
	assert_link(&l, 1, 3, 294, 3, 294, 0, 0);
	assert_int_equal(l.up_key.local_port, 2252);
	assert_int_equal(l.up_key.remote_port, 8 << 8);
	fixture_free(f);
}

static void test_join_several_uplink_flows(void **state)
{
	struct tf_flow_key t = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40011, "10.201.0.2", 7005);
	struct tf_flow_key u_old = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 40011, "10.201.0.2", 7005);
	struct tf_flow_key u_new = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 45010, "10.201.0.2", 7005);
	struct tf_ct_tuple c = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 40011, "10.201.0.2", 7005);
	struct tf_nat_link l;

	(void)state;
	/*
	 * The entry expired and its successor got another port: both count,
	 * nat = the latest. The kernel stamps an uplink flow only when it makes
	 * it (old: at 100 s, new: at 200 s); its last seen is the poll that saw
	 * its counters move.
	 */
	for (int newer_first = 0; newer_first < 2; newer_first++) {
		struct fixture *f = fixture_new();
		struct tf_flow_value v = val(8, 1136, 8, 1136, 200 * SEC);
		struct tf_uplink_value v_old, v_new;

		v_old = uplink_val(&u_old, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT,
				   val(5, 710, 5, 710, 100 * SEC));
		v_new = uplink_val(&u_new, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT,
				   val(3, 426, 3, 426, 200 * SEC));
		v_new.nat.zone = 7;
		put(f, &t, &v);
		/* Map order must not matter. */
		put_uplink(f, newer_first ? &u_new : &u_old, newer_first ? &v_new : &v_old);
		put_uplink(f, newer_first ? &u_old : &u_new, newer_first ? &v_old : &v_new);
		/* Both first seen by this poll: equally recent, the newer entry is the latest. */
		poll_index(f, 201 * SEC);
		join(f, &t, BRIDGE, &l);
		assert_link(&l, 2, 8, 1136, 8, 1136, 0, 0);
		assert_memory_equal(&l.up_key, &u_new, sizeof(u_new));
		assert_int_equal(l.nat.zone, 7);
		assert_int_equal(tf_flows_find(f->fl.uplinks, &u_old)->cur.last_seen_ns, 201 * SEC);
		/* The new one goes on (its kernel stamp stays 200 s), the old one is idle. */
		v.tx.packets = v.rx.packets = 9;
		v.tx.bytes = v.rx.bytes = 1278;
		put(f, &t, &v);
		v_new.flow.tx.packets = v_new.flow.rx.packets = 4;
		v_new.flow.tx.bytes = v_new.flow.rx.bytes = 568;
		put_uplink(f, &u_new, &v_new);
		poll_index(f, 231 * SEC);
		/* Idle 30 s since the poll that last saw it move: expired; kept, still joined. */
		assert_true(tf_flows_find(f->fl.uplinks, &u_old)->expired);
		assert_int_equal(fake_find(&f->up_m, &u_old), -1);
		/* Moving: not expired, though the kernel's stamp is 31 s old. */
		assert_false(tf_flows_find(f->fl.uplinks, &u_new)->expired);
		assert_int_equal(tf_flows_find(f->fl.uplinks, &u_new)->cur.last_seen_ns, 231 * SEC);
		join(f, &t, BRIDGE, &l);
		assert_link(&l, 2, 9, 1278, 9, 1278, 0, 0);
		assert_memory_equal(&l.up_key, &u_new, sizeof(u_new));
		/* Not moving from now on: its last seen stays that of the last move. */
		poll_index(f, 240 * SEC);
		assert_int_equal(tf_flows_find(f->fl.uplinks, &u_new)->cur.last_seen_ns, 231 * SEC);
		join(f, &t, BRIDGE, &l);
		assert_link(&l, 2, 9, 1278, 9, 1278, 0, 0);
		fixture_free(f);
	}
}

/*
 * An uplink flow taken out of the kernel (idle), whose outside tuple then
 * comes back for another VM: what was taken out stays the first VM's (a
 * retired segment of the uplink table), the new counts go to the second.
 */
static void test_join_tuple_reused_after_expiry(void **state)
{
	struct fixture *f = fixture_new();
	struct tf_flow_key t1 = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 41000, "10.201.0.2", 7001);
	struct tf_flow_key t2 = key4(TAP2, IPPROTO_UDP, "10.200.0.3", 41000, "10.201.0.2", 7001);
	struct tf_flow_key u = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 41000, "10.201.0.2", 7001);
	struct tf_ct_tuple c1 = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 41000, "10.201.0.2", 7001);
	struct tf_ct_tuple c2 = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.3", 41000, "10.201.0.2", 7001);
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;

	(void)state;
	v = val(4, 968, 4, 968, 10 * SEC);
	put(f, &t1, &v);
	uv = uplink_val(&u, BRIDGE, &c1, TF_NAT_CT, 0, val(4, 968, 4, 968, 10 * SEC));
	put_uplink(f, &u, &uv);
	poll_index(f, 11 * SEC);
	/* Idle for the idle timeout: taken out of both maps, kept in the tables. */
	poll_index(f, 45 * SEC);
	assert_true(tf_flows_find(f->fl.uplinks, &u)->expired);
	assert_int_equal(fake_find(&f->up_m, &u), -1);
	v = val(2, 484, 2, 484, 50 * SEC);
	put(f, &t2, &v);
	uv = uplink_val(&u, BRIDGE, &c2, TF_NAT_CT, 0, val(2, 484, 2, 484, 50 * SEC));
	put_uplink(f, &u, &uv);
	poll_index(f, 51 * SEC);
	assert_int_equal(f->fl.uplinks->counts.retired, 1);
	assert_int_equal(f->ix.n, 2);
	join(f, &t1, BRIDGE, &l);
	assert_link(&l, 1, 4, 968, 4, 968, 0, 0);
	join(f, &t2, BRIDGE, &l);
	assert_link(&l, 1, 2, 484, 2, 484, 0, 0);
	fixture_free(f);
}

static void test_join_other_bridge(void **state)
{
	struct fixture *f = fixture_new();
	/* The same VM tuple on two bridges (two networks with the same subnet). */
	struct tf_flow_key t1 = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_key t3 = key4(TAP3, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_key u1 = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 40000, "10.201.0.2", 7000);
	struct tf_flow_key u3 = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 1234, "10.201.0.2", 7000);
	struct tf_ct_tuple c = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_key t1v = t1;
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;

	(void)state;
	v = val(10, 1420, 10, 1420, 5 * SEC);
	put(f, &t1, &v);
	uv = uplink_val(&u1, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT, val(10, 1420, 10, 1420, 5 * SEC));
	put_uplink(f, &u1, &uv);
	v = val(2, 284, 0, 0, 5 * SEC);
	put(f, &t3, &v);
	/* VM 1's flow tagged on its tap (VLAN 42): routed packets leave untagged. */
	t1v.vlan = 42;
	v = val(1, 146, 1, 146, 5 * SEC);
	put(f, &t1v, &v);
	poll_index(f, 6 * SEC);

	/* Bridge B has no uplink flow yet: tap 3 is not joined with bridge 3's. */
	join(f, &t3, BRIDGE_B, &l);
	assert_int_equal(l.n_up, 0);
	assert_int_equal(l.lost_tx, 0);
	join(f, &t1, BRIDGE, &l);
	assert_link(&l, 1, 10, 1420, 10, 1420, 0, 0);
	join(f, &t1v, BRIDGE, &l);
	assert_int_equal(l.n_up, 1);
	assert_memory_equal(&l.up_key, &u1, sizeof(u1));
	/* No bridge (not a port of one): nothing, whatever matches. */
	join(f, &t1, 0, &l);
	assert_int_equal(l.n_up, 0);
	join(f, &t1, -1, &l);
	assert_int_equal(l.n_up, 0);

	/* Now bridge B's flow leaves too (as port 1234): each joins its own. */
	uv = uplink_val(&u3, BRIDGE_B, &c, TF_NAT_CT, TF_IPS_SRC_NAT, val(2, 284, 0, 0, 7 * SEC));
	put_uplink(f, &u3, &uv);
	poll_index(f, 8 * SEC);
	join(f, &t3, BRIDGE_B, &l);
	assert_link(&l, 1, 2, 284, 0, 0, 0, 0);
	assert_int_equal(l.up_key.local_port, 1234);
	join(f, &t1, BRIDGE, &l);
	assert_link(&l, 1, 10, 1420, 10, 1420, 0, 0);
	assert_int_equal(l.up_key.local_port, 40000);
	fixture_free(f);
}

static void test_join_related_and_non_uplink(void **state)
{
	struct fixture *f = fixture_new();
	struct tf_flow_key t = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_key u = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 40000, "10.201.0.2", 7000);
	/* A flow on the bridge itself (--iface br0): keyed like a VM side, but a tap-like flow. */
	struct tf_flow_key br = key4(BRIDGE, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;

	(void)state;
	v = val(3, 426, 3, 426, 5 * SEC);
	put(f, &t, &v);
	put(f, &br, &v);
	/*
	 * An uplink flow whose VM side is unknown (an ICMP error of another
	 * entry, or an unreadable one): even if its VM side happens to read
	 * like the tap flow's, it is never joined.
	 */
	uv = uplink_val(&u, BRIDGE, NULL, TF_NAT_CT | TF_NAT_RELATED, 0, val(3, 426, 3, 426, 5 * SEC));
	uv.nat.vm = br;
	put_uplink(f, &u, &uv);
	poll_index(f, 6 * SEC);
	assert_int_equal(f->ix.n, 0);
	join(f, &t, BRIDGE, &l);
	assert_int_equal(l.n_up, 0);
	assert_int_equal(l.up_tx.packets, 0);
	assert_false(l.translated);
	fixture_free(f);
}

static void test_join_routed_no_conntrack(void **state)
{
	struct fixture *f = fixture_new();
	struct tf_flow_key t = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40100, "10.201.0.2", 7100);
	struct tf_flow_key u = key4(UPLINK, IPPROTO_UDP, "10.200.0.2", 40100, "10.201.0.2", 7100);
	struct tf_ct_tuple c = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 40100, "10.201.0.2", 7100);
	struct tf_flow_key t2 = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40101, "10.201.0.2", 7100);
	struct tf_flow_key u2 = key4(UPLINK, IPPROTO_UDP, "10.200.0.2", 40101, "10.201.0.2", 7100);
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;

	(void)state;
	/* Routed without conntrack: the VM side is the packet's own tuple. */
	v = val(4, 568, 4, 568, 5 * SEC);
	put(f, &t, &v);
	uv = uplink_val(&u, BRIDGE, NULL, 0, 0, val(4, 568, 4, 568, 5 * SEC));
	put_uplink(f, &u, &uv);
	/* Routed with conntrack (an entry without NAT bits). */
	v = val(2, 284, 2, 284, 5 * SEC);
	put(f, &t2, &v);
	c.src_port = 40101;
	uv = uplink_val(&u2, BRIDGE, &c, TF_NAT_CT, 0x8 /* IPS_CONFIRMED */,
		        val(2, 284, 1, 142, 5 * SEC));
	put_uplink(f, &u2, &uv);
	poll_index(f, 6 * SEC);
	join(f, &t, BRIDGE, &l);
	assert_link(&l, 1, 4, 568, 4, 568, 0, 0);
	assert_false(l.translated);
	assert_memory_equal(&l.up_key, &u, sizeof(u));
	join(f, &t2, BRIDGE, &l);
	/* 2 delivered but only 1 arrived: not a loss (clamped), the VM got what came. */
	assert_link(&l, 1, 2, 284, 1, 142, 0, 0);
	assert_false(l.translated);
	fixture_free(f);
}

static void test_join_fragments(void **state)
{
	struct fixture *f = fixture_new();
	/* UDP of 2000 B at MTU 1500: first fragments keyed with ports, later ones with 0. */
	struct tf_flow_key t = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40040, "10.201.0.2", 7000);
	struct tf_flow_key tf = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 0, "10.201.0.2", 0);
	struct tf_flow_key u = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 40040, "10.201.0.2", 7000);
	struct tf_flow_key uf = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 0, "10.201.0.2", 0);
	struct tf_ct_tuple c = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 40040, "10.201.0.2", 7000);
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;

	(void)state;
	v = val(3, 4542, 3, 4542, 5 * SEC);
	put(f, &t, &v);
	v = val(3, 1686, 3, 1686, 5 * SEC);
	put(f, &tf, &v);
	uv = uplink_val(&u, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT, val(3, 4542, 3, 4542, 5 * SEC));
	put_uplink(f, &u, &uv);
	/* The later fragments carry the same entry (and so the same tuple). */
	uv = uplink_val(&uf, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT, val(3, 1686, 3, 1686, 5 * SEC));
	put_uplink(f, &uf, &uv);
	poll_index(f, 6 * SEC);
	join(f, &t, BRIDGE, &l);
	assert_link(&l, 1, 3, 4542, 3, 4542, 0, 0);
	assert_int_equal(l.up_key.local_port, 40040);
	join(f, &tf, BRIDGE, &l);
	assert_link(&l, 1, 3, 1686, 3, 1686, 0, 0);
	assert_int_equal(l.up_key.local_port, 0);
	fixture_free(f);
}

static void test_join_ipv6(void **state)
{
	struct fixture *f = fixture_new();
	struct tf_flow_key t = key6(TAP1, IPPROTO_UDP, "fd00:200::2", 40600, "fd00:201::2", 7600);
	struct tf_flow_key u = key6(UPLINK, IPPROTO_UDP, "fd00:201::1", 40600, "fd00:201::2", 7600);
	struct tf_ct_tuple c = tuple(TF_FAM_IPV6, IPPROTO_UDP, "fd00:200::2", 40600, "fd00:201::2", 7600);
	struct tf_flow_key te = key6(TAP1, IPPROTO_ICMPV6, "fd00:200::2", 77, "fd00:201::2", 128 << 8);
	struct tf_flow_key ue = key6(UPLINK, IPPROTO_ICMPV6, "fd00:201::1", 9, "fd00:201::2", 128 << 8);
	struct tf_ct_tuple ce = icmp_tuple(TF_FAM_IPV6, 128, 0, 77, "fd00:200::2", "fd00:201::2");
	struct tf_uplink_value uv;
	struct tf_flow_value v;
	struct tf_nat_link l;
	char ip[64];

	(void)state;
	v = val(5, 810, 5, 810, 5 * SEC);
	put(f, &t, &v);
	uv = uplink_val(&u, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT, val(5, 810, 4, 648, 5 * SEC));
	put_uplink(f, &u, &uv);
	v = val(2, 236, 2, 236, 5 * SEC);
	put(f, &te, &v);
	uv = uplink_val(&ue, BRIDGE, &ce, TF_NAT_CT, TF_IPS_SRC_NAT, val(2, 236, 2, 236, 5 * SEC));
	put_uplink(f, &ue, &uv);
	poll_index(f, 6 * SEC);
	join(f, &t, BRIDGE, &l);
	assert_link(&l, 1, 5, 810, 4, 648, 0, 0);
	assert_true(l.translated);
	tf_flow_ip_str(l.up_key.family, l.up_key.local_ip, ip, sizeof(ip));
	assert_string_equal(ip, "fd00:201::1");
	assert_int_equal(l.up_key.local_port, 40600);
	/* ICMPv6 echo with the id translated 77 -> 9. */
	join(f, &te, BRIDGE, &l);
	assert_link(&l, 1, 2, 236, 2, 236, 0, 0);
	assert_int_equal(l.up_key.local_port, 9);
	fixture_free(f);
}

static void test_index_empty_and_rebuilt(void **state)
{
	struct fixture *f = fixture_new();
	struct tf_flow_key t = key4(TAP1, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_key u = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 40000, "10.201.0.2", 7000);
	struct tf_ct_tuple c = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 40000, "10.201.0.2", 7000);
	struct tf_flow_value v = val(1, 142, 0, 0, 5 * SEC), tap = v;
	struct tf_uplink_value uv;
	struct tf_nat_link l;

	(void)state;
	/* An index that was never built, then one of an empty table. */
	memset(&l, 0xff, sizeof(l));
	tf_nat_join(&f->ix, &t, BRIDGE, &tap, &l);
	assert_int_equal(l.n_up, 0);
	assert_int_equal(l.lost_tx, 0);
	poll_index(f, SEC);
	assert_int_equal(f->ix.n, 0);
	tf_nat_join(&f->ix, &t, BRIDGE, &tap, &l);
	assert_int_equal(l.n_up, 0);

	/* Rebuilt after each poll (the old one freed: ASan would see a leak). */
	put(f, &t, &v);
	uv = uplink_val(&u, BRIDGE, &c, TF_NAT_CT, TF_IPS_SRC_NAT, val(1, 142, 0, 0, 5 * SEC));
	put_uplink(f, &u, &uv);
	poll_index(f, 6 * SEC);
	poll_index(f, 7 * SEC);
	assert_int_equal(f->ix.n, 1);
	join(f, &t, BRIDGE, &l);
	assert_link(&l, 1, 1, 142, 0, 0, 0, 0);
	tf_nat_index_free(&f->ix);
	tf_nat_join(&f->ix, &t, BRIDGE, &tap, &l);
	assert_int_equal(l.n_up, 0);
	fixture_free(f);
}

static void test_index_many(void **state)
{
	struct fixture *f = fixture_new();
	enum { N = 300 };	/* 600 flows: the index grows past its first 64 buckets */
	struct tf_nat_link l;

	(void)state;
	for (int i = 0; i < N; i++) {
		uint32_t tap = TAP1 + (uint32_t)(i % 3);
		int bridge = tap == TAP3 ? BRIDGE_B : BRIDGE;
		struct tf_flow_key t = key4(tap, IPPROTO_UDP, "10.200.0.2", 20000 + i, "10.201.0.2", 53);
		struct tf_flow_key u = key4(UPLINK, IPPROTO_UDP, "10.201.0.1", 30000 + i,
					    "10.201.0.2", 53);
		struct tf_ct_tuple c = tuple(TF_FAM_IPV4, IPPROTO_UDP, "10.200.0.2", 20000 + i,
					     "10.201.0.2", 53);
		struct tf_flow_value v = val(1 + (uint64_t)i, 100, 1, 100, 5 * SEC);
		struct tf_uplink_value uv;

		put(f, &t, &v);
		uv = uplink_val(&u, (uint32_t)bridge, &c, TF_NAT_CT, TF_IPS_SRC_NAT, v);
		put_uplink(f, &u, &uv);
	}
	poll_index(f, 6 * SEC);
	assert_int_equal(f->ix.n, N);
	assert_true(f->ix.nbuckets >= N);
	for (int i = 0; i < N; i++) {
		uint32_t tap = TAP1 + (uint32_t)(i % 3);
		struct tf_flow_key t = key4(tap, IPPROTO_UDP, "10.200.0.2", 20000 + i, "10.201.0.2", 53);

		join(f, &t, tap == TAP3 ? BRIDGE_B : BRIDGE, &l);
		assert_int_equal(l.n_up, 1);
		assert_int_equal(l.up_key.local_port, 30000 + i);
		assert_int_equal(l.up_tx.packets, 1 + (uint64_t)i);
		/* On the wrong bridge: nothing. */
		join(f, &t, tap == TAP3 ? BRIDGE : BRIDGE_B, &l);
		assert_int_equal(l.n_up, 0);
	}
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_key_and_lost),
		cmocka_unit_test(test_icmp_key_ports),
		cmocka_unit_test(test_ct_vm_key_ports),
		cmocka_unit_test(test_ct_vm_key_other),
		cmocka_unit_test(test_ct_vm_key_icmp),
		cmocka_unit_test(test_ct_vm_key_icmp_fragment),
		cmocka_unit_test(test_join_port_collision),
		cmocka_unit_test(test_join_icmp_id_translation),
		cmocka_unit_test(test_join_several_uplink_flows),
		cmocka_unit_test(test_join_tuple_reused_after_expiry),
		cmocka_unit_test(test_join_other_bridge),
		cmocka_unit_test(test_join_related_and_non_uplink),
		cmocka_unit_test(test_join_routed_no_conntrack),
		cmocka_unit_test(test_join_fragments),
		cmocka_unit_test(test_join_ipv6),
		cmocka_unit_test(test_index_empty_and_rebuilt),
		cmocka_unit_test(test_index_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
