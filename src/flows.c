// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "counters.h"
#include "flows.h"

/* ---- the BPF map -------------------------------------------------------- */

static int fd_of(void *ctx)
{
	return (int)(intptr_t)ctx;
}

static int bpf_lookup_batch(void *ctx, void *in_batch, void *out_batch, void *keys,
			    void *values, uint32_t *count)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = *count;
	int err = bpf_map_lookup_batch(fd_of(ctx), in_batch, out_batch, keys, values, &n,
				       &opts);

	*count = n;
	return err < 0 ? -errno : 0;
}

static int bpf_get_next_key(void *ctx, const void *key, void *next_key)
{
	return bpf_map_get_next_key(fd_of(ctx), key, next_key) ? -errno : 0;
}

static int bpf_lookup(void *ctx, const void *key, void *value)
{
	return bpf_map_lookup_elem(fd_of(ctx), key, value) ? -errno : 0;
}

static int bpf_lookup_and_delete(void *ctx, const void *key, void *value)
{
	return bpf_map_lookup_and_delete_elem(fd_of(ctx), key, value) ? -errno : 0;
}

static int bpf_delete(void *ctx, const void *key)
{
	return bpf_map_delete_elem(fd_of(ctx), key) ? -errno : 0;
}

static const struct tf_flow_map_ops bpf_ops = {
	.lookup_batch = bpf_lookup_batch,
	.get_next_key = bpf_get_next_key,
	.lookup = bpf_lookup,
	.lookup_and_delete = bpf_lookup_and_delete,
	.delete_elem = bpf_delete,
};

void tf_flow_map_bpf(struct tf_flow_map *m, int fd, int nvalues)
{
	memset(m, 0, sizeof(*m));
	m->ops = &bpf_ops;
	m->ctx = (void *)(intptr_t)fd;
	m->nvalues = nvalues > 0 ? nvalues : 1;
}

bool tf_map_cmd_unsupported(int err)
{
	return err == -EINVAL || err == -TF_ENOTSUPP || err == -EOPNOTSUPP;
}

/* ---- values ------------------------------------------------------------- */

static bool value_empty(const struct tf_flow_value *v)
{
	return !v->rx.packets && !v->tx.packets && !v->first_seen_ns && !v->last_seen_ns;
}

void tf_flow_value_add(struct tf_flow_value *dst, const struct tf_flow_value *src)
{
	/* A CPU that never saw the flow has all zeros: no time to widen with. */
	if (value_empty(src))
		return;
	if (value_empty(dst)) {
		*dst = *src;
		return;
	}
	tf_dir_add(&dst->rx, &src->rx);
	tf_dir_add(&dst->tx, &src->tx);
	if (src->first_seen_ns && (!dst->first_seen_ns || src->first_seen_ns < dst->first_seen_ns))
		dst->first_seen_ns = src->first_seen_ns;
	if (src->last_seen_ns > dst->last_seen_ns)
		dst->last_seen_ns = src->last_seen_ns;
	dst->tcp_flags_rx |= src->tcp_flags_rx;
	dst->tcp_flags_tx |= src->tcp_flags_tx;
}

/*
 * dv += sv for an uplink flow's parts, with their VM sides dn and sn: the
 * translation of the most recent part wins.
 */
static void uplink_add(struct tf_flow_value *dv, struct tf_nat_vm *dn,
		       const struct tf_flow_value *sv, const struct tf_nat_vm *sn)
{
	bool newer;

	if (value_empty(sv))
		return;
	newer = value_empty(dv) ||
		(sn->flags && (!dn->flags || sv->last_seen_ns >= dv->last_seen_ns));
	tf_flow_value_add(dv, sv);
	if (newer)
		*dn = *sn;
}

void tf_flow_value_sum(const struct tf_flow_value *values, int n, struct tf_flow_value *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n; i++)
		tf_flow_value_add(out, &values[i]);
}

void tf_flow_total(const struct tf_flow *f, struct tf_flow_value *out)
{
	*out = f->base;
	tf_flow_value_add(out, &f->cur);
}

void tf_uplink_total(const struct tf_flow *f, struct tf_uplink_total *out)
{
	const struct tf_uplink_flow *u = tf_uplink_flow_of(f);

	out->v = f->base;
	out->nat = u->base_nat;
	uplink_add(&out->v, &out->nat, &f->cur, &u->cur_nat);
}

/* Bytes of one kernel value (one CPU's) of the table's map. */
static size_t value_size(const struct tf_flows *fl)
{
	return fl->is_uplink ? sizeof(struct tf_uplink_value) : sizeof(struct tf_flow_value);
}

/* The nvalues (per-CPU) kernel values of one entry, summed into v (and nat: uplinks). */
static void sum_values(const struct tf_flows *fl, const void *values, struct tf_flow_value *v,
		       struct tf_nat_vm *nat)
{
	const struct tf_uplink_value *u = values;

