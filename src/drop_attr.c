// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "collector.h"
#include "drop_attr.h"
#include "flows.h"
#include "log.h"

/* ---- attribution ------------------------------------------------------------ */

static bool port_proto(int proto)
{
	return proto == 6 || proto == 17 || proto == 136 || proto == 132 || proto == 33;
}

void tf_drop_flow_key(const struct tf_drop_pkt *p, uint32_t ifindex, bool tx,
		      struct tf_flow_key *out)
{
	memset(out, 0, sizeof(*out));
	out->ifindex = ifindex;
	out->family = p->family;
	out->proto = p->proto;
	out->ethertype = p->ethertype;
	memcpy(out->local_ip, tx ? p->src_ip : p->dst_ip, 16);
	memcpy(out->remote_ip, tx ? p->dst_ip : p->src_ip, 16);
	if (port_proto(p->proto) && !tx) {
		out->local_port = p->dst_port;
		out->remote_port = p->src_port;
	} else {
		/* tx, or ICMP (identifier, type: the same either way), or none. */
		out->local_port = p->src_port;
		out->remote_port = p->dst_port;
	}
}

static bool is_tap(const struct tf_target *t)
{
	return t->role == TF_ROLE_TAP || t->role == TF_ROLE_IFACE;
}

static int target_index(const struct tf_collector *c, uint32_t ifindex)
{
	const struct tf_target *t = ifindex ? tf_collector_target(c, (int)ifindex) : NULL;

	return t ? (int)(t - c->targets) : -1;
}

static void set(struct tf_drop_attr *a, int tap, bool tx, const char *how)
{
	a->tap = tap;
	a->tx = tx;
	a->how = how;
}

/* Rule 1: the packet is one of the VM flows on a tap. */
static bool by_flow(const struct tf_collector *c, const struct tf_flows *fl,
		    const struct tf_drop_pkt *p, struct tf_drop_attr *a)
{
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];

		if (!t->flows)
			continue;
		for (int tx = 1; tx >= 0; tx--) {
			tf_drop_flow_key(p, (uint32_t)t->ifindex, tx, &a->flow);
			if (tf_flows_find(fl, &a->flow)) {
				set(a, (int)i, tx, "flow");
				a->has_flow = true;
				return true;
			}
		}
	}
	return false;
}

/* The tap on bridge br whose flow is the NAT join's VM side vm. */
static bool vm_side_flow(const struct tf_collector *c, const struct tf_flows *fl,
			 const struct tf_flow_key *vm, struct tf_drop_attr *a, bool tx)
{
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		struct tf_flow_key k = *vm;

		if (!t->flows || t->bridge_ifindex != (int)vm->ifindex)
			continue;
		k.ifindex = (uint32_t)t->ifindex;
		if (tf_flows_find(fl, &k)) {
			set(a, (int)i, tx, "nat");
			a->has_flow = true;
			a->flow = k;
			return true;
		}
	}
	return false;
}

/* Rule 2: the packet is an uplink flow (as it left, or as it arrived). */
static bool by_nat(const struct tf_collector *c, const struct tf_flows *fl,
		   const struct tf_drop_pkt *p, struct tf_drop_attr *a)
{
	if (!fl->uplinks)
		return false;
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];

		if (!t->nat)
			continue;
		for (int tx = 1; tx >= 0; tx--) {
			struct tf_flow_key k;
			const struct tf_flow *up;
			struct tf_uplink_total tot;

			tf_drop_flow_key(p, (uint32_t)t->ifindex, tx, &k);
			up = tf_flows_find(fl->uplinks, &k);
			if (!up)
				continue;
			tf_uplink_total(up, &tot);
			if ((tot.nat.flags & TF_NAT_UPLINK) && !(tot.nat.flags & TF_NAT_RELATED) &&
			    vm_side_flow(c, fl, &tot.nat.vm, a, tx))
				return true;
		}
	}
	return false;
}

void tf_drop_attribute(const struct tf_collector *c, const struct tf_flows *fl,
		       const struct tf_vm_addrs *va, const struct tf_drop_key *k,
		       struct tf_drop_attr *out)
{
	const struct tf_drop_pkt *p = &k->pkt;
	int dev = target_index(c, k->ifindex), in = target_index(c, k->iif);

