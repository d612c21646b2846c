/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dropped packets: the kfree_skb tracer's userspace side.
 *
 * The tracer (bpf/drops.bpf.c) aggregates the drops of the traced
 * interfaces' packets in a map; every poll takes its entries out and
 * attributes each to a VM and, where it can, to one of the VM's flows:
 *   1. the packet is a VM flow (its tuple, either way, on one of the taps);
 *   2. the packet is an uplink flow of the NAT join (after SNAT, or a
 *      reply before de-NAT): the VM flow it translates;
 *   3. it was dropped on, or came in on, a VM's tap;
 *   4. its source or destination MAC is a VM's;
 *   5. its source or destination address is one a VM's flows use.
 * The rest belongs to no VM: it goes to one host aggregate per reason.
 * Without a flow table (stats), only 3 and 4 apply.
 */
#ifndef TF_DROPS_SRC_H
#define TF_DROPS_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "tapflow.h"
#include "dropkey.h"
#include "ksyms.h"
#include "oncpu.h"

struct tf_collector;
struct tf_flows;
struct drops_bpf;
struct bpf_link;
struct ring_buffer;

typedef void (*tf_drop_event_fn)(const struct tf_drop_event *e, void *ctx);

/* What a kernel entry gained since it was last read, its times in ns (bpf_ktime_get_ns). */
struct tf_drop_counts {
	uint64_t packets, bytes;
	uint64_t first_ns, last_ns;	/* of the entry, as it is now */
};

/* A kernel drop entry as read at the last poll (the next poll reports the difference). */
struct tf_drop_seen {
	struct tf_drop_key k;
	struct tf_drop_value v;
	struct tf_drop_seen *next;
};

#define TF_DROP_SEEN_BUCKETS 4096

struct tf_drop_tracer {
	struct drops_bpf *skel;
	struct bpf_link *link;
	const char *hook;		/* "tp_btf/kfree_skb" or "raw_tp/kfree_skb" */
	/*
	 * tp_btf/sk_data_ready marks the packets raw sockets queued copies of,
	 * which tells a packet they received from a dropped one; off where it
	 * could not load (that packet's NO_SOCKET then counts as a drop).
	 */
	bool rx_sk;			/* the tracepoint passes the receiving socket (6.12+) */
	struct ring_buffer *rb;		/* --events only */
	tf_drop_event_fn on_event;
	void *event_ctx;
	bool no_lookup_and_delete;	/* old kernel: lookup, then delete */
	int nr_cpus;			/* possible CPUs: each has cache slots */
	uint64_t tick_ns;		/* a tick of the entries' times (dropkey.h), in ns */
	struct tf_drop_seen **seen;	/* TF_DROP_SEEN_BUCKETS chains */
	uint64_t harvest_races;		/* ... and drops that may be lost between */
};

struct tf_drop_losses {
	uint64_t map_full;		/* drops not aggregated: the kernel map was full */
	uint64_t events_lost;		/* --events: the ring buffer was full */
	uint64_t events_suppressed;	/* --events: over the rate limit */
	uint64_t harvest_races;
};

/*
 * Load and attach the tracer for the given interfaces (in the current
 * network namespace). events_per_sec > 0 also sends a rate-limited event
 * per drop to on_event (tf_drop_tracer_poll_events). 0, or -1 with a
 * reason in err: the tracer is then off, the rest of tapflow is not.
 */
int tf_drop_tracer_open(struct tf_drop_tracer *t, const int *ifindexes, size_t n,
			uint32_t events_per_sec, tf_drop_event_fn on_event, void *event_ctx,
			char *err, size_t errlen);
/* Trace drops on ifindex from now on (on), or no longer (an interface that went). */
void tf_drop_tracer_watch(struct tf_drop_tracer *t, int ifindex, bool on);
/*
 * Report, per kernel entry, the drops it gained since the last call (fn
 * gets the difference; first/last seen as they are); entries idle for a
 * whole poll are taken out of the map.
 */
typedef void (*tf_drop_entry_fn)(const struct tf_drop_key *k, const struct tf_drop_counts *v,
				 void *ctx);
int tf_drop_tracer_harvest(struct tf_drop_tracer *t, tf_drop_entry_fn fn, void *ctx);
/* The tracer's per-CPU cache, as harvest empties it (oncpu.h); the tracer is loaded. */
void tf_drop_tracer_cache(const struct tf_drop_tracer *t, struct tf_percpu_cache *pc);
/*
 * What entry v gained since it read as last (false: nothing), its times
 * made ns with ticks of tick_ns (pure).
 */
bool tf_drop_counts_since(const struct tf_drop_value *last, const struct tf_drop_value *v,
			  uint64_t tick_ns, struct tf_drop_counts *out);
/* Deliver the events waiting in the ring buffer. */
int tf_drop_tracer_poll_events(struct tf_drop_tracer *t);
void tf_drop_tracer_losses(const struct tf_drop_tracer *t, struct tf_drop_losses *out);
/*
 * The frees that were not losses (enum tf_kept_kind, include/dropkey.h),
 * summed over the CPUs: 0 if the tracer is not loaded.
 */
void tf_drop_tracer_kept(const struct tf_drop_tracer *t, uint64_t out[TF_KEPT_KINDS]);
/* Stop tracing (the map stays readable for a last harvest). */
void tf_drop_tracer_detach(struct tf_drop_tracer *t);
/* Trace again after tf_drop_tracer_detach (open attaches): 0, or -1 with a reason. */
int tf_drop_tracer_attach(struct tf_drop_tracer *t, char *err, size_t errlen);
void tf_drop_tracer_close(struct tf_drop_tracer *t);

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

#endif /* TF_DROPS_SRC_H */
