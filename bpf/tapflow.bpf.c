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
#include "conntrack.h"
#include "kernel.h"
#include "ctkey.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_UNSPEC (-1)
#define EEXIST 17

/*
 * The interface counters every program updates on every packet. Per-CPU so
 * that the hot path writes only to this CPU's cache lines; the reader sums
 * the CPUs.
 *
 * An array slot per interface, not a hash keyed by ifindex: the verifier
 * inlines an array lookup into a few instructions, where a hash lookup is a
 * call that hashes the key and walks a bucket. That took tf_ingress from 53
 * to 29 ns a packet (prog_cost, 2-vCPU VM, kernel 6.18), 24 ns off each of
 * the three programs a NATed packet passes (tap, bridge, uplink).
 *
 * The slot is ifindex mod TF_IF_SLOTS; tf_if_owner[slot] is the ifindex
 * userspace gave it to, before it attached there (src/ifcounters.c). An
 * interface whose slot another one owns (ifindexes TF_IF_SLOTS apart), or
 * that userspace did not announce (renumbered between inventory and
 * attach), is counted in if_spill, a per-CPU hash keyed by ifindex, as all
 * were before; its entry is created by userspace or, in that race, here.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TF_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct tf_if_counters);
} if_counters SEC(".maps");

__u32 tf_if_owner[TF_IF_SLOTS] = {};

/* Allocated as used: most hosts never put an interface here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TF_MAX_IFACES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct tf_if_counters);
} if_spill SEC(".maps");

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
 * The taps' flows only: the NAT join keeps its uplink flows in a map of
 * their own (uplink_flows), so that a VM flow's value carries nothing of
 * the join's.
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
 *                  no counters entry and none could be created (or, on a
 *                  tap, no tap_aggr entry when one was needed).
 *   flow_map_full: packets of new flows that found the flow map full; they
 *                  are in their tap's tap_aggr overflow_rx/tx instead.
 *   parse_errors:  truncated or malformed frames on taps; they are in their
 *                  tap's tap_aggr unparsed_rx/tx instead of a flow.
 */
__u64 map_full = 0;
__u64 flow_map_full = 0;
__u64 parse_errors = 0;

/*
 * When an insert last found the flow map full (bpf_ktime_get_ns()), 0 if
 * it is not known to be full. For TF_FLOWS_FULL_RETRY_NS after that, new
 * flows go to their overflow aggregate without trying an insert: a failed
 * insert locks the bucket and scans every CPU's free list, and with a map
 * too small for the traffic most packets would pay for one (tools/bench:
 * "Flows at scale"). Only userspace frees entries (expiry), and it clears
 * this after it did, so that new flows get in again at once; a failed
 * insert racing with that clear costs at most one retry interval of
 * flows counted in overflow instead of an entry of their own.
 */
__u64 tf_flows_full_ns = 0;
#define TF_FLOWS_FULL_RETRY_NS 10000000ULL	/* 10 ms */

static __always_inline bool flows_known_full(__u64 now)
{
	__u64 t = tf_flows_full_ns;

	/* Signed: a t ahead of this CPU's (or the coarse) clock is recent too. */
	return t && (__s64)(now - t) < (__s64)TF_FLOWS_FULL_RETRY_NS;
}

/*
 * The VMs' bridges, by ifindex (userspace fills them before attaching):
 * a packet leaving the uplink is a VM's forwarded packet if it came in on
 * one of them (skb->ingress_ifindex). A short array scanned in order: a
 * host has a handful of VM bridges, and most uplink packets stop at the
 * first compare (ingress_ifindex 0: the host's own traffic).
 */
__u32 tf_bridges[TF_MAX_BRIDGES] = {};
__u32 tf_n_bridges = 0;

/*
 * Set by userspace once the taps are attached, cleared before they are
 * detached: the uplink's ingress counts a VM's packet only while its tap
 * can count the same packet's delivery, so that the attach and detach
 * windows never read as forwarding loss (the egress side needs no gate:
 * the uplink is attached before and detached after the taps).
 */
__u32 tf_uplink_rx_armed = 0;

/*
 * The host's own connection can take the exact tuple of a VM's NAT
 * mapping that ended (MASQUERADE only avoids live entries): its replies
 * would then count as the VM's. So the host's packets leaving the uplink
 * are checked too, but only those whose source port is the local port of
 * some live uplink flow (this bitmap: set here when an uplink flow is
 * made, rebuilt by userspace from the live flows every poll); the rest of
 * the host's traffic costs a parse and a bit test.
 */
__u64 tf_natport_bits[TF_NATPORT_BITS / 64] = {};

/*
 * The uplink flows: written by the uplink programs, the cache flush and
 * nat_update (which moves a flow's old counts to nat_retired), read and
 * expired by userspace as `flows` is. Userspace gives it --max-flows
 * entries with the join on (1 otherwise): each uplink flow is a VM's
 * forwarded flow, which has its entry in `flows` too, so a map as large
 * never fills before that one does. Not preallocated, unlike `flows`:
 * most VM flows never leave through an uplink, and a preallocated map
 * would take its whole size in kernel memory on every host with the join
 * on; an insert is made once per forwarded connection, off the per-packet
 * path, and one into a full map fails at the element count, before any
 * allocation, so it needs no back-off as `flows` has.
 */
struct {
	__uint(type, TF_FLOWS_MAP_TYPE);
	__uint(max_entries, TF_FLOWS_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tf_flow_key);
	__type(value, struct tf_uplink_value);
} uplink_flows SEC(".maps");

/* VMs' forwarded packets whose new uplink flow found uplink_flows full. */
__u64 uplink_flow_map_full = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TF_NAT_RETIRED_MAX);
	__type(key, struct tf_nat_retired_key);
	__type(value, struct tf_uplink_value);
} nat_retired SEC(".maps");

