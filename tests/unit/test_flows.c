// SPDX-License-Identifier: GPL-2.0
/*
 * Flows: key -> strings in the VM's and the interface's view, ICMP keys,
 * IPv6 compression, sorting, per-CPU merge, and the table against a fake
 * kernel map: expiry, revival, active timeout, eviction and the fallbacks
 * for kernels without batch ops or atomic lookup-and-delete keep the totals
 * exact.
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

#include "flows.h"

#define SEC 1000000000ULL

static struct tf_flow_key key4(uint8_t proto, const char *local, int lport, const char *remote,
			       int rport)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = 7;
	k.ethertype = 0x0800;
	k.family = TF_FAM_IPV4;
	k.proto = proto;
	assert_int_equal(inet_pton(AF_INET, local, k.local_ip), 1);
	assert_int_equal(inet_pton(AF_INET, remote, k.remote_ip), 1);
	k.local_port = (uint16_t)lport;
	k.remote_port = (uint16_t)rport;
	return k;
}

static struct tf_flow_key key6(uint8_t proto, const char *local, int lport, const char *remote,
			       int rport)
{
	struct tf_flow_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = 7;
	k.ethertype = 0x86dd;
	k.family = TF_FAM_IPV6;
	k.proto = proto;
	assert_int_equal(inet_pton(AF_INET6, local, k.local_ip), 1);
	assert_int_equal(inet_pton(AF_INET6, remote, k.remote_ip), 1);
	k.local_port = (uint16_t)lport;
	k.remote_port = (uint16_t)rport;
	return k;
}

static struct tf_flow_value val(uint64_t rxp, uint64_t rxb, uint64_t txp, uint64_t txb,
				uint64_t first, uint64_t last)
{
	struct tf_flow_value v;

	memset(&v, 0, sizeof(v));
	v.rx.packets = rxp;
	v.rx.bytes = rxb;
	v.rx.segs = rxp;
	v.tx.packets = txp;
	v.tx.bytes = txb;
	v.tx.segs = txp;
	v.first_seen_ns = first;
	v.last_seen_ns = last;
	return v;
}

/* ---- rendering ------------------------------------------------------------ */

static void test_view_tcp_vm(void **state)
{
	struct tf_flow_key k = key4(IPPROTO_TCP, "192.168.122.10", 40000, "93.184.216.34", 443);
	struct tf_flow_value v = val(10, 15000, 8, 900, 1, 2);
	struct tf_flow_view w;
	char flags[16];

	(void)state;
	v.tcp_flags_tx = 0x02 | 0x10 | 0x01;	/* SYN ACK FIN */
	v.tcp_flags_rx = 0x12 | 0x08;		/* SYN ACK PSH */
	tf_flow_view(&k, &v, false, &w);
	assert_int_equal(w.family, 4);
	assert_string_equal(w.proto_name, "tcp");
	assert_string_equal(w.local_ip, "192.168.122.10");
	assert_int_equal(w.local_port, 40000);
	assert_string_equal(w.remote_ip, "93.184.216.34");
	assert_int_equal(w.remote_port, 443);
	assert_int_equal(w.vlan, -1);
	assert_int_equal(w.icmp_type, -1);
	assert_int_equal(w.rx.bytes, 15000);
	assert_int_equal(w.tx.bytes, 900);
	tf_tcp_flags_str(w.tcp_flags, flags, sizeof(flags));
	assert_string_equal(flags, "APSF");
}

static void test_view_mirrored(void **state)
{
	struct tf_flow_key k = key4(IPPROTO_UDP, "10.77.0.1", 40000, "10.77.0.2", 9);
	struct tf_flow_value v = val(1, 100, 3, 300, 1, 2);
	struct tf_flow_view w;
	char ep[64];

	(void)state;
	/* --iface: the interface's own view, rx = what it received (VM's tx). */
	tf_flow_view(&k, &v, true, &w);
	assert_string_equal(w.local_ip, "10.77.0.2");
	assert_int_equal(w.local_port, 9);
	assert_string_equal(w.remote_ip, "10.77.0.1");
	assert_int_equal(w.remote_port, 40000);
	assert_int_equal(w.rx.packets, 3);
	assert_int_equal(w.rx.bytes, 300);
	assert_int_equal(w.tx.packets, 1);
	assert_int_equal(w.tcp_flags, 0);
	tf_flow_endpoint_str(w.family, w.local_ip, w.local_port, ep, sizeof(ep));
	assert_string_equal(ep, "10.77.0.2:9");
}

