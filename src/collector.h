/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The collector: loads the BPF programs, attaches them to a set of
 * interfaces (VM taps, their bridges, the uplink, --iface), and turns the
 * kernel counters into per-interface totals in the VM's point of view.
 * `stats`, `flows` and `top` drive it; the agent will too.
 *
 * Programs per role: with flows on (flows, top), VM taps and --iface
 * interfaces get the flow programs (counters + per-flow accounting), bridges
 * and uplinks the counters-only ones; with flows off (stats) every interface
 * gets the counters-only programs, so stats costs what it always did.
 * With the NAT join on (flows and top, unless --no-nat), uplinks get
 * tf_uplink_ingress/egress instead: counters plus the uplink side of VM
 * flows (see include/tapflow.h and src/nat.h).
 */
#ifndef TF_COLLECTOR_H
#define TF_COLLECTOR_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "attach.h"
#include "drop_attr.h"
#include "drops.h"
#include "ifcounters.h"
#include "inventory.h"
#include "pin.h"

struct tapflow_bpf;

enum tf_role {
	TF_ROLE_TAP,	/* a VM's tap: ingress = sent by the VM */
	TF_ROLE_BRIDGE,	/* a bridge the taps sit on */
	TF_ROLE_UPLINK,	/* where NAT/routed traffic leaves the host */
	TF_ROLE_IFACE,	/* --iface: any interface, its own rx/tx */
};

const char *tf_role_name(enum tf_role role);

/* Totals in the point of view of the VM (taps) or the interface (others). */
struct tf_totals {
	uint64_t rx_packets, rx_bytes, rx_segs;
	uint64_t tx_packets, tx_bytes, tx_segs;
};

/* Earlier ifindexes a target that came back answers to. */
#define TF_OLD_IFINDEXES 4

struct tf_target {
	char ifname[IFNAMSIZ];
	int ifindex;
	enum tf_role role;
	bool has_vif;
	struct tf_vif vif;		/* valid if has_vif */
	struct tf_hook hook;
	bool traced;			/* its hooks were on at some time of the run */
	/*
	 * Gone during the run (the VM stopped, its NIC was detached, the
	 * interface was deleted): its hooks and its place in the maps are
	 * given back, its last counters stay in now.
	 */
	bool gone;
	bool gone_warned;		/* ... and the user was told */
	struct timespec gone_at;	/* CLOCK_REALTIME when it was seen gone */
	/*
	 * The same VM NIC (UUID and MAC), or the same bridge or --iface
	 * interface (name), came back with a new ifindex: the target lives on,
	 * its counts carry on from base, and flows and drops recorded under
	 * its latest earlier ifindexes still find it.
	 */
	unsigned int restarts;
	struct tf_totals base, base_overflow, base_unparsed;
	int old_ifindex[TF_OLD_IFINDEXES];
	/* The name it was first traced under (with --pin, by the first agent): its series' label. */
	char first_ifname[IFNAMSIZ];
	/*
	 * With --pin: an earlier agent traced it, and its counts, restarts
	 * and base go on from that agent's (its flows do not: see
	 * agent_metrics.h).
	 */
	bool carried;
	struct tf_totals now, prev;	/* last two snapshots */
	double now_t, prev_t;		/* their CLOCK_MONOTONIC times (s) */
	int bridge_ifindex;		/* taps, --iface: the bridge it is a port of, 0: none */
	bool nat;			/* an uplink with the NAT join programs */
	/* With the flow programs: what is on the interface but in no flow. */
	bool flows;
	bool captured;			/* its frames are sampled */
	/* In the interface's TC hooks' terms (not the VM's): ingress/egress. */
	uint64_t cap_samples[TF_HOOK_DIRS], cap_lost[TF_HOOK_DIRS];
	struct tf_totals overflow, prev_overflow;	/* the flow map was full */
	struct tf_totals unparsed, prev_unparsed;	/* truncated/malformed frames */
};

/*
 * A flow program's counters are in the VM's point of view (rx = delivered
 * to the VM = TC egress). Targets other than taps report their own view
 * (rx = TC ingress): true if the collector swaps rx/tx (and local/remote)
 * for this target.
 */
static inline bool tf_target_mirrored(const struct tf_target *t)
{
	return t->role != TF_ROLE_TAP;
}

