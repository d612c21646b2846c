// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static uint64_t key_hash(const struct tf_flow_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void tf_nat_index_free(struct tf_nat_index *ix)
{
	free(ix->buckets);
	free(ix->refs);
	memset(ix, 0, sizeof(*ix));
}

int tf_nat_index_build(struct tf_nat_index *ix, const struct tf_flows *fl)
{
	struct tf_flow **all;
	long n = tf_flows_collect(fl, 0, &all);
	size_t nb = 64;

	tf_nat_index_free(ix);
	if (n < 0)
		return -ENOMEM;
	while (nb < (size_t)n)
		nb *= 2;
	ix->buckets = calloc(nb, sizeof(*ix->buckets));
	ix->refs = calloc(n ? (size_t)n : 1, sizeof(*ix->refs));
	if (!ix->buckets || !ix->refs) {
		free(all);
		tf_nat_index_free(ix);
		return -ENOMEM;
	}
	ix->nbuckets = nb;
	for (long i = 0; i < n; i++) {
		struct tf_nat_ref *r = &ix->refs[ix->n];
		size_t h;

		tf_flow_total(all[i], &r->total);
		/* Uplink flows whose VM side is known (not an ICMP error's). */
		if (!(r->total.nat.flags & TF_NAT_UPLINK) || (r->total.nat.flags & TF_NAT_RELATED))
			continue;
		r->vm = r->total.nat.vm;
		r->up = all[i];
		h = key_hash(&r->vm) & (nb - 1);
		r->next = ix->buckets[h];
		ix->buckets[h] = r;
		ix->n++;
	}
	free(all);
	return 0;
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
	for (const struct tf_nat_ref *r = ix->buckets[key_hash(&k) & (ix->nbuckets - 1)]; r;
	     r = r->next) {
		if (memcmp(&r->vm, &k, sizeof(k)))
			continue;
		out->n_up++;
		/* The uplink's tx is what left the host: the VM's tx. */
		tf_dir_add(&out->up_tx, &r->total.tx);
		tf_dir_add(&out->up_rx, &r->total.rx);
		if (!latest || r->total.last_seen_ns > latest->total.last_seen_ns)
			latest = r;
	}
	if (!latest)
		return;
	out->up_key = latest->up->key;
	out->nat = latest->total.nat;
	out->translated = !!(out->nat.ct_status & (TF_IPS_SRC_NAT | TF_IPS_DST_NAT));
	out->lost_tx = tf_nat_lost(tap->tx.packets, out->up_tx.packets);
	out->lost_rx = tf_nat_lost(out->up_rx.packets, tap->rx.packets);
}
