// SPDX-License-Identifier: GPL-2.0
/*
 * Dropped packets, userspace: src/ksyms.h and the pure parts of
 * src/drops.h.
 *
 * - Drop reason names from BTF: a crafted enum (prefixes, a gap, a
 *   duplicate value, SUBSYS_MASK, subsystem values, no enum at all) and the
 *   running kernel's own enum skb_drop_reason, every value of it.
 * - Kernel symbols: a crafted kallsyms text (types, order, module symbols,
 *   hidden addresses, growth past the first allocations) and the real
 *   /proc/kallsyms (a known symbol is itself +0x0).
 * - The flow key of a dropped packet in both views (ICMP: not swapped).
 * - Attribution, rule by rule and in order, against a hand-built collector
 *   (VM taps, an --iface interface, a bridge, an uplink with the NAT join)
 *   and a flow table read from a fake kernel map: flow, nat, device, mac,
 *   address, and the host when nothing matches; without a flow table (stats)
 *   only device and MAC.
 * - The run's table: groups, the host aggregate, per-tap/device/flow sums.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/btf.h>
#include <cmocka.h>

#include "collector.h"
#include "drops.h"
#include "flows.h"
#include "ksyms.h"

#define SEC 1000000000ULL

/* ---- drop reasons from a crafted BTF ------------------------------------------- */

static struct btf *crafted_btf(bool with_mask)
{
	struct btf *btf = btf__new_empty();

	assert_non_null(btf);
	/* Another enum first, with a name that looks like a reason: never read. */
	assert_true(btf__add_enum(btf, "skb_drop_reason_subsys", 4) > 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_SUBSYS_CORE", 0), 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2), 0);
	assert_true(btf__add_enum(btf, "skb_drop_reason", 4) > 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_NOT_DROPPED_YET", 0), 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_CONSUMED", 1), 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_NOT_SPECIFIED", 2), 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_NO_SOCKET", 3), 0);
	/* 4: a gap. */
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_NETFILTER_DROP", 5), 0);
	/* A second name for 5: the first one stays. */
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_ALIAS", 5), 0);
	/* Neither prefix: kept whole. */
	assert_int_equal(btf__add_enum_value(btf, "ODD_ONE", 6), 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_MAX", 7), 0);
	if (with_mask)
		assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_SUBSYS_MASK",
						     0xffff0000LL), 0);
	return btf;
}

static void name_is(const struct tf_drop_reasons *r, uint32_t v, const char *want)
{
	char out[64];

	memset(out, 'x', sizeof(out));
	tf_drop_reason_name(r, v, out, sizeof(out));
	if (strcmp(out, want))
		fail_msg("reason %#x: got \"%s\", want \"%s\"", v, out, want);
}

static void test_reasons_crafted(void **state)
{
	struct btf *btf = crafted_btf(true);
	struct tf_drop_reasons r;
	char small[6];

	(void)state;
	assert_int_equal(tf_drop_reasons_load(&r, btf), 0);
	/* Sized by the reasons proper, not by SUBSYS_MASK. */
	assert_int_equal(r.n, 8);
	assert_int_equal(r.subsys_mask, 0xffff0000u);
	name_is(&r, 0, "NOT_DROPPED_YET");
	name_is(&r, 1, "CONSUMED");
	name_is(&r, 2, "NOT_SPECIFIED");
	name_is(&r, 3, "NO_SOCKET");
	name_is(&r, 4, "4");			/* the gap: its number */
	name_is(&r, 5, "NETFILTER_DROP");	/* not ALIAS */
	name_is(&r, 6, "ODD_ONE");
	name_is(&r, 7, "MAX");
	name_is(&r, 8, "8");			/* past the end */
	name_is(&r, 0xfffe, "65534");
	/* Subsystems: id << 16 | reason. */
	name_is(&r, 2u << 16 | 5, "SUBSYS_2:5");
	name_is(&r, 1u << 16, "SUBSYS_1:0");
	name_is(&r, 0xffffffffu, "SUBSYS_65535:65535");
	/* The mask itself is no reason. */
	name_is(&r, 0xffff0000u, "SUBSYS_65535:0");
	/* Output cut to the buffer, NUL-terminated. */
	tf_drop_reason_name(&r, 5, small, sizeof(small));
	assert_string_equal(small, "NETFI");
	tf_drop_reasons_free(&r);
	assert_null(r.names);
	assert_int_equal(r.n, 0);
	tf_drop_reasons_free(&r);	/* twice is fine */
	btf__free(btf);

	/* Kernels before the subsystems (no SUBSYS_MASK): the same split. */
	btf = crafted_btf(false);
	assert_int_equal(tf_drop_reasons_load(&r, btf), 0);
	assert_int_equal(r.n, 8);
	assert_int_equal(r.subsys_mask, 0);
	name_is(&r, 3, "NO_SOCKET");
	name_is(&r, 1u << 16 | 3, "SUBSYS_1:3");
	tf_drop_reasons_free(&r);
	btf__free(btf);
}

static void test_reasons_no_enum(void **state)
{
	struct btf *btf = btf__new_empty();
	struct tf_drop_reasons r;

	(void)state;
	assert_non_null(btf);
	assert_true(btf__add_enum(btf, "something_else", 4) > 0);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_NO_SOCKET", 3), 0);
	memset(&r, 0xaa, sizeof(r));
	assert_int_equal(tf_drop_reasons_load(&r, btf), -ENOENT);
	/* Nothing held: free is safe, names print as numbers. */
	assert_null(r.names);
	assert_int_equal(r.n, 0);
	name_is(&r, 3, "3");
	tf_drop_reasons_free(&r);
	btf__free(btf);
}

/* ---- drop reasons of the running kernel --------------------------------------- */