struct tf_losses {
	uint64_t map_full;		/* interface counters the kernel could not create */
	uint64_t ringbuf_lost;		/* capture samples the ring buffer could not take */
	uint64_t parse_errors;		/* frames the parser rejected */
	uint64_t flow_map_full;		/* packets that found the flow map full */
	uint64_t uplink_flow_map_full;	/* VMs' forwarded packets that found the uplink flow map full */
	uint64_t nat_retired_full;	/* uplink flows whose old VM side's counts stayed */
	uint64_t uplink_cache_lost;	/* uplink packets cached per CPU whose flow expired */
	uint64_t tcp_flow_map_full;	/* TCP segments of flows whose TCP state found no room */
};

/* Capture: what the programs sample into the ring buffer. */
struct tf_capture_opts {
	uint32_t sample;		/* 1 in N frames, at random; 1: all */
	uint32_t snaplen;		/* bytes per frame, <= TF_CAP_SNAPLEN_MAX */
	uint32_t ringbuf_bytes;		/* a power of 2, >= the page size */
	bool taps_only;			/* --vm: the selected VMs' taps (and --iface) only */
	struct tf_cap_filter filter;	/* --flow; filter.on 0: every frame */
};

struct tf_collector_opts {
	enum tf_attach_mode attach_mode;
	bool flows;			/* flow programs on taps and --iface */
	uint32_t max_flows;		/* flow map entries; 0: TF_FLOWS_DEFAULT */
	bool nat;			/* with flows: the NAT join on uplinks */
	bool tcp;			/* with flows: TCP health on taps and --iface */
	bool drops;			/* the kfree_skb drop tracer */
	const struct tf_capture_opts *capture;	/* NULL: no capture */
	uint32_t drop_events;		/* its events per second (drops --events); 0: none */
	tf_drop_event_fn on_drop_event;
	void *drop_event_ctx;
	/*
	 * agent --pin: the maps and hooks pinned in it, an earlier agent's
	 * taken over, and what the kernel maps do not hold of a target
	 * (restarts, base totals, ...) kept there as it changes.
	 */
	struct tf_pin *pin;
};

struct tf_collector {
	struct tapflow_bpf *skel;
	struct tf_attacher attacher;
	struct tf_progs progs_counters;	/* tf_ingress/tf_egress */
	struct tf_progs progs_flows;	/* tf_tap_ingress/tf_tap_egress */
	struct tf_progs progs_uplink;	/* tf_uplink_ingress/tf_uplink_egress */
	struct tf_ifc ifc;		/* where each interface is counted */
	bool flows;			/* opts.flows, and the object has them */
	bool nat;			/* the join runs: its programs are on an uplink */
	bool nat_loaded;		/* opts.nat, flows, and the object has the join */
	bool nat_ct;			/* the kernel lets TC programs read conntrack */
	int nat_retired_fd;		/* the NAT join's retired uplink segments */
	bool capture, capture_taps_only;
	int cap_rb_fd;			/* the capture ring buffer; -1: no capture */
	int flows_fd, tap_aggr_fd;	/* -1 if the object has no such map */
	int uplink_flows_fd;		/* the NAT join's uplink flows; -1: join not loaded */
	bool tcp;			/* opts.tcp, with flows: TCP health is analysed */
	int tcp_flows_fd, tcp_taps_fd;	/* its maps; -1: off */
	uint32_t *tcp_epoch;		/* .bss tf_tcp_epoch (include/tcp_state.h) */

	bool flows_percpu, tap_aggr_percpu, uplink_flows_percpu;
	uint32_t max_flows;
	struct tf_target *targets;
	size_t n_targets;
	/* The drop tracer: on if drops_on; drops_off says why not (if asked for). */
	struct tf_drop_tracer drop_tracer;
	struct tf_drop_table drop_tab;
	bool want_drops, drops_on;
	char drops_off[256];
	uint32_t drop_events;
	tf_drop_event_fn on_drop_event;
	void *drop_event_ctx;
	int ncpus;
	double attach_t;		/* CLOCK_MONOTONIC when attached */
	struct tf_pin *pin;		/* opts.pin */
};

double tf_now_mono(void);
/* The target of ifindex (the live one, if one is), or NULL. */
struct tf_target *tf_collector_target(const struct tf_collector *c, int ifindex);

