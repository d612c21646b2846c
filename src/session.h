/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tracing session: one run of stats, flows, top, drops or capture from
 * start to end. It owns the collector, the inventory and the watchers that
 * keep them true while the host changes: a VM that starts or gets a NIC is
 * attached as soon as its tap is up, one that stops is released and its
 * totals kept (gone), an interface matching --iface that appears is
 * traced. Commands choose what to report; the session decides when the
 * host is looked at again.
 */
#ifndef TF_SESSION_H
#define TF_SESSION_H

#include <stdbool.h>

#include "cli.h"
#include "collector.h"
#include "flows.h"
#include "inventory.h"
#include "linkwatch.h"
#include "nat.h"
#include "output.h"
#include "report.h"
#include "tcp_health.h"
#include "vmwatch.h"

/* What a session that follows flows (flows, top, drops) keeps between polls. */
struct tf_flows_run {
	const struct tf_cli *cli;
	struct tf_collector *c;
	struct tf_flows fl;
	struct tf_flow_report rep;
	struct tf_nat_index nat;	/* rebuilt at every poll (NAT join on) */
	struct tf_tcp_health tcp;	/* --tcp: the flows' TCP state */
	bool tcp_on;
	uint64_t natports[TF_NATPORT_BITS / 64];
	struct tf_json j;
	double last_poll;		/* CLOCK_MONOTONIC (s) */
	bool read_failed;		/* warned about it */
};

struct tf_session {
	const struct tf_cli *cli;
	struct tf_collector c;
	struct tf_inventory inv;	/* the selected VMs' NICs, as last read */
	struct tf_linkwatch links;
	struct tf_vmwatch vms;
	bool vms_on;			/* the libvirt watcher runs */
	bool live;			/* the host is followed (not once at start only) */
	bool stale;			/* libvirt could not be read: the inventory is stale */
	bool events_down;		/* libvirt's events do not come */
	double retry_t;			/* when to try libvirt again (stale, events_down) */
	double retry_s;			/* and the backoff after that */
	bool flows_on;			/* tf_session_follow_flows: fr is in use */
	int wake_fd;			/* readable: tf_session_wait returns (-1: none) */
	struct tf_flows_run fr;
};

/*
 * Start a tracing command: preflight, stale hooks, inventory (unless
 * --no-libvirt), load, targets, signal handlers, attach, watchers. 0, or
 * -1 (message printed; call tf_session_end all the same).
 */
int tf_session_begin(struct tf_session *s, const struct tf_cli *cli,
		     const struct tf_collector_opts *opts);
/*
 * Follow the flows too (after tf_session_begin with opts.flows): the flow
 * table, its expiry, the NAT join's index. 0, or -1 (message printed).
 */
int tf_session_follow_flows(struct tf_session *s);
/*
 * Look at the kernel's counters once, in the one order that keeps reports
 * exact: interface counters; the drops taken out (before the flows: a
 * dropped packet's flow entry is older than its drop); the NAT join's
 * per-CPU cache flushed into the flow map; the flows read and expired; the
 * NAT join's retired segments, then its index and ports; the drops
 * attributed against the flows just read. Then a note per target gone.
 */
void tf_session_poll(struct tf_session *s);
/*
 * The end of the run: detach every hook, then poll once more, so that no
 * packet changes a counter between the interface totals and the flows and
 * the final report adds up exactly. With a pin set (agent --pin): nothing,
 * the pinned hooks go on counting for the next agent.
 */
void tf_session_finish(struct tf_session *s);
/*
 * Wait up to sec seconds (less on a signal), following the host meanwhile:
 * a change the watchers report is applied before it returns. true if the
 * targets changed during the wait.
 */
bool tf_session_wait(struct tf_session *s, double sec);
/* How often idle runs at least (drops --events). */
#define TF_IDLE_PERIOD 0.1
/*
 * Call tick every -i seconds until -d has passed, a signal, or the report
 * cannot be written; idle (if not NULL) at least every TF_IDLE_PERIOD
 * seconds. The caller then polls once more for its final report.
 */
void tf_session_run(struct tf_session *s, void (*tick)(void *arg), void (*idle)(void *arg),
		    void *arg);
/*
 * The selection changed (cli's --vm and --iface lists, which the caller
 * replaced): stop tracing what is no longer selected (its totals stay,
 * gone) and pick up what now is.
 */
void tf_session_reselect(struct tf_session *s);
/* Detach, stop the watchers, free (the flows too). Safe after a failed begin. */
void tf_session_end(struct tf_session *s);


#endif /* TF_SESSION_H */
