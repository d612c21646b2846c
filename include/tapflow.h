/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by the BPF programs (bpf/) and userspace (src/).
 * Fixed-width __u* types only: this header is compiled by clang -target bpf
 * against vmlinux.h and by gcc against <linux/types.h>.
 *
 * The flow interface, kernel side (bpf/tapflow.bpf.c), for userspace:
 * - Programs: tf_tap_ingress / tf_tap_egress on VM taps (counters in
 *   if_counters exactly like tf_ingress/tf_egress, plus the flow path);
 *   tf_ingress / tf_egress stay counters-only (bridges, uplinks, --iface).
 *   All return TC_ACT_UNSPEC and never modify the packet.
 * - Maps: `flows` (struct tf_flow_key -> struct tf_flow_value), the VM
 *   taps' flows only, a shared BPF_MAP_TYPE_HASH (one value per flow, not
 *   per CPU; why: comment at the map), max_entries TF_FLOWS_DEFAULT, set
 *   with bpf_map__set_max_entries() before load, preallocated.
 *   `uplink_flows` (struct tf_flow_key -> struct tf_uplink_value), the NAT
 *   join's uplink flows, written by the uplink programs alone (see "NAT
 *   join" below): the same map type, not preallocated; userspace sizes it
 *   like `flows` when the join is on, to 1 entry otherwise. `tap_aggr`
 *   (__u32 ifindex -> struct tf_tap_aggr), BPF_MAP_TYPE_PERCPU_HASH,
 *   TF_MAX_IFACES entries: create a zeroed entry per tap before attaching
 *   (the programs create a missing one). The interface counters
 *   (if_counters, if_spill) unchanged.
 * - .bss: map_full (packets not counted at all: no counters entry, or
 *   no tap_aggr entry when one was needed, and none could be created),
 *   flow_map_full (packets of new flows that found `flows` full: they are
 *   in tap_aggr overflow_rx/tx), parse_errors (truncated/malformed frames:
 *   in tap_aggr unparsed_rx/tx, never in a flow), uplink_flow_map_full
 *   (VMs' forwarded packets that found `uplink_flows` full when their
 *   uplink flow was to be made: in the uplink's interface counters only,
 *   joined with no VM flow).
 * - .bss tf_flows_full_ns: when an insert last found `flows` full; new
 *   flows skip the insert (straight to overflow) for 10 ms after it.
 *   Userspace sets it to 0 after it deleted entries (expiry).
 * - .rodata tf_test_copy_headers: tests only, leave it false.
 * - Invariant, per tap and direction (rx = TC egress, tx = TC ingress), for
 *   packets, bytes and segs: sum over its flows + overflow + unparsed ==
 *   if_counters. Flows that userspace deletes (expiry) leave the sum: keep
 *   their totals if the invariant is to be checked afterwards.
 * - Unparsed (parse_errors) are: frames shorter than an Ethernet header or
 *   a VLAN tag; IPv4 with version != 4, ihl < 5, header beyond the frame,
 *   tot_len < header; IPv6 with version != 6 or header cut; IPv6 extension
 *   chain cut, hop-by-hop not first, or more than 6 extension headers; TCP
 *   header cut or data offset < 5 or beyond the packet; UDP/UDP-Lite < 8,
 *   SCTP/DCCP < 12, ICMP/ICMPv6 < 8 bytes; ARP header cut, or Ethernet/IPv4
 *   ARP addresses cut. "Cut" is against the IP packet's end (tot_len or
 *   payload_len when non-zero), so Ethernet padding is never a header.
 *   Everything else is a flow: unknown EtherTypes (family TF_FAM_OTHER),
 *   unknown IP protocols and non-first fragments (ports 0).
 *
 * Changes to the structs below made by the kernel side:
 * - struct tf_flow_key: the former `__u16 pad` (offset 10) is now
 *   `vlan_inner`, the VID of the second VLAN tag (QinQ), 0 = none; `vlan`
 *   is the outermost tag. Size (48) and all other offsets unchanged. Keep
 *   zeroing keys before filling them.
 * - struct tf_flow_value: `tcp_flags_rx/tx` are __u32 (were __u8 + pad[6]),
 *   so that the shared map can OR them atomically (BPF atomics are 32/64
 *   bit). Only the low 8 bits are used (TCP header byte 13: CWR ECE URG ACK
 *   PSH RST SYN FIN = 0x80 .. 0x01). Offsets of the fields before them unchanged.
 * - struct tf_flow_value: 80 bytes; the NAT join's fields (ct_id, nat) are
 *   in struct tf_uplink_value, the value of the uplink flows' own map.
 * - ARP frames (ethertype 0x0806, Ethernet/IPv4 ARP) carry the ARP
 *   protocol addresses in local_ip/remote_ip (IPv4 layout), family stays
 *   TF_FAM_OTHER; see the key comment.
 * - 802.3 frames (a length, < 0x0600, where the EtherType would be: LLC,
 *   STP) are keyed with ethertype 0x0001 (ETH_P_802_3), so that every length
 *   does not make a flow of its own.
 */
