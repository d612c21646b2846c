// SPDX-License-Identifier: GPL-2.0
/*
 * Dropped packets ([4/8]): the kfree_skb tracepoint, for skbs of the
 * interfaces tapflow traces.
 *
 * Every freed skb that was dropped (not SKB_NOT_DROPPED_YET nor
 * SKB_CONSUMED, numbered as the running kernel numbers them) passes one
 * cheap test first: is skb->dev, or the device it came in
 * on (skb->skb_iif), one of ours? A bitmap in .bss answers for ifindexes
 * below 65536 without a helper call, so the drops of the rest of the host
 * cost a few loads. Ifindexes are per network namespace: a candidate must
 * also be in the namespace tapflow runs in (its net_cookie).
 *
 * The drop is then aggregated in `drops` by (device, input device, reason,
 * caller location, the packet's MACs, addresses and ports); userspace
 * takes the entries out every poll, so the map only holds one interval's
 * distinct drops. With --events, a ring buffer also gets one record per
 * drop, at most tf_events_per_sec per second. Nothing is lost silently:
 * drops that found the map full, events that found the ring buffer full
 * and events over the rate are counted in .bss.
 *
 * Two entry points, the same code: tp_btf/kfree_skb (BTF-typed arguments,
 * 5.5+) and raw_tp/kfree_skb for kernels or configurations without it;
 * userspace loads the first that works. The reason argument exists since
 * 5.17; userspace refuses older kernels (no enum skb_drop_reason in BTF)
 * with a clear message.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tapflow.h"
#include "ctkey.h"
#include "dropkey.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TF_DROPS_MAP_DEFAULT);
	__type(key, struct tf_drop_key);
	__type(value, struct tf_drop_value);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} drop_events SEC(".maps");

/* Monitored ifindexes >= TF_DROP_IF_BITS (rare: long-lived hosts with churn). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} drop_ifaces_big SEC(".maps");

/* Written by userspace before attaching. */
__u64 tf_drop_if_bits[TF_DROP_IF_BITS / 64] = {};
__u64 tf_netns_cookie = 0;
/* 0: no events (the default); else the most per second. */
const volatile __u32 tf_events_per_sec = 0;

/* What could not be recorded (read by userspace, shown in the summary). */
__u64 drop_map_full = 0;	/* drops of ours not aggregated: map full */
__u64 events_lost = 0;		/* events that found the ring buffer full */
__u64 events_suppressed = 0;	/* events over tf_events_per_sec */

/* The event rate window: races between CPUs only blur the limit a little. */
__u64 ev_window_ns = 0;
__u32 ev_in_window = 0;

static __always_inline bool monitored(__u32 ifindex)
{
	if (!ifindex)
		return false;
	if (ifindex < TF_DROP_IF_BITS)
		return tf_drop_if_bits[ifindex / 64] & (1ULL << (ifindex % 64));
	return bpf_map_lookup_elem(&drop_ifaces_big, &ifindex) != NULL;
}

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/*
 * How the packet's bytes are read. Kernels with BPF_FEAT_RDONLY_CAST_TO_VOID
 * (6.16+) let bpf_rdonly_cast(p, 0) make any kernel address a read-only
 * untrusted pointer: plain loads that read 0 instead of faulting, a few ns
 * each. Elsewhere each header is a bpf_probe_read_kernel() call, which
 * costs some 40 ns per call under a flood of drops (tools/bench drops.sh).
 * A CO-RE constant: the verifier keeps one of the two.
 */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym __weak;

static __always_inline bool pkt_loads(void)
{
	return bpf_core_enum_value_exists(enum bpf_features, BPF_FEAT_RDONLY_CAST_TO_VOID) &&
	       bpf_ksym_exists(bpf_rdonly_cast);
}

/*
 * Copy the header *dst from the packet at p: 0, or -1 if unreadable.
 * With loads, a struct copy through the header's own type, so that the
 * compiler reads whole words rather than bytes.
 */
#define pkt_read(dst, p, loads)								\
	((loads) ? (*(dst) = *(const typeof(*(dst)) *)(p), 0)				\
		 : (bpf_probe_read_kernel((dst), sizeof(*(dst)), (p)) ? -1 : 0))

