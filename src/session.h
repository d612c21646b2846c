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
#include "inventory.h"
#include "linkwatch.h"
#include "vmwatch.h"

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
	unsigned int syncs;		/* times the host was looked at again */
};

/*
 * Start a tracing command: preflight, stale hooks, inventory (unless
 * --no-libvirt), load, targets, signal handlers, attach, watchers. 0, or
 * -1 (message printed; call tf_session_end all the same).
 */
int tf_session_begin(struct tf_session *s, const struct tf_cli *cli,
		     const struct tf_collector_opts *opts);
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
/* Detach, stop the watchers, free. Safe after a failed begin. */
void tf_session_end(struct tf_session *s);


#endif /* TF_SESSION_H */