static void test_reasons_kernel(void **state)
{
	static const char prefix[] = "SKB_DROP_REASON_";
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	const struct btf_enum *e;
	struct tf_drop_reasons r;
	uint32_t max = 0, mask = 0, ovs = 0;
	int id, checked = 0, nf = -1;

	(void)state;
	if (!btf)
		skip();
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	if (id <= 0) {
		btf__free(btf);
		skip();		/* before 5.17 */
	}
	assert_int_equal(tf_drop_reasons_load(&r, btf), 0);
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *name = btf__name_by_offset(btf, e[i].name_off);
		uint32_t v = (uint32_t)e[i].val;
		const char *want = name;
		char got[128];
		bool first = true;

		if (!strcmp(name, "SKB_DROP_REASON_SUBSYS_MASK")) {
			mask = v;
			continue;
		}
		/* A value named twice keeps its first name. */
		for (int j = 0; j < i; j++)
			if ((uint32_t)e[j].val == v)
				first = false;
		if (!first)
			continue;
		if (!strncmp(want, prefix, strlen(prefix)))
			want += strlen(prefix);
		else if (!strncmp(want, "SKB_", 4))
			want += 4;
		tf_drop_reason_name(&r, v, got, sizeof(got));
		if (strcmp(got, want))
			fail_msg("%s = %u: got \"%s\", want \"%s\"", name, v, got, want);
		if (!strcmp(want, "NETFILTER_DROP"))
			nf = (int)v;
		if (v + 1 > max)
			max = v + 1;
		checked++;
	}
	print_message("%d reasons of the running kernel, values 0..%u\n", checked, max - 1);
	assert_true(checked >= 2);
	assert_int_equal(r.n, max);
	assert_int_equal(r.subsys_mask, mask);
	/* 5.17 already had it; its value is the kernel's, not ours. */
	assert_true(nf >= 0);
	/* Unknown values: their numbers. */
	{
		char want[16];

		snprintf(want, sizeof(want), "%u", max);
		name_is(&r, max, want);
		snprintf(want, sizeof(want), "%u", 0xfff0u);
		if (0xfff0u >= max)
			name_is(&r, 0xfff0u, want);
	}
	/* A subsystem's value, numbered as the kernel numbers the subsystem. */
	id = btf__find_by_name_kind(btf, "skb_drop_reason_subsys", BTF_KIND_ENUM);
	if (id > 0) {
		t = btf__type_by_id(btf, id);
		e = btf_enum(t);
		for (int i = 0; i < btf_vlen(t); i++)
			if (!strcmp(btf__name_by_offset(btf, e[i].name_off),
				    "SKB_DROP_REASON_SUBSYS_OPENVSWITCH"))
				ovs = (uint32_t)e[i].val;
	}
	if (ovs) {
		char want[32];

		snprintf(want, sizeof(want), "SUBSYS_%u:3", ovs);
		name_is(&r, ovs << 16 | 3, want);
	}
	tf_drop_reasons_free(&r);
	btf__free(btf);
}

/* ---- kernel symbols ------------------------------------------------------------- */

static const char kallsyms_text[] =
	"ffffffff81000000 T _stext\n"
	"ffffffff81000200 D some_data\n"		/* data: not a location */
	"ffffffff81000100 t helper\n"
	"ffffffff81000050 T early\n"			/* out of order */
	"ffffffff81000300 W weak_fn\n"
	"ffffffff81000400 w weak_local\n"
	"0000000000000000 T hidden\n"			/* address hidden */
	"ffffffff81000500 r rodata_sym\n"
	"ffffffff81000600 A abs_sym\n"
	"not a kallsyms line\n"
	"\n"
	"ffffffffc0001000 t mod_fn\t[mymod]\n";

static void ksym_is(const struct tf_ksyms *k, uint64_t addr, const char *want)
{
	char out[256];

	tf_ksyms_name(k, addr, out, sizeof(out));
	if (strcmp(out, want))
		fail_msg("%#" PRIx64 ": got \"%s\", want \"%s\"", addr, out, want);
}

static void test_ksyms_crafted(void **state)
{
	FILE *f = fmemopen((void *)kallsyms_text, sizeof(kallsyms_text) - 1, "r");
	struct tf_ksyms k;
	char small[8];

	(void)state;
	assert_non_null(f);
	assert_int_equal(tf_ksyms_load(&k, f), 0);
	fclose(f);
	/* _stext, early, helper, weak_fn, weak_local, mod_fn. */
	assert_int_equal(k.n, 6);
	for (size_t i = 1; i < k.n; i++)
		assert_true(k.syms[i - 1].addr <= k.syms[i].addr);
	ksym_is(&k, 0xffffffff81000000ULL, "_stext+0x0");
	ksym_is(&k, 0xffffffff81000010ULL, "_stext+0x10");
	ksym_is(&k, 0xffffffff81000050ULL, "early+0x0");
	ksym_is(&k, 0xffffffff810000ffULL, "early+0xaf");
	ksym_is(&k, 0xffffffff81000100ULL, "helper+0x0");
	ksym_is(&k, 0xffffffff81000250ULL, "helper+0x150");	/* some_data ignored */
	ksym_is(&k, 0xffffffff81000300ULL, "weak_fn+0x0");
	ksym_is(&k, 0xffffffff81000410ULL, "weak_local+0x10");
	ksym_is(&k, 0xffffffff81000650ULL, "weak_local+0x250");	/* rodata, abs ignored */
	ksym_is(&k, 0xffffffffc0001008ULL, "mod_fn+0x8");	/* "[mymod]" not in the name */
	ksym_is(&k, 0xffffffffffffffffULL, "mod_fn+0x3fffefff");
	/* Below every symbol: the address. */
	ksym_is(&k, 0xffffffff80ffffffULL, "0xffffffff80ffffff");
	ksym_is(&k, 0, "0x0");
	/* Cut to the buffer. */
	tf_ksyms_name(&k, 0xffffffff81000100ULL, small, sizeof(small));
	assert_string_equal(small, "helper+");
	tf_ksyms_free(&k);
	assert_int_equal(k.n, 0);
	assert_null(k.syms);
	/* An empty table: addresses only. */
	ksym_is(&k, 0xffffffff81000100ULL, "0xffffffff81000100");
	tf_ksyms_free(&k);
}

static void test_ksyms_hidden(void **state)
{
	/* kptr_restrict: every address reads 0. */
	static const char hidden[] = "0000000000000000 T _stext\n0000000000000000 t helper\n";
	FILE *f = fmemopen((void *)hidden, sizeof(hidden) - 1, "r");
	struct tf_ksyms k;

	(void)state;
	assert_non_null(f);
	memset(&k, 0xaa, sizeof(k));
	assert_int_equal(tf_ksyms_load(&k, f), -ENOENT);
	fclose(f);
	assert_int_equal(k.n, 0);
	assert_null(k.syms);
	assert_null(k.names);
	ksym_is(&k, 0x1234, "0x1234");
	tf_ksyms_free(&k);

	/* An empty file. */
	f = fmemopen((void *)hidden, 0, "r");
	if (f) {
		assert_int_equal(tf_ksyms_load(&k, f), -ENOENT);
		fclose(f);
	}
}