/*
 * Load the programs (needs BTF, CAP_BPF). The flow map gets opts->max_flows
 * entries, and so does the uplink flow map with the NAT join. 0, or -1
 * with a reason in err.
 */
int tf_collector_open(struct tf_collector *c, const struct tf_collector_opts *opts,
		      char *err, size_t errlen);
/*
 * Add an interface to trace (not attached yet). A VM tap keeps its tap
 * role if it is also given as a bridge/uplink/--iface. 0, or -1 with a
 * reason (interface does not exist, ...).
 */
int tf_collector_add(struct tf_collector *c, const char *ifname, enum tf_role role,
		     const struct tf_vif *vif, char *err, size_t errlen);
/*
 * Attach to every target. All or nothing: on failure what was attached is
 * detached again. 0, or -1 with a reason.
 */
int tf_collector_attach(struct tf_collector *c, char *err, size_t errlen);
/*
 * Attach the targets added since tf_collector_attach (a VM started, a NIC
 * hot-plugged, an interface matching --iface created). One that vanished
 * in between is marked gone quietly; one that cannot be attached is
 * warned about and marked gone. Returns how many were attached.
 */
int tf_collector_attach_added(struct tf_collector *c);
/*
 * Taps and --iface interfaces that changed bridges (a network destroyed and
 * started again, a port moved): follow them (the NAT join's bridges, the
 * drop tracer's interfaces). Returns how many changed.
 */
int tf_collector_refresh_bridges(struct tf_collector *c);
/*
 * Mark gone and release every target whose interface vanished (its last
 * counters read first). Returns how many.
 */
int tf_collector_reap(struct tf_collector *c);
/*
 * Stop tracing target i though its interface is still there (its VM is
 * no longer selected): its last counters read, its place given back, and
 * it is gone as if its interface had vanished.
 */
void tf_collector_release(struct tf_collector *c, size_t i);
/*
 * Move what the NAT join's per-CPU cache holds into the flow map, on the
 * CPUs that have packets pending (oncpu.h): before each read of the flow
 * map. 0, or -errno.
 */
int tf_collector_flush_flows(struct tf_collector *c);
/* The NAT join's per-CPU cache of a loaded tapflow object. */
void tf_uplink_cache_of(const struct tapflow_bpf *skel, int ncpus, struct tf_percpu_cache *pc);
/*
 * What tf_collector_flush_flows does with it: make every cached uplink
 * flow stale (tf_uplink_gen), then tf_cache_flush. CPUs run on, or -errno.
 */
int tf_uplink_cache_flush(struct tapflow_bpf *skel, int ncpus);
/*
 * Read the kernel counters into every target (now <- kernel, prev <- now)
 * and reap vanished interfaces. Returns how many vanished since last poll.
 */
int tf_collector_poll(struct tf_collector *c);
/*
 * Take the drops out of the tracer and attribute them (fl: the flow table
 * with the NAT join's uplink flows, or NULL). 0 or -errno.
 */
int tf_collector_poll_drops(struct tf_collector *c, const struct tf_flows *fl);
/*
 * The same in two steps around a read of the flow table: take the drops
 * out before it (a drop's flow is then in the table read after), attribute
 * them against it after. 0 or -errno.
 */
int tf_collector_harvest_drops(struct tf_collector *c);
int tf_collector_attribute_drops(struct tf_collector *c, const struct tf_flows *fl);
/* The NAT join: the live uplink flows' local ports (see tf_nat_ports_bitmap). */
void tf_collector_set_natports(struct tf_collector *c, const uint64_t *bits);
/*
 * Entries of the flow maps (VM or uplink flows) were deleted (expiry):
 * tell the programs the VM flow map has room, and that their cached
 * uplink flows are stale.
 */
void tf_collector_flows_freed(struct tf_collector *c);
void tf_collector_losses(const struct tf_collector *c, struct tf_losses *out);
/*
 * Detach every hook but keep the maps readable: a poll after this reads
 * counters that no packet changes any more (exact final reports). With a
 * pin set, not called: the pinned hooks count on for the next agent.
 */
void tf_collector_detach(struct tf_collector *c);
/*
 * Detach exactly what was attached (but the pinned hooks, which go on
 * counting), free everything. Safe to call twice.
 */
void tf_collector_close(struct tf_collector *c);

#endif /* TF_COLLECTOR_H */
