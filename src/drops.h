/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dropped packets: the kfree_skb tracer's userspace side, its lifecycle
 * (load, which interfaces it watches, attach, detach) and the harvest of
 * its map. The tracer (bpf/drops.bpf.c) aggregates the drops of the traced
 * interfaces' packets in a map; every poll takes its entries out, and
 * drop_attr.h attributes them to VMs and flows.
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

#endif /* TF_DROPS_SRC_H */