#ifndef TAPFLOW_H
#define TAPFLOW_H

/*
 * TC hook the packet was seen on. Which of these is the VM's rx or tx
 * depends on the interface's role (tap: ingress = sent by the VM), which
 * only userspace knows; the kernel side stays role-agnostic.
 */
enum tf_hook_dir {
	TF_HOOK_INGRESS = 0,
	TF_HOOK_EGRESS = 1,
	TF_HOOK_DIRS = 2,
};

struct tf_dir_counters {
	__u64 packets;	/* skbs */
	__u64 bytes;	/* skb->len at the hook, Ethernet header included */
	__u64 segs;	/* sum of max(gso_segs, 1) */
};

/*
 * Value of the per-CPU interface counters: a slot of if_counters (a
 * PERCPU_ARRAY of TF_IF_SLOTS, slot ifindex % TF_IF_SLOTS, owned by the
 * ifindex in .bss tf_if_owner[slot]), or for an interface without a slot
 * an entry of if_spill (PERCPU_HASH keyed by __u32 ifindex). Userspace
 * goes through src/ifcounters.h.
 */
struct tf_if_counters {
	struct tf_dir_counters dir[TF_HOOK_DIRS];
	/* Capture, per TC hook: frames sampled, and lost (ring buffer full). */
	__u64 cap_samples[TF_HOOK_DIRS];
	__u64 cap_lost[TF_HOOK_DIRS];
};

/* if_counters slots: a power of 2, a .bss array of owners as large. */
#define TF_IF_SLOTS 1024
/* Capacity of if_spill and tap_aggr; userspace can raise it before load. */
#define TF_MAX_IFACES 4096

/*
 * Per-flow accounting on VM taps. The key is in the VM's point of
 * view (local = the VM side, remote = the peer), so that both directions of
 * a connection land in one entry.
 */
#define TF_FLOWS_DEFAULT 65536

enum tf_flow_family {
	TF_FAM_OTHER = 0,	/* not IP: counted by ethertype (ARP, ...) */
	TF_FAM_IPV4 = 4,
	TF_FAM_IPV6 = 6,
};