	memset(out, 0, sizeof(*out));
	set(out, -1, false, NULL);
	if (fl && p->family && (by_flow(c, fl, p, out) || by_nat(c, fl, p, out)))
		return;
	/* Rule 3: came in on a VM's tap (its packet), or dropped on one (for it). */
	if (in >= 0 && is_tap(&c->targets[in])) {
		set(out, in, true, "device");
		return;
	}
	if (dev >= 0 && is_tap(&c->targets[dev])) {
		set(out, dev, false, "device");
		return;
	}
	/* Rule 4: a VM's MAC. */
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		uint8_t mac[6];

		if (!t->has_vif || !is_tap(t) || tf_mac_parse(t->vif.mac, mac))
			continue;
		if (!memcmp(p->src_mac, mac, 6)) {
			set(out, (int)i, true, "mac");
			return;
		}
		if (!memcmp(p->dst_mac, mac, 6)) {
			set(out, (int)i, false, "mac");
			return;
		}
	}
	/* Rule 5: an address the VM's flows use. */
	for (size_t i = 0; va && p->family && i < va->n; i++) {
		const struct tf_vm_addr *x = &va->a[i];

		if (x->family != p->family)
			continue;
		if (!memcmp(x->ip, p->src_ip, 16)) {
			set(out, x->tap, true, "address");
			return;
		}
		if (!memcmp(x->ip, p->dst_ip, 16)) {
			set(out, x->tap, false, "address");
			return;
		}
	}
}

void tf_vm_addrs_free(struct tf_vm_addrs *va)
{
	free(va->a);
	memset(va, 0, sizeof(*va));
}

/* By address, then by tap: the first of an address is its lowest tap. */
static int cmp_vm_addr(const void *a, const void *b)
{
	const struct tf_vm_addr *x = a, *y = b;
	int d = memcmp(x->ip, y->ip, sizeof(x->ip));

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (d)
		return d;
	return x->tap < y->tap ? -1 : x->tap > y->tap;
}

int tf_vm_addrs_build(struct tf_vm_addrs *va, const struct tf_collector *c,
		      const struct tf_flows *fl)
{
	size_t kept = 0;

	tf_vm_addrs_free(va);
	va->a = calloc(fl->n ? fl->n : 1, sizeof(*va->a));
	if (!va->a)
		return -ENOMEM;
	/*
	 * A tap's own side: only IP flows of VM taps (not --iface, not
	 * uplinks), each tap's flows through the index (not the whole table
	 * per tap).
	 */
	for (size_t t = 0; t < c->n_targets; t++) {
		struct tf_flow **mine;
		size_t first = va->n;
		long n;

		if (c->targets[t].role != TF_ROLE_TAP || c->targets[t].ifindex <= 0)
			continue;
		n = tf_flows_collect(fl, (uint32_t)c->targets[t].ifindex, &mine);
		if (n < 0) {
			tf_vm_addrs_free(va);
			return -ENOMEM;
		}
		for (long i = 0; i < n; i++) {
			const struct tf_flow_key *k = &mine[i]->key;
			struct tf_vm_addr *last = va->n > first ? &va->a[va->n - 1] : NULL;

			if (k->family != TF_FAM_IPV4 && k->family != TF_FAM_IPV6)
				continue;
			/* Most of a VM's flows share its address: the sort gets the rest. */
			if (last && last->family == k->family && !memcmp(last->ip, k->local_ip, 16))
				continue;
			va->a[va->n].family = k->family;
			memcpy(va->a[va->n].ip, k->local_ip, 16);
			va->a[va->n].tap = (int)t;
			va->n++;
		}
		free(mine);
	}
	/* One entry per address. */
	qsort(va->a, va->n, sizeof(*va->a), cmp_vm_addr);
	for (size_t i = 0; i < va->n; i++) {
		if (kept && va->a[kept - 1].family == va->a[i].family &&
		    !memcmp(va->a[kept - 1].ip, va->a[i].ip, 16))
			continue;
		va->a[kept++] = va->a[i];
	}
	va->n = kept;
	return 0;
}

/* ---- the table ---------------------------------------------------------------- */

void tf_drop_table_free(struct tf_drop_table *t)
{
	free(t->g);
	free(t->pend);
	free(t->tap_packets);
	free(t->dev_packets);
	free(t->fd);
	free(t->fd_slots);
	memset(t, 0, sizeof(*t));
}

