/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dropped packets attributed: every harvested drop goes to a VM and, where
 * it can, to one of the VM's flows:
 *   1. the packet is a VM flow (its tuple, either way, on one of the taps);
 *   2. the packet is an uplink flow of the NAT join (after SNAT, or a
 *      reply before de-NAT): the VM flow it translates;
 *   3. it was dropped on, or came in on, a VM's tap;
 *   4. its source or destination MAC is a VM's;
 *   5. its source or destination address is one a VM's flows use.
 * The rest belongs to no VM: it goes to one host aggregate per reason.
 * Without a flow table (stats), only 3 and 4 apply. The run's table of
 * attributed drops is here too; the tracer that harvests them is drops.h.
 */
#ifndef TF_DROP_ATTR_H
#define TF_DROP_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drops.h"

struct tf_collector;
struct tf_flows;

/* ---- attribution --------------------------------------------------------- */

struct tf_drop_attr {
	int tap;			/* index of the VM's tap in the collector; -1: host */
	bool tx;			/* the VM's own packet (else one for the VM) */
	bool has_flow;
	struct tf_flow_key flow;	/* the VM flow (VM view, tap ifindex) */
	const char *how;		/* "flow", "nat", "device", "mac", "address" */
};

/* Addresses the VMs' flows use (rule 5), rebuilt from the flow table. */
struct tf_vm_addrs {
	struct tf_vm_addr {
		uint8_t family;
		uint8_t ip[16];
		int tap;
	} *a;
	size_t n;
};
int tf_vm_addrs_build(struct tf_vm_addrs *va, const struct tf_collector *c,
		      const struct tf_flows *fl);
void tf_vm_addrs_free(struct tf_vm_addrs *va);

/*
 * Attribute one drop (fl, va may be NULL: no flow table). Pure: reads the
 * collector's targets and the tables only.
 */
void tf_drop_attribute(const struct tf_collector *c, const struct tf_flows *fl,
		       const struct tf_vm_addrs *va, const struct tf_drop_key *k,
		       struct tf_drop_attr *out);
/* The flow key of a dropped packet on interface ifindex, in one view (pure). */
void tf_drop_flow_key(const struct tf_drop_pkt *p, uint32_t ifindex, bool tx,
		      struct tf_flow_key *out);

/* ---- the run's table ------------------------------------------------------ */

/* One row: a VM (or the host), a reason, a location, the device. */
struct tf_drop_group {
	int tap;			/* -1: host aggregate (reason only) */
	uint32_t reason;
	uint64_t location;		/* 0 in the host aggregate */
	uint32_t ifindex;		/* where it was dropped (skb->dev); 0 for host */
	uint64_t packets, bytes;
	uint64_t first_ns, last_ns;
	struct tf_drop_key last;	/* the latest packet */
	struct tf_drop_attr last_attr;
};

struct tf_flow_drops {
	struct tf_flow_key flow;	/* a VM flow (VM view) */
	uint64_t packets;
	/* By direction, VM view: [0] for the VM, [1] the VM's own (drop_attr.tx). */
	struct {
		uint64_t packets, bytes;	/* bytes: skb->len where it was dropped */
	} dir[2];
	/*
	 * The traced device the host was forwarding the VM's own dropped
	 * packets to (the drop key's out_ifindex; the latest), 0 if none was:
	 * where a flow that never reached its uplink was going.
	 */
	uint32_t fwd_ifindex;
};

/* A harvested kernel entry's gain, not attributed yet. */
struct tf_drop_pending {
	struct tf_drop_key k;
	struct tf_drop_counts v;
};

struct tf_drop_table {
	struct tf_drop_group *g;
	size_t n, cap;
	struct tf_drop_pending *pend;	/* harvested, to attribute */
	size_t n_pend, cap_pend;
	uint64_t *tap_packets;		/* per collector target: drops attributed to it */
	uint64_t *dev_packets;		/* per collector target: drops on it (skb->dev) */
	size_t n_taps;
	struct tf_flow_drops *fd;	/* per VM flow (flows' drops column) */
	size_t n_fd, cap_fd;
	uint32_t *fd_slots;		/* fd by flow key: entry + 1, 0 free */
	size_t n_fd_slots;		/* a power of 2, at least twice n_fd */
	uint64_t host_packets;
};

/* Add one harvested entry, attributed. */
int tf_drop_table_add(struct tf_drop_table *t, const struct tf_collector *c,
		      const struct tf_drop_key *k, const struct tf_drop_counts *v,
		      const struct tf_drop_attr *a);
uint64_t tf_drop_table_flow(const struct tf_drop_table *t, const struct tf_flow_key *flow);
/* The flow's drops, or NULL if none was attributed to it. */
const struct tf_flow_drops *tf_drop_table_flow_entry(const struct tf_drop_table *t,
						     const struct tf_flow_key *flow);
/* Where the host was forwarding the VM flow's dropped packets to (ifindex), 0: nowhere known. */
uint32_t tf_drop_table_fwd_out(const struct tf_drop_table *t, const struct tf_flow_key *flow);
void tf_drop_table_free(struct tf_drop_table *t);

/*
 * Take what the tracer counted since the last harvest into t's pending
 * entries. Before the flow map is read: every drop harvested then is of a
 * packet whose flow entry the tap program had made already, so the flow
 * table read after it knows the flow. 0 or -errno.
 */
int tf_drops_harvest(struct tf_drop_table *t, struct tf_drop_tracer *tr);
/* Attribute the pending entries against fl (may be NULL) and add them. 0 or -ENOMEM. */
int tf_drops_attribute(struct tf_drop_table *t, const struct tf_collector *c,
		       const struct tf_flows *fl);
/* One poll without a flow table to keep in step: harvest, then attribute. */
int tf_drops_poll(struct tf_drop_table *t, struct tf_drop_tracer *tr,
		  const struct tf_collector *c, const struct tf_flows *fl);

#endif /* TF_DROP_ATTR_H */
