/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The NAT join: which uplink flow is which VM flow.
 *
 * The uplink programs keep uplink flows in a map of their own
 * (uplink_flows, include/tapflow.h): keyed as the outside sees them (local
 * = the address and port the VM leaves as), each carrying its VM side
 * (struct tf_nat_vm), keyed as the VM's tap flow is but with the bridge's
 * ifindex. The flow table reads them into its uplink table
 * (tf_flows_init_uplinks); this module indexes the uplink flows by their
 * VM side and answers, for a tap flow, the uplink flows that carried it:
 * the translation, the uplink's counters, and the forwarding loss between
 * the two ends.
 *
 * Several uplink flows can be one VM flow (its conntrack entry expired and
 * a new one got another port), and several VMs can leave as one address
 * with different ports: the index keys by the full VM side, bridge
 * included, so neither mixes flows up.
 */
#ifndef TF_NAT_H
#define TF_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows.h"
#include "tapflow.h"

struct tf_nat_ref {
	struct tf_flow_key vm;		/* the index key (tf_nat_vm_key form) */
	struct tf_flow_key up;		/* the uplink flow (live or retired) */
	struct tf_uplink_total total;	/* its totals, with its tf_nat_vm */
	struct tf_nat_ref *next;
};

struct tf_nat_index {
	struct tf_nat_ref **buckets;
	size_t nbuckets, n;
	struct tf_nat_ref *refs;	/* one allocation for all */
};

/*
 * Index the uplink flows of fl's uplink table (fl->uplinks; none: an empty
 * index) and its retired uplink segments by their VM side. Rebuild after
 * every poll. 0 or -ENOMEM (the index is then empty).
 */
int tf_nat_index_build(struct tf_nat_index *ix, const struct tf_flows *fl);
void tf_nat_index_free(struct tf_nat_index *ix);

/* One VM flow joined with the uplink flows that carried it. */
struct tf_nat_link {
	size_t n_up;			/* uplink flows of this VM flow; 0: none reached it */
	/*
	 * Forwarded to the uplink up_key.ifindex, yet none of its packets got
	 * there (n_up 0): its drops say where it was going (report.c). Then
	 * nothing is known of its translation, and lost_tx is all it sent.
	 */
	bool never_left;
	struct tf_flow_key up_key;	/* the latest uplink flow: nat ip/port, uplink */
	struct tf_nat_vm nat;		/* ... and its translation */
	bool translated;		/* SNAT or DNAT: the outside sees up_key's local */
	/* The VM's packets counted at the uplink, VM point of view. */
	struct tf_dir_counters up_tx;	/* sent by the VM, left the host */
	struct tf_dir_counters up_rx;	/* for the VM, arrived on the uplink */
	/* Packets that entered the host and did not leave it (>= 0). */
	uint64_t lost_tx;		/* tx - up_tx: sent, never left the uplink */
	uint64_t lost_rx;		/* up_rx - rx: arrived, never delivered */
};

/*
 * Join the tap flow (key in the VM's view, totals tap) whose tap is a port
 * of bridge_ifindex. out->n_up == 0 if no uplink flow carried it.
 */
void tf_nat_join(const struct tf_nat_index *ix, const struct tf_flow_key *tap_key,
		 int bridge_ifindex, const struct tf_flow_value *tap, struct tf_nat_link *out);

/*
 * The local ports of the uplink flows (fl->uplinks) that have a kernel
 * entry, as the bitmap the uplink programs check the host's own packets
 * against (TF_NATPORT_BITS bits).
 */
void tf_nat_ports_bitmap(const struct tf_flows *fl, uint64_t bits[TF_NATPORT_BITS / 64]);

/*
 * Take the kernel's retired uplink segments (map nat_retired, fd) into
 * the retired list of fl's uplink table. 0 or -errno.
 */
int tf_nat_harvest_retired(int fd, struct tf_flows *fl);

/* ---- pure helpers (unit-tested) ---------------------------------------- */

/* The index key of a tap flow: its key with ifindex = the bridge, no VLAN. */
void tf_nat_vm_key(const struct tf_flow_key *tap_key, int bridge_ifindex,
		   struct tf_flow_key *out);
/* A packet difference that cannot be negative (attach order, inbound first packets). */
uint64_t tf_nat_lost(uint64_t entered, uint64_t left);

#endif /* TF_NAT_H */