static __always_inline void read_l4(const unsigned char *p, bool loads, struct tf_drop_pkt *pkt)
{
	switch (pkt->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP: {
		struct tf_udphdr uh;

		if (pkt_read(&uh, p, loads))
			return;
		pkt->src_port = bpf_ntohs(uh.source);
		pkt->dst_port = bpf_ntohs(uh.dest);
		return;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		struct tf_icmphdr ih;

		if ((pkt->proto == IPPROTO_ICMPV6) != (pkt->family == TF_FAM_IPV6) ||
		    pkt_read(&ih, p, loads))
			return;
		tf_icmp_key_ports(ih.type, ih.code, bpf_ntohs(ih.id), pkt->family == TF_FAM_IPV6,
				  &pkt->src_port, &pkt->dst_port);
		return;
	}
	}
}

/*
 * A field of a kernel object: a plain load where the verifier knows the
 * pointer's type (tp_btf: the arguments are BTF pointers, loads are
 * fault-safe), else bpf_probe_read_kernel() (raw_tp). `direct` is a
 * constant of each inlined copy: the other branch is compiled away.
 */
#define RD(direct, p, field) ((direct) ? (p)->field : BPF_CORE_READ(p, field))

/*
 * The packet's MACs, addresses and ports, as far as its headers are in
 * the skb's linear area (up to skb->tail): a header beyond it, or one that
 * cannot be read, ends the parse with what was read so far.
 */
static __always_inline void read_pkt(struct sk_buff *skb, bool direct, struct tf_drop_pkt *pkt)
{
	unsigned char *head = RD(direct, skb, head);
	__u16 mac = RD(direct, skb, mac_header);
	__u16 net = RD(direct, skb, network_header);
	__u16 proto = bpf_ntohs(RD(direct, skb, protocol));
	__u32 tail = RD(direct, skb, tail);	/* an offset from head on 64-bit kernels */
	bool loads = pkt_loads();
	const unsigned char *h = loads ? bpf_rdonly_cast(head, 0) : head;

	pkt->ethertype = proto;
	/* mac_header is ~0 when unset; an Ethernet header ends where IP starts. */
	if (mac != (__u16)~0U && net >= mac + sizeof(struct tf_ethhdr)) {
		struct tf_ethhdr eth;

		if (!pkt_read(&eth, h + mac, loads)) {
			__builtin_memcpy(pkt->src_mac, eth.src, 6);
			__builtin_memcpy(pkt->dst_mac, eth.dst, 6);
		}
	}
	if (proto == ETH_P_IP) {
		struct tf_iphdr iph;
		__u32 ihl;

		if (net + sizeof(iph) > tail || pkt_read(&iph, h + net, loads) ||
		    (iph.ver_ihl >> 4) != 4)
			return;
		ihl = (iph.ver_ihl & 0xf) * 4;
		if (ihl < sizeof(iph))
			return;
		pkt->family = TF_FAM_IPV4;
		pkt->proto = iph.protocol;
		__builtin_memcpy(pkt->src_ip, &iph.saddr, 4);
		__builtin_memcpy(pkt->dst_ip, &iph.daddr, 4);
		if (!(bpf_ntohs(iph.frag_off) & 0x1fff) && net + ihl + 8 <= tail)
			read_l4(h + net + ihl, loads, pkt);
	} else if (proto == ETH_P_IPV6) {
		struct tf_ipv6hdr ip6;

		if (net + sizeof(ip6) > tail || pkt_read(&ip6, h + net, loads) ||
		    (bpf_ntohl(ip6.ver_tc_flow) >> 28) != 6)
			return;
		pkt->family = TF_FAM_IPV6;
		pkt->proto = ip6.nexthdr;	/* extension headers are not followed */
		__builtin_memcpy(pkt->src_ip, ip6.saddr, 16);
		__builtin_memcpy(pkt->dst_ip, ip6.daddr, 16);
		if (net + sizeof(ip6) + 8 <= tail)
			read_l4(h + net + sizeof(ip6), loads, pkt);
	}
}