static void test_view_icmp(void **state)
{
	struct tf_flow_key k = key4(IPPROTO_ICMP, "10.0.0.1", 0x1234, "10.0.0.2", 8 << 8);
	struct tf_flow_value v = val(5, 490, 5, 490, 1, 2);
	struct tf_flow_view w;
	char ep[64];

	(void)state;
	tf_flow_view(&k, &v, false, &w);
	assert_string_equal(w.proto_name, "icmp");
	assert_int_equal(w.icmp_type, 8);
	assert_int_equal(w.icmp_code, 0);
	assert_int_equal(w.icmp_id, 0x1234);
	assert_int_equal(w.local_port, -1);
	assert_int_equal(w.remote_port, -1);
	tf_flow_endpoint_str(w.family, w.local_ip, w.local_port, ep, sizeof(ep));
	assert_string_equal(ep, "10.0.0.1");
	/* The id is the connection's, not a side's: the same when mirrored. */
	tf_flow_view(&k, &v, true, &w);
	assert_int_equal(w.icmp_id, 0x1234);
	assert_string_equal(w.local_ip, "10.0.0.2");

	/* An error (port unreachable): no identifier. */
	k = key4(IPPROTO_ICMP, "10.0.0.1", 0, "10.0.0.2", 3 << 8 | 3);
	tf_flow_view(&k, &v, false, &w);
	assert_int_equal(w.icmp_type, 3);
	assert_int_equal(w.icmp_code, 3);
	assert_int_equal(w.icmp_id, -1);

	/* ICMPv6 echo, and neighbour solicitation (not a query). */
	k = key6(IPPROTO_ICMPV6, "fd00::1", 77, "fd00::2", 128 << 8);
	tf_flow_view(&k, &v, false, &w);
	assert_string_equal(w.proto_name, "icmpv6");
	assert_int_equal(w.icmp_type, 128);
	assert_int_equal(w.icmp_id, 77);
	k = key6(IPPROTO_ICMPV6, "fd00::1", 0, "ff02::1:ff00:2", 135 << 8);
	tf_flow_view(&k, &v, false, &w);
	assert_int_equal(w.icmp_type, 135);
	assert_int_equal(w.icmp_id, -1);
	assert_true(tf_icmp_is_query(4, 13));
	assert_false(tf_icmp_is_query(4, 11));
	assert_true(tf_icmp_is_query(6, 139));
	assert_false(tf_icmp_is_query(6, 1));
}