struct tf_flow_key {
	__u32 ifindex;		/* the VM's tap */
	/*
	 * VLAN ids (VID, 12 bits), 0 = none: vlan is the outermost tag (the
	 * offloaded skb->vlan_tci if present, else the first in-packet tag),
	 * vlan_inner the next one (QinQ). Deeper tags are skipped, not keyed.
	 */
	__u16 vlan;
	__u16 ethertype;	/* host order; the one after the VLAN tags */
	__u8 family;		/* enum tf_flow_family */
	__u8 proto;		/* IPPROTO_*; 0 for TF_FAM_OTHER */
	__u16 vlan_inner;
	/*
	 * IPv4 in the first 4 bytes, rest zero. Also set for Ethernet/IPv4
	 * ARP (TF_FAM_OTHER, ethertype 0x0806): local = the VM side's
	 * protocol address (sender on tx, target on rx), remote = the other.
	 * Zero for every other TF_FAM_OTHER frame.
	 */
	__u8 local_ip[16];
	__u8 remote_ip[16];
	/*
	 * TCP/UDP/SCTP/DCCP/UDP-Lite: ports, host order. ICMP/ICMPv6 echo
	 * and other queries: local_port = identifier, remote_port = (request
	 * type << 8) | code, so that a request and its reply share one flow,
	 * as in conntrack (ICMP queries: echo 8/0, timestamp 13/14, info
	 * 15/16, address mask 17/18; ICMPv6: echo 128/129, node information
	 * 139/140). Other ICMP/ICMPv6 (errors, NDP, MLD): local_port 0,
	 * remote_port = (type << 8) | code. Non-first IP fragments and other
	 * protocols: both 0 (family, proto and addresses still set); for
	 * ICMP that reads as type 0 code 0, which no whole ICMP packet gets
	 * (echo replies are keyed as requests, 8 << 8), so ICMP with both
	 * ports 0 means "later fragments".
	 */
	__u16 local_port;
	__u16 remote_port;
};

/*
 * NAT join. With the join on, the uplink gets tf_uplink_ingress /
 * tf_uplink_egress: the counters of tf_ingress/tf_egress, plus uplink flows
 * in their own map `uplink_flows`, keyed like tap flows with ifindex = the uplink
 * and local = the host's side as the outside sees it (after SNAT: the
 * address and port the VM leaves as), tx = left the host (TC egress),
 * rx = arrived (TC ingress). Only forwarded packets of VMs make an uplink
 * flow: at egress, skb->ingress_ifindex must be one of .bss tf_bridges[]
 * (the VMs' bridges, tf_n_bridges of them, written by userspace before
 * attaching); ingress packets only count into an existing uplink flow, so
 * the host's own traffic never enters the map.
 *
 * An uplink flow's value (struct tf_uplink_value) says which VM-side tuple
 * it is (struct tf_nat_vm), read from the packet's conntrack entry when the
 * flow is created or its entry changes (ct_id). Kept in the flow's own
 * value, so it lives and dies with it: expiry needs nothing else.
 */
#define TF_MAX_BRIDGES 64
/* Bits of .bss tf_natport_bits: the local ports of live uplink flows. */
#define TF_NATPORT_BITS 65536

enum tf_nat_flags {
	TF_NAT_UPLINK = 8,	/* set on every uplink flow's VM side */
	TF_NAT_CT = 1,		/* read from a conntrack entry (else none: tuple unchanged) */
	TF_NAT_INBOUND = 2,	/* the VM answers: the entry was opened from outside */
	TF_NAT_RELATED = 4,	/* an ICMP error of another entry: VM side unknown */
	TF_NAT_HOST = 16,	/* the host's own traffic now uses this tuple (the VM's
				 * entry ended): arrivals are not the VM's any more */
};

/* IPS_SRC_NAT / IPS_DST_NAT bits of ct_status (uapi nf_conntrack_common.h). */
#define TF_IPS_SRC_NAT (1u << 4)
#define TF_IPS_DST_NAT (1u << 5)

struct tf_nat_vm {
	/*
	 * The VM side, keyed as its tap flow is (VM point of view, ports and
	 * ICMP ids before translation) except: ifindex = the bridge the
	 * packets came from (skb->ingress_ifindex), vlan/vlan_inner 0.
	 */
	struct tf_flow_key vm;
	__u32 ct_status;	/* the entry's IPS_* bits (low 32) */
	__u16 zone;		/* conntrack zone id (0: default) */
	__u8 zone_dir;		/* zone direction bits (NF_CT_ZONE_DIR_ORIG 1, _REPL 2) */
	__u8 flags;		/* enum tf_nat_flags; 0: none recorded */
};

