/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The collector: loads the BPF programs, attaches them to a set of
 * interfaces (VM taps, their bridges, the uplink, --iface), and turns the
 * kernel counters into per-interface totals in the VM's point of view.
 * `stats` drives it now; `flows`, `top` and the agent reuse it.
 */
#ifndef TF_COLLECTOR_H
#define TF_COLLECTOR_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "attach.h"
#include "inventory.h"

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

struct tf_target {
	char ifname[IFNAMSIZ];
	int ifindex;
	enum tf_role role;
	bool has_vif;
	struct tf_vif vif;		/* valid if has_vif */
	struct tf_hook hook;
	bool gone;			/* vanished during the run */
	struct tf_totals now, prev;	/* last two snapshots */
	double now_t, prev_t;		/* their CLOCK_MONOTONIC times (s) */
};

struct tf_losses {
	uint64_t map_full;		/* interface counters the kernel could not create */
	uint64_t ringbuf_lost;		/* samples (capture, [5/8]) */
	uint64_t parse_errors;		/* frames the parser rejected ([2/8]) */
};

struct tf_collector_opts {
	enum tf_attach_mode attach_mode;
};

struct tf_collector {
	struct tapflow_bpf *skel;
	struct tf_attacher attacher;
	struct tf_target *targets;
	size_t n_targets;
	int ncpus;
	double attach_t;		/* CLOCK_MONOTONIC when attached */
};

double tf_now_mono(void);

/* Load the programs (needs BTF, CAP_BPF). 0, or -1 with a reason in err. */
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
 * Read the kernel counters into every target (now <- kernel, prev <- now)
 * and mark vanished interfaces. Returns how many vanished since last poll.
 */
int tf_collector_poll(struct tf_collector *c);
void tf_collector_losses(const struct tf_collector *c, struct tf_losses *out);
/* Detach exactly what was attached, free everything. Safe to call twice. */
void tf_collector_close(struct tf_collector *c);

#endif /* TF_COLLECTOR_H */