static void test_ipv6_compressed(void **state)
{
	struct tf_flow_key k = key6(IPPROTO_UDP, "2001:0db8:0000:0000:0000:0000:0000:0001", 53,
				    "fe80:0:0:0:0:0:0:1", 5353);
	struct tf_flow_value v = val(1, 1, 1, 1, 1, 1);
	struct tf_flow_view w;
	uint8_t ip[16];
	char s[64];

	(void)state;
	tf_flow_view(&k, &v, false, &w);
	assert_int_equal(w.family, 6);
	assert_string_equal(w.local_ip, "2001:db8::1");
	assert_string_equal(w.remote_ip, "fe80::1");
	tf_flow_endpoint_str(w.family, w.local_ip, w.local_port, s, sizeof(s));
	assert_string_equal(s, "[2001:db8::1]:53");
	inet_pton(AF_INET6, "2001:db8:1:2:3:4:5:6", ip);
	tf_flow_ip_str(6, ip, s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2:3:4:5:6");
	inet_pton(AF_INET6, "::", ip);
	tf_flow_ip_str(6, ip, s, sizeof(s));
	assert_string_equal(s, "::");
	inet_pton(AF_INET6, "::ffff:10.0.0.1", ip);
	tf_flow_ip_str(6, ip, s, sizeof(s));
	assert_string_equal(s, "::ffff:10.0.0.1");
	/* The longest run of zeros is the one compressed. */
	inet_pton(AF_INET6, "2001:0:0:1:0:0:0:1", ip);
	tf_flow_ip_str(6, ip, s, sizeof(s));
	assert_string_equal(s, "2001:0:0:1::1");
	tf_flow_ip_str(0, ip, s, sizeof(s));
	assert_string_equal(s, "");
}

static void test_view_non_ip(void **state)
{
	struct tf_flow_value v = val(1, 42, 1, 60, 1, 1);
	struct tf_flow_key k;
	struct tf_flow_view w;

	(void)state;
	memset(&k, 0, sizeof(k));
	k.ifindex = 7;
	k.ethertype = 0x0806;
	inet_pton(AF_INET, "10.77.0.1", k.local_ip);
	inet_pton(AF_INET, "10.77.0.2", k.remote_ip);
	tf_flow_view(&k, &v, false, &w);
	assert_int_equal(w.family, 0);
	assert_int_equal(w.proto, -1);
	assert_string_equal(w.proto_name, "arp");
	assert_string_equal(w.local_ip, "10.77.0.1");
	assert_string_equal(w.remote_ip, "10.77.0.2");
	assert_int_equal(w.local_port, -1);

	memset(&k, 0, sizeof(k));
	k.ethertype = 0x88b5;
	k.vlan = 100;
	k.vlan_inner = 7;
	tf_flow_view(&k, &v, false, &w);
	assert_string_equal(w.proto_name, "ethertype 0x88b5");
	assert_string_equal(w.local_ip, "");
	assert_int_equal(w.vlan, 100);
	assert_int_equal(w.vlan_inner, 7);
	k.ethertype = 0x88cc;
	tf_flow_view(&k, &v, false, &w);
	assert_string_equal(w.proto_name, "lldp");

	/* Another IP protocol (GRE): its number, no ports. */
	k = key4(47, "10.0.0.1", 0, "10.0.0.2", 0);
	tf_flow_view(&k, &v, false, &w);
	assert_string_equal(w.proto_name, "47");
	assert_int_equal(w.local_port, -1);
}

static void test_tcp_flags(void **state)
{
	char s[16];

	(void)state;
	tf_tcp_flags_str(0, s, sizeof(s));
	assert_string_equal(s, "");
	tf_tcp_flags_str(0xff, s, sizeof(s));
	assert_string_equal(s, "CEUAPRSF");
	tf_tcp_flags_str(0x04, s, sizeof(s));
	assert_string_equal(s, "R");
	tf_tcp_flags_str(0xff, s, 4);
	assert_string_equal(s, "CEU");
}

/* ---- values ---------------------------------------------------------------- */

static void test_percpu_merge(void **state)
{
	struct tf_flow_value cpu[4], out;

	(void)state;
	cpu[0] = val(1, 100, 0, 0, 50, 60);
	memset(&cpu[1], 0, sizeof(cpu[1]));	/* never saw the flow */
	cpu[2] = val(2, 200, 3, 300, 40, 55);
	cpu[3] = val(0, 0, 1, 64, 70, 90);
	cpu[0].tcp_flags_rx = 0x02;
	cpu[2].tcp_flags_tx = 0x10;
	cpu[3].tcp_flags_rx = 0x01;
	tf_flow_value_sum(cpu, 4, &out);
	assert_int_equal(out.rx.packets, 3);
	assert_int_equal(out.rx.bytes, 300);
	assert_int_equal(out.rx.segs, 3);
	assert_int_equal(out.tx.packets, 4);
	assert_int_equal(out.tx.bytes, 364);
	assert_int_equal(out.first_seen_ns, 40);	/* not the idle CPU's 0 */
	assert_int_equal(out.last_seen_ns, 90);
	assert_int_equal(out.tcp_flags_rx, 0x03);
	assert_int_equal(out.tcp_flags_tx, 0x10);
	/* One value (shared map): a copy. */
	tf_flow_value_sum(&cpu[2], 1, &out);
	assert_memory_equal(&out, &cpu[2], sizeof(out));
}

/* ---- sorting ---------------------------------------------------------------- */

static void test_sort(void **state)
{
	struct tf_flow f[4];
	struct tf_flow *v[4];

	(void)state;
	memset(f, 0, sizeof(f));
	for (int i = 0; i < 4; i++) {
		f[i].key = key4(IPPROTO_UDP, "10.0.0.1", 1000 + i, "10.0.0.2", 53);
		v[i] = &f[i];
	}
	f[0].cur = val(50, 3000, 0, 0, 1, 2);	/* many small */
	f[1].cur = val(0, 0, 3, 4500, 1, 2);	/* few big */
	f[1].rx_bps = 10;
	f[2].base = val(1, 100, 0, 0, 1, 2);	/* small, expired, then back */
	f[2].cur = val(1, 100, 0, 0, 3, 4);
	f[2].tx_bps = 1e6;
	f[3].cur = val(0, 0, 3, 4500, 1, 2);	/* ties f[1] on bytes and packets */
	tf_flows_sort(v, 4, TF_SORT_BYTES);
	assert_ptr_equal(v[0], &f[1]);	/* tie broken by key: port 1001 < 1003 */
	assert_ptr_equal(v[1], &f[3]);
	assert_ptr_equal(v[2], &f[0]);
	assert_ptr_equal(v[3], &f[2]);
	tf_flows_sort(v, 4, TF_SORT_PACKETS);
	assert_ptr_equal(v[0], &f[0]);
	assert_ptr_equal(v[3], &f[2]);
	tf_flows_sort(v, 4, TF_SORT_RATE);
	assert_ptr_equal(v[0], &f[2]);
	assert_ptr_equal(v[1], &f[1]);
	assert_string_equal(tf_flow_sort_name(TF_SORT_RATE), "rate");
}

/* ---- the table against a fake kernel map --------------------------------------- */

#define FAKE_MAX 64
#define FAKE_CPUS 2
/* Small batches: the table must follow the position across calls. */
#define FAKE_BATCH 3
#include "fake_flow_map.h"

/* The kernel sees a packet of key: counts on cpu, creating the entry. */
static void fake_packet(struct fake_map *m, const struct tf_flow_key *k, int cpu, bool tx,
			uint64_t bytes, uint64_t now)
{
	struct tf_flow_value *v = &m->vals[fake_slot(m, k)][m->nvalues > 1 ? cpu : 0];

	if (!v->first_seen_ns)
		v->first_seen_ns = now;
	v->last_seen_ns = now;
	(tx ? &v->tx : &v->rx)->packets++;
	(tx ? &v->tx : &v->rx)->bytes += bytes;
	(tx ? &v->tx : &v->rx)->segs++;
}

struct fixture {
	struct fake_map m;
	struct tf_flows fl;
};

static void setup_table(struct fixture *f, int nvalues, uint64_t idle, uint64_t active,
			size_t max_ended)
{
	struct tf_flow_map map = { .ops = &fake_ops, .ctx = &f->m, .nvalues = nvalues };

	memset(f, 0, sizeof(*f));
	f->m.nvalues = nvalues;
	assert_int_equal(tf_flows_init(&f->fl, &map, idle, active, max_ended), 0);
}

/* Sum of every flow's totals plus the evicted aggregates. */
static void table_totals(const struct tf_flows *fl, uint64_t *rx, uint64_t *tx)
{
	struct tf_flow **v;
	long n = tf_flows_collect(fl, 0, &v);

	*rx = *tx = 0;
	for (long i = 0; i < n; i++) {
		struct tf_flow_value t;

		tf_flow_total(v[i], &t);
		*rx += t.rx.bytes;
		*tx += t.tx.bytes;
	}
	free(v);
	for (size_t i = 0; i < fl->n_evicted; i++) {
		*rx += fl->evicted[i].v.rx.bytes;
		*tx += fl->evicted[i].v.tx.bytes;
	}
}

static void test_table_expiry_exact(void **state)
{
	struct tf_flow_key a = key4(IPPROTO_UDP, "10.0.0.1", 1, "10.0.0.2", 53);
	struct tf_flow_key b = key4(IPPROTO_TCP, "10.0.0.1", 2, "10.0.0.2", 80);
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t rx, tx, now = 1000 * SEC;
	struct tf_flow *fa;
	struct tf_flow_value t;

	(void)state;
	setup_table(f, FAKE_CPUS, 30 * SEC, 0, 0);
	fake_packet(&f->m, &a, 0, true, 100, now);
	fake_packet(&f->m, &a, 1, false, 200, now + SEC);
	fake_packet(&f->m, &b, 1, true, 1000, now + SEC);
	assert_int_equal(tf_flows_poll(&f->fl, now + 2 * SEC, 1.0), 0);
	assert_int_equal(f->fl.n, 2);
	assert_int_equal(f->fl.counts.seen, 2);
	fa = tf_flows_find(&f->fl, &a);
	assert_non_null(fa);
	assert_true(fa->in_kernel);
	tf_flow_total(fa, &t);
	assert_int_equal(t.tx.bytes, 100);
	assert_int_equal(t.rx.bytes, 200);
	assert_int_equal(t.first_seen_ns, now);
	assert_int_equal(t.last_seen_ns, now + SEC);
	assert_true(fa->tx_bps == 800);

	/* b stays busy; a goes idle and expires: its entry leaves the kernel. */
	fake_packet(&f->m, &b, 0, false, 500, now + 30 * SEC);
	assert_int_equal(tf_flows_poll(&f->fl, now + 31 * SEC + 1, 29.0), 0);
	assert_true(fa->expired);
	assert_false(fa->in_kernel);
	assert_int_equal(fake_find(&f->m, &a), -1);
	assert_int_equal(f->fl.counts.expired, 1);
	assert_int_equal(f->fl.n_expired, 1);
	tf_flow_total(fa, &t);
	assert_int_equal(t.tx.bytes + t.rx.bytes, 300);	/* kept in userspace */
	table_totals(&f->fl, &rx, &tx);
	assert_int_equal(rx + tx, 1800);

	/* a comes back: same flow, totals go on from what was kept. */
	fake_packet(&f->m, &a, 1, true, 50, now + 40 * SEC);
	assert_int_equal(tf_flows_poll(&f->fl, now + 41 * SEC, 10.0), 0);
	assert_ptr_equal(tf_flows_find(&f->fl, &a), fa);
	assert_false(fa->expired);
	assert_int_equal(f->fl.n_expired, 0);
	assert_int_equal(f->fl.counts.seen, 2);
	tf_flow_total(fa, &t);
	assert_int_equal(t.tx.bytes, 150);
	assert_int_equal(t.rx.bytes, 200);
	assert_int_equal(t.first_seen_ns, now);
	assert_int_equal(t.last_seen_ns, now + 40 * SEC);
	assert_true(fa->tx_bps == 50 * 8 / 10.0);
	table_totals(&f->fl, &rx, &tx);
	assert_int_equal(rx + tx, 1850);
	assert_true(f->m.batch_calls > 0);
	assert_int_equal(f->m.next_key_calls, 0);
	assert_int_equal(f->fl.counts.races, 0);
	tf_flows_free(&f->fl);
	free(f);
}

static void test_table_active_timeout(void **state)
{
	struct tf_flow_key a = key4(IPPROTO_TCP, "10.0.0.1", 1, "10.0.0.2", 443);
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t now = 5000 * SEC, sum = 0;
	struct tf_flow *fa;
	struct tf_flow_value t;

	(void)state;
	setup_table(f, 1, 30 * SEC, 60 * SEC, 0);
	/* Busy for 200 s: harvested every 60 s, never expired, totals exact. */
	for (int s = 0; s < 200; s++) {
		fake_packet(&f->m, &a, 0, s & 1, 1000 + (uint64_t)s, now + (uint64_t)s * SEC);
		sum += 1000 + (uint64_t)s;
		assert_int_equal(tf_flows_poll(&f->fl, now + (uint64_t)s * SEC + 1, 1.0), 0);
	}
	fa = tf_flows_find(&f->fl, &a);
	assert_non_null(fa);
	assert_false(fa->expired);
	assert_int_equal(f->fl.counts.active, 3);
	assert_int_equal(f->fl.counts.expired, 0);
	tf_flow_total(fa, &t);
	assert_int_equal(t.rx.bytes + t.tx.bytes, sum);
	assert_int_equal(t.rx.packets + t.tx.packets, 200);
	assert_int_equal(t.first_seen_ns, now);
	/* Then quiet: once idle it has ended, whether in the kernel or not. */
	assert_int_equal(tf_flows_poll(&f->fl, now + 300 * SEC, 1.0), 0);
	assert_true(fa->expired);
	assert_int_equal(f->fl.counts.expired, 1);
	tf_flow_total(fa, &t);
	assert_int_equal(t.rx.bytes + t.tx.bytes, sum);
	tf_flows_free(&f->fl);
	free(f);
}

static void test_table_fallbacks(void **state)
{
	struct tf_flow_key k[5];
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t rx, tx, now = 100 * SEC;

	(void)state;
	setup_table(f, FAKE_CPUS, 10 * SEC, 0, 0);
	f->m.no_batch = true;
	f->m.no_lad = true;
	for (int i = 0; i < 5; i++) {
		k[i] = key4(IPPROTO_UDP, "10.0.0.1", 100 + i, "10.0.0.2", 53);
		fake_packet(&f->m, &k[i], i & 1, true, 100, now);
	}
	assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
	assert_true(f->fl.map.no_batch);
	assert_true(f->m.next_key_calls >= 6);
	assert_int_equal(f->m.batch_calls, 1);	/* found out once */
	assert_int_equal(f->fl.n, 5);
	/* Expire all; a packet of k[0] lands between lookup and delete: lost. */
	f->m.in_flight = val(0, 0, 1, 77, now + 11 * SEC, now + 11 * SEC);
	assert_int_equal(tf_flows_poll(&f->fl, now + 20 * SEC, 19.0), 0);
	assert_true(f->fl.map.no_lookup_and_delete);
	assert_int_equal(f->m.lad_calls, 1);	/* found out once */
	assert_int_equal(f->fl.counts.races, 5);	/* every expiry could have lost some */
	assert_int_equal(f->fl.counts.expired, 5);
	table_totals(&f->fl, &rx, &tx);
	assert_int_equal(tx, 500);	/* the 77 bytes were lost, and counted as possible */
	assert_int_equal(f->m.batch_calls, 1);
	tf_flows_free(&f->fl);
	free(f);
}

static void test_table_evicts_ended(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t rx, tx, now = 100 * SEC;
	const struct tf_flow_evicted *ev;

	(void)state;
	setup_table(f, 1, 5 * SEC, 0, 10);
	/* 40 short flows, in 4 rounds: more ended flows than the 10 kept. */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 10; i++) {
			struct tf_flow_key k = key4(IPPROTO_UDP, "10.0.0.1",
						    1000 + round * 10 + i, "10.0.0.2", 53);

			fake_packet(&f->m, &k, 0, i & 1, 10, now + (uint64_t)(round * 10 + i));
		}
		assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
		now += 10 * SEC;
		assert_int_equal(tf_flows_poll(&f->fl, now, 9.0), 0);
	}
	assert_int_equal(f->fl.counts.seen, 40);
	assert_int_equal(f->fl.counts.expired, 40);
	assert_true(f->fl.n_expired <= 10);
	assert_int_equal(f->fl.n, f->fl.n_expired);
	ev = tf_flows_evicted(&f->fl, 7);
	assert_non_null(ev);
	assert_int_equal(ev->flows + f->fl.n, 40);
	assert_int_equal(ev->flows, f->fl.counts.evicted);
	assert_null(tf_flows_evicted(&f->fl, 8));
	table_totals(&f->fl, &rx, &tx);
	assert_int_equal(rx + tx, 400);
	/* The oldest went first: every flow kept is newer than every evicted one. */
	assert_true(ev->v.last_seen_ns < 130 * SEC + 40);
	tf_flows_free(&f->fl);
	free(f);
}