	if (!fl->is_uplink) {
		tf_flow_value_sum(values, fl->map.nvalues, v);
		return;
	}
	memset(v, 0, sizeof(*v));
	memset(nat, 0, sizeof(*nat));
	for (int i = 0; i < fl->map.nvalues; i++)
		uplink_add(v, nat, &u[i].flow, &u[i].nat);
}

/* ---- the table ---------------------------------------------------------- */

_Static_assert(offsetof(struct tf_uplink_flow, f) == 0,
	       "an uplink flow is allocated and freed through its struct tf_flow");

uint64_t tf_fnv1a(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t tf_flow_key_hash(const struct tf_flow_key *k)
{
	return tf_fnv1a(k, sizeof(*k));
}

static int grow(struct tf_flows *fl)
{
	size_t nb = fl->nbuckets ? fl->nbuckets * 2 : 1024;
	struct tf_flow **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < fl->nbuckets; i++) {
		struct tf_flow *f = fl->buckets[i], *next;

		for (; f; f = next) {
			size_t h = tf_flow_key_hash(&f->key) & (nb - 1);

			next = f->hnext;
			f->hnext = b[h];
			b[h] = f;
		}
	}
	free(fl->buckets);
	fl->buckets = b;
	fl->nbuckets = nb;
	return 0;
}

static int init_table(struct tf_flows *fl, const struct tf_flow_map *map, uint64_t idle_ns,
		      uint64_t active_ns, size_t max_ended, bool is_uplink)
{
	memset(fl, 0, sizeof(*fl));
	fl->map = *map;
	fl->is_uplink = is_uplink;
	fl->idle_ns = idle_ns;
	fl->active_ns = active_ns;
	fl->max_ended = max_ended;
	fl->batch_cap = 1024;
	fl->keys = calloc(fl->batch_cap, sizeof(*fl->keys));
	fl->values = calloc((size_t)fl->batch_cap * (size_t)fl->map.nvalues, value_size(fl));
	if (!fl->keys || !fl->values || grow(fl)) {
		tf_flows_free(fl);
		return -ENOMEM;
	}
	return 0;
}

int tf_flows_init(struct tf_flows *fl, const struct tf_flow_map *map, uint64_t idle_ns,
		  uint64_t active_ns, size_t max_ended)
{
	return init_table(fl, map, idle_ns, active_ns, max_ended, false);
}

int tf_flows_init_uplinks(struct tf_flows *fl, const struct tf_flow_map *map)
{
	struct tf_flows *up = malloc(sizeof(*up));

	if (!up || init_table(up, map, fl->idle_ns, fl->active_ns, fl->max_ended, true)) {
		free(up);
		return -ENOMEM;
	}
	fl->uplinks = up;
	return 0;
}

void tf_flows_free(struct tf_flows *fl)
{
	if (fl->uplinks) {
		tf_flows_free(fl->uplinks);
		free(fl->uplinks);
	}
	for (size_t i = 0; i < fl->nbuckets; i++) {
		struct tf_flow *f = fl->buckets[i], *next;

		for (; f; f = next) {
			next = f->hnext;
			free(f);
		}
	}
	free(fl->buckets);
	free(fl->keys);
	free(fl->values);
	free(fl->evicted);
	free(fl->retired);
	free(fl->ix.flows);
	free(fl->ix.groups);
	free(fl->ix.slots);
	memset(fl, 0, sizeof(*fl));
}

struct tf_flow *tf_flows_find(const struct tf_flows *fl, const struct tf_flow_key *key)
{
	struct tf_flow *f;

	if (!fl->nbuckets)
		return NULL;
	for (f = fl->buckets[tf_flow_key_hash(key) & (fl->nbuckets - 1)]; f; f = f->hnext)
		if (!memcmp(&f->key, key, sizeof(*key)))
			return f;
	return NULL;
}

static struct tf_flow *find_or_add(struct tf_flows *fl, const struct tf_flow_key *key)
{
	struct tf_flow *f = tf_flows_find(fl, key);
	size_t h;

	if (f)
		return f;
	if (fl->n >= fl->nbuckets && grow(fl))
		return NULL;
	/* An uplink flow: its struct tf_flow first, so that free(f) frees it whole. */
	f = calloc(1, fl->is_uplink ? sizeof(struct tf_uplink_flow) : sizeof(*f));
	if (!f)
		return NULL;
	/* The index no longer holds every flow: walks until it is rebuilt. */
	fl->ix.valid = false;
	f->key = *key;
	h = tf_flow_key_hash(key) & (fl->nbuckets - 1);
	f->hnext = fl->buckets[h];
	fl->buckets[h] = f;
	fl->n++;
	fl->counts.seen++;
	return f;
}