static __always_inline void emit_event(const struct tf_drop_key *k, __u64 now, __u32 len)
{
	struct tf_drop_event *e;

	if (now - ev_window_ns >= 1000000000ULL) {
		ev_window_ns = now;
		ev_in_window = 0;
	}
	if (__sync_fetch_and_add(&ev_in_window, 1) >= tf_events_per_sec) {
		__sync_fetch_and_add(&events_suppressed, 1);
		return;
	}
	e = bpf_ringbuf_reserve(&drop_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return;
	}
	e->key = *k;
	e->ts_ns = now;
	e->len = len;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

/*
 * Last seen without a clock read per drop: bpf_ktime_get_ns() costs some
 * 30 ns a call in a VM (kvmclock), and tracing programs may not use the
 * coarse clock. An entry takes the precise time when it is made and counts
 * in jiffies (one load) from there: last_ns = first_ns + ticks since *
 * ns per tick, true to the tick (1-10 ms), as CLOCK_MONOTONIC_COARSE is.
 * CONFIG_HZ comes from the kernel's config (libbpf reads /proc/config.gz
 * or /boot/config-*); without one, 0 here, the precise clock every drop.
 */
extern unsigned int CONFIG_HZ __kconfig __weak;

static __always_inline __u64 drop_last_ns(const struct tf_drop_value *v)
{
	if (!CONFIG_HZ)
		return bpf_ktime_get_ns();
	return v->first_ns + (bpf_jiffies64() - v->first_jiffies) * (1000000000ULL / CONFIG_HZ);
}

static __always_inline int on_drop(struct sk_buff *skb, bool direct, void *location,
				   __u32 reason)
{
	struct tf_drop_key k = {};
	struct tf_drop_value *v;
	struct net_device *dev;
	__u32 ifindex = 0, iif, len;

	/* Not drops; numbered by the running kernel (CO-RE enum relocations). */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_NOT_DROPPED_YET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET))
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	dev = RD(direct, skb, dev);
	if (dev)
		ifindex = RD(direct, dev, ifindex);
	iif = RD(direct, skb, skb_iif);
	if (!monitored(ifindex) && !monitored(iif))
		return 0;
	/* Same numbers in another namespace are other devices (cookie 0: unknown). */
	if (!dev)
		return 0;
	if (tf_netns_cookie && bpf_core_field_exists(struct net, net_cookie)) {
		struct net *net = RD(direct, dev, nd_net.net);

		if (!net || RD(direct, net, net_cookie) != tf_netns_cookie)
			return 0;
	}

	k.ifindex = ifindex;
	k.iif = iif;
	k.reason = reason;
	k.location = (__u64)location;
	read_pkt(skb, direct, &k.pkt);
	len = RD(direct, skb, len);
	v = bpf_map_lookup_elem(&drops, &k);
	if (!v) {
		struct tf_drop_value nv = {
			.first_ns = bpf_ktime_get_ns(),
			.first_jiffies = bpf_jiffies64(),
		};

		nv.last_ns = nv.first_ns;

		if (bpf_map_update_elem(&drops, &k, &nv, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&drops, &k)) {
			__sync_fetch_and_add(&drop_map_full, 1);
			goto event;
		}
		v = bpf_map_lookup_elem(&drops, &k);
		if (!v) {
			__sync_fetch_and_add(&drop_map_full, 1);
			goto event;
		}
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
	v->last_ns = drop_last_ns(v);
event:
	if (tf_events_per_sec)
		emit_event(&k, bpf_ktime_get_ns(), len);
	return 0;
}

/* Arguments: skb, location, reason (and rx_sk since 6.12: not needed). */
SEC("tp_btf/kfree_skb")
int tf_kfree_skb(unsigned long long *ctx)
{
	return on_drop((struct sk_buff *)ctx[0], true, (void *)ctx[1], (__u32)ctx[2]);
}

SEC("raw_tp/kfree_skb")
int tf_kfree_skb_raw(unsigned long long *ctx)
{
	return on_drop((struct sk_buff *)ctx[0], false, (void *)ctx[1], (__u32)ctx[2]);
}