/* ---- the index by interface ------------------------------------------------------ */

/* How many flows of the table are on ifindex: the walk the index replaces. */
static long walk_count(const struct tf_flows *fl, uint32_t ifindex)
{
	long n = 0;

	for (size_t i = 0; i < fl->nbuckets; i++)
		for (const struct tf_flow *f = fl->buckets[i]; f; f = f->hnext)
			n += f->key.ifindex == ifindex;
	return n;
}

/*
 * Every flow of ifindex is in its group once, and nothing else is; the
 * copy tf_flows_collect makes holds the same flows.
 */
static void check_group(const struct tf_flows *fl, uint32_t ifindex)
{
	struct tf_flow *const *mine;
	struct tf_flow **copy;
	long n = tf_flows_of(fl, ifindex, &mine), c;

	assert_int_equal(n, walk_count(fl, ifindex));
	for (long i = 0; i < n; i++) {
		assert_int_equal(mine[i]->key.ifindex, ifindex);
		assert_ptr_equal(tf_flows_find(fl, &mine[i]->key), mine[i]);
		for (long j = 0; j < i; j++)
			assert_ptr_not_equal(mine[i], mine[j]);
	}
	c = tf_flows_collect(fl, ifindex, &copy);
	assert_int_equal(c, n);
	if (n)
		assert_memory_equal(copy, mine, (size_t)n * sizeof(*copy));
	free(copy);
}