/* More symbols and name bytes than the first allocations (64 Ki, 1 MiB). */
static void test_ksyms_many(void **state)
{
	enum { N = 100000 };
	char *text = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&text, &len), *f;
	struct tf_ksyms k;
	char want[64];

	(void)state;
	assert_non_null(w);
	/* Written backwards: the table sorts them. */
	for (int i = N - 1; i >= 0; i--)
		fprintf(w, "%016" PRIx64 " t a_rather_long_function_name_%d\n",
			(uint64_t)(0xffffffff82000000ULL + (uint64_t)i * 0x40), i);
	fclose(w);
	f = fmemopen(text, len, "r");
	assert_non_null(f);
	assert_int_equal(tf_ksyms_load(&k, f), 0);
	fclose(f);
	assert_int_equal(k.n, N);
	for (int i = 0; i < N; i += 997) {
		snprintf(want, sizeof(want), "a_rather_long_function_name_%d+0x3f", i);
		ksym_is(&k, 0xffffffff82000000ULL + (uint64_t)i * 0x40 + 0x3f, want);
	}
	snprintf(want, sizeof(want), "a_rather_long_function_name_%d+0x0", N - 1);
	ksym_is(&k, 0xffffffff82000000ULL + (uint64_t)(N - 1) * 0x40, want);
	tf_ksyms_free(&k);
	free(text);
}

/* The real /proc/kallsyms: known symbols (with an address of their own) are themselves. */
static void test_ksyms_kernel(void **state)
{
	static const char *const known[] = {
		"ip_forward", "nf_hook_slow", "ip_error", "__dev_queue_xmit", "kfree_skb_list_reason",
		"sk_skb_reason_drop", "ip_rcv", "schedule",
	};
	uint64_t addr[sizeof(known) / sizeof(known[0])] = { 0 };
	int count[sizeof(known) / sizeof(known[0])] = { 0 };
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256], type, want[300];
	unsigned long long a;
	struct tf_ksyms k;
	int err, checked = 0;

	(void)state;
	if (!f)
		skip();
	err = tf_ksyms_load(&k, f);
	if (err == -ENOENT) {
		fclose(f);
		skip();		/* addresses hidden (kptr_restrict, not root) */
	}
	assert_int_equal(err, 0);
	assert_true(k.n > 1000);
	/* Second pass: the known symbols' addresses, and how many text symbols share them. */
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &a, &type, name) != 3 || !a)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(name, known[i]) && !addr[i])
				addr[i] = a;
	}
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &a, &type, name) != 3 || !a)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (addr[i] && a == addr[i])
				count[i]++;
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!addr[i] || count[i] != 1)
			continue;	/* not in this kernel, or an alias shares its address */
		snprintf(want, sizeof(want), "%s+0x0", known[i]);
		ksym_is(&k, addr[i], want);
		snprintf(want, sizeof(want), "%s+0x1", known[i]);
		ksym_is(&k, addr[i] + 1, want);
		checked++;
	}
	print_message("%d known symbols checked among %zu\n", checked, k.n);
	assert_true(checked >= 1);
	tf_ksyms_free(&k);
}

/* ---- the flow key of a dropped packet ------------------------------------------ */

static struct tf_drop_pkt pkt4(uint8_t proto, const char *src, int sport, const char *dst,
			       int dport)
{
	struct tf_drop_pkt p;

	memset(&p, 0, sizeof(p));
	p.ethertype = 0x0800;
	p.family = TF_FAM_IPV4;
	p.proto = proto;
	assert_int_equal(inet_pton(AF_INET, src, p.src_ip), 1);
	assert_int_equal(inet_pton(AF_INET, dst, p.dst_ip), 1);
	p.src_port = (uint16_t)sport;
	p.dst_port = (uint16_t)dport;
	return p;
}

static struct tf_drop_pkt pkt6(uint8_t proto, const char *src, int sport, const char *dst,
			       int dport)
{
	struct tf_drop_pkt p;

	memset(&p, 0, sizeof(p));
	p.ethertype = 0x86dd;
	p.family = TF_FAM_IPV6;
	p.proto = proto;
	assert_int_equal(inet_pton(AF_INET6, src, p.src_ip), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p.dst_ip), 1);
	p.src_port = (uint16_t)sport;
	p.dst_port = (uint16_t)dport;
	return p;
}

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

static void assert_key(const struct tf_flow_key *got, const struct tf_flow_key *want)
{
	char gl[64], gr[64], wl[64], wr[64];

	if (!memcmp(got, want, sizeof(*got)))
		return;
	tf_flow_ip_str(got->family, got->local_ip, gl, sizeof(gl));
	tf_flow_ip_str(got->family, got->remote_ip, gr, sizeof(gr));
	tf_flow_ip_str(want->family, want->local_ip, wl, sizeof(wl));
	tf_flow_ip_str(want->family, want->remote_ip, wr, sizeof(wr));
	fail_msg("key if %u %s:%u <-> %s:%u proto %u, want if %u %s:%u <-> %s:%u proto %u",
		 got->ifindex, gl, got->local_port, gr, got->remote_port, got->proto,
		 want->ifindex, wl, want->local_port, wr, want->remote_port, want->proto);
}

static void test_flow_key_ports(void **state)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, 136 /* UDP-Lite */,
					  132 /* SCTP */, 33 /* DCCP */ };

	(void)state;
	for (size_t i = 0; i < sizeof(protos); i++) {
		/* The VM (10.210.0.2:40000) sends to 10.211.0.2:7001. */
		struct tf_drop_pkt out = pkt4(protos[i], "10.210.0.2", 40000, "10.211.0.2", 7001);
		/* ... and the answer. */
		struct tf_drop_pkt in = pkt4(protos[i], "10.211.0.2", 7001, "10.210.0.2", 40000);
		struct tf_flow_key want = key4(7, protos[i], "10.210.0.2", 40000, "10.211.0.2", 7001);
		struct tf_flow_key k;

		memset(&k, 0xaa, sizeof(k));	/* every byte written, padding too */
		tf_drop_flow_key(&out, 7, true, &k);
		assert_key(&k, &want);
		memset(&k, 0xaa, sizeof(k));
		tf_drop_flow_key(&in, 7, false, &k);
		assert_key(&k, &want);
		/* The other view of each is the other end's flow. */
		tf_drop_flow_key(&out, 9, false, &k);
		want = key4(9, protos[i], "10.211.0.2", 7001, "10.210.0.2", 40000);
		assert_key(&k, &want);
	}
}

