// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "counters.h"
#include "nat.h"

void tf_nat_vm_key(const struct tf_flow_key *tap_key, int bridge_ifindex,
		   struct tf_flow_key *out)
{
	*out = *tap_key;
	out->ifindex = (__u32)bridge_ifindex;
	/* Routed packets leave untagged: a tag seen on the tap is not in the VM side. */
	out->vlan = 0;
	out->vlan_inner = 0;
}

uint64_t tf_nat_lost(uint64_t entered, uint64_t left)
{
	return entered > left ? entered - left : 0;
}

void tf_nat_index_free(struct tf_nat_index *ix)
{
	free(ix->buckets);
	free(ix->refs);
	memset(ix, 0, sizeof(*ix));
}

/* Add one uplink flow (or retired segment) to the index, if its VM side is known. */
static void index_add(struct tf_nat_index *ix, const struct tf_flow_key *up,
		      const struct tf_uplink_total *total)
{
	struct tf_nat_ref *r = &ix->refs[ix->n];
	size_t h;

	if (!(total->nat.flags & TF_NAT_UPLINK) || (total->nat.flags & TF_NAT_RELATED))
		return;
	r->total = *total;
	r->up = *up;
	r->vm = total->nat.vm;
	h = tf_flow_key_hash(&r->vm) & (ix->nbuckets - 1);
	r->next = ix->buckets[h];
	ix->buckets[h] = r;
	ix->n++;
}

int tf_nat_index_build(struct tf_nat_index *ix, const struct tf_flows *fl)
{
	const struct tf_flows *up = fl->uplinks;
	struct tf_flow **all = NULL;
	long n = up ? tf_flows_collect(up, 0, &all) : 0;
	size_t nb = 64, nrefs;

	tf_nat_index_free(ix);
	if (n < 0)
		return -ENOMEM;
	nrefs = (size_t)n + (up ? up->n_retired : 0);
	while (nb < nrefs)
		nb *= 2;
	ix->buckets = calloc(nb, sizeof(*ix->buckets));
	ix->refs = calloc(nrefs ? nrefs : 1, sizeof(*ix->refs));
	if (!ix->buckets || !ix->refs) {
		free(all);
		tf_nat_index_free(ix);
		return -ENOMEM;
	}
	ix->nbuckets = nb;
	for (long i = 0; i < n; i++) {
		struct tf_uplink_total total;

		tf_uplink_total(all[i], &total);
		index_add(ix, &all[i]->key, &total);
	}
	for (size_t i = 0; up && i < up->n_retired; i++)
		index_add(ix, &up->retired[i].key, &up->retired[i].t);
	free(all);
	return 0;
}

int tf_nat_harvest_retired(int fd, struct tf_flows *fl)
{
	struct tf_nat_retired_key k;
	struct tf_uplink_total t;
	struct tf_uplink_value v;

	if (!fl->uplinks)
		return -EINVAL;
	/* Always the first key: the one before was taken out. Bounded. */
	for (int guard = 0; guard < 2 * TF_NAT_RETIRED_MAX; guard++) {
		if (bpf_map_get_next_key(fd, NULL, &k))
			return errno == ENOENT ? 0 : -errno;
		if (bpf_map_lookup_and_delete_elem(fd, &k, &v)) {
			/* Before 5.14: lookup, then delete (the entry is written once). */
			if (bpf_map_lookup_elem(fd, &k, &v) || bpf_map_delete_elem(fd, &k))
				continue;
		}
		t.v = v.flow;
		t.nat = v.nat;
		if (tf_flows_retire(fl->uplinks, &k.key, &t))
			return -ENOMEM;
	}
	return 0;
}

void tf_nat_ports_bitmap(const struct tf_flows *fl, uint64_t bits[TF_NATPORT_BITS / 64])
{
	const struct tf_flows *up = fl->uplinks;

	memset(bits, 0, TF_NATPORT_BITS / 8);
	for (size_t i = 0; up && i < up->nbuckets; i++) {
		for (const struct tf_flow *f = up->buckets[i]; f; f = f->hnext) {
			uint16_t p = f->key.local_port;

			if (f->in_kernel && (tf_uplink_flow_of(f)->cur_nat.flags & TF_NAT_UPLINK))
				bits[p / 64] |= 1ULL << (p % 64);
		}
	}
}

void tf_nat_join(const struct tf_nat_index *ix, const struct tf_flow_key *tap_key,
		 int bridge_ifindex, const struct tf_flow_value *tap, struct tf_nat_link *out)
{
	const struct tf_nat_ref *latest = NULL;
	struct tf_flow_key k;

	memset(out, 0, sizeof(*out));
	if (!ix->nbuckets || bridge_ifindex <= 0)
		return;
	tf_nat_vm_key(tap_key, bridge_ifindex, &k);
	for (const struct tf_nat_ref *r = ix->buckets[tf_flow_key_hash(&k) & (ix->nbuckets - 1)]; r;
	     r = r->next) {
		if (memcmp(&r->vm, &k, sizeof(k)))
			continue;
		out->n_up++;
		/* The uplink's tx is what left the host: the VM's tx. */
		tf_dir_add(&out->up_tx, &r->total.v.tx);
		tf_dir_add(&out->up_rx, &r->total.v.rx);
		/* The most recently active; of those as recent, the newest entry. */
		if (!latest || r->total.v.last_seen_ns > latest->total.v.last_seen_ns ||
		    (r->total.v.last_seen_ns == latest->total.v.last_seen_ns &&
		     r->total.v.first_seen_ns > latest->total.v.first_seen_ns))
			latest = r;
	}
	if (!latest)
		return;
	out->up_key = latest->up;
	out->nat = latest->total.nat;
	out->translated = !!(out->nat.ct_status & (TF_IPS_SRC_NAT | TF_IPS_DST_NAT));
	out->lost_tx = tf_nat_lost(tap->tx.packets, out->up_tx.packets);
	out->lost_rx = tf_nat_lost(out->up_rx.packets, tap->rx.packets);
}