/* Flows of n interfaces, ifindex first + i * step, spread round robin. */
static void spread_flows(struct fixture *f, int nflows, int nif, uint32_t first, uint32_t step,
			 uint64_t now)
{
	for (int i = 0; i < nflows; i++) {
		struct tf_flow_key k = key4(IPPROTO_UDP, "10.0.0.1", 2000 + i, "10.0.0.2", 53);

		k.ifindex = first + (uint32_t)(i % nif) * step;
		fake_packet(&f->m, &k, 0, i & 1, 100, now);
	}
}

static void test_index_groups(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t now = 100 * SEC;
	struct tf_flow *const *mine;
	long total = 0;

	(void)state;
	setup_table(f, 1, 30 * SEC, 0, 0);
	/* No poll yet: no index, and nothing to find either way. */
	assert_int_equal(tf_flows_of(&f->fl, 3, &mine), -1);
	/* 40 interfaces, more than the first slot table takes at half load. */
	spread_flows(f, FAKE_MAX, 40, 3, 1, now);
	assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
	assert_true(f->fl.ix.valid);
	assert_int_equal(f->fl.ix.n_groups, 40);
	assert_true(f->fl.ix.n_slots >= 2 * f->fl.ix.n_groups);
	for (uint32_t ifx = 3; ifx < 3 + 40; ifx++) {
		check_group(&f->fl, ifx);
		total += tf_flows_of(&f->fl, ifx, &mine);
	}
	assert_int_equal(total, f->fl.n);
	/* An interface without flows: an empty group, not an error. */
	assert_int_equal(tf_flows_of(&f->fl, 2, &mine), 0);
	assert_int_equal(tf_flows_of(&f->fl, 1000, &mine), 0);
	tf_flows_free(&f->fl);
	free(f);
}