static void test_flow_key_icmp_and_other(void **state)
{
	struct tf_drop_pkt p;
	struct tf_flow_key k, want;

	(void)state;
	/* An echo request of the VM (id 4660) and the reply, keyed as the request (8 << 8). */
	p = pkt4(IPPROTO_ICMP, "10.210.0.3", 4660, "10.211.0.2", 8 << 8);
	tf_drop_flow_key(&p, 7, true, &k);
	want = key4(7, IPPROTO_ICMP, "10.210.0.3", 4660, "10.211.0.2", 8 << 8);
	assert_key(&k, &want);
	p = pkt4(IPPROTO_ICMP, "10.211.0.2", 4660, "10.210.0.3", 8 << 8);
	tf_drop_flow_key(&p, 7, false, &k);
	assert_key(&k, &want);	/* addresses swapped, identifier and type not */
	/* An ICMP error (no identifier, type 3 code 3): the same. */
	p = pkt4(IPPROTO_ICMP, "10.211.0.2", 0, "10.210.0.3", 3 << 8 | 3);
	tf_drop_flow_key(&p, 7, false, &k);
	want = key4(7, IPPROTO_ICMP, "10.210.0.3", 0, "10.211.0.2", 3 << 8 | 3);
	assert_key(&k, &want);
	/* ICMPv6 echo reply for the VM. */
	p = pkt6(IPPROTO_ICMPV6, "fd00:211::2", 77, "fd00:210::3", 128 << 8);
	tf_drop_flow_key(&p, 7, false, &k);
	want = key6(7, IPPROTO_ICMPV6, "fd00:210::3", 77, "fd00:211::2", 128 << 8);
	assert_key(&k, &want);
	/* IPv6 UDP, both views. */
	p = pkt6(IPPROTO_UDP, "fd00:211::2", 53, "fd00:210::3", 41000);
	tf_drop_flow_key(&p, 7, false, &k);
	want = key6(7, IPPROTO_UDP, "fd00:210::3", 41000, "fd00:211::2", 53);
	assert_key(&k, &want);
	/* GRE: no ports. */
	p = pkt4(47, "10.210.0.2", 0, "10.211.0.2", 0);
	tf_drop_flow_key(&p, 7, true, &k);
	want = key4(7, 47, "10.210.0.2", 0, "10.211.0.2", 0);
	assert_key(&k, &want);
	/* Not IP (ARP): family 0, the EtherType, no addresses. */
	memset(&p, 0, sizeof(p));
	p.ethertype = 0x0806;
	tf_drop_flow_key(&p, 7, true, &k);
	memset(&want, 0, sizeof(want));
	want.ifindex = 7;
	want.ethertype = 0x0806;
	assert_key(&k, &want);
}

/* ---- attribution ------------------------------------------------------------------ */

#define BRIDGE 3
#define BRIDGE_B 4
#define UPLINK 5
#define TAP0 10		/* VM "alpha", 52:54:00:00:00:01, 192.168.122.10 */
#define TAP1 11		/* VM "beta", 52:54:00:00:00:02, 192.168.122.11 */
#define IFACE 12	/* --iface veth9 */
#define OTHER 99	/* some interface tapflow does not trace */

static const uint8_t MAC0[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t MAC1[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x02 };
static const uint8_t MAC_OTHER[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x99 };

/* The fake kernel flow map, shared with test_nat.c. */
#define FAKE_MAX 64
#include "fake_flow_map.h"

struct host {
	struct fake_map m;
	struct fake_map up_m;		/* the uplink flow map */
	struct tf_flows fl;
	struct tf_vm_addrs va;
	struct tf_target targets[5];
	struct tf_collector c;
	/* The flows in the table. */
	struct tf_flow_key f0, f0_v6, f1_icmp, f_iface, up, up_related, up_other_bridge;
};

static void put(struct host *h, const struct tf_flow_key *k, const struct tf_flow_value *v)
{
	h->m.vals[fake_slot(&h->m, k)][0] = *v;
}

static void put_uplink(struct host *h, const struct tf_flow_key *k,
		       const struct tf_uplink_value *v)
{
	h->up_m.up_vals[fake_slot(&h->up_m, k)][0] = *v;
}

static struct tf_flow_value tap_val(void)
{
	struct tf_flow_value v;

	memset(&v, 0, sizeof(v));
	v.tx.packets = v.tx.segs = 2;
	v.tx.bytes = 200;
	v.rx.packets = v.rx.segs = 1;
	v.rx.bytes = 100;
	v.first_seen_ns = SEC;
	v.last_seen_ns = 2 * SEC;
	return v;
}

static struct tf_uplink_value uplink_val(const struct tf_flow_key *vm_side, uint8_t flags)
{
	struct tf_uplink_value v = { .flow = tap_val() };

	v.nat.vm = *vm_side;
	v.nat.flags = (uint8_t)(flags | TF_NAT_UPLINK);
	v.ct_id = 0xffff888800001000ULL;
	return v;
}

static void target(struct tf_target *t, const char *name, int ifindex, enum tf_role role,
		   const char *vm, const char *mac, int bridge)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->ifname, sizeof(t->ifname), "%s", name);
	t->ifindex = ifindex;
	t->role = role;
	t->bridge_ifindex = bridge;
	t->flows = role == TF_ROLE_TAP || role == TF_ROLE_IFACE;
	t->nat = role == TF_ROLE_UPLINK;
	if (vm) {
		t->has_vif = true;
		snprintf(t->vif.vm, sizeof(t->vif.vm), "%s", vm);
		snprintf(t->vif.ifname, sizeof(t->vif.ifname), "%s", name);
		snprintf(t->vif.mac, sizeof(t->vif.mac), "%s", mac);
		t->vif.ifindex = ifindex;
	}
}

static struct host *host_new(void)
{
	struct host *h = calloc(1, sizeof(*h));
	struct tf_flow_map map = { .ops = &fake_ops, .nvalues = 1 };
	struct tf_uplink_value u;
	struct tf_flow_value v;
	struct tf_flow_key vm_side;

	assert_non_null(h);
	target(&h->targets[0], "vnet0", TAP0, TF_ROLE_TAP, "alpha", "52:54:00:00:00:01", BRIDGE);
	target(&h->targets[1], "vnet1", TAP1, TF_ROLE_TAP, "beta", "52:54:00:00:00:02", BRIDGE);
	target(&h->targets[2], "veth9", IFACE, TF_ROLE_IFACE, NULL, NULL, 0);
	target(&h->targets[3], "virbr0", BRIDGE, TF_ROLE_BRIDGE, NULL, NULL, 0);
	target(&h->targets[4], "eth0", UPLINK, TF_ROLE_UPLINK, NULL, NULL, 0);
	h->c.targets = h->targets;
	h->c.n_targets = 5;

