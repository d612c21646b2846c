// SPDX-License-Identifier: GPL-2.0
/*
 * TC programs attached to VM taps, their bridges and the NAT uplink.
 *
 * tf_ingress/tf_egress (bridges, uplinks, --iface): count packets, bytes
 * and GSO segments per interface and TC direction.
 *
 * tf_tap_ingress/tf_tap_egress (VM taps): the same counters, and per-flow
 * accounting in the VM's point of view. On a tap, TC ingress is what the
 * VM sent (tx: local = source) and TC egress what is delivered to it (rx:
 * local = destination), so both directions of a connection land in one
 * flow entry. Every frame counted in if_counters is also counted exactly
 * once in a flow, in its tap's overflow (flow map full) or in its tap's
 * unparsed (truncated/malformed headers): per tap and direction,
 *   sum(flows) + overflow + unparsed == if_counters   (packets and bytes).
 *
 * They never change a packet's fate nor its data: every path returns
 * TC_ACT_UNSPEC, which is TCX_NEXT under TCX and "no opinion, continue" for
 * cls_bpf, so other programs and filters on the same device run as if
 * tapflow were not there; headers are copied with bpf_skb_load_bytes(),
 * never pulled.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tapflow.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_UNSPEC (-1)
#define EEXIST 17

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

/*
 * The flow map: a shared hash with atomic adds, not a per-CPU hash, chosen
 * by measurement (tools/bench/flow_cost and prog_cost; 2-vCPU VM, kernel
 * 6.18, 65536 entries, 64-byte frames; details in tools/bench/README.md):
 *
 *                                        hash (atomics)   per-CPU hash
 *   tf_tap_ingress, hit, 1 CPU             123-147 ns       123-146 ns
 *   same flow from both CPUs at once       144-175 ns       136-140 ns
 *   own flow per CPU                       132-142 ns       136-138 ns
 *   map full, new flow (overflow path)     234-287 ns       232-259 ns
 *   memory (memlock), 2 CPUs                 12.1 MB          17.3 MB
 *     grows per possible CPU by               0              4.7 MB
 *     (65536 x 72-byte value): 64 CPUs ~310 MB, 256 CPUs ~1.2 GB
 *   userspace batch read of a full map      28-34 ms         36-50 ms
 *     bytes copied per read                  7.9 MB      48 + 72 x ncpus B/flow
 *                                                         (64 CPUs: 305 MB)
 *
 * The hot path costs the same either way (a flow's packets of one
 * direction come from one queue, so one CPU; contention only when both
 * directions or several queues hit one flow at once: up to +35 ns here).
 * What differs is what a hypervisor with 64-256 CPUs pays: a per-CPU map
 * would take hundreds of MB to GBs of kernel memory, and the collector
 * would copy and sum ncpus values per flow every interval to read and
 * expire it. Shared: one value per flow; packets/bytes/segs are atomic
 * adds, TCP flags an atomic OR only when a new bit shows up, last_seen a
 * plain store (racing CPUs may store a few ns out of order).
 *
 * Build with -DTF_FLOWS_PERCPU for the per-CPU variant (the bench does).
 * Userspace sizes it with bpf_map__set_max_entries() before load; it reads
 * and deletes (expires) entries. Preallocated: an insert never allocates.
 */
#ifdef TF_FLOWS_PERCPU
#define TF_FLOWS_MAP_TYPE BPF_MAP_TYPE_PERCPU_HASH
#define flow_add(p, v) (*(p) += (v))
#else
#define TF_FLOWS_MAP_TYPE BPF_MAP_TYPE_HASH
#define flow_add(p, v) __sync_fetch_and_add((p), (v))
#endif

struct {
	__uint(type, TF_FLOWS_MAP_TYPE);
	__uint(max_entries, TF_FLOWS_DEFAULT);
	__type(key, struct tf_flow_key);
	__type(value, struct tf_flow_value);
} flows SEC(".maps");

/*
 * What is on a tap but in no flow: per-CPU like if_counters, and like it
 * created by userspace per tap before attaching. Only written on the rare
 * paths (map full, parse error), so the hot path never looks it up.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TF_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct tf_tap_aggr);
} tap_aggr SEC(".maps");

/*
 * What could not be recorded: read by userspace and shown in the summary.
 *   map_full:      packets not counted at all because their interface had
 *                  no if_counters entry and none could be created (or, on a
 *                  tap, no tap_aggr entry when one was needed).
 *   flow_map_full: packets of new flows that found the flow map full; they
 *                  are in their tap's tap_aggr overflow_rx/tx instead.
 *   parse_errors:  truncated or malformed frames on taps; they are in their
 *                  tap's tap_aggr unparsed_rx/tx instead of a flow.
 */