static void test_index_colliding_ifindexes(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t now = 100 * SEC;

	(void)state;
	setup_table(f, 1, 30 * SEC, 0, 0);
	/* ifindexes 1024 apart (the low bits alike) and one near the top of the range. */
	spread_flows(f, FAKE_MAX - 1, 33, 1024, 1024, now);
	{
		struct tf_flow_key k = key4(IPPROTO_TCP, "10.0.0.1", 1, "10.0.0.2", 2);

		k.ifindex = 0xfffffff0u;
		fake_packet(&f->m, &k, 0, true, 100, now);
	}
	assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
	assert_int_equal(f->fl.ix.n_groups, 34);
	for (uint32_t i = 1; i <= 33; i++)
		check_group(&f->fl, i * 1024);
	check_group(&f->fl, 0xfffffff0u);
	check_group(&f->fl, 512);
	tf_flows_free(&f->fl);
	free(f);
}

/* Flows come and go only in a poll: the index after each one is the table's. */
static void test_index_follows_the_table(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t now = 100 * SEC;

	(void)state;
	/* Ended flows: at most 8 kept one by one, the rest evicted (freed). */
	setup_table(f, 1, 5 * SEC, 0, 8);
	spread_flows(f, 30, 3, 10, 1, now);
	assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
	for (uint32_t ifx = 10; ifx < 13; ifx++)
		check_group(&f->fl, ifx);
	/* All 30 go idle: 22 are folded into the aggregates and freed. */
	now += 10 * SEC;
	assert_int_equal(tf_flows_poll(&f->fl, now, 9.0), 0);
	assert_true(f->fl.counts.evicted > 0);
	assert_int_equal(f->fl.n, f->fl.n_expired);
	for (uint32_t ifx = 10; ifx < 13; ifx++)
		check_group(&f->fl, ifx);
	/* New flows on a new interface: in its group from the next poll on. */
	{
		struct tf_flow_key k = key4(IPPROTO_UDP, "10.0.0.9", 9, "10.0.0.2", 53);

		k.ifindex = 77;
		fake_packet(&f->m, &k, 0, true, 100, now);
	}
	assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
	check_group(&f->fl, 77);
	assert_int_equal(walk_count(&f->fl, 77), 1);
	tf_flows_free(&f->fl);
	free(f);
}

