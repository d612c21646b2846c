// SPDX-License-Identifier: GPL-2.0
/*
 * Dropped packets: the kfree_skb tracepoint, for skbs of the
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
 * reads the entries every poll and takes out those that stayed idle, so
 * the map only holds a few intervals' distinct drops. A per-CPU cache of
 * the latest keys sits in front of it (see "The cache" below). With
 * --events, a ring buffer also gets one record per drop, at most
 * tf_events_per_sec per second. Nothing is lost silently:
 * drops that found the map full, events that found the ring buffer full
 * and events over the rate are counted in .bss.
 *
 * Not every free with a drop reason loses a packet: a socket's own copy,
 * the packet itself after raw sockets took copies, the host stack's copy
 * of a frame that was not for it. Those are recognised after the device
 * test and counted apart ("Not losses" below), never as drops.
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
#include "kernel.h"

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

/*
 * How the packet's bytes are read. Kernels with BPF_FEAT_RDONLY_CAST_TO_VOID
 * (6.16+) let bpf_rdonly_cast(p, 0) make any kernel address a read-only
 * untrusted pointer: plain loads that read 0 instead of faulting, a few ns
 * each. Elsewhere each header is a bpf_probe_read_kernel() call, which
 * costs some 40 ns per call under a flood of drops (tools/bench drops.sh).
 * A CO-RE constant: the verifier keeps one of the two.
 */

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
 * Times in ticks (include/dropkey.h): bpf_ktime_get_ns() costs some 30 ns
 * a call in a VM (kvmclock), and tracing programs may not use the coarse
 * clock, but jiffies is one load. CONFIG_HZ comes from the kernel's config
 * (libbpf reads /proc/config.gz or /boot/config-*); without one it is 0
 * here, and a tick is a nanosecond of the precise clock.
 */

static __always_inline __u64 ticks_now(void)
{
	return CONFIG_HZ ? bpf_jiffies64() : bpf_ktime_get_ns();
}

/*
 * Add packets/bytes, dropped from first to last (ticks), to k's entry,
 * made if there is none: 0, or -1 if the map is full (counted).
 */
static __always_inline int add_to_entry(const struct tf_drop_key *k, __u64 packets, __u64 bytes,
					__u64 first, __u64 last)
{
	struct tf_drop_value *v = bpf_map_lookup_elem(&drops, k);

	if (!v) {
		struct tf_drop_value nv = { .clock_ns = bpf_ktime_get_ns() };

		nv.clock_ticks = CONFIG_HZ ? bpf_jiffies64() : nv.clock_ns;
		nv.first_ticks = first;
		nv.last_ticks = last;
		/* -EEXIST: another CPU made it since the lookup. */
		bpf_map_update_elem(&drops, k, &nv, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&drops, k);
		if (!v) {
			__sync_fetch_and_add(&drop_map_full, packets);
			return -1;
		}
	}
	__sync_fetch_and_add(&v->packets, packets);
	__sync_fetch_and_add(&v->bytes, bytes);
	/* Racing CPUs may store out of order: a tick, not worth a lock. */
	if ((__s64)(first - v->first_ticks) < 0)
		v->first_ticks = first;
	if ((__s64)(last - v->last_ticks) > 0)
		v->last_ticks = last;
	return 0;
}

/*
 * The cache: a flood of drops is mostly one key, and adding to its entry
 * in `drops` (hashing the 80-byte key, a helper call, two locked adds) was
 * a third of what tracing a drop cost (145 ns in situ, tools/bench
 * drops.sh; 103-116 ns with the cache). So each CPU keeps the latest keys in TF_DROP_CACHE_SLOTS
 * direct-mapped slots of its own and counts a repeat there with plain
 * adds; a slot's drops go to `drops` when another key takes the slot, and
 * every poll: userspace reads every CPU's slots and runs tf_drop_flush
 * (BPF_F_TEST_RUN_ON_CPU) on the CPUs that have drops pending before it
 * reads the map (src/oncpu.h). So no drop waits in a slot for longer than
 * a poll, and none is lost or counted twice.
 *
 * Only the slot's own CPU touches it, but tf_drop_flush runs in an IPI,
 * which can interrupt tf_kfree_skb between two instructions, and a drop
 * in a softirq can interrupt tf_drop_flush when it runs on the calling
 * CPU. `busy` is set around every change of a slot: whoever interrupts
 * finds it set and leaves the slot alone (tf_kfree_skb then counts in
 * `drops` directly). Nesting on one CPU is strictly last in, first out,
 * so a plain flag is enough; the compiler barriers keep the stores in
 * order.
 *
 * Slots keep ticks as entries do. The cache is off without CONFIG_HZ
 * (a tick would then be a clock reading per drop: nothing to save) and
 * where tf_drop_flush cannot run (userspace leaves tf_drop_cache_on 0).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TF_DROP_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct tf_drop_slot);
} drop_cache SEC(".maps");

__u32 tf_drop_cache_on = 0;

static __always_inline __u32 cache_index(const struct tf_drop_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h = 0;

	for (__u32 i = 0; i < sizeof(*k) / 8; i++)
		h ^= w[i];
	h ^= h >> 29;
	return (h * 0x9e3779b97f4a7c15ULL) >> 60 & (TF_DROP_CACHE_SLOTS - 1);
}

static __always_inline bool same_drop_key(const struct tf_drop_key *a, const struct tf_drop_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 d = 0;

	for (__u32 i = 0; i < sizeof(*a) / 8; i++)
		d |= x[i] ^ y[i];
	return !d;
}

/* Move a slot's drops into `drops` (the caller set busy). */
static __noinline void flush_slot(struct tf_drop_slot *s)
{
	if (!s->packets)
		return;
	add_to_entry(&s->key, s->packets, s->bytes, s->first_ticks, s->last_ticks);
	s->packets = 0;
	s->bytes = 0;
}