	/* alpha: DNS over UDP to 10.99.0.2 (NATed: leaves as 10.0.2.15:61000), and IPv6. */
	h->f0 = key4(TAP0, IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	h->f0_v6 = key6(TAP0, IPPROTO_TCP, "fd00:122::10", 41000, "fd00:99::2", 443);
	/* beta: pings 10.99.0.2 (id 77). */
	h->f1_icmp = key4(TAP1, IPPROTO_ICMP, "192.168.122.11", 77, "10.99.0.2", 8 << 8);
	/* --iface veth9: a flow in the kernel's (VM-side) view. */
	h->f_iface = key4(IFACE, IPPROTO_TCP, "10.5.0.1", 80, "10.5.0.2", 5555);
	v = tap_val();
	put(h, &h->f0, &v);
	put(h, &h->f0_v6, &v);
	put(h, &h->f1_icmp, &v);
	put(h, &h->f_iface, &v);
	/* The uplink flow of alpha's DNS: VM side = the tap flow on the bridge. */
	h->up = key4(UPLINK, IPPROTO_UDP, "10.0.2.15", 61000, "10.99.0.2", 53);
	vm_side = h->f0;
	vm_side.ifindex = BRIDGE;
	u = uplink_val(&vm_side, TF_NAT_CT);
	put_uplink(h, &h->up, &u);
	/* An ICMP error of another entry: its VM side is unknown, even if it reads like one. */
	h->up_related = key4(UPLINK, IPPROTO_UDP, "10.0.2.15", 62000, "10.99.0.3", 53);
	u = uplink_val(&vm_side, TF_NAT_CT | TF_NAT_RELATED);
	put_uplink(h, &h->up_related, &u);
	/* An uplink flow of a bridge no traced tap is on. */
	h->up_other_bridge = key4(UPLINK, IPPROTO_UDP, "10.0.2.15", 63000, "10.99.0.2", 53);
	vm_side.ifindex = BRIDGE_B;
	u = uplink_val(&vm_side, TF_NAT_CT);
	put_uplink(h, &h->up_other_bridge, &u);

	assert_int_equal(tf_flows_init(&h->fl, &map, 30 * SEC, 0, 0), 0);
	h->fl.map.ctx = &h->m;
	h->up_m.uplink = true;
	map.ctx = &h->up_m;
	assert_int_equal(tf_flows_init_uplinks(&h->fl, &map), 0);
	assert_int_equal(tf_flows_poll(&h->fl, 3 * SEC, 1.0), 0);
	assert_int_equal(tf_flows_n(&h->fl), 7);
	assert_int_equal(tf_vm_addrs_build(&h->va, &h->c, &h->fl), 0);
	return h;
}

static void host_free(struct host *h)
{
	tf_vm_addrs_free(&h->va);
	tf_flows_free(&h->fl);
	free(h);
}

static struct tf_drop_key dkey(const struct tf_drop_pkt *p, uint32_t dev, uint32_t iif,
			       const uint8_t *src_mac, const uint8_t *dst_mac)
{
	struct tf_drop_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = dev;
	k.iif = iif;
	k.reason = 12;
	k.location = 0xffffffff81234567ULL;
	k.pkt = *p;
	if (src_mac)
		memcpy(k.pkt.src_mac, src_mac, 6);
	if (dst_mac)
		memcpy(k.pkt.dst_mac, dst_mac, 6);
	return k;
}

/* Attribute k; check tap, direction, rule and (if want_flow) the flow. */
static void expect(const struct host *h, bool with_table, const struct tf_drop_key *k, int tap,
		   bool tx, const char *how, const struct tf_flow_key *want_flow)
{
	struct tf_drop_attr a;

	memset(&a, 0x5a, sizeof(a));
	tf_drop_attribute(&h->c, with_table ? &h->fl : NULL, with_table ? &h->va : NULL, k, &a);
	if (a.tap != tap || (tap >= 0 && a.tx != tx) ||
	    (how ? !a.how || strcmp(a.how, how) : a.how != NULL))
		fail_msg("got tap %d tx %d by %s, want tap %d tx %d by %s", a.tap, a.tx,
			 a.how ? a.how : "(none)", tap, tx, how ? how : "(none)");
	assert_int_equal(a.has_flow, want_flow != NULL);
	if (want_flow)
		assert_key(&a.flow, want_flow);
}

static void test_attr_flow(void **state)
{
	struct host *h = host_new();
	struct tf_drop_pkt p;
	struct tf_drop_key k;

	(void)state;
	/* alpha's query dropped in FORWARD (on the bridge, came in on the bridge). */
	p = pkt4(IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	k = dkey(&p, BRIDGE, BRIDGE, MAC0, NULL);
	expect(h, true, &k, 0, true, "flow", &h->f0);
	/* The answer, de-NATed, dropped on its way in. */
	p = pkt4(IPPROTO_UDP, "10.99.0.2", 53, "192.168.122.10", 40000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, 0, false, "flow", &h->f0);
	/* The flow comes first, before the device: dropped on beta's tap, still alpha's. */
	k = dkey(&p, TAP1, UPLINK, NULL, MAC1);
	expect(h, true, &k, 0, false, "flow", &h->f0);
	/* beta's echo reply (keyed as the request, identifier not swapped). */
	p = pkt4(IPPROTO_ICMP, "10.99.0.2", 77, "192.168.122.11", 8 << 8);
	k = dkey(&p, BRIDGE, UPLINK, NULL, NULL);
	expect(h, true, &k, 1, false, "flow", &h->f1_icmp);
	/* IPv6. */
	p = pkt6(IPPROTO_TCP, "fd00:99::2", 443, "fd00:122::10", 41000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, 0, false, "flow", &h->f0_v6);
	/* The --iface interface's flow. */
	p = pkt4(IPPROTO_TCP, "10.5.0.1", 80, "10.5.0.2", 5555);
	k = dkey(&p, OTHER, OTHER, NULL, NULL);
	expect(h, true, &k, 2, true, "flow", &h->f_iface);
	host_free(h);
}

static void test_attr_nat(void **state)
{
	struct host *h = host_new();
	struct tf_drop_pkt p;
	struct tf_drop_key k;

	(void)state;
	/* alpha's query after SNAT, dropped on its way out (POSTROUTING, the uplink's qdisc). */
	p = pkt4(IPPROTO_UDP, "10.0.2.15", 61000, "10.99.0.2", 53);
	k = dkey(&p, UPLINK, BRIDGE, NULL, NULL);
	expect(h, true, &k, 0, true, "nat", &h->f0);
	/* The answer before de-NAT (raw PREROUTING). */
	p = pkt4(IPPROTO_UDP, "10.99.0.2", 53, "10.0.2.15", 61000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, 0, false, "nat", &h->f0);
	/* An uplink flow whose VM side is unknown (related): not joined, the host's. */
	p = pkt4(IPPROTO_UDP, "10.99.0.3", 53, "10.0.2.15", 62000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* An uplink flow of another bridge (no traced tap on it): the host's. */
	p = pkt4(IPPROTO_UDP, "10.99.0.2", 53, "10.0.2.15", 63000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* Without a flow table there is no join: the host's. */
	p = pkt4(IPPROTO_UDP, "10.99.0.2", 53, "10.0.2.15", 61000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, false, &k, -1, false, NULL, NULL);
	host_free(h);
}

static void test_attr_device(void **state)
{
	struct host *h = host_new();
	struct tf_drop_pkt p = pkt4(IPPROTO_UDP, "192.168.122.10", 45000, "10.99.0.7", 123);
	struct tf_drop_pkt arp;
	struct tf_drop_key k;

	(void)state;
	/* No flow: came in on alpha's tap (its own packet). */
	k = dkey(&p, BRIDGE, TAP0, NULL, NULL);
	expect(h, true, &k, 0, true, "device", NULL);
	/* Dropped on beta's tap (a packet for it). */
	k = dkey(&p, TAP1, UPLINK, NULL, NULL);
	expect(h, true, &k, 1, false, "device", NULL);
	/* The input device counts first. */
	k = dkey(&p, TAP1, TAP0, NULL, NULL);
	expect(h, true, &k, 0, true, "device", NULL);
	/* An --iface interface is a device of its own. */
	k = dkey(&p, IFACE, OTHER, NULL, NULL);
	expect(h, true, &k, 2, false, "device", NULL);
	/* Before the MAC: dropped on beta's tap with alpha's MAC. */
	k = dkey(&p, TAP1, UPLINK, MAC0, NULL);
	expect(h, true, &k, 1, false, "device", NULL);
	/* The bridge and the uplink are nobody's device (an address of no VM). */
	p = pkt4(IPPROTO_UDP, "192.168.1.50", 45000, "10.99.0.7", 123);
	k = dkey(&p, BRIDGE, UPLINK, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* Without a flow table (stats): the same, a flow's packet included. */
	p = pkt4(IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	k = dkey(&p, BRIDGE, TAP0, NULL, NULL);
	expect(h, false, &k, 0, true, "device", NULL);
	/* Not IP: device and MAC still apply. */
	memset(&arp, 0, sizeof(arp));
	arp.ethertype = 0x0806;
	k = dkey(&arp, TAP1, TAP1, NULL, NULL);
	expect(h, true, &k, 1, true, "device", NULL);
	host_free(h);
}

static void test_attr_mac(void **state)
{
	struct host *h = host_new();
	struct tf_drop_pkt p = pkt4(IPPROTO_UDP, "192.168.1.50", 45000, "10.99.0.7", 123);
	struct tf_drop_pkt arp;
	struct tf_drop_key k;

	(void)state;
	/* beta's MAC as the source (an address its flows never used). */
	k = dkey(&p, BRIDGE, BRIDGE, MAC1, MAC_OTHER);
	expect(h, true, &k, 1, true, "mac", NULL);
	/* alpha's as the destination. */
	k = dkey(&p, UPLINK, UPLINK, MAC_OTHER, MAC0);
	expect(h, true, &k, 0, false, "mac", NULL);
	/* A flow's packet without a flow table (stats): by its MAC. */
	p = pkt4(IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	k = dkey(&p, BRIDGE, BRIDGE, MAC0, NULL);
	expect(h, false, &k, 0, true, "mac", NULL);
	/* Not IP (ARP from beta), dropped on the bridge. */
	memset(&arp, 0, sizeof(arp));
	arp.ethertype = 0x0806;
	k = dkey(&arp, BRIDGE, BRIDGE, MAC1, NULL);
	expect(h, true, &k, 1, true, "mac", NULL);
	/* Nobody's MACs, no MAC at all: not by MAC. */
	k = dkey(&arp, BRIDGE, BRIDGE, MAC_OTHER, MAC_OTHER);
	expect(h, true, &k, -1, false, NULL, NULL);
	k = dkey(&arp, BRIDGE, BRIDGE, NULL, NULL);
	expect(h, false, &k, -1, false, NULL, NULL);
	host_free(h);
}

static void test_attr_address(void **state)
{
	struct host *h = host_new();
	struct tf_drop_pkt p;
	struct tf_drop_key k;

	(void)state;
	/* The VMs' addresses, from their flows (VM taps only, IP only). */
	assert_int_equal(h->va.n, 3);	/* 192.168.122.10, fd00:122::10, 192.168.122.11 */
	/* alpha's address, a flow tapflow has not seen (e.g. new since the last poll). */
	p = pkt4(IPPROTO_UDP, "192.168.122.10", 45000, "10.99.0.7", 123);
	k = dkey(&p, BRIDGE, BRIDGE, NULL, NULL);
	expect(h, true, &k, 0, true, "address", NULL);
	/* For beta. */
	p = pkt4(IPPROTO_TCP, "10.99.0.7", 80, "192.168.122.11", 50000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, 1, false, "address", NULL);
	/* IPv6. */
	p = pkt6(IPPROTO_UDP, "fd00:99::9", 53, "fd00:122::10", 50000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, 0, false, "address", NULL);
	/* An IPv6 address whose first bytes read like alpha's IPv4 one: other family. */
	p = pkt6(IPPROTO_UDP, "c0a8:7a0a::", 53, "fd00:99::9", 50000);
	k = dkey(&p, UPLINK, UPLINK, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* The --iface interface's addresses are not VM addresses. */
	p = pkt4(IPPROTO_TCP, "10.5.0.1", 81, "10.5.0.9", 5555);
	k = dkey(&p, OTHER, OTHER, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* The uplink's (outside) address is not a VM's either. */
	p = pkt4(IPPROTO_UDP, "10.0.2.15", 5353, "10.99.0.9", 53);
	k = dkey(&p, UPLINK, 0, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* Without a flow table: no addresses. */
	p = pkt4(IPPROTO_UDP, "192.168.122.10", 45000, "10.99.0.7", 123);
	k = dkey(&p, BRIDGE, BRIDGE, NULL, NULL);
	expect(h, false, &k, -1, false, NULL, NULL);
	host_free(h);
}

static void test_attr_host(void **state)
{
	struct host *h = host_new();
	struct tf_drop_pkt p = pkt4(IPPROTO_UDP, "10.0.2.15", 5353, "10.99.0.9", 53);
	struct tf_drop_key k;
	struct tf_collector empty;
	struct tf_drop_attr a;

	(void)state;
	memset(&empty, 0, sizeof(empty));
	/* The host's own packet: no flow, no device, MAC or address of a VM. */
	k = dkey(&p, UPLINK, 0, MAC_OTHER, MAC_OTHER);
	expect(h, true, &k, -1, false, NULL, NULL);
	expect(h, false, &k, -1, false, NULL, NULL);
	/* No device at all. */
	k = dkey(&p, 0, 0, NULL, NULL);
	expect(h, true, &k, -1, false, NULL, NULL);
	/* No targets at all. */
	memset(&a, 0x5a, sizeof(a));
	tf_drop_attribute(&empty, NULL, NULL, &k, &a);
	assert_int_equal(a.tap, -1);
	assert_false(a.has_flow);
	assert_null(a.how);
	host_free(h);
}

/* ---- kernel entries: counts since the last read, times from ticks ------------------------ */

static void test_counts_since(void **state)
{
	/* Made at 100 s, jiffies 25000 (HZ 250: 4 ms a tick). */
	struct tf_drop_value last = { .packets = 3, .bytes = 300 };
	struct tf_drop_value v = { .packets = 8, .bytes = 820, .clock_ns = 100 * SEC,
				   .clock_ticks = 25000, .first_ticks = 24990, .last_ticks = 25250 };
	struct tf_drop_counts d;

	(void)state;
	assert_true(tf_drop_counts_since(&last, &v, 4000000, &d));
	assert_int_equal(d.packets, 5);
	assert_int_equal(d.bytes, 520);
	/* A first drop before the clock reading (it waited in a CPU's cache slot). */
	assert_int_equal(d.first_ns, 100 * SEC - 40000000);
	assert_int_equal(d.last_ns, 101 * SEC);
	/* Without CONFIG_HZ a tick is a ns: the ticks are the clock itself. */
	v.clock_ticks = v.clock_ns;
	v.first_ticks = 99 * SEC;
	v.last_ticks = 102 * SEC;
	assert_true(tf_drop_counts_since(&last, &v, 1, &d));
	assert_int_equal(d.first_ns, 99 * SEC);
	assert_int_equal(d.last_ns, 102 * SEC);
	/* Nothing new: nothing to report. */
	last.packets = 8;
	assert_false(tf_drop_counts_since(&last, &v, 1, &d));
}

/* ---- the run's table ------------------------------------------------------------------ */

static void test_table(void **state)
{
	struct host *h = host_new();
	struct tf_drop_table t = { 0 };
	struct tf_drop_pkt p = pkt4(IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	struct tf_drop_pkt hp = pkt4(IPPROTO_UDP, "10.0.2.15", 5353, "10.99.0.9", 53);
	struct tf_drop_key k;
	struct tf_drop_counts v = { .packets = 3, .bytes = 300, .first_ns = 5 * SEC, .last_ns = 6 * SEC };
	struct tf_drop_attr a;
	uint64_t sum;

	(void)state;
	/* alpha's flow, 3 at the bridge, then 2 more (later) at the same place. */
	k = dkey(&p, BRIDGE, BRIDGE, NULL, NULL);
	tf_drop_attribute(&h->c, &h->fl, &h->va, &k, &a);
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	v = (struct tf_drop_counts){ .packets = 2, .bytes = 200, .first_ns = 4 * SEC, .last_ns = 9 * SEC };
	k.pkt.src_mac[0] = 0x52;	/* another key, the same group */
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	/* Another reason for alpha: its own group. */
	k.reason = 88;
	v = (struct tf_drop_counts){ .packets = 1, .bytes = 100, .first_ns = 7 * SEC, .last_ns = 7 * SEC };
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	/* The host: two places, one reason -> one aggregate row. */
	k = dkey(&hp, UPLINK, 0, NULL, NULL);
	tf_drop_attribute(&h->c, &h->fl, &h->va, &k, &a);
	assert_int_equal(a.tap, -1);
	v = (struct tf_drop_counts){ .packets = 4, .bytes = 400, .first_ns = 3 * SEC, .last_ns = 3 * SEC };
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	k.ifindex = OTHER;
	k.location = 0xffffffff81000000ULL;
	v.packets = 6;
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);

	assert_int_equal(t.n, 3);
	assert_int_equal(t.g[0].tap, 0);
	assert_int_equal(t.g[0].reason, 12);
	assert_int_equal(t.g[0].ifindex, BRIDGE);
	assert_int_equal(t.g[0].packets, 5);
	assert_int_equal(t.g[0].bytes, 500);
	assert_int_equal(t.g[0].first_ns, 4 * SEC);
	assert_int_equal(t.g[0].last_ns, 9 * SEC);
	assert_int_equal(t.g[0].last.pkt.src_mac[0], 0x52);	/* the latest packet */
	assert_int_equal(t.g[1].tap, 0);
	assert_int_equal(t.g[1].reason, 88);
	assert_int_equal(t.g[2].tap, -1);
	assert_int_equal(t.g[2].packets, 10);
	assert_int_equal(t.g[2].location, 0);	/* the aggregate has no place */
	assert_int_equal(t.g[2].ifindex, 0);
	assert_int_equal(t.host_packets, 10);
	/* Per target: alpha's 6; on the bridge 6, on the uplink 4 (the host's). */
	assert_int_equal(t.n_taps, 5);
	assert_int_equal(t.tap_packets[0], 6);
	assert_int_equal(t.tap_packets[1], 0);
	assert_int_equal(t.dev_packets[3], 6);
	assert_int_equal(t.dev_packets[4], 4);
	sum = 0;
	for (size_t i = 0; i < t.n_taps; i++)
		sum += t.tap_packets[i];
	assert_int_equal(sum + t.host_packets, 16);
	/* Per flow. */
	assert_int_equal(tf_drop_table_flow(&t, &h->f0), 6);
	assert_int_equal(tf_drop_table_flow(&t, &h->f1_icmp), 0);
	tf_drop_table_free(&t);
	assert_int_equal(t.n, 0);
	tf_drop_table_free(&t);
	host_free(h);
}

/* Many flows with drops: each keeps its own count (the per-flow lookup is hashed). */
static void test_table_many_flows(void **state)
{
	struct host *h = host_new();
	struct tf_drop_table t = { 0 };
	struct tf_drop_pkt p = pkt4(IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	struct tf_drop_key k = dkey(&p, BRIDGE, BRIDGE, NULL, NULL);
	struct tf_drop_counts v = { .bytes = 100, .first_ns = SEC, .last_ns = SEC };
	struct tf_drop_attr a;
	struct tf_flow_key other;

	(void)state;
	tf_drop_attribute(&h->c, &h->fl, &h->va, &k, &a);
	assert_true(a.has_flow);
	/* 300 flows, each twice: more than the first slot table takes. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 300; i++) {
			a.flow = key4(TAP0, IPPROTO_UDP, "192.168.122.10", 1000 + i, "10.99.0.2", 53);
			v.packets = (uint64_t)i + 1;
			assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
		}
	}
	assert_int_equal(t.n_fd, 300);
	assert_true(t.n_fd_slots >= 2 * t.n_fd);
	for (int i = 0; i < 300; i++) {
		other = key4(TAP0, IPPROTO_UDP, "192.168.122.10", 1000 + i, "10.99.0.2", 53);
		assert_int_equal(tf_drop_table_flow(&t, &other), 2 * (i + 1));
		/* The same flow on the other tap is another flow. */
		other.ifindex = TAP1;
		assert_int_equal(tf_drop_table_flow(&t, &other), 0);
	}
	other = key4(TAP0, IPPROTO_UDP, "192.168.122.10", 999, "10.99.0.2", 53);
	assert_int_equal(tf_drop_table_flow(&t, &other), 0);
	assert_int_equal(tf_drop_table_fwd_out(&t, &other), 0);
	tf_drop_table_free(&t);
	host_free(h);
}

/* An address two VMs' flows use: one entry, the first tap's. */
static void test_vm_addrs_shared(void **state)
{
	struct host *h = host_new();
	struct tf_flow_value v = tap_val();
	struct tf_flow_key k;
	int n10 = 0;

	(void)state;
	/* beta uses alpha's address too, in two flows. */
	k = key4(TAP1, IPPROTO_UDP, "192.168.122.10", 5000, "10.99.0.2", 53);
	put(h, &k, &v);
	k = key4(TAP1, IPPROTO_UDP, "192.168.122.10", 5001, "10.99.0.2", 53);
	put(h, &k, &v);
	assert_int_equal(tf_flows_poll(&h->fl, 4 * SEC, 1.0), 0);
	assert_int_equal(tf_vm_addrs_build(&h->va, &h->c, &h->fl), 0);
	assert_int_equal(h->va.n, 3);
	for (size_t i = 0; i < h->va.n; i++) {
		uint8_t ip[16] = {};

		assert_int_equal(inet_pton(AF_INET, "192.168.122.10", ip), 1);
		if (h->va.a[i].family == TF_FAM_IPV4 && !memcmp(h->va.a[i].ip, ip, 16)) {
			n10++;
			assert_int_equal(h->va.a[i].tap, 0);
		}
	}
	assert_int_equal(n10, 1);
	host_free(h);
}

/*
 * Where a flow's dropped packets were being forwarded (the key's
 * out_ifindex): only the VM's own packets say, the latest wins, and a drop
 * that was not forwarded leaves it as it was.
 */
static void test_table_fwd_out(void **state)
{
	struct host *h = host_new();
	struct tf_drop_table t = { 0 };
	struct tf_drop_pkt out = pkt4(IPPROTO_UDP, "192.168.122.10", 40000, "10.99.0.2", 53);
	struct tf_drop_pkt in = pkt4(IPPROTO_UDP, "10.99.0.2", 53, "192.168.122.10", 40000);
	struct tf_drop_counts v = { .packets = 2, .bytes = 200, .first_ns = SEC, .last_ns = SEC };
	struct tf_drop_key k;
	struct tf_drop_attr a;

	(void)state;
	/* A reply dropped on its way to the bridge: alpha's flow, but not its packet. */
	k = dkey(&in, UPLINK, UPLINK, NULL, NULL);
	k.out_ifindex = BRIDGE;
	tf_drop_attribute(&h->c, &h->fl, &h->va, &k, &a);
	assert_true(a.has_flow && !a.tx);
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	assert_int_equal(tf_drop_table_flow(&t, &h->f0), 2);
	assert_int_equal(tf_drop_table_fwd_out(&t, &h->f0), 0);
	/* alpha's own packet, dropped in FORWARD on its way to the uplink. */
	k = dkey(&out, BRIDGE, BRIDGE, NULL, NULL);
	k.out_ifindex = UPLINK;
	tf_drop_attribute(&h->c, &h->fl, &h->va, &k, &a);
	assert_true(a.has_flow && a.tx);
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	assert_int_equal(tf_drop_table_fwd_out(&t, &h->f0), UPLINK);
	/* Then one that was not being forwarded (a local drop): still the uplink. */
	k.out_ifindex = 0;
	k.reason = 3;
	assert_int_equal(tf_drop_table_add(&t, &h->c, &k, &v, &a), 0);
	assert_int_equal(tf_drop_table_fwd_out(&t, &h->f0), UPLINK);
	assert_int_equal(tf_drop_table_flow(&t, &h->f0), 6);
	/* Flows without drops, or not forwarded: 0. */
	assert_int_equal(tf_drop_table_fwd_out(&t, &h->f1_icmp), 0);
	tf_drop_table_free(&t);
	host_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons_crafted),
		cmocka_unit_test(test_reasons_no_enum),
		cmocka_unit_test(test_reasons_kernel),
		cmocka_unit_test(test_ksyms_crafted),
		cmocka_unit_test(test_ksyms_hidden),
		cmocka_unit_test(test_ksyms_many),
		cmocka_unit_test(test_ksyms_kernel),
		cmocka_unit_test(test_flow_key_ports),
		cmocka_unit_test(test_flow_key_icmp_and_other),
		cmocka_unit_test(test_attr_flow),
		cmocka_unit_test(test_attr_nat),
		cmocka_unit_test(test_attr_device),
		cmocka_unit_test(test_attr_mac),
		cmocka_unit_test(test_attr_address),
		cmocka_unit_test(test_attr_host),
		cmocka_unit_test(test_counts_since),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_fwd_out),
		cmocka_unit_test(test_table_many_flows),
		cmocka_unit_test(test_vm_addrs_shared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