__u64 map_full = 0;
__u64 flow_map_full = 0;
__u64 parse_errors = 0;

static __always_inline __u32 skb_segs(struct __sk_buff *skb)
{
	__u32 segs = skb->gso_segs;

	return segs ? segs : 1;
}

/* Count the skb in if_counters; false if it could not be (map_full). */
static __always_inline bool count_skb(__u32 ifindex, int dir, __u32 len, __u32 segs)
{
	struct tf_if_counters *c;
	struct tf_dir_counters *d;

	c = bpf_map_lookup_elem(&if_counters, &ifindex);
	if (!c) {
		struct tf_if_counters zero = {};

		if (bpf_map_update_elem(&if_counters, &ifindex, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&if_counters, &ifindex)) {
			__sync_fetch_and_add(&map_full, 1);
			return false;
		}
		c = bpf_map_lookup_elem(&if_counters, &ifindex);
		if (!c)
			return false;
	}
	d = &c->dir[dir & 1];
	d->packets += 1;
	d->bytes += len;
	d->segs += segs;
	return true;
}

enum tf_aggr_kind { TF_AGGR_OVERFLOW, TF_AGGR_UNPARSED };

/* A packet that is in no flow: into its tap's overflow or unparsed. */
static __always_inline void count_aggr(__u32 ifindex, int kind, bool tx, __u32 len, __u32 segs)
{
	struct tf_tap_aggr *a;
	struct tf_dir_counters *d;

	a = bpf_map_lookup_elem(&tap_aggr, &ifindex);
	if (!a) {
		struct tf_tap_aggr zero = {};

		bpf_map_update_elem(&tap_aggr, &ifindex, &zero, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&tap_aggr, &ifindex);
		if (!a) {
			__sync_fetch_and_add(&map_full, 1);
			return;
		}
	}
	if (kind == TF_AGGR_OVERFLOW)
		d = tx ? &a->overflow_tx : &a->overflow_rx;
	else
		d = tx ? &a->unparsed_tx : &a->unparsed_rx;
	d->packets += 1;
	d->bytes += len;
	d->segs += segs;
}

/* Ports of the VM's side first: source on tx, destination on rx. */
static __always_inline void key_ports(struct tf_flow_key *k, bool tx, __be16 src, __be16 dst)
{
	k->local_port = bpf_ntohs(tx ? src : dst);
	k->remote_port = bpf_ntohs(tx ? dst : src);
}

/*
 * ICMP/ICMPv6, keyed as conntrack does: a query and its reply share the
 * request's type; errors and the rest have no identifier.
 */
static __always_inline void key_icmp(struct tf_flow_key *k, const struct tf_icmphdr *ih, bool v6)
{
	int req = -1;

	if (!v6) {
		switch (ih->type) {
		case 8: case 0: req = 8; break;		/* echo */
		case 13: case 14: req = 13; break;	/* timestamp */
		case 15: case 16: req = 15; break;	/* information */
		case 17: case 18: req = 17; break;	/* address mask */
		}
	} else {
		switch (ih->type) {
		case 128: case 129: req = 128; break;	/* echo */
		case 139: case 140: req = 139; break;	/* node information */
		}
	}
	if (req >= 0) {
		k->local_port = bpf_ntohs(ih->id);
		k->remote_port = (__u16)(req << 8 | ih->code);
	} else {
		k->local_port = 0;
		k->remote_port = (__u16)(ih->type << 8 | ih->code);
	}
}

/*
 * The L4 part of the key (ports, ICMP type/code/id, TCP flags) of an IP
 * packet whose upper-layer header is at the cursor. 0, or -1 if that
 * header is truncated or malformed.
 */
static __always_inline int key_l4(struct hdr_cursor *c, struct tf_flow_key *k, bool tx,
				  __u32 *tcp_flags)
{
	struct tf_icmphdr ibuf, *ih;
	struct tf_tcphdr tbuf, *th;
	struct tf_udphdr ubuf, *uh;
	__u32 min_len;

	switch (k->proto) {
	case IPPROTO_TCP:
		th = parse_tcphdr(c, &tbuf);
		if (!th)
			return -1;
		key_ports(k, tx, th->source, th->dest);
		*tcp_flags = th->flags;
		return 0;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		min_len = 8;
		break;
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		min_len = 12;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* ICMP in IPv6 or ICMPv6 in IPv4: no identifier to trust. */
		if ((k->proto == IPPROTO_ICMP) != (k->family == TF_FAM_IPV4))
			return 0;
		ih = cursor_pull(c, &ibuf, sizeof(ibuf));
		if (!ih)
			return -1;
		key_icmp(k, ih, k->family == TF_FAM_IPV6);
		return 0;
	default:
		return 0;
	}
	uh = parse_porthdr(c, &ubuf, min_len);
	if (!uh)
		return -1;
	key_ports(k, tx, uh->source, uh->dest);
	return 0;
}