/*
 * Count the drop in this CPU's cache: true, or false if its slot is busy
 * (the caller counts it in `drops`).
 */
static __always_inline bool cache_drop(const struct tf_drop_key *k, __u32 len)
{
	__u32 idx = cache_index(k);
	struct tf_drop_slot *s = bpf_map_lookup_elem(&drop_cache, &idx);
	__u64 now = ticks_now();

	if (!s || s->busy)
		return false;
	s->busy = 1;
	barrier();
	if (!same_drop_key(&s->key, k)) {
		flush_slot(s);
		s->key = *k;
	}
	if (!s->packets)
		s->first_ticks = now;
	s->packets++;
	s->bytes += len;
	s->last_ticks = now;
	barrier();
	s->busy = 0;
	return true;
}

static long flush_index(__u32 i, void *ctx __attribute__((unused)))
{
	struct tf_drop_slot *s = bpf_map_lookup_elem(&drop_cache, &i);

	if (!s || s->busy || !s->packets)
		return 0;
	s->busy = 1;
	barrier();
	flush_slot(s);
	barrier();
	s->busy = 0;
	return 0;
}

/* Userspace runs this every poll, and at the end, on each CPU with drops pending. */
SEC("raw_tp")
int tf_drop_flush(void *ctx __attribute__((unused)))
{
	/* bpf_loop (5.17+, as drop reasons): a plain loop around a call reads as endless. */
	bpf_loop(TF_DROP_CACHE_SLOTS, flush_index, NULL, 0);
	return 0;
}

/*
 * Not losses. The tracepoint fires when an skb's last reference goes with
 * a reason other than SKB_CONSUMED; for some traced skbs that loses
 * nothing, because the packet reached a socket or was never the host's:
 *
 *  - A socket's own copy (TF_KEPT_COPY). Raw sockets get a clone of each
 *    packet (raw_v4_input, ipv6_raw_deliver), packet sockets a clone or a
 *    shared reference (packet_rcv, tpacket_rcv; dev_queue_xmit_nit clones
 *    what a device sends), ping sockets a clone (ping_rcv); the packet
 *    goes on without it. When the socket cannot take its copy (a filter,
 *    a full buffer or ring), the copy is freed with a reason, and where it
 *    is the last reference (the egress path, ping_rcv, raw delivery) the
 *    tracepoint sees it with the traced device. Recognised by the socket
 *    the tracepoint names as receiving it (rx_sk, 6.12+) and by
 *    PACKET_SOCK_ERROR, a reason only packet sockets give. Once queued, a
 *    copy has no device any more (__sock_queue_rcv_skb, packet_rcv clear
 *    skb->dev), so a socket closed with unread copies never passes the
 *    device test.
 *
 *  - Delivered to raw sockets (TF_KEPT_RAW). The packet itself goes on
 *    from raw delivery to its protocol, which finds no socket of its own
 *    (ping_rcv for an echo reply to a raw-socket ping, UDP or TCP to a
 *    port only a raw socket listens on) and frees it with NO_SOCKET while
 *    the raw socket's clone is queued: the packet was received. Told by
 *    skb->cloned, which skb_clone sets on the original for good: the
 *    clone's reader may have taken and freed it already (it runs on
 *    another CPU while the protocol looks up its socket and sends its
 *    ICMP error), so how many skbs hold the data now proves nothing. Its
 *    filter refuses before the clone is made; a clone it has no room for
 *    is a socket's copy, above. The other
 *    takers of a clone of a packet the host is receiving are a packet
 *    socket without a ring (libpcap's rings copy and let go) and a mirror
 *    (tc mirred, nft dup): that packet reached a reader too, and its
 *    NO_SOCKET counts as delivered all the same. Nothing is hooked on the
 *    way in: a hook on every socket's wakeup would cost the host's own
 *    traffic and every packet to a VM (tun wakes its reader the same way).
 *
 *  - Not for the host (TF_KEPT_NOT_HOST). A bridge passes the host stack
 *    a copy of every broadcast, multicast and flooded frame, and of every
 *    frame while promiscuous (tcpdump on it without -p): the frame goes on
 *    to its ports. The host stack discards the copy when nothing on the
 *    host wants it: OTHERHOST (ip_rcv_core, ipv6_rcv: not addressed to the
 *    host), NOT_SPECIFIED (UDP broadcast or multicast without a listener,
 *    which the kernel counts as IgnoredMulti, not as an error; multicast
 *    of a group the host has not joined), UNHANDLED_PROTO (no protocol
 *    handler), INVALID_PROTO (ICMP to a broadcast address the host ignores,
 *    icmp_echo_ignore_broadcasts), IPV6_NDISC_NS_OTHERHOST. Only for frames
 *    not addressed to the host (pkt_type broadcast, multicast, otherhost)
 *    on a device that is no bridge port: on a port (a VM's tap) the frame
 *    is the bridge's to forward, and its drop is the frame's. Any other
 *    reason (a firewall rule, a bad checksum) still counts.
 *
 * All are tested only after the device test and the namespace test, and
 * cost a few loads per drop.
 */