struct tf_flow_value {
	struct tf_dir_counters rx;	/* delivered to the VM */
	struct tf_dir_counters tx;	/* sent by the VM */
	/*
	 * bpf_ktime_get_ns() when the entry is made; last: counted in ticks
	 * from it (first_jiffies). Uplink flows: the coarse clock,
	 * once, when the entry is made (first = last): the programs stamp no
	 * packet there; userspace dates their activity by their counters.
	 */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u32 tcp_flags_rx;		/* OR of the TCP flags seen each way */
	__u32 tcp_flags_tx;		/* (low 8 bits: header byte 13) */
	/*
	 * Jiffies when the entry was made (taps): a packet's last_seen_ns is
	 * first_seen_ns + the ticks since (true to the tick, 1-10 ms), no
	 * clock reading per packet; see flow_now() in bpf/tapflow.bpf.c.
	 */
	__u64 first_jiffies;
};

/*
 * Value of `uplink_flows`: an uplink flow's counters, kept as a tap flow's
 * are (rx = arrived on the uplink, tx = left it; first_jiffies is not read),
 * and its VM side.
 */
struct tf_uplink_value {
	struct tf_flow_value flow;
	/*
	 * The conntrack entry (its kernel address, an identity only) that
	 * `nat` was read from; the egress program reads the entry again when
	 * it changes.
	 */
	__u64 ct_id;
	struct tf_nat_vm nat;		/* the VM side */
};

/*
 * Per-tap aggregate of what is on the tap but in no flow entry, so that
 * for every VM: sum(flows) + overflow + unparsed = its stats counters.
 * Value of the per-CPU hash tap_aggr, keyed by __u32 ifindex; userspace
 * creates the zeroed entry of every tap it attaches tf_tap_* to (the
 * programs create a missing one, as for if_counters). rx/tx are the VM's
 * (tap TC egress / ingress).
 *   overflow_*: packets of flows that had no entry and could not get one
 *               (flow map full); also counted in .bss flow_map_full.
 *   unparsed_*: frames that could not be parsed (truncated or malformed
 *               headers); also counted in .bss parse_errors.
 */
struct tf_tap_aggr {
	struct tf_dir_counters overflow_rx, overflow_tx;	/* flow map was full */
	struct tf_dir_counters unparsed_rx, unparsed_tx;	/* truncated/malformed */
};

/*
 * An uplink flow's counts up to the moment its outside tuple went to
 * another VM side (another VM, or another connection of the same VM):
 * map nat_retired (key -> the flow's struct tf_uplink_value as it was), which
 * userspace empties every poll; the live flow starts again from zero.
 */
struct tf_nat_retired_key {
	struct tf_flow_key key;		/* the uplink flow */
	__u64 ct_id;			/* its conntrack entry until then */
};

#define TF_NAT_RETIRED_MAX 4096

/*
 * A slot of the NAT join's per-CPU cache of uplink flows (map uplink_cache,
 * a PERCPU_ARRAY of TF_UPLINK_CACHE_SLOTS; bpf/tapflow.bpf.c says how it
 * works). Userspace reads every CPU's slots to run tf_uplink_flush only on
 * the CPUs that have packets pending (tf_uplink_slot_pending).
 */
#define TF_UPLINK_CACHE_SLOTS 16	/* a power of 2 */

struct tf_uplink_slot {
	struct tf_flow_key key;
	struct tf_dir_counters pending[2];	/* [0] rx (uplink ingress), [1] tx */
	__u64 ct_id;			/* the flow's when the slot was filled */
	struct tf_nat_vm nat;		/* the flow's VM side then (same_vm_side) */
	__u32 tcp_flags[2];		/* pending flags, as pending[] */
	__u32 gen;			/* tf_uplink_gen then */
	__u8 valid;
	__u8 busy;
	__u8 pad[2];
};

/*
 * Has the slot packets not in `uplink_flows` yet, or is its CPU changing it (a
 * packet may be on its way in)? Either way only tf_uplink_flush on that
 * CPU moves them.
 */
static inline int tf_uplink_slot_pending(const struct tf_uplink_slot *s)
{
	return s->busy || s->pending[0].packets || s->pending[1].packets;
}

/* Capture: its record and filter types, for the skeleton's users too. */
#include "capture.h"
/* TCP health: the analysis' per-flow and per-tap state. */
#include "tcp_state.h"

#endif /* TAPFLOW_H */