static __always_inline int key_ipv4(struct hdr_cursor *c, struct tf_flow_key *k, bool tx,
				    __u32 *tcp_flags)
{
	struct tf_iphdr buf, *iph = parse_iphdr(c, &buf);

	if (!iph)
		return -1;
	k->family = TF_FAM_IPV4;
	k->proto = iph->protocol;
	*(__be32 *)k->local_ip = tx ? iph->saddr : iph->daddr;
	*(__be32 *)k->remote_ip = tx ? iph->daddr : iph->saddr;
	if (iph_frag_offset(iph))
		return 0;	/* a later fragment: its L4 header is in the first */
	return key_l4(c, k, tx, tcp_flags);
}

static __always_inline void key_ip6(__u8 dst[16], const __be32 a[4])
{
	__be32 *d = (__be32 *)dst;

	d[0] = a[0];
	d[1] = a[1];
	d[2] = a[2];
	d[3] = a[3];
}

static __always_inline int key_ipv6(struct hdr_cursor *c, struct tf_flow_key *k, bool tx,
				    __u32 *tcp_flags)
{
	struct tf_ipv6hdr buf, *ip6h = parse_ip6hdr(c, &buf);
	bool nonfirst = false;
	int proto;

	if (!ip6h)
		return -1;
	key_ip6(k->local_ip, tx ? ip6h->saddr : ip6h->daddr);
	key_ip6(k->remote_ip, tx ? ip6h->daddr : ip6h->saddr);
	proto = skip_ip6hdrext(c, ip6h->nexthdr, &nonfirst);
	if (proto < 0)
		return -1;
	k->family = TF_FAM_IPV6;
	k->proto = (__u8)proto;
	if (nonfirst)
		return 0;
	return key_l4(c, k, tx, tcp_flags);
}

static __always_inline int key_arp(struct hdr_cursor *c, struct tf_flow_key *k, bool tx)
{
	struct tf_arp_eth_ipv4 abuf, *addrs;
	struct tf_arphdr hbuf, *ah;

	ah = cursor_pull(c, &hbuf, sizeof(hbuf));
	if (!ah)
		return -1;
	if (ah->htype != bpf_htons(1) || ah->ptype != bpf_htons(ETH_P_IP) || ah->hlen != 6 ||
	    ah->plen != 4)
		return 0;	/* another ARP: keyed by ethertype alone */
	addrs = cursor_pull(c, &abuf, sizeof(abuf));
	if (!addrs)
		return -1;
	__builtin_memcpy(k->local_ip, tx ? addrs->spa : addrs->tpa, 4);
	__builtin_memcpy(k->remote_ip, tx ? addrs->tpa : addrs->spa, 4);
	return 0;
}

/*
 * The flow key of the frame in the VM's point of view (tx: sent by the VM),
 * parsed in one cursor mode. 0, or -1 if the frame is truncated or
 * malformed, or (direct) a header is not in the linear area: c->need_copy.
 */
static __always_inline int flow_key_parse(const struct tf_skb_view *v, bool tx, bool direct,
					  struct hdr_cursor *c, struct tf_flow_key *k,
					  __u32 *tcp_flags)
{
	__u16 vids[TF_VLAN_MAX] = {};
	int proto;

	__builtin_memset(k, 0, sizeof(*k));
	*tcp_flags = 0;
	cursor_init(c, v, direct);
	proto = parse_ethhdr(c);
	if (proto < 0)
		return -1;
	proto = parse_vlans(c, proto, vids);
	if (proto < 0)
		return -1;
	k->vlan = vids[0];
	k->vlan_inner = vids[1];
	if (proto < ETH_P_802_3_MIN)
		proto = ETH_P_802_3;
	k->ethertype = (__u16)proto;
	switch (proto) {
	case ETH_P_IP:
		return key_ipv4(c, k, tx, tcp_flags);
	case ETH_P_IPV6:
		return key_ipv6(c, k, tx, tcp_flags);
	case ETH_P_ARP:
		return key_arp(c, k, tx);
	}
	return 0;
}

/*
 * Tests only: parse every frame by copy, as if no header were linear
 * (BPF_PROG_TEST_RUN only makes linear skbs). A frozen .rodata constant:
 * the verifier drops the branch it rules out.
 */
const volatile bool tf_test_copy_headers = false;

/*
 * The flow key of the frame in the VM's point of view (tx: sent by the VM):
 * headers read in place if they are linear, else copied. 0, or -1 if the
 * frame is truncated or malformed.
 */