#define TF_AF_INET 2
#define TF_AF_INET6 10
#define TF_AF_PACKET 17
/* skb->pkt_type (uapi linux/if_packet.h) */
#define TF_PACKET_BROADCAST 1
#define TF_PACKET_MULTICAST 2
#define TF_PACKET_OTHERHOST 3

/* rx_sk, the tracepoint's 4th argument since 6.12; set by userspace from its BTF prototype. */
const volatile bool tf_has_rx_sk = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tf_drop_kept);
} drop_kept SEC(".maps");

/* Per CPU: a promiscuous bridge can make one of these per frame. */
static __always_inline void count_kept(enum tf_kept_kind kind)
{
	__u32 zero = 0;
	struct tf_drop_kept *c = bpf_map_lookup_elem(&drop_kept, &zero);

	if (c && kind < TF_KEPT_KINDS)
		c->n[kind]++;
}

static __always_inline bool reason_is(__u32 reason, bool exists, __u32 value)
{
	return exists && reason == value;
}

#define REASON_IS(reason, name)									\
	reason_is(reason, bpf_core_enum_value_exists(enum skb_drop_reason, name),		\
		  bpf_core_enum_value(enum skb_drop_reason, name))

/* Is sk a socket that only ever gets copies (raw, packet, ping)? */
static __always_inline bool copy_socket(struct sock *sk, bool direct)
{
	__u16 family, type, proto;

	if (!sk)
		return false;
	family = RD(direct, sk, __sk_common.skc_family);
	if (family == TF_AF_PACKET)
		return true;
	if (family != TF_AF_INET && family != TF_AF_INET6)
		return false;
	type = RD(direct, sk, sk_type);
	proto = RD(direct, sk, sk_protocol);
	return type == SOCK_RAW ||
	       (type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6));
}

/* The NO_SOCKET of a packet a raw socket took a clone of (see above): received. */
static __always_inline bool raw_delivered(struct sk_buff *skb, bool direct)
{
	return direct ? BPF_CORE_READ_BITFIELD(skb, cloned)
		      : BPF_CORE_READ_BITFIELD_PROBED(skb, cloned);
}

/*
 * The host stack's copy of a frame not addressed to it, which nothing on
 * the host wanted (see above). dev is skb->dev.
 */
static __always_inline bool not_for_host(struct sk_buff *skb, struct net_device *dev,
					 bool direct, __u32 reason)
{
	__u8 type = direct ? BPF_CORE_READ_BITFIELD(skb, pkt_type)
			   : BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);
	__u64 flags;

	if (type != TF_PACKET_BROADCAST && type != TF_PACKET_MULTICAST &&
	    type != TF_PACKET_OTHERHOST)
		return false;
	if (!REASON_IS(reason, SKB_DROP_REASON_OTHERHOST) &&
	    !REASON_IS(reason, SKB_DROP_REASON_NOT_SPECIFIED) &&
	    !REASON_IS(reason, SKB_DROP_REASON_UNHANDLED_PROTO) &&
	    !REASON_IS(reason, SKB_DROP_REASON_INVALID_PROTO) &&
	    !REASON_IS(reason, SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST))
		return false;
	flags = direct ? BPF_CORE_READ_BITFIELD(dev, priv_flags)
		       : BPF_CORE_READ_BITFIELD_PROBED(dev, priv_flags);
	return !(flags & bpf_core_enum_value(enum netdev_priv_flags, IFF_BRIDGE_PORT));
}