static struct tf_drop_group *group_of(struct tf_drop_table *t, int tap, uint32_t reason,
				      uint64_t location, uint32_t ifindex)
{
	struct tf_drop_group *g;

	for (size_t i = 0; i < t->n; i++) {
		g = &t->g[i];
		if (g->tap == tap && g->reason == reason && g->location == location &&
		    g->ifindex == ifindex)
			return g;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;

		g = realloc(t->g, cap * sizeof(*g));
		if (!g)
			return NULL;
		t->g = g;
		t->cap = cap;
	}
	g = &t->g[t->n++];
	memset(g, 0, sizeof(*g));
	g->tap = tap;
	g->reason = reason;
	g->location = location;
	g->ifindex = ifindex;
	return g;
}

/*
 * The slot of flow in the per-flow drops' hash (its entry + 1), or the
 * free slot where it would go: a report asks for every flow it shows.
 */
static size_t fd_slot(const struct tf_drop_table *t, const struct tf_flow_key *flow)
{
	size_t mask = t->n_fd_slots - 1, s = tf_flow_key_hash(flow) & mask;

	/* At most half the slots are used: the probe always ends. */
	while (t->fd_slots[s] && memcmp(&t->fd[t->fd_slots[s] - 1].flow, flow, sizeof(*flow)))
		s = (s + 1) & mask;
	return s;
}

static struct tf_flow_drops *flow_drops_find(const struct tf_drop_table *t,
					     const struct tf_flow_key *flow)
{
	size_t s;

	if (!t->n_fd_slots)
		return NULL;
	s = fd_slot(t, flow);
	return t->fd_slots[s] ? &t->fd[t->fd_slots[s] - 1] : NULL;
}

static int fd_slots_grow(struct tf_drop_table *t)
{
	size_t n = t->n_fd_slots ? t->n_fd_slots * 2 : 64;
	uint32_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	free(t->fd_slots);
	t->fd_slots = slots;
	t->n_fd_slots = n;
	for (size_t i = 0; i < t->n_fd; i++)
		t->fd_slots[fd_slot(t, &t->fd[i].flow)] = (uint32_t)i + 1;
	return 0;
}

static int flow_drop_add(struct tf_drop_table *t, const struct tf_flow_key *flow, bool tx,
			 const struct tf_drop_counts *v, uint32_t fwd_ifindex)
{
	struct tf_flow_drops *d = flow_drops_find(t, flow);
	size_t s;

	if (d) {
		d->packets += v->packets;
		d->dir[tx].packets += v->packets;
		d->dir[tx].bytes += v->bytes;
		if (fwd_ifindex)
			d->fwd_ifindex = fwd_ifindex;
		return 0;
	}
	if (2 * (t->n_fd + 1) > t->n_fd_slots && fd_slots_grow(t))
		return -ENOMEM;
	if (t->n_fd == t->cap_fd) {
		size_t cap = t->cap_fd ? t->cap_fd * 2 : 16;
		struct tf_flow_drops *fd = realloc(t->fd, cap * sizeof(*fd));

		if (!fd)
			return -ENOMEM;
		t->fd = fd;
		t->cap_fd = cap;
	}
	s = fd_slot(t, flow);
	d = &t->fd[t->n_fd];
	memset(d, 0, sizeof(*d));
	d->flow = *flow;
	d->fwd_ifindex = fwd_ifindex;
	d->packets = v->packets;
	d->dir[tx].packets = v->packets;
	d->dir[tx].bytes = v->bytes;
	t->fd_slots[s] = (uint32_t)++t->n_fd;
	return 0;
}

uint64_t tf_drop_table_flow(const struct tf_drop_table *t, const struct tf_flow_key *flow)
{
	const struct tf_flow_drops *d = flow_drops_find(t, flow);

	return d ? d->packets : 0;
}

const struct tf_flow_drops *tf_drop_table_flow_entry(const struct tf_drop_table *t,
						     const struct tf_flow_key *flow)
{
	return flow_drops_find(t, flow);
}

uint32_t tf_drop_table_fwd_out(const struct tf_drop_table *t, const struct tf_flow_key *flow)
{
	const struct tf_flow_drops *d = flow_drops_find(t, flow);

	return d ? d->fwd_ifindex : 0;
}

