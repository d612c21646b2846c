// SPDX-License-Identifier: GPL-2.0
/*
 * IPFIX flow records from the flow table: see ipfix_flows.h.
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drop_attr.h"
#include "ipfix_flows.h"
#include "log.h"
#include "nat.h"
#include "session.h"

static void on_evict(void *ctx, const struct tf_flow *f)
{
	struct tf_ipfix_flows *x = ctx;

	if (x->n_gone == x->cap_gone) {
		size_t cap = x->cap_gone ? x->cap_gone * 2 : 64;
		struct tf_flow *g = realloc(x->gone, cap * sizeof(*g));

		if (!g) {
			x->unrecorded++;
			return;
		}
		x->gone = g;
		x->cap_gone = cap;
	}
	x->gone[x->n_gone++] = *f;
}

int tf_ipfix_flows_init(struct tf_ipfix_flows *x, struct tf_session *s, double active_s)
{
	memset(x, 0, sizeof(*x));
	x->nbuckets = 1024;
	x->buckets = calloc(x->nbuckets, sizeof(*x->buckets));
	if (!x->buckets)
		return -ENOMEM;
	x->active_ns = active_s > 0 ? (uint64_t)(active_s * 1e9) : 0;
	x->baseline = s->c.pin && s->c.pin->adopted;
	s->fr.fl.on_evict = on_evict;
	s->fr.fl.evict_ctx = x;
	return 0;
}

void tf_ipfix_flows_free(struct tf_ipfix_flows *x)
{
	for (size_t i = 0; i < x->nbuckets; i++) {
		struct tf_ipfix_mark *m = x->buckets[i], *next;

		for (; m; m = next) {
			next = m->next;
			free(m);
		}
	}
	free(x->buckets);
	free(x->gone);
	memset(x, 0, sizeof(*x));
}

/* ---- marks by flow key -------------------------------------------------- */

static void grow_marks(struct tf_ipfix_flows *x)
{
	size_t n = x->nbuckets * 2;
	struct tf_ipfix_mark **b = calloc(n, sizeof(*b));

	if (!b)
		return;	/* longer chains, still correct */
	for (size_t i = 0; i < x->nbuckets; i++) {
		struct tf_ipfix_mark *m = x->buckets[i], *next;

		for (; m; m = next) {
			size_t s = tf_flow_key_hash(&m->key) & (n - 1);

			next = m->next;
			m->next = b[s];
			b[s] = m;
		}
	}
	free(x->buckets);
	x->buckets = b;
	x->nbuckets = n;
}

static struct tf_ipfix_mark **mark_slot(struct tf_ipfix_flows *x, const struct tf_flow_key *k)
{
	struct tf_ipfix_mark **pp = &x->buckets[tf_flow_key_hash(k) & (x->nbuckets - 1)];

	while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)))
		pp = &(*pp)->next;
	return pp;
}

static struct tf_ipfix_mark *mark_new(struct tf_ipfix_flows *x, const struct tf_flow_key *k,
				      uint64_t now_ns)
{
	struct tf_ipfix_mark *m;

	if (x->n >= x->nbuckets)
		grow_marks(x);
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->key = *k;
	m->exported_ns = now_ns;
	m->next = x->buckets[tf_flow_key_hash(k) & (x->nbuckets - 1)];
	x->buckets[tf_flow_key_hash(k) & (x->nbuckets - 1)] = m;
	x->n++;
	return m;
}

static void mark_drop(struct tf_ipfix_flows *x, const struct tf_flow_key *k)
{
	struct tf_ipfix_mark **pp = mark_slot(x, k), *m = *pp;

	if (!m)
		return;
	*pp = m->next;
	free(m);
	x->n--;
}

/* ---- pure helpers --------------------------------------------------------- */