/* Which kind of not-a-loss a free of skb is, before its headers are read; -1: none. */
static __always_inline int kept_kind(struct sk_buff *skb, struct net_device *dev, bool direct,
				     struct sock *rx_sk, __u32 reason)
{
	if (REASON_IS(reason, SKB_DROP_REASON_PACKET_SOCK_ERROR) || copy_socket(rx_sk, direct))
		return TF_KEPT_COPY;
	if (not_for_host(skb, dev, direct, reason))
		return TF_KEPT_NOT_HOST;
	return -1;
}

/*
 * Forwarding: a packet dropped while the host forwarded it (a FORWARD
 * rule, its TTL, its output queue) has a route whose input is ip_forward
 * or ip6_forward, and whose device is where it was going. Recorded when
 * that device is traced (an uplink), so that a flow dropped whole on its
 * way out still shows where it was going. Typeless and weak: compared by
 * address only, 0 where absent (IPv6 as a module that is not loaded).
 */
extern const void ip_forward __ksym __weak;
extern const void ip6_forward __ksym __weak;

/* skb->_skb_refdst: the dst_entry, its low bit SKB_DST_NOREF. */
#define TF_SKB_DST_PTRMASK (~1UL)

/*
 * Faulting loads through a read-only pointer (bpf_rdonly_cast, 6.2+, which
 * the NAT join's translations need too): no helper call. Without it, three
 * bpf_probe_read_kernel() calls on every drop would cost more than the
 * rest of the drop: not read there.
 */
static __always_inline __u32 fwd_out_ifindex(struct sk_buff *skb, bool direct)
{
	unsigned long refdst = RD(direct, skb, _skb_refdst) & TF_SKB_DST_PTRMASK;
	unsigned long input;
	struct net_device *out;
	struct dst_entry *dst;

	if (!refdst || !bpf_ksym_exists(bpf_rdonly_cast))
		return 0;
	dst = bpf_rdonly_cast((void *)refdst, bpf_core_type_id_kernel(struct dst_entry));
	input = (unsigned long)dst->input;
	if (!input || (input != (unsigned long)&ip_forward && input != (unsigned long)&ip6_forward))
		return 0;
	out = dst->dev;
	if (!out || !monitored(out->ifindex))
		return 0;
	return out->ifindex;
}

static __always_inline int on_drop(struct sk_buff *skb, bool direct, void *location,
				   __u32 reason, struct sock *rx_sk)
{
	struct tf_drop_key k = {};
	struct net_device *dev;
	__u32 ifindex = 0, iif, len;
	int kept;
	__u64 now;

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
	kept = kept_kind(skb, dev, direct, rx_sk, reason);
	if (kept < 0 && REASON_IS(reason, SKB_DROP_REASON_NO_SOCKET) && raw_delivered(skb, direct))
		kept = TF_KEPT_RAW;
	if (kept >= 0) {
		count_kept(kept);
		return 0;
	}

	k.ifindex = ifindex;
	k.iif = iif;
	k.reason = reason;
	k.location = (__u64)location;
	read_pkt(skb, direct, &k.pkt);
	k.out_ifindex = fwd_out_ifindex(skb, direct);
	len = RD(direct, skb, len);
	if (tf_drop_cache_on && CONFIG_HZ && cache_drop(&k, len))
		goto event;
	now = ticks_now();
	add_to_entry(&k, 1, len, now, now);
event:
	if (tf_events_per_sec)
		emit_event(&k, bpf_ktime_get_ns(), len);
	return 0;
}

/*
 * Arguments: skb, location, reason, and since 6.12 rx_sk. ctx[3] is read
 * only where the prototype has it (the verifier drops the dead branch),
 * through a volatile load the compiler cannot hoist out of the test.
 */
static __always_inline struct sock *rx_sk_of(unsigned long long *ctx)
{
	if (!tf_has_rx_sk)
		return NULL;
	return (struct sock *)*(volatile unsigned long long *)&ctx[3];
}

SEC("tp_btf/kfree_skb")
int tf_kfree_skb(unsigned long long *ctx)
{
	return on_drop((struct sk_buff *)ctx[0], true, (void *)ctx[1], (__u32)ctx[2],
		       rx_sk_of(ctx));
}

SEC("raw_tp/kfree_skb")
int tf_kfree_skb_raw(unsigned long long *ctx)
{
	return on_drop((struct sk_buff *)ctx[0], false, (void *)ctx[1], (__u32)ctx[2],
		       rx_sk_of(ctx));
}