int tf_drop_table_add(struct tf_drop_table *t, const struct tf_collector *c,
		      const struct tf_drop_key *k, const struct tf_drop_counts *v,
		      const struct tf_drop_attr *a)
{
	struct tf_drop_group *g;
	bool vm = a->tap >= 0;
	int dev;

	if (t->n_taps < c->n_targets) {
		uint64_t *tp = realloc(t->tap_packets, c->n_targets * sizeof(*tp));
		uint64_t *dp;

		if (!tp)
			return -ENOMEM;
		t->tap_packets = tp;
		dp = realloc(t->dev_packets, c->n_targets * sizeof(*dp));
		if (!dp)
			return -ENOMEM;
		t->dev_packets = dp;
		memset(tp + t->n_taps, 0, (c->n_targets - t->n_taps) * sizeof(*tp));
		memset(dp + t->n_taps, 0, (c->n_targets - t->n_taps) * sizeof(*dp));
		t->n_taps = c->n_targets;
	}
	dev = target_index(c, k->ifindex);
	if (dev >= 0)
		t->dev_packets[dev] += v->packets;
	/* The host: one aggregate per reason, not one row per flow or place. */
	g = group_of(t, vm ? a->tap : -1, k->reason, vm ? k->location : 0, vm ? k->ifindex : 0);
	if (!g)
		return -ENOMEM;
	g->packets += v->packets;
	g->bytes += v->bytes;
	if (!g->first_ns || (v->first_ns && v->first_ns < g->first_ns))
		g->first_ns = v->first_ns;
	if (v->last_ns >= g->last_ns) {
		g->last_ns = v->last_ns;
		g->last = *k;
		g->last_attr = *a;
	}
	if (!vm) {
		t->host_packets += v->packets;
		return 0;
	}
	t->tap_packets[a->tap] += v->packets;
	/* Only the VM's own packets go out through an uplink. */
	return a->has_flow ? flow_drop_add(t, &a->flow, a->tx, v, a->tx ? k->out_ifindex : 0)
			   : 0;
}

struct harvest_ctx {
	struct tf_drop_table *t;
	int err;
};

static void pend_one(const struct tf_drop_key *k, const struct tf_drop_counts *v, void *ctx)
{
	struct harvest_ctx *h = ctx;
	struct tf_drop_table *t = h->t;

	if (t->n_pend == t->cap_pend) {
		size_t cap = t->cap_pend ? t->cap_pend * 2 : 64;
		struct tf_drop_pending *p = realloc(t->pend, cap * sizeof(*p));

		if (!p) {
			h->err = -ENOMEM;
			return;
		}
		t->pend = p;
		t->cap_pend = cap;
	}
	t->pend[t->n_pend].k = *k;
	t->pend[t->n_pend++].v = *v;
}

int tf_drops_harvest(struct tf_drop_table *t, struct tf_drop_tracer *tr)
{
	struct harvest_ctx h = { .t = t };
	int err;

	if (!tr->skel)
		return 0;
	err = tf_drop_tracer_harvest(tr, pend_one, &h);
	return err ? err : h.err;
}

int tf_drops_attribute(struct tf_drop_table *t, const struct tf_collector *c,
		       const struct tf_flows *fl)
{
	const struct tf_vm_addrs *pva = NULL;
	struct tf_vm_addrs va = {};
	int err = 0;

	if (!t->n_pend)
		return 0;
	if (fl && !tf_vm_addrs_build(&va, c, fl))
		pva = &va;
	for (size_t i = 0; i < t->n_pend; i++) {
		struct tf_drop_attr a;

		tf_drop_attribute(c, fl, pva, &t->pend[i].k, &a);
		if (tf_drop_table_add(t, c, &t->pend[i].k, &t->pend[i].v, &a))
			err = -ENOMEM;
	}
	t->n_pend = 0;
	tf_vm_addrs_free(&va);
	return err;
}

int tf_drops_poll(struct tf_drop_table *t, struct tf_drop_tracer *tr,
		  const struct tf_collector *c, const struct tf_flows *fl)
{
	int err = tf_drops_harvest(t, tr), err2 = tf_drops_attribute(t, c, fl);

	return err ? err : err2;
}