/* Uplink flows whose old counts could not be retired (nat_retired full). */
__u64 nat_retired_full = 0;

static __always_inline __u32 skb_segs(struct __sk_buff *skb)
{
	__u32 segs = skb->gso_segs;

	return segs ? segs : 1;
}

/*
 * Count the skb in its interface's counters (if_counters, or if_spill):
 * their entry, or NULL if there is none and none could be made (map_full).
 */
static __always_inline struct tf_if_counters *count_skb(__u32 ifindex, int dir, __u32 len,
							__u32 segs)
{
	__u32 slot = ifindex & (TF_IF_SLOTS - 1);
	struct tf_if_counters *c;
	struct tf_dir_counters *d;

	if (tf_if_owner[slot] == ifindex) {
		c = bpf_map_lookup_elem(&if_counters, &slot);
		if (!c)
			return NULL;	/* never: slot < max_entries */
	} else {
		c = bpf_map_lookup_elem(&if_spill, &ifindex);
		if (!c) {
			struct tf_if_counters zero = {};

			if (bpf_map_update_elem(&if_spill, &ifindex, &zero, BPF_NOEXIST) &&
			    !bpf_map_lookup_elem(&if_spill, &ifindex)) {
				__sync_fetch_and_add(&map_full, 1);
				return NULL;
			}
			c = bpf_map_lookup_elem(&if_spill, &ifindex);
			if (!c)
				return NULL;
		}
	}
	d = &c->dir[dir & 1];
	d->packets += 1;
	d->bytes += len;
	d->segs += segs;
	return c;
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

/* ICMP/ICMPv6 ports of the key (include/ctkey.h); id in network order. */
static __always_inline void key_icmp(struct tf_flow_key *k, __u8 type, __u8 code, __be16 id,
				     bool v6)
{
	tf_icmp_key_ports(type, code, bpf_ntohs(id), v6, &k->local_port, &k->remote_port);
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

	c->l4_off = c->off;
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
		key_icmp(k, ih->type, ih->code, ih->id, k->family == TF_FAM_IPV6);
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
 * The common case without the general parser: an IPv4 TCP or UDP frame
 * (no in-packet VLAN tag, options or later fragment) whose headers are in
 * the linear area. It makes the key flow_key_parse() would make (the BPF
 * tests run every frame through both); anything else returns 1: not
 * handled here. About half the parser's cost on the frames most traffic
 * is made of.
 *
 * The key is written as six 8-byte words made in registers, ifindex
 * included: the flow map's hash and key compare (and the uplink cache's
 * compare) read it back at once with 4- and 8-byte loads, and a load that
 * spans several narrower stores still in the store buffer cannot be served
 * from it and waits (perf showed it as the NAT join's hottest spot).
 */
_Static_assert(__builtin_offsetof(struct tf_flow_key, ethertype) == 6 &&
	       __builtin_offsetof(struct tf_flow_key, family) == 8 &&
	       __builtin_offsetof(struct tf_flow_key, proto) == 9 &&
	       __builtin_offsetof(struct tf_flow_key, local_ip) == 12 &&
	       __builtin_offsetof(struct tf_flow_key, remote_ip) == 28 &&
	       __builtin_offsetof(struct tf_flow_key, local_port) == 44 &&
	       __builtin_offsetof(struct tf_flow_key, remote_port) == 46 &&
	       sizeof(struct tf_flow_key) == 48, "flow_key_fast() writes this layout");

static __always_inline int flow_key_fast(const struct tf_skb_view *v, bool tx, __u32 ifindex,
					 struct tf_flow_key *k, __u32 *tcp_flags,
					 struct tf_l4pos *pos)
{
	__u64 *w = (__u64 *)k;
	__u32 local, remote;
	__u16 lport, rport;
	struct tf_ethhdr *eth = v->data;
	struct tf_iphdr *iph = (void *)(eth + 1);
	struct tf_tcphdr *th = (void *)(iph + 1);
	__u32 end, l4 = sizeof(*eth) + sizeof(*iph), tot;

	/* 20 bytes after the IP header: a TCP header, or UDP + 12 bytes. */
	if ((void *)(th + 1) > v->data_end)
		return 1;
	if (eth->proto != bpf_htons(ETH_P_IP) || iph->ver_ihl != 0x45 ||
	    (iph->frag_off & bpf_htons(0x1fff)) ||
	    (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP))
		return 1;
	/* The IP packet's end, as the parser bounds headers: tot_len or the frame. */
	tot = bpf_ntohs(iph->tot_len);
	end = v->len;
	if (tot) {
		if (tot < sizeof(*iph))
			return 1;
		if (end - sizeof(*eth) > tot)
			end = sizeof(*eth) + tot;
	}
	if (iph->protocol == IPPROTO_TCP) {
		__u32 doff = (th->doff_res >> 4) * 4;

		if (doff < sizeof(*th) || l4 + doff > end)
			return 1;
		*tcp_flags = th->flags;
		if (pos) {
			pos->off = l4;
			pos->end = end;
		}
	} else {
		if (l4 + sizeof(struct tf_udphdr) > end)
			return 1;
		*tcp_flags = 0;
	}
	/* Addresses as in memory (network order); ports in host order. */
	local = tx ? iph->saddr : iph->daddr;
	remote = tx ? iph->daddr : iph->saddr;
	lport = bpf_ntohs(tx ? th->source : th->dest);
	rport = bpf_ntohs(tx ? th->dest : th->source);
	/* Little-endian words of struct tf_flow_key (include/tapflow.h). */
	w[0] = ifindex | (__u64)ETH_P_IP << 48;			/* ifindex, vlan 0, ethertype */
	w[1] = TF_FAM_IPV4 | (__u64)iph->protocol << 8 |	/* family, proto, vlan_inner 0, */
	       (__u64)local << 32;				/* local_ip[0..3] */
	w[2] = 0;
	w[3] = (__u64)remote << 32;				/* local_ip[12..15] 0, remote_ip[0..3] */
	w[4] = 0;
	w[5] = (__u64)lport << 32 | (__u64)rport << 48;		/* remote_ip[12..15] 0, ports */
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
 * frame is truncated or malformed. pos (NULL: not wanted; a constant of
 * each inlined instance) gets where a TCP header starts and where the IP
 * packet ends, for the TCP analysis; only written for TCP keys.
 */
static __always_inline int flow_key(struct __sk_buff *skb, __u32 ifindex, bool tx,
				    struct tf_flow_key *k, __u32 *tcp_flags, struct tf_l4pos *pos)
{
	__u32 vlan_present = skb->vlan_present, vlan_tci = skb->vlan_tci;
	struct tf_skb_view v;
	struct hdr_cursor c;
	int err = -1;

	skb_view(&v, skb);
	if (!tf_test_copy_headers) {
		err = flow_key_fast(&v, tx, ifindex, k, tcp_flags, pos);
		if (!err)
			goto vlan;	/* ifindex in place */
		err = flow_key_parse(&v, tx, true, &c, k, tcp_flags);
		if (err && c.need_copy)
			err = flow_key_parse(&v, tx, false, &c, k, tcp_flags);
	} else {
		err = flow_key_parse(&v, tx, false, &c, k, tcp_flags);
	}
	if (err)
		return err;
	if (pos && k->proto == IPPROTO_TCP && c.l4_off) {
		pos->off = c.l4_off;
		pos->end = c.end;
	}
	k->ifindex = ifindex;
vlan:
	/* An offloaded tag is outside (before) any tag still in the packet. */
	if (vlan_present) {
		k->vlan_inner = k->vlan;
		k->vlan = vlan_tci & 0x0fff;
	}
	return 0;
}

/*
 * A flow's last seen without a clock reading per packet: the precise clock
 * (bpf_ktime_get_ns(), some 35 ns a call in situ on a VM: kvmclock, and
 * the helper call itself under retpolines) is read once, when the entry
 * is made, with the tick count (jiffies: one load); a packet's time is
 * then first seen + the ticks since, true to the tick (1-10 ms), which is
 * all idle expiry and `last_seen` need. CONFIG_HZ from the kernel config
 * (libbpf reads /proc/config.gz or /boot/config-*); without it, the
 * precise clock every packet. The usual HZ values are spelled out so that
 * the verifier, which knows CONFIG_HZ, leaves a constant multiplication
 * instead of a division per packet.
 */

static __always_inline __u64 tick_ns(void)
{
	switch (CONFIG_HZ) {
	case 100: return 10000000;
	case 250: return 4000000;
	case 300: return 1000000000 / 300;
	case 1000: return 1000000;
	default: return 1000000000ULL / CONFIG_HZ;
	}
}

static __always_inline __u64 flow_now(const struct tf_flow_value *v)
{
	if (!CONFIG_HZ)
		return bpf_ktime_get_ns();
	return v->first_seen_ns + (bpf_jiffies64() - v->first_jiffies) * tick_ns();
}

/*
 * OR TCP flags into an entry's. New bits are rare: read first, write only
 * then. Atomic even in the per-CPU variant: the NAT join's flush also ORs
 * into nat_retired, which is shared.
 */
static __always_inline void flags_or(__u32 *to, __u32 flags)
{
	if ((*to & flags) != flags)
		__sync_fetch_and_or(to, flags);
}

/*
 * Add this packet to an existing flow entry; stamp false (uplink flows)
 * leaves last_seen as it is.
 */
static __always_inline void flow_count(struct tf_flow_value *v, bool tx, __u32 len, __u32 segs,
				       bool stamp, __u32 tcp_flags)
{
	struct tf_dir_counters *d = tx ? &v->tx : &v->rx;
	__u32 *flags = tx ? &v->tcp_flags_tx : &v->tcp_flags_rx;

	flow_add(&d->packets, 1);
	flow_add(&d->bytes, len);
	flow_add(&d->segs, segs);
	/* Racing CPUs may store slightly out of order: ns, not worth a lock. */
	if (stamp)
		v->last_seen_ns = flow_now(v);
	flags_or(flags, tcp_flags);
}

/* A new flow's first value: this packet, one way. */
static __always_inline void flow_first(struct tf_flow_value *nv, bool tx, __u32 len, __u32 segs,
				       __u64 now, __u32 tcp_flags)
{
	struct tf_dir_counters *d = tx ? &nv->tx : &nv->rx;

	d->packets = 1;
	d->bytes = len;
	d->segs = segs;
	nv->first_seen_ns = now;
	nv->last_seen_ns = now;
	nv->first_jiffies = bpf_jiffies64();
	if (tx)
		nv->tcp_flags_tx = tcp_flags;
	else
		nv->tcp_flags_rx = tcp_flags;
}

/*
 * Insert a new flow (nv: its first packet, flow_first()). If another CPU
 * created it since the lookup, count the packet there; if the map is full
 * (-E2BIG; in theory -ENOMEM/-EBUSY) or known to be (tf_flows_full_ns), in
 * the interface's overflow aggregate. Returns false for the latter.
 */
static __always_inline bool flow_insert(const struct tf_flow_key *key,
					const struct tf_flow_value *nv, __u32 ifindex, bool tx,
					__u32 len, __u32 segs, __u64 now, __u32 tcp_flags)
{
	struct tf_flow_value *v;
	long err;

	if (flows_known_full(now))
		goto overflow;
	err = bpf_map_update_elem(&flows, key, nv, BPF_NOEXIST);
	if (!err)
		return true;
	if (err == -EEXIST) {
		v = bpf_map_lookup_elem(&flows, key);
		if (v) {
			flow_count(v, tx, len, segs, true, tcp_flags);
			return true;
		}
	} else {
		tf_flows_full_ns = now ? now : 1;
	}
overflow:
	__sync_fetch_and_add(&flow_map_full, 1);
	count_aggr(ifindex, TF_AGGR_OVERFLOW, tx, len, segs);
	return false;
}

#include "tcp_analysis.h"

/* A tap's packet as the flow path sees it; the caller's, see account_flow(). */
struct tf_tap_pkt {
	struct tf_flow_key key;
	struct tf_l4pos pos;	/* the TCP analysis' header position */
	__u32 len, segs;
};

/*
 * The flow path of a tap: after count_skb() succeeded. A function of its
 * own (a BPF-to-BPF call, a few ns): inlined, its stack and the capture
 * filter's parser would not fit in one frame of 512 bytes. The caller
 * owns p (key and pos), so that the TCP analysis, called after this
 * returned, does not stack its frame on this one's. Returns true if the
 * frame is a TCP segment of a flow with an entry, for the analysis to
 * read (p->pos filled in).
 */
static __noinline bool account_flow(struct __sk_buff *skb, __u32 ifindex, bool tx,
				    struct tf_tap_pkt *p)
{
	struct tf_flow_value *v;
	__u32 tcp_flags = 0, len, segs;
	__u64 now;

	if (!p)
		return false;
	len = p->len;
	segs = p->segs;
	if (flow_key(skb, ifindex, tx, &p->key, &tcp_flags, tf_tcp_on ? &p->pos : NULL)) {
		__sync_fetch_and_add(&parse_errors, 1);
		count_aggr(ifindex, TF_AGGR_UNPARSED, tx, len, segs);
		return false;
	}
	v = bpf_map_lookup_elem(&flows, &p->key);
	if (v) {
		flow_count(v, tx, len, segs, true, tcp_flags);
	} else {
		struct tf_flow_value nv = {};

		now = bpf_ktime_get_ns();
		flow_first(&nv, tx, len, segs, now, tcp_flags);
		/* A flow in overflow has no entry for its TCP state to live with. */
		if (!flow_insert(&p->key, &nv, ifindex, tx, len, segs, now, tcp_flags))
			return false;
	}
	return tf_tcp_on && p->pos.off;
}

/* ---- NAT join: the uplink --------------------------------------------- */

/*
 * Uplink flows' times only serve expiry (their first/last seen are never
 * shown: the VM's tap flow has its own). So the programs stamp an uplink
 * flow only when they make it (or start it again), with the coarse clock,
 * and never per packet: even the coarse clock is a helper call, some 15 ns
 * of a join that costs ~85 (tools/bench prog_cost). Userspace takes an
 * uplink flow's last seen from its counters instead: the poll that saw
 * them move (src/flows.c).
 */
static __always_inline __u64 uplink_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

static __always_inline bool from_vm_bridge(__u32 iif)
{
	__u32 n = tf_n_bridges;

	if (!iif)
		return false;	/* the host's own packet */
	for (__u32 i = 0; i < TF_MAX_BRIDGES && i < n; i++)
		if (tf_bridges[i] == iif)
			return true;
	return false;
}

/* The VM side of an uplink flow from the conntrack tuple of the VM's direction. */
static __always_inline void xlat_vm_side(struct tf_flow_key *vm, const struct nf_conntrack_tuple *t)
{
	struct tf_ct_tuple ct = {};

	__builtin_memcpy(ct.src_ip, &t->src.u3, 16);
	__builtin_memcpy(ct.dst_ip, &t->dst.u3, 16);
	ct.proto = t->dst.protonum;
	ct.family = vm->family;
	if (ct.proto == IPPROTO_ICMP || ct.proto == IPPROTO_ICMPV6) {
		ct.src_port = bpf_ntohs(t->src.u.icmp.id);
		ct.icmp_type = t->dst.u.icmp.type;
		ct.icmp_code = t->dst.u.icmp.code;
	} else {
		ct.src_port = bpf_ntohs(t->src.u.all);
		ct.dst_port = bpf_ntohs(t->dst.u.all);
	}
	tf_ct_vm_key(vm, &ct);
}

/*
 * The VM side of the uplink flow `key` from the packet's conntrack entry
 * (nfct: address | ctinfo; no address: none, then it is the packet's own
 * tuple: a routed network without conntrack, or a NOTRACK rule).
 */
static __always_inline void nat_vm_side(struct tf_nat_vm *n, const struct tf_flow_key *key,
					__u64 nfct, __u32 bridge)
{
	__u32 ctinfo = nfct & TF_NFCT_INFOMASK;
	struct tf_ct_info ci;
	int dir = ctinfo >= TF_CT_IS_REPLY;

	__builtin_memset(n, 0, sizeof(*n));
	n->vm = *key;
	n->vm.ifindex = bridge;
	n->vm.vlan = 0;
	n->vm.vlan_inner = 0;
	n->flags = TF_NAT_CT;
	if (!(nfct & ~TF_NFCT_INFOMASK)) {
		/* No conntrack (or untracked: IP_CT_UNTRACKED, no entry): as it is. */
		n->flags = 0;
	} else if (ctinfo == TF_CT_RELATED || ctinfo == TF_CT_RELATED_REPLY) {
		n->flags |= TF_NAT_RELATED;
	} else if (!ct_read((struct nf_conn *)(nfct & ~TF_NFCT_INFOMASK), &ci) &&
		   ci.tuple[dir & 1].dst.protonum == key->proto) {
		/* The packet's own direction, before translation: the VM's. */
		xlat_vm_side(&n->vm, &ci.tuple[dir & 1]);
		n->flags |= dir ? TF_NAT_INBOUND : 0;
		n->ct_status = ci.status;
		n->zone = ci.zone;
		n->zone_dir = ci.zone_dir;
	} else {
		n->flags |= TF_NAT_RELATED;	/* unreadable: VM side unknown */
	}
	n->flags |= TF_NAT_UPLINK;
}

/*
 * Is the uplink flow's recorded VM side still that of the packet's
 * conntrack entry? An entry can be freed and its memory reused at once
 * for the next connection (same address, ct_id unchanged): compare the
 * VM-side source address and port too. Ports 0 (non-first fragments,
 * protocols without ports) and ICMP errors are not compared.
 */
static __always_inline bool same_vm_side(const struct tf_nat_vm *nat, __u64 nfct)
{
	const struct tf_flow_key *vm = &nat->vm;
	__u32 ctinfo = nfct & TF_NFCT_INFOMASK;
	bool ports = vm->local_port || vm->remote_port;
	__be16 port = bpf_htons(vm->local_port);

	if (!(nat->flags & TF_NAT_CT))
		return true;	/* no entry (or unreadable): nothing to compare */
	if (vm->proto == IPPROTO_ICMP || vm->proto == IPPROTO_ICMPV6) {
		/* Queries: local_port is the identifier; errors have none. */
		ports = ports && vm->local_port;
	}
	return ct_src_is(nfct & ~TF_NFCT_INFOMASK, ctinfo >= TF_CT_IS_REPLY,
			 vm->family == TF_FAM_IPV6, vm->local_ip, port, ports) != 0;
}

/*
 * A per-CPU write-back cache in front of uplink_flows. The join
 * costs a map lookup per packet on the uplink (hashing the 48-byte
 * key, a call, a key compare: ~30 of the ~40 ns the join adds in the test
 * run), and the counters-only programs it sits next to now cost ~3 ns over
 * an empty one, so that lookup was the join's whole price. Each CPU keeps
 * the uplink flows it saw last in TF_UPLINK_CACHE_SLOTS direct-mapped
 * slots of a per-CPU array, whose lookup the verifier inlines, and counts
 * a packet of a cached flow there with plain adds ("pending"). A slot's
 * pending counts go to the flow's entry when another flow takes the slot,
 * and every poll: userspace reads every CPU's slots and runs
 * tf_uplink_flush on the CPUs that have packets pending before it reads
 * uplink_flows (as tf_drop_flush for the drop cache, drops.bpf.c; src/oncpu.h
 * says why that loses nothing).
 *
 * What a hit must still check per packet: egress, that the packet's
 * conntrack entry is the one the flow's translation was read from (ct_id)
 * and has the same VM side (same_vm_side, two loads); both directions,
 * that no flow changed since the slot was filled in a way that moves its
 * packets elsewhere: a translation change (nat_update) or the host taking
 * the tuple (host_egress) makes every CPU's slots stale at once, by
 * moving tf_uplink_gen; so does userspace every poll before it reads the
 * slots, and after it deleted flows: a slot must not go on counting for a
 * flow deleted since (expired idle, or busy at an active timeout), whose
 * entry no packet of the slot makes again, and the flush cannot retire
 * idle slots, as it runs only where packets are pending. Pending counts keep
 * the conntrack entry they were counted under: if the flow's changed
 * meanwhile, they go where its old counts went (nat_retired), as if
 * counted at once.
 *
 * Nesting on one CPU: tf_uplink_flush runs in an IPI (or, on the calling
 * CPU, in a section a softirq can interrupt), so a slot has a `busy` flag
 * set around each change, as drop slots do; whoever finds it set leaves
 * the slot alone and takes the map path. Off (tf_uplink_cache_on 0, set
 * by userspace once tf_uplink_flush ran) every packet takes the map path.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TF_UPLINK_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct tf_uplink_slot);
} uplink_cache SEC(".maps");

__u32 tf_uplink_cache_on = 0;
/* Moved by nat_update, host_egress and userspace after it deleted flows (expiry). */
__u32 tf_uplink_gen = 0;
/* Pending packets whose flow was gone when they were flushed (expired meanwhile). */
__u64 uplink_cache_lost = 0;

/* Every CPU's cached uplink flows are stale: their next packet takes the map path. */
static __always_inline void uplink_cache_stale(void)
{
	__sync_fetch_and_add(&tf_uplink_gen, 1);
}

static __always_inline struct tf_uplink_slot *uplink_slot(const struct tf_flow_key *k)
{
	const __u32 *l = (const __u32 *)k->local_ip, *r = (const __u32 *)k->remote_ip;
	__u32 i, h;

	if (!tf_uplink_cache_on)
		return NULL;
	/*
	 * Loads as wide as the parser's stores of these fields, just made: a
	 * wider load across several of them would wait for them to retire
	 * (no store forwarding; a stall the profile showed).
	 */
	h = l[0] ^ r[0] ^ l[3] ^ r[3] ^ ((__u32)k->local_port << 16 | k->remote_port);
	i = (h * 0x9e3779b1U) >> 28 & (TF_UPLINK_CACHE_SLOTS - 1);
	return bpf_map_lookup_elem(&uplink_cache, &i);
}

static __always_inline bool same_key(const struct tf_flow_key *a, const struct tf_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	for (int i = 0; i < (int)(sizeof(*a) / 8); i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* Does slot s hold flow k, current? (The caller checked s.) */
static __always_inline bool slot_hit(const struct tf_uplink_slot *s, const struct tf_flow_key *k)
{
	return s->valid && !s->busy && s->gen == tf_uplink_gen && same_key(&s->key, k);
}

/* Count a packet in the slot (a hit; busy is clear). */
static __always_inline void slot_count(struct tf_uplink_slot *s, int tx, __u32 len, __u32 segs,
				       __u32 tcp_flags)
{
	struct tf_dir_counters *d = &s->pending[tx & 1];

	s->busy = 1;
	barrier();
	d->packets += 1;
	d->bytes += len;
	d->segs += segs;
	if (tcp_flags)
		s->tcp_flags[tx & 1] |= tcp_flags;
	barrier();
	s->busy = 0;
}

static __always_inline void add_dir(struct tf_dir_counters *to, const struct tf_dir_counters *d)
{
	if (d->packets) {
		__sync_fetch_and_add(&to->packets, d->packets);
		__sync_fetch_and_add(&to->bytes, d->bytes);
		__sync_fetch_and_add(&to->segs, d->segs);
	}
}

/*
 * Move the slot's pending counts into its flow (the caller set busy):
 * the flow's entry if it still has the conntrack entry and the VM side
 * they were counted under (an entry's address alone can be reused by the
 * next connection), else the counts nat_update retired when that changed
 * (nat_retired), else the entry still (the same VM side again under a new
 * conntrack entry: nat_update kept its counts); no entry at all: the flow
 * expired meanwhile, counted as lost.
 */
static __noinline void slot_flush(struct tf_uplink_slot *s)
{
	struct tf_nat_retired_key rk = {};
	struct tf_uplink_value *v;
	__u64 n = s->pending[0].packets + s->pending[1].packets;

	if (!n)
		return;
	v = bpf_map_lookup_elem(&uplink_flows, &s->key);
	if (!v || v->ct_id != s->ct_id || !same_key(&v->nat.vm, &s->nat.vm)) {
		struct tf_uplink_value *r;

		rk.key = s->key;
		rk.ct_id = s->ct_id;
		r = bpf_map_lookup_elem(&nat_retired, &rk);
		if (r)
			v = r;
	}
	if (v) {
		add_dir(&v->flow.rx, &s->pending[0]);
		add_dir(&v->flow.tx, &s->pending[1]);
		flags_or(&v->flow.tcp_flags_rx, s->tcp_flags[0]);
		flags_or(&v->flow.tcp_flags_tx, s->tcp_flags[1]);
	} else {
		__sync_fetch_and_add(&uplink_cache_lost, n);
	}
	__builtin_memset(s->pending, 0, sizeof(s->pending));
	s->tcp_flags[0] = 0;
	s->tcp_flags[1] = 0;
}

/*
 * After a packet took the map path to flow v (key k): cache v in the slot,
 * flushing what the slot held. Not a flow the host took over (its packets
 * must not be counted as the VM's: the map path checks each one).
 */
static __always_inline void slot_fill(struct tf_uplink_slot *s, const struct tf_flow_key *k,
				      const struct tf_uplink_value *v)
{
	if (!s || s->busy)
		return;
	s->busy = 1;
	barrier();
	if (s->valid)
		slot_flush(s);
	s->key = *k;
	s->ct_id = v->ct_id;
	s->nat = v->nat;
	s->gen = tf_uplink_gen;
	s->valid = !(v->nat.flags & TF_NAT_HOST);
	barrier();
	s->busy = 0;
}

static long flush_index(__u32 i, void *ctx __attribute__((unused)))
{
	struct tf_uplink_slot *s = bpf_map_lookup_elem(&uplink_cache, &i);

	if (!s || s->busy || !s->valid)
		return 0;
	s->busy = 1;
	barrier();
	slot_flush(s);
	barrier();
	s->busy = 0;
	return 0;
}

/*
 * Userspace runs this (BPF_PROG_TEST_RUN, BPF_F_TEST_RUN_ON_CPU) on each
 * CPU whose slots it read with packets pending, before it reads uplink_flows:
 * every packet counted before that read is then in the map.
 */
SEC("raw_tp")
int tf_uplink_flush(void *ctx __attribute__((unused)))
{
	/* bpf_loop: a plain loop around a call reads as endless to the verifier. */
	bpf_loop(TF_UPLINK_CACHE_SLOTS, flush_index, NULL, 0);
	return 0;
}

static __always_inline bool natport_set(__u16 port)
{
	return tf_natport_bits[port / 64] & (1ULL << (port % 64));
}

/*
 * The host's own packet leaving the uplink: if an uplink flow has its
 * tuple, the VM's mapping ended and the host reuses it: mark the flow so
 * that what arrives for the tuple is not counted as the VM's.
 */
static __noinline void host_egress(struct __sk_buff *skb, __u32 ifindex)
{
	struct tf_uplink_value *v;
	struct tf_flow_key key;
	__u32 tcp_flags;

	if (flow_key(skb, ifindex, true, &key, &tcp_flags, NULL) || !natport_set(key.local_port))
		return;
	v = bpf_map_lookup_elem(&uplink_flows, &key);
	if (v && !(v->nat.flags & TF_NAT_HOST)) {
		v->nat.flags |= TF_NAT_HOST;
		uplink_cache_stale();
	}
}

/*
 * The uplink flow's conntrack entry changed. The same VM side (the same
 * connection again, its entry having expired in between): only the
 * translation details are updated. Another VM side (the outside tuple now
 * belongs to another VM, or to another connection): the counts so far are
 * the old one's, so they go to nat_retired for userspace and the flow
 * starts again from zero. A packet of the flow counted by another CPU at
 * that instant may land on either side.
 */
static __noinline void nat_update(struct tf_uplink_value *v, const struct tf_flow_key *key,
				  __u64 nfct, __u64 ct_id, __u32 bridge)
{
	struct tf_nat_vm n;

	nat_vm_side(&n, key, nfct, bridge);
	if (!same_key(&n.vm, &v->nat.vm)) {
		struct tf_nat_retired_key rk = { .key = *key, .ct_id = v->ct_id };
		struct tf_flow_value *c = &v->flow;

		if (bpf_map_update_elem(&nat_retired, &rk, v, BPF_ANY)) {
			__sync_fetch_and_add(&nat_retired_full, 1);
		} else {
			__builtin_memset(&c->rx, 0, sizeof(c->rx));
			__builtin_memset(&c->tx, 0, sizeof(c->tx));
			c->tcp_flags_rx = 0;
			c->tcp_flags_tx = 0;
			c->first_seen_ns = uplink_now();
			c->last_seen_ns = c->first_seen_ns;
		}
	}
	v->nat = n;
	v->ct_id = ct_id;
	uplink_cache_stale();
}

/*
 * A new uplink flow's value is built here, not on the stack: the BPF
 * stack (512 bytes for a whole call chain) cannot hold it, the conntrack
 * tuples being read and the egress program's parser buffers at once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tf_uplink_value);
} uplink_scratch SEC(".maps");

/*
 * Insert a new uplink flow (nv: its first packet). If another CPU made it
 * since the lookup, count the packet there; if the map is full, it is
 * counted in uplink_flow_map_full (the uplink's counters have it).
 */
static __always_inline void uplink_insert(const struct tf_flow_key *key,
					  const struct tf_uplink_value *nv, __u32 len, __u32 segs,
					  __u32 tcp_flags)
{
	struct tf_uplink_value *v;
	long err;

	err = bpf_map_update_elem(&uplink_flows, key, nv, BPF_NOEXIST);
	if (!err)
		return;
	if (err == -EEXIST) {
		v = bpf_map_lookup_elem(&uplink_flows, key);
		if (v) {
			flow_count(&v->flow, true, len, segs, false, tcp_flags);
			return;
		}
	}
	__sync_fetch_and_add(&uplink_flow_map_full, 1);
}

/*
 * A VM's new uplink flow (uplink_egress() found none): its first packet,
 * and its translation read from the packet's conntrack entry. A function
 * of its own, off the hot path's frame.
 */
static __noinline void uplink_new(struct __sk_buff *skb, const struct tf_flow_key *key,
				  __u64 nfct, __u32 bridge, __u32 tcp_flags)
{
	__u32 len = skb->len, segs = skb_segs(skb), zero = 0;
	struct tf_uplink_value *nv = bpf_map_lookup_elem(&uplink_scratch, &zero);

	if (!nv) {
		/* Cannot happen (index 0 of a per-CPU array); counted if it does. */
		__sync_fetch_and_add(&uplink_flow_map_full, 1);
		return;
	}
	__builtin_memset(nv, 0, sizeof(*nv));
	flow_first(&nv->flow, true, len, segs, uplink_now(), tcp_flags);
	nv->ct_id = nfct & ~TF_NFCT_INFOMASK;
	nat_vm_side(&nv->nat, key, nfct, bridge);
	__sync_fetch_and_or(&tf_natport_bits[key->local_port / 64], 1ULL << (key->local_port % 64));
	uplink_insert(key, nv, len, segs, tcp_flags);
}

/*
 * Uplink TC egress: a VM's forwarded packet leaving the host, after
 * SNAT. Its uplink flow (local = the translated source) counts it as tx;
 * a new flow, or one whose conntrack entry changed (the old one expired
 * and the port went to a new connection), gets its translation recorded.
 */
static __always_inline void uplink_egress(struct __sk_buff *skb, __u32 ifindex, __u32 len,
					  __u32 segs)
{
	__u32 bridge = skb->ingress_ifindex, tcp_flags = 0;
	struct tf_uplink_value *v;
	struct tf_uplink_slot *s;
	struct tf_flow_key key;
	__u64 nfct, ct_id;

	if (!bridge) {
		host_egress(skb, ifindex);
		return;
	}
	if (!from_vm_bridge(bridge))
		return;
	if (flow_key(skb, ifindex, true, &key, &tcp_flags, NULL))
		return;	/* no flow to join: the tap counted it as unparsed */
	nfct = skb_nfct(skb);
	ct_id = nfct & ~TF_NFCT_INFOMASK;
	s = uplink_slot(&key);
	if (s && slot_hit(s, &key) && s->ct_id == ct_id && same_vm_side(&s->nat, nfct)) {
		slot_count(s, 1, len, segs, tcp_flags);
		return;
	}
	v = bpf_map_lookup_elem(&uplink_flows, &key);
	if (!v) {
		uplink_new(skb, &key, nfct, bridge, tcp_flags);
		return;	/* cached from its next packet on */
	}
	/* Before counting: this packet is the new VM side's. */
	if (v->ct_id != ct_id || !same_vm_side(&v->nat, nfct))
		nat_update(v, &key, nfct, ct_id, bridge);
	flow_count(&v->flow, true, len, segs, false, tcp_flags);
	slot_fill(s, &key, v);
}

/*
 * Uplink TC ingress (before conntrack: no entry yet): a packet that
 * belongs to an uplink flow (local = its destination, as the flow's key
 * was made at egress) counts as the flow's rx. Anything else, the host's
 * own traffic included, is only in the interface counters.
 */
static __always_inline void uplink_ingress(struct __sk_buff *skb, __u32 ifindex, __u32 len,
					   __u32 segs)
{
	struct tf_uplink_value *v;
	struct tf_uplink_slot *s;
	struct tf_flow_key key;
	__u32 tcp_flags = 0;

	if (!tf_uplink_rx_armed)
		return;
	if (flow_key(skb, ifindex, false, &key, &tcp_flags, NULL))
		return;
	s = uplink_slot(&key);
	if (s && slot_hit(s, &key)) {
		slot_count(s, 0, len, segs, tcp_flags);
		return;
	}
	v = bpf_map_lookup_elem(&uplink_flows, &key);
	if (v && !(v->nat.flags & TF_NAT_HOST)) {
		flow_count(&v->flow, false, len, segs, false, tcp_flags);
		slot_fill(s, &key, v);
	}
}

/* ---- capture -------------------------------------------------------------- */

/*
 * Load-time constants (userspace sets them before load): with tf_cap_on
 * false the verifier drops every capture branch, so the programs cost
 * what they cost before when nobody captures.
 */
const volatile bool tf_cap_on = false;
const volatile __u32 tf_cap_sample = 1;
const volatile __u32 tf_cap_snaplen = TF_CAP_SNAPLEN_MAX;
const volatile struct tf_cap_filter tf_cap_filter = {};

/* The interfaces to capture (userspace sets them before attaching). */
__u64 tf_cap_if_bits[TF_CAP_IF_BITS / 64] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);	/* userspace sizes it (--buffer) */
} cap_rb SEC(".maps");

/*
 * One record being built (the ring buffer takes it with its actual
 * length), and the flow filter's key: off the stack, which the flow path
 * already fills.
 */
struct tf_cap_rec {
	struct tf_flow_key k;
	struct tf_cap_hdr h;
	__u8 data[TF_CAP_SNAPLEN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tf_cap_rec);
} cap_scratch SEC(".maps");

static __always_inline bool cap_endpoint(const volatile struct tf_cap_endpoint *e,
					 const __u8 ip[16], __u16 port, bool ports)
{
	if (e->ip_set) {
		for (int i = 0; i < 16; i++)
			if (e->ip[i] != ip[i])
				return false;
	}
	return !ports || !e->port || e->port == port;
}

/*
 * Does the frame belong to the --flow filter's flow (either way round)?
 * A function of its own (not inlined): its parser's stack is not added
 * to the flow path's, which has little left.
 */
static __noinline bool cap_flow_match(struct __sk_buff *skb, struct tf_flow_key *k, int dir)
{
	const volatile struct tf_cap_filter *f = &tf_cap_filter;
	__u32 tcp_flags;
	bool ports;

	if (!skb || !k || flow_key(skb, skb->ifindex, dir == TF_HOOK_INGRESS, k, &tcp_flags, NULL))
		return false;
	if ((f->family && f->family != k->family) || (f->proto && f->proto != k->proto))
		return false;
	ports = k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP ||
		k->proto == IPPROTO_UDPLITE || k->proto == IPPROTO_SCTP ||
		k->proto == IPPROTO_DCCP;
	return (cap_endpoint(&f->a, k->local_ip, k->local_port, ports) &&
		cap_endpoint(&f->b, k->remote_ip, k->remote_port, ports)) ||
	       (cap_endpoint(&f->a, k->remote_ip, k->remote_port, ports) &&
		cap_endpoint(&f->b, k->local_ip, k->local_port, ports));
}

/*
 * Sample the frame into cap_rb: cheap tests first (is this interface
 * captured, is this frame the one in N), the flow filter only for the
 * frames that pass them. Never changes the packet.
 */
static __always_inline void capture(struct __sk_buff *skb, struct tf_if_counters *c, int dir)
{
	__u32 ifindex = skb->ifindex, len = skb->len, cap_len, zero = 0;
	struct tf_cap_rec *r;

	if (!tf_cap_on || !c || ifindex >= TF_CAP_IF_BITS ||
	    !(tf_cap_if_bits[ifindex / 64] & (1ULL << (ifindex % 64))))
		return;
	if (tf_cap_sample > 1 && bpf_get_prandom_u32() % tf_cap_sample)
		return;
	r = bpf_map_lookup_elem(&cap_scratch, &zero);
	if (!r)
		return;
	if (tf_cap_filter.on && !cap_flow_match(skb, &r->k, dir))
		return;
	cap_len = len < tf_cap_snaplen ? len : tf_cap_snaplen;
	if (cap_len > TF_CAP_SNAPLEN_MAX)
		cap_len = TF_CAP_SNAPLEN_MAX;
	if (!cap_len || bpf_skb_load_bytes(skb, 0, r->data, cap_len))
		return;
	r->h.ts_ns = bpf_ktime_get_ns();
	r->h.ifindex = ifindex;
	r->h.orig_len = len;
	r->h.cap_len = cap_len;
	r->h.sample = tf_cap_sample;
	r->h.hook = dir;
	/* Per-CPU counters: this CPU's entry of the interface. */
	if (bpf_ringbuf_output(&cap_rb, &r->h, sizeof(r->h) + cap_len, 0))
		c->cap_lost[dir & 1]++;
	else
		c->cap_samples[dir & 1]++;
}

static __always_inline int counters_only(struct __sk_buff *skb, int dir)
{
	struct tf_if_counters *c = count_skb(skb->ifindex, dir, skb->len, skb_segs(skb));

	capture(skb, c, dir);
	return TC_ACT_UNSPEC;
}

/* Taps: ingress = sent by the VM (tx), egress = delivered to it (rx). */
static __always_inline int tap(struct __sk_buff *skb, int dir)
{
	__u32 len = skb->len, segs = skb_segs(skb), ifindex = skb->ifindex;
	struct tf_if_counters *c = count_skb(ifindex, dir, len, segs);
	struct tf_tap_pkt p = { .len = len, .segs = segs };

	if (c && account_flow(skb, ifindex, dir == TF_HOOK_INGRESS, &p) &&
	    tcp_analyse(skb, &p.key, dir == TF_HOOK_INGRESS, &p.pos))
		__sync_fetch_and_add(&tcp_flow_map_full, 1);
	capture(skb, c, dir);
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

/* The uplink with the NAT join: counters, and uplink flows of VMs. */
SEC("tc")
int tf_uplink_ingress(struct __sk_buff *skb)
{
	__u32 len = skb->len, segs = skb_segs(skb), ifindex = skb->ifindex;
	struct tf_if_counters *c = count_skb(ifindex, TF_HOOK_INGRESS, len, segs);

	if (c)
		uplink_ingress(skb, ifindex, len, segs);
	capture(skb, c, TF_HOOK_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tf_uplink_egress(struct __sk_buff *skb)
{
	__u32 len = skb->len, segs = skb_segs(skb), ifindex = skb->ifindex;
	struct tf_if_counters *c = count_skb(ifindex, TF_HOOK_EGRESS, len, segs);

	if (c)
		uplink_egress(skb, ifindex, len, segs);
	capture(skb, c, TF_HOOK_EGRESS);
	return TC_ACT_UNSPEC;
}
