// SPDX-License-Identifier: GPL-2.0
/*
 * TC programs attached to VM taps, their bridges and the NAT uplink: count
 * packets, bytes and GSO segments per interface and TC direction.
 *
 * They never change a packet's fate: every path returns TC_ACT_UNSPEC, which
 * is TCX_NEXT under TCX and "no opinion, continue" for cls_bpf, so other
 * programs and filters on the same device run as if tapflow were not there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tapflow.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_UNSPEC (-1)

/*
 * Per-CPU so that the hot path writes only to this CPU's cache lines; the
 * reader sums the CPUs. Userspace creates the entry of every interface
 * before it attaches, so the insert below only runs in a race (an interface
 * renumbered between inventory and attach) and is counted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TF_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct tf_if_counters);
} if_counters SEC(".maps");

/* What could not be recorded: read by userspace and shown in the summary. */
__u64 map_full = 0;

static __always_inline int count_skb(struct __sk_buff *skb, int dir)
{
	__u32 ifindex = skb->ifindex;
	struct tf_if_counters *c;
	struct tf_dir_counters *d;
	__u32 segs;

	c = bpf_map_lookup_elem(&if_counters, &ifindex);
	if (!c) {
		struct tf_if_counters zero = {};

		if (bpf_map_update_elem(&if_counters, &ifindex, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&if_counters, &ifindex)) {
			__sync_fetch_and_add(&map_full, 1);
			return TC_ACT_UNSPEC;
		}
		c = bpf_map_lookup_elem(&if_counters, &ifindex);
		if (!c)
			return TC_ACT_UNSPEC;
	}
	d = &c->dir[dir & 1];
	segs = skb->gso_segs;
	d->packets += 1;
	d->bytes += skb->len;
	d->segs += segs ? segs : 1;
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tf_ingress(struct __sk_buff *skb)
{
	return count_skb(skb, TF_HOOK_INGRESS);
}

SEC("tc")
int tf_egress(struct __sk_buff *skb)
{
	return count_skb(skb, TF_HOOK_EGRESS);
}