uint64_t tf_ipfix_ip_octets(const struct tf_flow_key *k, const struct tf_dir_counters *d)
{
	/*
	 * At the TC hooks the outer VLAN tag is out of the frame (the kernel
	 * untags on receive, and a tag to add on transmit is metadata until
	 * the driver): only a second tag is in skb->len.
	 */
	uint64_t hdr = 14 + (k->vlan_inner ? 4 : 0);

	return d->bytes > d->packets * hdr ? d->bytes - d->packets * hdr : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool tf_ipfix_parse_mac(const char *s, uint8_t out[6])
{
	for (int i = 0; i < 6; i++, s += 3) {
		int h = hexval(s[0]), l = h < 0 ? -1 : hexval(s[1]);

		if (l < 0 || (i < 5 && s[2] != ':') || (i == 5 && s[2]))
			return false;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return true;
}

bool tf_ipfix_parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	for (; *s && n < 32; s++) {
		int h, l;

		if (*s == '-')
			continue;
		h = hexval(s[0]);
		l = h < 0 ? -1 : hexval(s[1]);
		if (l < 0)
			return false;
		out[n / 2] = (uint8_t)(h << 4 | l);
		n += 2;
		s++;
	}
	return n == 32 && !*s;
}

/* ---- records ---------------------------------------------------------------- */

/* What one export knows of the run: looked up once, used for every flow. */
struct export_ctx {
	struct tf_ipfix_flows *x;
	struct tf_session *s;
	uint64_t now_ns;
	int64_t clock_offset;
	bool final;
};

static uint64_t ktime_ms(const struct export_ctx *e, uint64_t ns)
{
	int64_t real = (int64_t)ns + e->clock_offset;

	return ns && real > 0 ? (uint64_t)real / 1000000 : 0;
}

static void copy_ip(uint8_t out[16], const uint8_t ip[16])
{
	memcpy(out, ip, 16);
}

/* The record's fields that both directions of a flow share. */
static void rec_common(const struct tf_target *t, const struct tf_flow *f, struct tf_ipfix_rec *r)
{
	const struct tf_flow_key *k = &f->key;

	memset(r, 0, sizeof(*r));
	r->family = k->family == TF_FAM_IPV4 ? 4 : k->family == TF_FAM_IPV6 ? 6 : 0;
	r->proto = r->family ? k->proto : 0;
	r->ethertype = k->ethertype;
	r->vlan = k->vlan;
	if (t) {
		snprintf(r->ifname, sizeof(r->ifname), "%s", t->ifname);
		if (t->has_vif) {
			snprintf(r->vm_name, sizeof(r->vm_name), "%s", t->vif.vm);
			if (!tf_ipfix_parse_uuid(t->vif.uuid, r->vm_uuid))
				memset(r->vm_uuid, 0, sizeof(r->vm_uuid));
		}
	}
}

/*
 * Addresses and ports of one direction, as the packets carry them: the
 * key's local side is the one behind the hook's ingress (the VM, for a
 * tap), whatever view a report shows the flow in. from_local: the
 * packets came in at the hook's ingress.
 */
static bool is_icmp(const struct tf_flow_key *k)
{
	return (k->family == TF_FAM_IPV4 && k->proto == IPPROTO_ICMP) ||
	       (k->family == TF_FAM_IPV6 && k->proto == IPPROTO_ICMPV6);
}

static void rec_tuple(const struct tf_flow_key *k, bool from_local, struct tf_ipfix_rec *r)
{
	if (!r->family)
		return;
	copy_ip(from_local ? r->src_ip : r->dst_ip, k->local_ip);
	copy_ip(from_local ? r->dst_ip : r->src_ip, k->remote_ip);
	if (is_icmp(k)) {
		/* A query and its reply are one flow, keyed by the query's type. */
		r->icmp_type_code = k->remote_port;
		return;
	}
	r->src_port = from_local ? k->local_port : k->remote_port;
	r->dst_port = from_local ? k->remote_port : k->local_port;
}

static bool dir_empty(const struct tf_dir_counters *d, uint64_t drops)
{
	return !d->packets && !d->bytes && !drops;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void send_rec(struct tf_ipfix_flows *x, const struct tf_ipfix_rec *r)
{
	for (size_t i = 0; i < x->n_dest; i++)
		tf_ipfix_add(x->dest[i], r);
}

/*
 * The records of flow f (of target t, NULL if unknown) since its mark m:
 * one per direction that did anything. dir 0 is rx, 1 tx, in the VM's view.
 */
static void emit(const struct export_ctx *e, const struct tf_target *t, const struct tf_flow *f,
		 struct tf_ipfix_mark *m, const struct tf_flow_value *tot, uint8_t reason)
{
	const struct tf_drop_table *dt = e->s->c.drops_on ? &e->s->c.drop_tab : NULL;
	const struct tf_flow_drops *fd = dt ? tf_drop_table_flow_entry(dt, &f->key) : NULL;
	bool mirrored = t && tf_target_mirrored(t);
	struct tf_nat_link link = {};
	uint8_t mac[6];
	bool has_mac = t && t->has_vif && tf_ipfix_parse_mac(t->vif.mac, mac);
	uint64_t start = m->end_ns ? m->end_ns : tot->first_seen_ns;

	if (t && e->s->fr.nat.buckets && t->bridge_ifindex > 0)
		tf_nat_join(&e->s->fr.nat, &f->key, t->bridge_ifindex, tot, &link);
	if (start > tot->last_seen_ns)
		start = tot->last_seen_ns;
	for (int d = 0; d < 2; d++) {
		const struct tf_dir_counters *now = d ? &tot->tx : &tot->rx;
		struct tf_dir_counters delta = {
			.packets = sat_sub(now->packets, m->sent[d].packets),
			.bytes = sat_sub(now->bytes, m->sent[d].bytes),
			.segs = sat_sub(now->segs, m->sent[d].segs),
		};
		uint64_t dp = fd ? sat_sub(fd->dir[d].packets, m->drop_packets[d]) : 0;
		uint64_t db = fd ? sat_sub(fd->dir[d].bytes, m->drop_bytes[d]) : 0;
		/*
		 * d is the hook's side: 1 came in at its ingress (sent by the
		 * VM on a tap). flowDirection is the VM's view on a tap, and
		 * the interface's own (1: it transmitted) on an --iface one.
		 */
		bool from_local = d;
		struct tf_ipfix_rec r;

		if (dir_empty(&delta, dp))
			continue;
		rec_common(t, f, &r);
		rec_tuple(&f->key, from_local, &r);
		r.direction = (mirrored ? !from_local : from_local) ? TF_IPFIX_DIR_EGRESS
								    : TF_IPFIX_DIR_INGRESS;
		r.end_reason = reason;
		r.tcp_flags = (uint8_t)(d ? tot->tcp_flags_tx : tot->tcp_flags_rx);
		r.packets = delta.packets;
		r.l2_octets = delta.bytes;
		r.octets = tf_ipfix_ip_octets(&f->key, &delta);
		r.dropped_packets = dp;
		r.dropped_octets = db;
		r.forwarding = dp ? TF_IPFIX_FWD_DROPPED : TF_IPFIX_FWD_FORWARDED;
		r.start_ms = ktime_ms(e, start);
		r.end_ms = ktime_ms(e, tot->last_seen_ns);
		if (from_local)
			r.ingress_if = f->key.ifindex;
		else
			r.egress_if = f->key.ifindex;
		if (has_mac)
			memcpy(from_local ? r.src_mac : r.dst_mac, mac, 6);
		if (link.n_up) {
			const struct tf_flow_key *up = &link.up_key;

			if (from_local)
				r.egress_if = up->ifindex;
			else
				r.ingress_if = up->ifindex;
			if (link.translated && r.family) {
				/* The tuple as the uplink sees it: its local side is what the VM leaves as. */
				r.nat = true;
				copy_ip(from_local ? r.post_src_ip : r.post_dst_ip, up->local_ip);
				copy_ip(from_local ? r.post_dst_ip : r.post_src_ip, up->remote_ip);
				/* ICMP keys carry identifiers and types there, not ports. */
				if (!is_icmp(up)) {
					r.post_src_port = from_local ? up->local_port : up->remote_port;
					r.post_dst_port = from_local ? up->remote_port : up->local_port;
				}
			}
		}
		send_rec(e->x, &r);
		m->sent[d] = *now;
		if (fd) {
			m->drop_packets[d] = fd->dir[d].packets;
			m->drop_bytes[d] = fd->dir[d].bytes;
		}
	}
	m->end_ns = tot->last_seen_ns;
	m->exported_ns = e->now_ns;
}

/* The mark of f, made if it is new; NULL: out of memory (counted). */
static struct tf_ipfix_mark *mark_of(const struct export_ctx *e, const struct tf_flow *f,
				     const struct tf_flow_value *tot)
{
	struct tf_ipfix_flows *x = e->x;
	struct tf_ipfix_mark *m = *mark_slot(x, &f->key);

	if (m)
		return m;
	m = mark_new(x, &f->key, e->now_ns);
	if (!m) {
		x->unrecorded++;
		return NULL;
	}
	if (x->baseline) {
		/* Counted, and exported, by the agent before this one. */
		const struct tf_flow_drops *fd = e->s->c.drops_on
			? tf_drop_table_flow_entry(&e->s->c.drop_tab, &f->key) : NULL;

		m->sent[0] = tot->rx;
		m->sent[1] = tot->tx;
		for (int d = 0; fd && d < 2; d++) {
			m->drop_packets[d] = fd->dir[d].packets;
			m->drop_bytes[d] = fd->dir[d].bytes;
		}
		m->end_ns = tot->last_seen_ns;
	}
	return m;
}

/* One flow of the table: a record if one is due. */
static void flow_due(const struct export_ctx *e, const struct tf_target *t, struct tf_flow *f)
{
	struct tf_flow_value tot;
	struct tf_ipfix_mark *m;

	/* Most of a busy table has ended and been said so: nothing to look up. */
	if (f->expired && f->end_exported)
		return;
	f->end_exported = false;
	tf_flow_total(f, &tot);
	m = mark_of(e, f, &tot);
	if (!m)
		return;
	if (f->expired) {
		if (!m->ended)
			emit(e, t, f, m, &tot, TF_IPFIX_END_IDLE);
		m->ended = true;
		f->end_exported = true;
		return;
	}
	if (m->ended) {
		/* Active again after its end: a new flow, from its new kernel entry. */
		m->ended = false;
		m->end_ns = f->in_kernel ? f->cur.first_seen_ns : 0;
		m->exported_ns = e->now_ns;
	}
	if (e->final)
		emit(e, t, f, m, &tot, TF_IPFIX_END_FORCED);
	else if (e->x->active_ns && e->now_ns >= m->exported_ns + e->x->active_ns)
		emit(e, t, f, m, &tot, TF_IPFIX_END_ACTIVE);
}

/* Flows the table let go: their last record, and their mark goes too. */
static void gone_due(const struct export_ctx *e)
{
	struct tf_ipfix_flows *x = e->x;

	for (size_t i = 0; i < x->n_gone; i++) {
		const struct tf_flow *f = &x->gone[i];
		const struct tf_target *t = tf_collector_target(&e->s->c, (int)f->key.ifindex);
		struct tf_flow_value tot;
		struct tf_ipfix_mark *m;

		tf_flow_total(f, &tot);
		m = mark_of(e, f, &tot);
		if (m && !m->ended)
			emit(e, t, f, m, &tot, TF_IPFIX_END_IDLE);
		mark_drop(x, &f->key);
	}
	x->n_gone = 0;
}

/* ---- options records -------------------------------------------------------- */

static void describe(const struct tf_target *t, struct tf_ipfix_iface *out)
{
	memset(out, 0, sizeof(*out));
	out->ifindex = (uint32_t)t->ifindex;
	snprintf(out->name, sizeof(out->name), "%s", t->ifname);
	if (t->has_vif)
		snprintf(out->descr, sizeof(out->descr), "VM %s (%s)", t->vif.vm, t->vif.mac);
	else
		snprintf(out->descr, sizeof(out->descr), "%s %s", tf_role_name(t->role),
			 t->ifname);
}

/*
 * The interfaces' options records, as the targets are now: a destination
 * sends them again only if they changed (tf_ipfix_set_ifaces compares).
 */
static void set_ifaces(struct tf_ipfix_flows *x, const struct tf_collector *c)
{
	struct tf_ipfix_iface *v = calloc(c->n_targets + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return;	/* the set in place stays: tried again next time */
	for (size_t i = 0; i < c->n_targets; i++)
		if (!c->targets[i].gone && c->targets[i].ifindex > 0)
			describe(&c->targets[i], &v[n++]);
	for (size_t i = 0; i < x->n_dest; i++)
		if (tf_ipfix_set_ifaces(x->dest[i], v, n))
			tf_debug("ipfix: out of memory for the interfaces' options records");
	free(v);
}

static void set_reasons(struct tf_ipfix_flows *x, const struct tf_drop_reasons *reasons)
{
	struct tf_ipfix_reason *v;
	size_t n = 0;

	if (x->reasons_set || !reasons)
		return;
	v = calloc(reasons->n + 1, sizeof(*v));
	if (!v)
		return;
	for (uint32_t i = 0; i < reasons->n; i++) {
		if (!reasons->names[i])
			continue;
		v[n].code = i;
		tf_drop_reason_name(reasons, i, v[n].name, sizeof(v[n].name));
		n++;
	}
	for (size_t i = 0; i < x->n_dest; i++)
		if (tf_ipfix_set_reasons(x->dest[i], v, n))
			tf_debug("ipfix: out of memory for the drop reasons' options records");
	free(v);
	x->reasons_set = true;
}

void tf_ipfix_flows_export(struct tf_ipfix_flows *x, struct tf_session *s,
			   const struct tf_drop_reasons *reasons, bool final)
{
	struct tf_flows *fl = &s->fr.fl;
	struct export_ctx e = {
		.x = x, .s = s, .now_ns = tf_now_mono_ns(), .final = final,
		.clock_offset = s->fr.rep.clock_offset,
	};

	set_ifaces(x, &s->c);
	set_reasons(x, reasons);
	gone_due(&e);
	if (!fl->ix.valid)
		tf_flows_index(fl);
	if (fl->ix.valid) {
		for (size_t g = 0; g < fl->ix.n_groups; g++) {
			const struct tf_flow_group *grp = &fl->ix.groups[g];
			const struct tf_target *t = tf_collector_target(&s->c, (int)grp->ifindex);

			for (uint32_t i = 0; i < grp->n; i++)
				flow_due(&e, t, fl->ix.flows[grp->first + i]);
		}
	} else {
		for (size_t b = 0; b < fl->nbuckets; b++)
			for (struct tf_flow *f = fl->buckets[b]; f; f = f->hnext)
				flow_due(&e, tf_collector_target(&s->c, (int)f->key.ifindex), f);
	}
	x->baseline = false;
}