/*
 * The kernel stamps an uplink flow only when it makes the entry,
 * never per packet (bpf/tapflow.bpf.c, uplink_now()): its last seen is the
 * poll that saw its counters move (or the entry appear), which is at most
 * one interval late, as expiry only needs.
 */
static void uplink_last_seen(const struct tf_flows *fl, const struct tf_flow_value *before,
			     bool was_in_kernel, struct tf_flow_value *now)
{
	if (!fl->is_uplink)
		return;
	if (!was_in_kernel || now->rx.packets != before->rx.packets ||
	    now->tx.packets != before->tx.packets) {
		if (fl->now_ns > now->last_seen_ns)
			now->last_seen_ns = fl->now_ns;
	} else if (before->last_seen_ns > now->last_seen_ns) {
		now->last_seen_ns = before->last_seen_ns;
	}
}

/* A kernel entry as read: the flow's live part. */
static int ingest(struct tf_flows *fl, const struct tf_flow_key *key, const void *values)
{
	struct tf_flow *f = find_or_add(fl, key);
	struct tf_uplink_flow *u;
	struct tf_flow_value before;

	if (!f)
		return -ENOMEM;
	u = fl->is_uplink ? tf_uplink_flow_of(f) : NULL;
	before = f->cur;
	sum_values(fl, values, &f->cur, u ? &u->cur_nat : NULL);
	uplink_last_seen(fl, &before, f->in_kernel, &f->cur);
	/*
	 * An uplink flow back after its kernel entry was taken out, now with
	 * another VM side: what was taken out is the previous VM side's.
	 */
	if (u && (u->base_nat.flags & TF_NAT_UPLINK) && (u->cur_nat.flags & TF_NAT_UPLINK) &&
	    memcmp(&u->base_nat.vm, &u->cur_nat.vm, sizeof(u->base_nat.vm))) {
		struct tf_uplink_total old = { .v = f->base, .nat = u->base_nat };

		if (tf_flows_retire(fl, key, &old))
			return -ENOMEM;
		memset(&f->base, 0, sizeof(f->base));
		memset(&u->base_nat, 0, sizeof(u->base_nat));
	}
	if (f->expired) {
		/* Back after expiry: the same flow goes on, its totals too. */
		f->expired = false;
		fl->n_expired--;
	}
	f->in_kernel = true;
	f->gen = fl->gen;
	return 0;
}

