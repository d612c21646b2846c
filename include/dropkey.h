/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dropped packets: types shared by bpf/drops.bpf.c and userspace.
 * Fixed-width __u* types only (clang -target bpf and gcc).
 *
 * The kernel side aggregates every drop of a monitored skb (struct
 * tf_drop_key -> struct tf_drop_value, map `drops`); userspace takes the
 * entries out each poll, attributes them to VMs and keeps the totals.
 * Optionally, a rate-limited ring buffer carries one event per drop.
 */
#ifndef TF_DROPKEY_H
#define TF_DROPKEY_H

#define TF_DROPS_MAP_DEFAULT 16384

/* The dropped packet as it was: addresses in its own direction. */
struct tf_drop_pkt {
	__u8 src_mac[6], dst_mac[6];	/* zero if the skb had no MAC header */
	__u16 ethertype;		/* host order, from skb->protocol */
	__u8 family;			/* 4, 6, 0: not IP or unreadable */
	__u8 proto;			/* IPPROTO_* */
	__u8 src_ip[16], dst_ip[16];	/* IPv4 in the first 4 bytes */
	/*
	 * Ports, host order. ICMP/ICMPv6: src_port = the identifier of a
	 * query (else 0), dst_port = type << 8 | code, the request's type
	 * for query replies (as in flow keys, include/ctkey.h).
	 */
	__u16 src_port, dst_port;
};

struct tf_drop_key {
	__u32 ifindex;			/* skb->dev at the drop; 0: none */
	__u32 iif;			/* skb->skb_iif: where it came in; 0: made here */
	__u32 reason;			/* enum skb_drop_reason of the running kernel */
	/*
	 * A forwarded packet (its route's input is ip_forward/ip6_forward):
	 * the route's output device, if it is a traced one; else 0. Tells
	 * userspace which uplink a flow was being forwarded to when none of
	 * its packets reached it.
	 */
	__u32 out_ifindex;
	__u64 location;			/* the caller's kernel text address */
	struct tf_drop_pkt pkt;
};

/*
 * Times are kernel ticks: jiffies where the kernel's CONFIG_HZ is known
 * (a load, where a precise clock reading costs some 30 ns a drop in a VM),
 * else nanoseconds of bpf_ktime_get_ns(). One reading of both clocks, when
 * the entry is made, turns ticks into times (userspace, struct
 * tf_drop_counts): true to the tick (1-10 ms). Each field is only ever
 * moved one way (first down, last up), so CPUs that race on an entry blur
 * a time by a tick at most.
 */
struct tf_drop_value {
	__u64 packets;
	__u64 bytes;			/* skb->len at the drop */
	__u64 clock_ns;			/* bpf_ktime_get_ns() when the entry was made */
	__u64 clock_ticks;		/* the tick count at that moment */
	__u64 first_ticks;		/* the first drop counted in the entry */
	__u64 last_ticks;		/* the latest */
};

/*
 * Frees of traced packets that the kfree_skb tracepoint reports with a drop
 * reason but that lose nothing (bpf/drops.bpf.c, "Not losses"): counted by
 * kind, per CPU (map drop_kept), never as drops.
 */
enum tf_kept_kind {
	TF_KEPT_RAW = 0,	/* freed with NO_SOCKET after raw sockets queued their copies */
	TF_KEPT_COPY,		/* a raw, packet or ping socket's own copy */
	TF_KEPT_NOT_HOST,	/* the host stack's copy of a frame not for it, unwanted */
	TF_KEPT_KINDS,
};

struct tf_drop_kept {
	__u64 n[TF_KEPT_KINDS];
};

/* Ring buffer record of --events (rate-limited). */
struct tf_drop_event {
	struct tf_drop_key key;
	__u64 ts_ns;
	__u32 len;
	__u32 pad;
};

/* Monitored ifindexes below this are a bitmap in .bss; above, a hash map. */
#define TF_DROP_IF_BITS 65536

/*
 * A slot of the drop tracer's per-CPU cache (map drop_cache, a
 * PERCPU_ARRAY of TF_DROP_CACHE_SLOTS; bpf/drops.bpf.c says how it works).
 * Userspace reads every CPU's slots to run tf_drop_flush only on the CPUs
 * that have drops pending (tf_drop_slot_pending).
 */
#define TF_DROP_CACHE_SLOTS 16	/* a power of 2 */

struct tf_drop_slot {
	struct tf_drop_key key;		/* all zero: never used (no drop has ifindex 0) */
	__u64 packets, bytes;		/* not in `drops` yet */
	__u64 first_ticks;		/* the first of those drops */
	__u64 last_ticks;		/* the latest */
	__u32 busy;
	__u32 pad;
};

/* Drops not in `drops` yet, or its CPU changing it: tf_drop_flush's to move. */
static inline int tf_drop_slot_pending(const struct tf_drop_slot *s)
{
	return s->busy || s->packets;
}

#endif /* TF_DROPKEY_H */