static int failing_batch(void *ctx, void *in, void *out, void *keys, void *values,
			 uint32_t *count)
{
	(void)ctx, (void)in, (void)out, (void)keys, (void)values;
	*count = 0;
	return -EIO;
}

/* A poll that fails half-way: no index, and every reader walks the table. */
static void test_index_after_failed_poll(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_flow_map_ops failing = fake_ops;
	struct tf_flow *const *mine;
	struct tf_flow **copy;
	uint64_t now = 100 * SEC;

	(void)state;
	setup_table(f, 1, 30 * SEC, 0, 0);
	spread_flows(f, 20, 4, 5, 1, now);
	assert_int_equal(tf_flows_poll(&f->fl, now + SEC, 1.0), 0);
	check_group(&f->fl, 5);
	failing.lookup_batch = failing_batch;
	f->fl.map.ops = &failing;
	assert_int_equal(tf_flows_poll(&f->fl, now + 2 * SEC, 1.0), -EIO);
	assert_int_equal(tf_flows_of(&f->fl, 5, &mine), -1);
	assert_int_equal(tf_flows_collect(&f->fl, 5, &copy), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(copy[i]->key.ifindex, 5);
	free(copy);
	/* The next good poll builds it again. */
	f->fl.map.ops = &fake_ops;
	assert_int_equal(tf_flows_poll(&f->fl, now + 3 * SEC, 1.0), 0);
	check_group(&f->fl, 5);
	tf_flows_free(&f->fl);
	free(f);
}

static void test_time(void **state)
{
	struct timespec ts;

	(void)state;
	tf_ktime_to_timespec(5 * SEC + 250000000ULL, (int64_t)(1700000000ULL * SEC), &ts);
	assert_int_equal(ts.tv_sec, 1700000005);
	assert_int_equal(ts.tv_nsec, 250000000);
	/* The offset puts now (monotonic) on today's wall clock, within a second. */
	tf_ktime_to_timespec(tf_now_mono_ns(), tf_mono_to_real_offset(), &ts);
	assert_true(labs((long)(ts.tv_sec - time(NULL))) <= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_view_tcp_vm),
		cmocka_unit_test(test_view_mirrored),
		cmocka_unit_test(test_view_icmp),
		cmocka_unit_test(test_ipv6_compressed),
		cmocka_unit_test(test_view_non_ip),
		cmocka_unit_test(test_tcp_flags),
		cmocka_unit_test(test_percpu_merge),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_table_expiry_exact),
		cmocka_unit_test(test_table_active_timeout),
		cmocka_unit_test(test_table_fallbacks),
		cmocka_unit_test(test_table_evicts_ended),
		cmocka_unit_test(test_index_groups),
		cmocka_unit_test(test_index_colliding_ifindexes),
		cmocka_unit_test(test_index_follows_the_table),
		cmocka_unit_test(test_index_after_failed_poll),
		cmocka_unit_test(test_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