static int read_batched(struct tf_flows *fl)
{
	const struct tf_flow_map_ops *ops = fl->map.ops;
	/* The batch position is the kernel's business (a bucket for hash maps). */
	uint64_t in_batch[8] = {}, out_batch[8] = {};
	size_t vsz = value_size(fl) * (size_t)fl->map.nvalues;
	bool first = true;

	for (;;) {
		uint32_t count = fl->batch_cap;
		int err = ops->lookup_batch(fl->map.ctx, first ? NULL : in_batch, out_batch,
					    fl->keys, fl->values, &count);

		if (err && err != -ENOENT) {
			if (first && tf_map_cmd_unsupported(err))
				return -EOPNOTSUPP;
			if (err == -ENOSPC && fl->batch_cap < (1u << 20)) {
				/* One hash bucket holds more than a batch: bigger batches. */
				uint32_t cap = fl->batch_cap * 4;
				struct tf_flow_key *k = realloc(fl->keys, cap * sizeof(*k));
				void *v;

				if (!k)
					return -ENOMEM;
				fl->keys = k;
				v = realloc(fl->values, (size_t)cap * vsz);
				if (!v)
					return -ENOMEM;
				fl->values = v;
				fl->batch_cap = cap;
				continue;
			}
			return err;
		}
		for (uint32_t i = 0; i < count; i++)
			if (ingest(fl, &fl->keys[i], (const char *)fl->values + i * vsz))
				return -ENOMEM;
		if (err == -ENOENT)
			return 0;	/* that was the last batch */
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
}

static int read_one_by_one(struct tf_flows *fl)
{
	const struct tf_flow_map_ops *ops = fl->map.ops;
	struct tf_flow_key key, next;
	bool first = true;
	int err;

	while (!(err = ops->get_next_key(fl->map.ctx, first ? NULL : &key, &next))) {
		err = ops->lookup(fl->map.ctx, &next, fl->values);
		if (!err && ingest(fl, &next, fl->values))
			return -ENOMEM;
		/* -ENOENT: gone in between; the next key still follows it. */
		key = next;
		first = false;
	}
	return err == -ENOENT ? 0 : err;
}

static int read_map(struct tf_flows *fl)
{
	int err;

	if (!fl->map.no_batch) {
		err = read_batched(fl);
		if (err != -EOPNOTSUPP)
			return err;
		fl->map.no_batch = true;	/* old kernel: once is enough */
	}
	return read_one_by_one(fl);
}

/*
 * The flow's live part v (nat: its VM side, uplink tables) goes to its
 * base: the flow has no kernel entry now.
 */
static void fold_into_base(const struct tf_flows *fl, struct tf_flow *f,
			   const struct tf_flow_value *v, const struct tf_nat_vm *nat)
{
	if (fl->is_uplink) {
		struct tf_uplink_flow *u = tf_uplink_flow_of(f);

		uplink_add(&f->base, &u->base_nat, v, nat);
		memset(&u->cur_nat, 0, sizeof(u->cur_nat));
	} else {
		tf_flow_value_add(&f->base, v);
	}
	memset(&f->cur, 0, sizeof(f->cur));
	f->in_kernel = false;
}

/* The VM side of the flow's live part (uplink tables; else NULL). */
static const struct tf_nat_vm *cur_nat(const struct tf_flows *fl, const struct tf_flow *f)
{
	return fl->is_uplink ? &tf_uplink_flow_of(f)->cur_nat : NULL;
}

/*
 * Take the flow's kernel entry out, atomically where the kernel can (no
 * packet counted between the read and the delete is lost), and keep its
 * counts in the flow. 0, or -errno (the entry stays for the next poll).
 */
static int harvest(struct tf_flows *fl, struct tf_flow *f)
{
	const struct tf_flow_map_ops *ops = fl->map.ops;
	struct tf_flow_value v;
	struct tf_nat_vm nat = {};
	int err = -EOPNOTSUPP;

	if (!fl->map.no_lookup_and_delete) {
		err = ops->lookup_and_delete(fl->map.ctx, &f->key, fl->values);
		if (tf_map_cmd_unsupported(err))
			fl->map.no_lookup_and_delete = true;	/* before 5.14 */
	}
	if (fl->map.no_lookup_and_delete) {
		/* A packet between these two is lost: count that it could be. */
		err = ops->lookup(fl->map.ctx, &f->key, fl->values);
		if (!err) {
			err = ops->delete_elem(fl->map.ctx, &f->key);
			if (err && err != -ENOENT)
				return err;
			err = 0;
			fl->counts.races++;
		}
	}
	if (err == -ENOENT) {
		/* Gone already: what we read last is all we know. */
		v = f->cur;
		if (fl->is_uplink)
			nat = *cur_nat(fl, f);
	} else if (err) {
		return err;
	} else {
		sum_values(fl, fl->values, &v, &nat);
		uplink_last_seen(fl, &f->cur, true, &v);
	}
	fold_into_base(fl, f, &v, &nat);
	return 0;
}

static void mark_expired(struct tf_flows *fl, struct tf_flow *f)
{
	if (f->expired)
		return;
	f->expired = true;
	fl->n_expired++;
	fl->counts.expired++;
}

static void expire(struct tf_flows *fl, struct tf_flow *f, uint64_t now_ns)
{
	if (f->in_kernel && f->gen != fl->gen) {
		/* Not deleted by us: keep what was read, the rest is unknown. */
		fold_into_base(fl, f, &f->cur, cur_nat(fl, f));
		fl->counts.vanished++;
	}
	if (f->in_kernel) {
		if (fl->idle_ns && now_ns >= f->cur.last_seen_ns + fl->idle_ns) {
			if (!harvest(fl, f))
				mark_expired(fl, f);
		} else if (fl->active_ns && now_ns >= f->cur.first_seen_ns + fl->active_ns) {
			/* Busy for the active timeout: a fresh kernel entry goes on. */
			if (!harvest(fl, f))
				fl->counts.active++;
		}
	} else if (!f->expired && fl->idle_ns &&
		   now_ns >= f->base.last_seen_ns + fl->idle_ns) {
		/* Harvested when busy, then never seen again. */
		mark_expired(fl, f);
	}
}

static struct tf_flow_evicted *evicted_of(struct tf_flows *fl, uint32_t ifindex)
{
	struct tf_flow_evicted *e;

	for (size_t i = 0; i < fl->n_evicted; i++)
		if (fl->evicted[i].ifindex == ifindex)
			return &fl->evicted[i];
	e = realloc(fl->evicted, (fl->n_evicted + 1) * sizeof(*e));
	if (!e)
		return NULL;
	fl->evicted = e;
	e = &fl->evicted[fl->n_evicted++];
	memset(e, 0, sizeof(*e));
	e->ifindex = ifindex;
	return e;
}

static int by_last_seen(const void *a, const void *b)
{
	const struct tf_flow *x = *(struct tf_flow *const *)a, *y = *(struct tf_flow *const *)b;

	return x->base.last_seen_ns < y->base.last_seen_ns ? -1
	       : x->base.last_seen_ns > y->base.last_seen_ns;
}

static void unlink_flow(struct tf_flows *fl, struct tf_flow *f)
{
	struct tf_flow **pp = &fl->buckets[tf_flow_key_hash(&f->key) & (fl->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == f) {
			*pp = f->hnext;
			fl->n--;
			/* The index would point at a freed flow. */
			fl->ix.valid = false;
			return;
		}
	}
}

/*
 * Too many ended flows kept one by one: fold the oldest into their
 * interface's expired aggregate (down to 90 %, so that this is rare).
 */
static void evict_ended(struct tf_flows *fl)
{
	struct tf_flow **v;
	size_t n = 0, drop;

	if (!fl->max_ended || fl->n_expired <= fl->max_ended)
		return;
	v = malloc(fl->n_expired * sizeof(*v));
	if (!v)
		return;
	for (size_t i = 0; i < fl->nbuckets; i++)
		for (struct tf_flow *f = fl->buckets[i]; f; f = f->hnext)
			if (f->expired && n < fl->n_expired)
				v[n++] = f;
	qsort(v, n, sizeof(*v), by_last_seen);
	drop = n - fl->max_ended * 9 / 10;
	for (size_t i = 0; i < drop && i < n; i++) {
		struct tf_flow_evicted *e = evicted_of(fl, v[i]->key.ifindex);

		if (!e)
			break;
		e->flows++;
		tf_flow_value_add(&e->v, &v[i]->base);
		if (fl->on_evict)
			fl->on_evict(fl->evict_ctx, v[i]);
		unlink_flow(fl, v[i]);
		fl->n_expired--;
		fl->counts.evicted++;
		free(v[i]);
	}
	free(v);
}

static double per_s(uint64_t now, uint64_t prev, double dt)
{
	return dt > 0 && now >= prev ? (double)(now - prev) / dt : 0;
}

static int poll_table(struct tf_flows *fl, uint64_t now_ns, double dt)
{
	int err;

	fl->gen++;
	fl->now_ns = now_ns;
	fl->ix.valid = false;
	err = read_map(fl);
	if (err)
		return err;
	for (size_t i = 0; i < fl->nbuckets; i++)
		for (struct tf_flow *f = fl->buckets[i]; f; f = f->hnext)
			expire(fl, f, now_ns);
	evict_ended(fl);
	for (size_t i = 0; i < fl->nbuckets; i++) {
		for (struct tf_flow *f = fl->buckets[i]; f; f = f->hnext) {
			struct tf_flow_value t;

			tf_flow_total(f, &t);
			f->rx_bps = per_s(t.rx.bytes, f->prev_rx_bytes, dt) * 8;
			f->tx_bps = per_s(t.tx.bytes, f->prev_tx_bytes, dt) * 8;
			f->rx_pps = per_s(t.rx.packets, f->prev_rx_packets, dt);
			f->tx_pps = per_s(t.tx.packets, f->prev_tx_packets, dt);
			f->prev_rx_bytes = t.rx.bytes;
			f->prev_tx_bytes = t.tx.bytes;
			f->prev_rx_packets = t.rx.packets;
			f->prev_tx_packets = t.tx.packets;
		}
	}
	/* Out of memory: no index, the reports walk the table instead. */
	tf_flows_index(fl);
	return 0;
}

int tf_flows_poll(struct tf_flows *fl, uint64_t now_ns, double dt)
{
	int err = poll_table(fl, now_ns, dt), err_up = 0;

	/* Each table keeps what it had if its own map cannot be read. */
	if (fl->uplinks)
		err_up = poll_table(fl->uplinks, now_ns, dt);
	return err ? err : err_up;
}

static void counts_add(struct tf_flow_counts *a, const struct tf_flow_counts *b)
{
	a->seen += b->seen;
	a->expired += b->expired;
	a->active += b->active;
	a->races += b->races;
	a->evicted += b->evicted;
	a->vanished += b->vanished;
	a->retired += b->retired;
	a->retired_dropped += b->retired_dropped;
}

void tf_flows_counts(const struct tf_flows *fl, struct tf_flow_counts *out)
{
	*out = fl->counts;
	if (fl->uplinks)
		counts_add(out, &fl->uplinks->counts);
}

size_t tf_flows_n(const struct tf_flows *fl)
{
	return fl->n + (fl->uplinks ? fl->uplinks->n : 0);
}

size_t tf_flows_n_live(const struct tf_flows *fl)
{
	return fl->n - fl->n_expired + (fl->uplinks ? fl->uplinks->n - fl->uplinks->n_expired : 0);
}

/* ---- the index by interface ------------------------------------------------ */

/*
 * The slot of ifindex's group, or the free slot where it would go.
 * Fibonacci hashing: the top bits of the product depend on every bit of
 * ifindex, so that neither dense ifindexes nor ones a power of 2 apart
 * pile up in one run of slots.
 */
static size_t group_slot(const struct tf_flow_index *ix, uint32_t ifindex)
{
	unsigned int bits = (unsigned int)__builtin_ctzl(ix->n_slots);
	size_t mask = ix->n_slots - 1;
	size_t s = (size_t)((uint32_t)(ifindex * 2654435761u) >> (32 - bits)) & mask;

	/* At most half the slots are used: the probe always ends. */
	while (ix->slots[s] && ix->groups[ix->slots[s] - 1].ifindex != ifindex)
		s = (s + 1) & mask;
	return s;
}

static int grow_slots(struct tf_flow_index *ix)
{
	size_t n = ix->n_slots ? ix->n_slots * 2 : 64;
	uint32_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	free(ix->slots);
	ix->slots = slots;
	ix->n_slots = n;
	for (size_t g = 0; g < ix->n_groups; g++)
		ix->slots[group_slot(ix, ix->groups[g].ifindex)] = (uint32_t)g + 1;
	return 0;
}

/* The group of ifindex, made (empty) if it has none yet; NULL: out of memory. */
static struct tf_flow_group *group_get(struct tf_flow_index *ix, uint32_t ifindex)
{
	struct tf_flow_group *g;
	size_t s = group_slot(ix, ifindex);

	if (ix->slots[s])
		return &ix->groups[ix->slots[s] - 1];
	if (2 * (ix->n_groups + 1) > ix->n_slots) {
		if (grow_slots(ix))
			return NULL;
		s = group_slot(ix, ifindex);
	}
	if (ix->n_groups == ix->cap_groups) {
		size_t cap = ix->cap_groups ? ix->cap_groups * 2 : 64;

		g = realloc(ix->groups, cap * sizeof(*g));
		if (!g)
			return NULL;
		ix->groups = g;
		ix->cap_groups = cap;
	}
	g = &ix->groups[ix->n_groups++];
	memset(g, 0, sizeof(*g));
	g->ifindex = ifindex;
	ix->slots[s] = (uint32_t)ix->n_groups;
	return g;
}

int tf_flows_index(struct tf_flows *fl)
{
	struct tf_flow_index *ix = &fl->ix;
	size_t at = 0;

	ix->valid = false;
	ix->n_groups = 0;
	if (!ix->n_slots && grow_slots(ix))
		return -ENOMEM;
	memset(ix->slots, 0, ix->n_slots * sizeof(*ix->slots));
	if (fl->n > ix->cap_flows) {
		struct tf_flow **v = realloc(ix->flows, fl->n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ix->flows = v;
		ix->cap_flows = fl->n;
	}
	/* Two passes, no sort: count each interface's flows, then place them. */
	for (size_t i = 0; i < fl->nbuckets; i++) {
		for (struct tf_flow *f = fl->buckets[i]; f; f = f->hnext) {
			struct tf_flow_group *g = group_get(ix, f->key.ifindex);

			if (!g)
				return -ENOMEM;
			f->group = (uint32_t)(g - ix->groups);
			g->n++;
		}
	}
	for (size_t g = 0; g < ix->n_groups; g++) {
		ix->groups[g].first = at;
		at += ix->groups[g].n;
		ix->groups[g].n = 0;
	}
	for (size_t i = 0; i < fl->nbuckets; i++) {
		for (struct tf_flow *f = fl->buckets[i]; f; f = f->hnext) {
			struct tf_flow_group *g = &ix->groups[f->group];

			ix->flows[g->first + g->n++] = f;
		}
	}
	ix->valid = true;
	return 0;
}

long tf_flows_of(const struct tf_flows *fl, uint32_t ifindex, struct tf_flow *const **out)
{
	const struct tf_flow_index *ix = &fl->ix;
	const struct tf_flow_group *g;
	size_t s;

	*out = NULL;
	if (!ix->valid)
		return -1;
	s = group_slot(ix, ifindex);
	if (!ix->slots[s])
		return 0;
	g = &ix->groups[ix->slots[s] - 1];
	*out = ix->flows + g->first;
	return (long)g->n;
}

long tf_flows_collect(const struct tf_flows *fl, uint32_t ifindex, struct tf_flow ***out)
{
	struct tf_flow *const *mine;
	long n = ifindex ? tf_flows_of(fl, ifindex, &mine) : -1;
	struct tf_flow **v;

	if (n >= 0) {
		v = malloc((n ? (size_t)n : 1) * sizeof(*v));
		*out = v;
		if (!v)
			return -1;
		if (n)
			memcpy(v, mine, (size_t)n * sizeof(*v));
		return n;
	}
	n = 0;
	v = malloc((fl->n ? fl->n : 1) * sizeof(*v));
	*out = v;
	if (!v)
		return -1;
	for (size_t i = 0; i < fl->nbuckets; i++)
		for (struct tf_flow *f = fl->buckets[i]; f; f = f->hnext)
			if (!ifindex || f->key.ifindex == ifindex)
				v[n++] = f;
	return n;
}

int tf_flows_retire(struct tf_flows *fl, const struct tf_flow_key *key,
		    const struct tf_uplink_total *t)
{
	if (fl->max_ended && fl->n_retired >= fl->max_ended) {
		/* Full: the oldest segment goes (they are kept in arrival order). */
		memmove(fl->retired, fl->retired + 1, (fl->n_retired - 1) * sizeof(*fl->retired));
		fl->n_retired--;
		fl->counts.retired_dropped++;
	}
	if (fl->n_retired == fl->cap_retired) {
		size_t cap = fl->cap_retired ? fl->cap_retired * 2 : 16;
		struct tf_flow_retired *r = realloc(fl->retired, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		fl->retired = r;
		fl->cap_retired = cap;
	}
	fl->retired[fl->n_retired].key = *key;
	fl->retired[fl->n_retired++].t = *t;
	fl->counts.retired++;
	return 0;
}

const struct tf_flow_evicted *tf_flows_evicted(const struct tf_flows *fl, uint32_t ifindex)
{
	for (size_t i = 0; i < fl->n_evicted; i++)
		if (fl->evicted[i].ifindex == ifindex)
			return &fl->evicted[i];
	return NULL;
}

/* ---- sorting ------------------------------------------------------------ */

const char *tf_flow_sort_name(enum tf_flow_sort by)
{
	switch (by) {
	case TF_SORT_PACKETS: return "packets";
	case TF_SORT_RATE: return "rate";
	default: return "bytes";
	}
}

static uint64_t total_bytes(const struct tf_flow *f)
{
	return f->base.rx.bytes + f->base.tx.bytes + f->cur.rx.bytes + f->cur.tx.bytes;
}

static uint64_t total_packets(const struct tf_flow *f)
{
	return f->base.rx.packets + f->base.tx.packets + f->cur.rx.packets + f->cur.tx.packets;
}

#define CMP_DESC(a, b) do { if ((a) != (b)) return (a) > (b) ? -1 : 1; } while (0)

static int cmp_flows(const struct tf_flow *a, const struct tf_flow *b, enum tf_flow_sort by)
{
	switch (by) {
	case TF_SORT_RATE:
		CMP_DESC(a->rx_bps + a->tx_bps, b->rx_bps + b->tx_bps);
		CMP_DESC(total_bytes(a), total_bytes(b));
		break;
	case TF_SORT_PACKETS:
		CMP_DESC(total_packets(a), total_packets(b));
		CMP_DESC(total_bytes(a), total_bytes(b));
		break;
	default:
		CMP_DESC(total_bytes(a), total_bytes(b));
		CMP_DESC(total_packets(a), total_packets(b));
	}
	return memcmp(&a->key, &b->key, sizeof(a->key));
}

/* qsort has no context argument: sort by each measure with its own comparator. */
static int cmp_bytes(const void *a, const void *b)
{
	return cmp_flows(*(struct tf_flow *const *)a, *(struct tf_flow *const *)b, TF_SORT_BYTES);
}

static int cmp_packets(const void *a, const void *b)
{
	return cmp_flows(*(struct tf_flow *const *)a, *(struct tf_flow *const *)b,
			 TF_SORT_PACKETS);
}

static int cmp_rate(const void *a, const void *b)
{
	return cmp_flows(*(struct tf_flow *const *)a, *(struct tf_flow *const *)b, TF_SORT_RATE);
}

void tf_flows_sort(struct tf_flow **v, size_t n, enum tf_flow_sort by)
{
	if (n < 2)
		return;
	qsort(v, n, sizeof(*v), by == TF_SORT_RATE ? cmp_rate
				: by == TF_SORT_PACKETS ? cmp_packets : cmp_bytes);
}

/* ---- rendering ---------------------------------------------------------- */

void tf_flow_ip_str(int family, const uint8_t ip[16], char *out, size_t outlen)
{
	if (!outlen)
		return;
	out[0] = '\0';
	if (family == TF_FAM_IPV4)
		inet_ntop(AF_INET, ip, out, (socklen_t)outlen);
	else if (family == TF_FAM_IPV6)
		inet_ntop(AF_INET6, ip, out, (socklen_t)outlen);
}

void tf_flow_endpoint_str(int family, const char *ip, int port, char *out, size_t outlen)
{
	if (!*ip)
		snprintf(out, outlen, "-");
	else if (port < 0)
		snprintf(out, outlen, "%s", ip);
	else if (family == TF_FAM_IPV6)
		snprintf(out, outlen, "[%s]:%d", ip, port);
	else
		snprintf(out, outlen, "%s:%d", ip, port);
}

void tf_tcp_flags_str(uint8_t flags, char *out, size_t outlen)
{
	static const char letters[] = "CEUAPRSF";	/* bit 7 .. bit 0 */
	size_t o = 0;

	for (int bit = 7; bit >= 0 && o + 1 < outlen; bit--)
		if (flags & (1u << bit))
			out[o++] = letters[7 - bit];
	if (outlen)
		out[o] = '\0';
}

bool tf_icmp_is_query(int family, int type)
{
	if (family == TF_FAM_IPV4)
		/* echo, timestamp, information, address mask: requests and replies */
		return type == 0 || type == 8 || (type >= 13 && type <= 18);
	/* echo request/reply, node information query/response */
	return type == 128 || type == 129 || type == 139 || type == 140;
}

/* Protocols whose key carries ports. */
static bool has_ports(int proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
	       proto == IPPROTO_SCTP || proto == IPPROTO_DCCP;
}

static void ethertype_name(uint16_t et, char *out, size_t outlen)
{
	switch (et) {
	case 0x0806: snprintf(out, outlen, "arp"); break;
	case 0x8035: snprintf(out, outlen, "rarp"); break;
	case 0x88cc: snprintf(out, outlen, "lldp"); break;
	default: snprintf(out, outlen, "ethertype 0x%04x", et);
	}
}

void tf_flow_view(const struct tf_flow_key *k, const struct tf_flow_value *v, bool mirrored,
		  struct tf_flow_view *out)
{
	const uint8_t *lip = mirrored ? k->remote_ip : k->local_ip;
	const uint8_t *rip = mirrored ? k->local_ip : k->remote_ip;
	int lport = mirrored ? k->remote_port : k->local_port;
	int rport = mirrored ? k->local_port : k->remote_port;

	memset(out, 0, sizeof(*out));
	out->vlan = k->vlan ? k->vlan : -1;
	out->vlan_inner = k->vlan_inner ? k->vlan_inner : -1;
	out->local_port = out->remote_port = -1;
	out->icmp_type = out->icmp_code = out->icmp_id = -1;
	out->rx = mirrored ? v->tx : v->rx;
	out->tx = mirrored ? v->rx : v->tx;
	out->tcp_flags = (uint8_t)(v->tcp_flags_rx | v->tcp_flags_tx);
	if (k->family != TF_FAM_IPV4 && k->family != TF_FAM_IPV6) {
		static const uint8_t zero[16];

		out->proto = -1;
		out->tcp_flags = 0;
		ethertype_name(k->ethertype, out->proto_name, sizeof(out->proto_name));
		/* Ethernet/IPv4 ARP: the kernel keys its protocol addresses. */
		if (k->ethertype == 0x0806 && (memcmp(lip, zero, 16) || memcmp(rip, zero, 16))) {
			tf_flow_ip_str(TF_FAM_IPV4, lip, out->local_ip, sizeof(out->local_ip));
			tf_flow_ip_str(TF_FAM_IPV4, rip, out->remote_ip, sizeof(out->remote_ip));
		}
		return;
	}
	out->family = k->family;
	out->proto = k->proto;
	tf_flow_ip_str(k->family, lip, out->local_ip, sizeof(out->local_ip));
	tf_flow_ip_str(k->family, rip, out->remote_ip, sizeof(out->remote_ip));
	switch (k->proto) {
	case IPPROTO_TCP: snprintf(out->proto_name, sizeof(out->proto_name), "tcp"); break;
	case IPPROTO_UDP: snprintf(out->proto_name, sizeof(out->proto_name), "udp"); break;
	case IPPROTO_ICMP: snprintf(out->proto_name, sizeof(out->proto_name), "icmp"); break;
	case IPPROTO_ICMPV6: snprintf(out->proto_name, sizeof(out->proto_name), "icmpv6"); break;
	default: snprintf(out->proto_name, sizeof(out->proto_name), "%d", k->proto);
	}
	if (k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6) {
		/* The key: remote_port = type << 8 | code; local_port = id of queries. */
		out->icmp_type = k->remote_port >> 8;
		out->icmp_code = k->remote_port & 0xff;
		if (tf_icmp_is_query(k->family, out->icmp_type))
			out->icmp_id = k->local_port;
	} else if (has_ports(k->proto)) {
		out->local_port = lport;
		out->remote_port = rport;
	}
	if (k->proto != IPPROTO_TCP)
		out->tcp_flags = 0;
}

/* ---- time --------------------------------------------------------------- */

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

int64_t tf_mono_to_real_offset(void)
{
	struct timespec m1, r, m2;

	/* Bracket the realtime read: the offset is off by half the gap at most. */
	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	return ts_ns(&r) - (ts_ns(&m1) + ts_ns(&m2)) / 2;
}

void tf_ktime_to_timespec(uint64_t ktime_ns, int64_t offset_ns, struct timespec *out)
{
	int64_t ns = (int64_t)ktime_ns + offset_ns;

	out->tv_sec = (time_t)(ns / 1000000000LL);
	out->tv_nsec = (long)(ns % 1000000000LL);
}

uint64_t tf_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts_ns(&ts);
}