static __always_inline int flow_key(struct __sk_buff *skb, __u32 ifindex, bool tx,
				    struct tf_flow_key *k, __u32 *tcp_flags)
{
	__u32 vlan_present = skb->vlan_present, vlan_tci = skb->vlan_tci;
	struct tf_skb_view v;
	struct hdr_cursor c;
	int err = -1;

	skb_view(&v, skb);
	if (!tf_test_copy_headers) {
		err = flow_key_parse(&v, tx, true, &c, k, tcp_flags);
		if (err && c.need_copy)
			err = flow_key_parse(&v, tx, false, &c, k, tcp_flags);
	} else {
		err = flow_key_parse(&v, tx, false, &c, k, tcp_flags);
	}
	if (err)
		return err;
	k->ifindex = ifindex;
	/* An offloaded tag is outside (before) any tag still in the packet. */
	if (vlan_present) {
		k->vlan_inner = k->vlan;
		k->vlan = vlan_tci & 0x0fff;
	}
	return 0;
}

/* Add this packet to an existing flow entry. */
static __always_inline void flow_count(struct tf_flow_value *v, bool tx, __u32 len, __u32 segs,
				       __u64 now, __u32 tcp_flags)
{
	struct tf_dir_counters *d = tx ? &v->tx : &v->rx;
	__u32 *flags = tx ? &v->tcp_flags_tx : &v->tcp_flags_rx;

	flow_add(&d->packets, 1);
	flow_add(&d->bytes, len);
	flow_add(&d->segs, segs);
	/* Racing CPUs may store slightly out of order: ns, not worth a lock. */
	v->last_seen_ns = now;
	/* New flag bits are rare: read first, write only then. */
	if ((*flags & tcp_flags) != tcp_flags) {
#ifdef TF_FLOWS_PERCPU
		*flags |= tcp_flags;
#else
		__sync_fetch_and_or(flags, tcp_flags);
#endif
	}
}

/* The flow path of a tap: after count_skb() succeeded. */
static __always_inline void account_flow(struct __sk_buff *skb, __u32 ifindex, bool tx, __u32 len,
					 __u32 segs)
{
	struct tf_flow_key key;
	struct tf_flow_value *v;
	__u32 tcp_flags = 0;
	__u64 now;
	long err;

	if (flow_key(skb, ifindex, tx, &key, &tcp_flags)) {
		__sync_fetch_and_add(&parse_errors, 1);
		count_aggr(ifindex, TF_AGGR_UNPARSED, tx, len, segs);
		return;
	}
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&flows, &key);
	if (v) {
		flow_count(v, tx, len, segs, now, tcp_flags);
		return;
	}

	struct tf_flow_value nv = {};
	struct tf_dir_counters *d = tx ? &nv.tx : &nv.rx;

	d->packets = 1;
	d->bytes = len;
	d->segs = segs;
	nv.first_seen_ns = now;
	nv.last_seen_ns = now;
	if (tx)
		nv.tcp_flags_tx = tcp_flags;
	else
		nv.tcp_flags_rx = tcp_flags;
	err = bpf_map_update_elem(&flows, &key, &nv, BPF_NOEXIST);
	if (!err)
		return;
	if (err == -EEXIST) {
		/* Another CPU created it since the lookup. */
		v = bpf_map_lookup_elem(&flows, &key);
		if (v) {
			flow_count(v, tx, len, segs, now, tcp_flags);
			return;
		}
	}
	/* -E2BIG: full (or, in theory, -ENOMEM/-EBUSY): kept in the aggregate. */
	__sync_fetch_and_add(&flow_map_full, 1);
	count_aggr(ifindex, TF_AGGR_OVERFLOW, tx, len, segs);
}

static __always_inline int counters_only(struct __sk_buff *skb, int dir)
{
	count_skb(skb->ifindex, dir, skb->len, skb_segs(skb));
	return TC_ACT_UNSPEC;
}

/* Taps: ingress = sent by the VM (tx), egress = delivered to it (rx). */
static __always_inline int tap(struct __sk_buff *skb, int dir)
{
	__u32 len = skb->len, segs = skb_segs(skb), ifindex = skb->ifindex;

	if (count_skb(ifindex, dir, len, segs))
		account_flow(skb, ifindex, dir == TF_HOOK_INGRESS, len, segs);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tf_ingress(struct __sk_buff *skb)
{
	return counters_only(skb, TF_HOOK_INGRESS);
}

SEC("tc")
int tf_egress(struct __sk_buff *skb)
{
	return counters_only(skb, TF_HOOK_EGRESS);
}

SEC("tc")
int tf_tap_ingress(struct __sk_buff *skb)
{
	return tap(skb, TF_HOOK_INGRESS);
}

SEC("tc")
int tf_tap_egress(struct __sk_buff *skb)
{
	return tap(skb, TF_HOOK_EGRESS);
}
