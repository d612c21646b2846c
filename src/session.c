// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fdb.h"
#include "log.h"
#include "output.h"
#include "preflight.h"
#include "session.h"
#include "signals.h"

/* Reading libvirt again while it is unreachable: 1 s, doubling up to this. */
#define RETRY_MAX_S 30.0

int tf_preflight(void)
{
	char err[512];

	if (tf_check_btf(err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	return 0;
}

static bool has_forwarding_mode(const struct tf_inventory *inv)
{
	for (size_t i = 0; i < inv->n_vifs; i++)
		if (inv->vifs[i].ifindex > 0 &&
		    (inv->vifs[i].mode == TF_MODE_NAT || inv->vifs[i].mode == TF_MODE_ROUTE))
			return true;
	return false;
}

/* Add the uplink(s): the default-route interface of each address family. */
static int add_uplinks(struct tf_collector *c, char *err, size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < 2; f++) {
		int ifindex = tf_netlink_default_route_ifindex(families[f]);
		char name[IF_NAMESIZE];

		if (ifindex <= 0 || !if_indextoname((unsigned int)ifindex, name))
			continue;
		if (tf_collector_add(c, name, TF_ROLE_UPLINK, NULL, err, errlen))
			return -1;
	}
	return 0;
}

/* --iface 'veth*': a shell pattern, followed as interfaces come and go. */
static bool is_pattern(const char *name)
{
	return strpbrk(name, "*?[") != NULL;
}

static bool traced_live(const struct tf_collector *c, int ifindex)
{
	const struct tf_target *t = tf_collector_target(c, ifindex);

	return t && !t->gone;
}

/* Add every interface named by pattern (or that name) not traced yet. Returns how many. */
static int add_matching(struct tf_collector *c, const char *pattern, enum tf_role role)
{
	struct if_nameindex *all = if_nameindex();
	char err[256];
	int n = 0;

	if (!all)
		return 0;
	for (struct if_nameindex *i = all; i->if_index; i++)
		if (!fnmatch(pattern, i->if_name, 0) && !traced_live(c, (int)i->if_index) &&
		    !tf_collector_add(c, i->if_name, role, NULL, err, sizeof(err)))
			n++;
	if_freenameindex(all);
	return n;
}

/* A selected VM's NIC and its bridge, unless traced already. */
static void add_vif(struct tf_collector *c, const struct tf_vif *v)
{
	char err[256];
	int br;

	if (v->ifindex <= 0 || traced_live(c, v->ifindex))
		return;
	/* Gone since the inventory was read: the next sync sees it as it is. */
	if (tf_collector_add(c, v->ifname, TF_ROLE_TAP, v, err, sizeof(err)))
		return;
	br = v->bridge[0] ? (int)if_nametoindex(v->bridge) : 0;
	if (br > 0 && !traced_live(c, br))
		tf_collector_add(c, v->bridge, TF_ROLE_BRIDGE, NULL, err, sizeof(err));
}

/*
 * Targets at the start: the selected VMs' taps, the bridges they sit on
 * (and --bridge), the uplink for NAT/routed networks (or --uplink), and
 * --iface. 0, or -1 (message printed).
 */
static int add_targets(struct tf_session *s)
{
	const struct tf_cli *cli = s->cli;
	struct tf_collector *c = &s->c;
	const struct tf_inventory *inv = cli->no_libvirt ? NULL : &s->inv;
	bool patterns = false;
	char err[512];

	for (size_t i = 0; inv && i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];

		if (v->ifindex <= 0) {
			tf_warn("%s: NIC %s has no tap to trace (%s)", v->vm, v->mac,
				v->note[0] ? v->note : "no target device");
			continue;
		}
		if (!tf_collector_add(c, v->ifname, TF_ROLE_TAP, v, err, sizeof(err)))
			continue;
		if (if_nametoindex(v->ifname))
			goto fail;
		/* Stopped since the inventory: the others are still worth tracing. */
		tf_warn("VM %s stopped before tapflow could attach to its tap %s; not traced",
			v->vm, v->ifname);
	}
	for (size_t i = 0; inv && i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];

		if (v->ifindex > 0 && v->bridge[0] &&
		    tf_collector_add(c, v->bridge, TF_ROLE_BRIDGE, NULL, err, sizeof(err)))
			goto fail;
	}
	for (size_t i = 0; i < cli->n_bridges; i++)
		if (tf_collector_add(c, cli->bridges[i], TF_ROLE_BRIDGE, NULL, err, sizeof(err)))
			goto fail;
	if (inv && !cli->no_uplink && !cli->n_uplinks && has_forwarding_mode(inv) &&
	    add_uplinks(c, err, sizeof(err)))
		goto fail;
	for (size_t i = 0; i < cli->n_uplinks; i++)
		if (tf_collector_add(c, cli->uplinks[i], TF_ROLE_UPLINK, NULL, err, sizeof(err)))
			goto fail;
	for (size_t i = 0; i < cli->n_ifaces; i++) {
		if (is_pattern(cli->ifaces[i])) {
			add_matching(c, cli->ifaces[i], TF_ROLE_IFACE);
			patterns = true;
		} else if (tf_collector_add(c, cli->ifaces[i], TF_ROLE_IFACE, NULL, err,
					    sizeof(err))) {
			goto fail;
		}
	}
	/* A pattern, or a VM that is not running yet, may be there later: the run waits. */
	if (!c->n_targets && !patterns && !(s->live && (cli->n_vms || cli->keep_waiting))) {
		tf_err("nothing to trace: no running VM with a tap%s",
		       cli->n_vms ? " among the selected VMs" : "");
		return -1;
	}
	return 0;
fail:
	tf_err("%s", err);
	return -1;
}

static void retry_later(struct tf_session *s, double now)
{
	s->retry_t = now + s->retry_s;
	s->retry_s = s->retry_s * 2 < RETRY_MAX_S ? s->retry_s * 2 : RETRY_MAX_S;
}

/* Read libvirt again; keep the selected VMs' NICs. 0, or -1 (unreachable: stale). */
static int reread_vms(struct tf_session *s)
{
	struct tf_inventory inv = {};
	char err[512];
	size_t kept = 0;
	double now = tf_now_mono();

	if (s->stale && now < s->retry_t)
		return -1;
	/* Without its events, a VM that starts is seen only by its tap: retried like the inventory. */
	if (s->vms_on && !tf_vmwatch_connected(&s->vms)) {
		s->events_down = tf_vmwatch_reconnect(&s->vms, err, sizeof(err)) != 0;
		if (s->events_down)
			tf_debug("libvirt events: %s", err);
	}
	if (tf_inventory_load(s->cli->uri, s->cli->verbose, &inv, err, sizeof(err))) {
		if (!s->stale)
			tf_warn("the VM inventory is stale: %s; what is traced is still "
				"counted, tapflow retries", err);
		s->stale = true;
		retry_later(s, now);
		return -1;
	}
	if (s->stale)
		tf_note("libvirt is reachable again: the VM inventory is up to date");
	s->stale = false;
	if (s->events_down)
		retry_later(s, now);
	else
		s->retry_s = 1;
	for (size_t k = 0; k < inv.n_vifs; k++)
		if (tf_cli_vm_selected(s->cli, inv.vifs[k].vm, inv.vifs[k].uuid))
			inv.vifs[kept++] = inv.vifs[k];
	inv.n_vifs = kept;
	tf_inventory_free(&s->inv);
	s->inv = inv;
	return 0;
}

/* Say what a sync attached: which VM's tap, or which interface. */
static void note_attached(const struct tf_target *t)
{
	if (t->has_vif)
		tf_note("VM %s: tracing %s (NIC %s)%s", t->vif.vm, t->ifname, t->vif.mac,
			t->restarts ? ", back in the run" : "");
	else
		tf_note("tracing %s (%s)%s", t->ifname, tf_role_name(t->role),
			t->restarts ? ", back in the run" : "");
}

/*
 * Look at the host again: release what went, add what came (the selected
 * VMs' new taps and their bridges, interfaces matching --iface and
 * --bridge) and attach it. links: the link set changed (or may have);
 * vms: libvirt said something changed.
 */
static bool sync_host(struct tf_session *s, bool links, bool vms)
{
	const struct tf_cli *cli = s->cli;
	struct tf_collector *c = &s->c;
	int gone = tf_collector_reap(c), added = 0;
	bool *was_pending;

	if (!cli->no_libvirt && (links || vms || s->stale || s->events_down) && !reread_vms(s)) {
		char err[256];

		for (size_t i = 0; i < s->inv.n_vifs; i++)
			add_vif(c, &s->inv.vifs[i]);
		/* A NAT or routed network started: its traffic leaves by the uplink. */
		if (!cli->no_uplink && !cli->n_uplinks && has_forwarding_mode(&s->inv))
			add_uplinks(c, err, sizeof(err));
	}
	if (links) {
		tf_collector_refresh_bridges(c);
		for (size_t i = 0; i < cli->n_ifaces; i++)
			add_matching(c, cli->ifaces[i], TF_ROLE_IFACE);
		for (size_t i = 0; i < cli->n_bridges; i++)
			add_matching(c, cli->bridges[i], TF_ROLE_BRIDGE);
	}
	/* New targets, and gone ones that came back, wait for their hooks. */
	was_pending = calloc(c->n_targets + 1, sizeof(*was_pending));
	for (size_t i = 0; was_pending && i < c->n_targets; i++)
		was_pending[i] = !c->targets[i].gone && !c->targets[i].hook.attached;
	if (was_pending && tf_collector_attach_added(c))
		for (size_t i = 0; i < c->n_targets; i++)
			if (was_pending[i] && c->targets[i].hook.attached) {
				note_attached(&c->targets[i]);
				added++;
			}
	free(was_pending);
	tf_warn_vanished(c);
	return gone || added;
}

int tf_session_begin(struct tf_session *s, const struct tf_cli *cli,
		     const struct tf_collector_opts *opts)
{
	char err[512];
	double t0, t1, t2;
	int ret;

	memset(s, 0, sizeof(*s));
	s->cli = cli;
	s->links.fd = -1;
	s->wake_fd = -1;
	s->vms.pipe[0] = s->vms.pipe[1] = -1;
	s->retry_s = 1;
	if (tf_preflight())
		return -1;
	tf_attach_clean_stale(cli->verbose);
	/*
	 * Watch before the first look: a tap that comes up between the
	 * inventory and the attach is then seen by the first sync.
	 */
	ret = tf_linkwatch_open(&s->links);
	if (ret)
		tf_warn("cannot watch for interfaces coming and going (%s): the run traces "
			"what is there now only", strerror(-ret));
	if (!cli->no_libvirt) {
		if (tf_vmwatch_open(&s->vms, cli->uri, err, sizeof(err)))
			tf_warn("cannot follow libvirt's events (%s): VMs are followed by their "
				"taps only", err);
		else
			s->vms_on = true;
		/* Followed: a selected VM that is not running yet is traced when it starts. */
		if (tf_load_selected_inventory(cli, &s->inv, s->links.fd >= 0))
			return -1;
		s->events_down = s->vms_on && !tf_vmwatch_connected(&s->vms);
		if (s->events_down)
			retry_later(s, tf_now_mono());
	}
	s->live = s->links.fd >= 0;
	t0 = tf_now_mono();
	if (tf_collector_open(&s->c, opts, err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	t1 = tf_now_mono();
	if (add_targets(s))
		return -1;
	/* Signals first: a SIGTERM right after attach must still detach. */
	tf_signals_install();
	t2 = tf_now_mono();
	if (tf_collector_attach(&s->c, err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	/* What a start costs, and where (tools/bench/scale.sh reads this line). */
	tf_debug("start: %.3f s to load, %.3f s to find %zu interfaces, %.3f s to attach",
		 t1 - t0, t2 - t1, s->c.n_targets, tf_now_mono() - t2);
	return 0;
}

bool tf_session_wait(struct tf_session *s, double sec)
{
	double end = tf_now_mono() + sec;
	bool changed = false;

	/* Once at least: sec 0 looks at what the watchers have queued, without waiting. */
	do {
		struct pollfd fds[3] = {
			{ .fd = s->links.fd, .events = POLLIN },
			{ .fd = s->vms_on ? tf_vmwatch_fd(&s->vms) : -1, .events = POLLIN },
			{ .fd = s->wake_fd, .events = POLLIN },
		};
		double now = tf_now_mono(), left = end > now ? end - now : 0;
		int links = 0, vms = 0;

		if ((s->stale || s->events_down) && s->retry_t - now < left)
			left = s->retry_t > now ? s->retry_t - now : 0;
		if (!s->live && s->wake_fd < 0) {
			tf_sleep(left);
			break;
		}
		/* poll() returns at a signal whatever SA_RESTART says. */
		if (poll(fds, 3, left > 0 ? (int)(left * 1000) + 1 : 0) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			links = tf_linkwatch_drain(&s->links);
		if (fds[1].revents)
			vms = tf_vmwatch_drain(&s->vms);
		if (links > 0 || vms > 0 ||
		    ((s->stale || s->events_down) && tf_now_mono() >= s->retry_t))
			changed |= sync_host(s, links > 0, vms > 0);
		if (fds[2].revents)
			break;	/* the caller has something to do now */
	} while (!tf_exiting && tf_now_mono() < end);
	return changed;
}

void tf_session_run(struct tf_session *s, void (*tick)(void *arg), void (*idle)(void *arg),
		    void *arg)
{
	const struct tf_cli *cli = s->cli;
	double start = tf_now_mono();
	double next = start + cli->interval;
	double end = cli->duration > 0 ? start + cli->duration : 1e300;

	/* A report that cannot be written ends the run as a signal does. */
	while (!tf_exiting && !tf_out_error() && !tf_out_reader_gone(stdout)) {
		double t = tf_now_mono();
		double wake = next < end ? next : end;

		if (t >= end)
			break;
		if (idle && wake - t > TF_IDLE_PERIOD)
			wake = t + TF_IDLE_PERIOD;
		tf_session_wait(s, wake - t);
		if (idle && !tf_exiting) {
			idle(arg);
			tf_out_check(stdout);
		}
		if (tf_exiting || tf_now_mono() < next)
			continue;
		/* Every interval once, however late: no burst of reports to catch up. */
		while (next <= tf_now_mono())
			next += cli->interval;
		if (tf_now_mono() >= end)
			break;	/* the final report covers this instant */
		tick(arg);
		tf_out_check(stdout);
	}
}

static bool iface_selected(const struct tf_cli *cli, const char *ifname)
{
	for (size_t i = 0; i < cli->n_ifaces; i++)
		if (!fnmatch(cli->ifaces[i], ifname, 0))
			return true;
	return false;
}

void tf_session_reselect(struct tf_session *s)
{
	struct tf_collector *c = &s->c;

	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];
		bool vm_out = t->has_vif && !tf_cli_vm_selected(s->cli, t->vif.vm, t->vif.uuid);
		bool iface_out = t->role == TF_ROLE_IFACE && !iface_selected(s->cli, t->ifname);

		if (t->gone || !(vm_out || iface_out))
			continue;
		tf_collector_release(c, i);
		t->gone_warned = true;
		if (t->has_vif)
			tf_note("VM %s: %s no longer selected; its totals stay in the report",
				t->vif.vm, t->ifname);
		else
			tf_note("interface %s no longer selected; its totals stay in the report",
				t->ifname);
	}
	sync_host(s, true, true);
}

void tf_warn_vanished(struct tf_collector *c)
{
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		if (!t->gone || t->gone_warned)
			continue;
		t->gone_warned = true;
		if (t->has_vif)
			tf_note("VM %s: %s is gone (VM stopped or NIC detached); its totals stay "
				"in the report", t->vif.vm, t->ifname);
		else
			tf_note("interface %s is gone; its totals stay in the report", t->ifname);
	}
}

/* ---- flows ------------------------------------------------------------- */

static int flows_run_init(struct tf_flows_run *r, const struct tf_cli *cli, struct tf_collector *c)
{
	struct tf_flow_map map;
	int err;

	memset(r, 0, sizeof(*r));
	r->cli = cli;
	r->c = c;
	tf_flow_map_bpf(&map, c->flows_fd, c->flows_percpu ? c->ncpus : 1);
	/* Ended flows are kept one by one up to the size of the kernel map. */
	err = tf_flows_init(&r->fl, &map, (uint64_t)(cli->idle_timeout * 1e9),
			    (uint64_t)(cli->active_timeout * 1e9), c->max_flows);
	if (!err && c->nat_loaded) {
		tf_flow_map_bpf(&map, c->uplink_flows_fd, c->uplink_flows_percpu ? c->ncpus : 1);
		err = tf_flows_init_uplinks(&r->fl, &map);
	}
	if (err) {
		tf_err("out of memory");
		return -1;
	}
	if (c->tcp) {
		if (tf_tcp_init(&r->tcp, c->tcp_flows_fd, c->tcp_taps_fd,
				c->tcp_epoch, c->ncpus)) {
			tf_err("out of memory");
			return -1;
		}
		r->tcp_on = true;
		r->rep.tcp = &r->tcp;
	}
	r->rep.c = c;
	r->rep.fl = &r->fl;
	r->rep.clock_offset = tf_mono_to_real_offset();
	r->last_poll = c->attach_t;
	return 0;
}

static void flows_run_poll(struct tf_flows_run *r)
{
	double now = tf_now_mono();
	struct tf_flow_counts fc;
	uint64_t harvests;
	int err;

	tf_flows_counts(&r->fl, &fc);
	harvests = fc.expired + fc.active;

	tf_collector_poll(r->c);
	/*
	 * The drops before the flows: a packet's flow entry is made at the tap
	 * before the packet can be dropped further on, so every drop taken out
	 * now finds its flow in the table read below (taken after, a drop could
	 * be of a flow newer than the table, and lose its flow for good).
	 */
	if (tf_collector_harvest_drops(r->c))
		tf_debug("cannot read the drop tracer's map");
	/* Uplink flows' packets still in a CPU's cache into the map first. */
	err = tf_collector_flush_flows(r->c);
	if (err)
		tf_debug("cannot flush the NAT join's per-CPU cache: %s", strerror(-err));
	err = tf_flows_poll(&r->fl, tf_now_mono_ns(), now - r->last_poll);
	r->last_poll = now;
	/* After the flows: a state goes when its flow has ended, as just read. */
	if (r->tcp_on && tf_tcp_poll(&r->tcp, &r->fl))
		tf_debug("cannot read the TCP analysis' maps");
	tf_flows_counts(&r->fl, &fc);
	if (fc.expired + fc.active != harvests)
		tf_collector_flows_freed(r->c);
	if (r->c->nat) {
		/* Before the index: a retired segment must be in it, not lost for a poll. */
		if (tf_nat_harvest_retired(r->c->nat_retired_fd, &r->fl))
			tf_debug("cannot read the retired uplink flows");
		/* Out of memory: no join this interval (nat null), counts unaffected. */
		r->rep.nat = tf_nat_index_build(&r->nat, &r->fl) ? NULL : &r->nat;
		/*
		 * Ports of ended mappings out: a bit the kernel set since the read
		 * above is set again at the next poll (until then, a host reusing
		 * that brand-new mapping's tuple would go unnoticed).
		 */
		tf_nat_ports_bitmap(&r->fl, r->natports);
		tf_collector_set_natports(r->c, r->natports);
	}
	if (tf_collector_attribute_drops(r->c, &r->fl))
		tf_debug("cannot attribute drops: out of memory");
	/* Out of memory: the rows find their targets by a walk. */
	tf_flow_report_index(&r->rep);
	if (err && !r->read_failed) {
		/* Say it once: the table keeps what it had, the next poll retries. */
		tf_warn("cannot read the flow map: %s", strerror(-err));
		r->read_failed = true;
	}
}

static void flows_run_free(struct tf_flows_run *r)
{
	tf_flows_free(&r->fl);
	if (r->tcp_on)
		tf_tcp_free(&r->tcp);
	tf_flow_report_free(&r->rep);
	tf_nat_index_free(&r->nat);
	tf_json_free(&r->j);
}

int tf_session_follow_flows(struct tf_session *s)
{
	if (flows_run_init(&s->fr, s->cli, &s->c))
		return -1;
	s->flows_on = true;
	return 0;
}

void tf_session_poll(struct tf_session *s)
{
	if (s->flows_on) {
		flows_run_poll(&s->fr);
	} else {
		tf_collector_poll(&s->c);
		tf_collector_poll_drops(&s->c, NULL);
	}
	tf_warn_vanished(&s->c);
}

void tf_session_finish(struct tf_session *s)
{
	double t = tf_now_mono();

	/* Pinned, the hooks count on for the next agent: no detach, no last word. */
	if (s->c.pin)
		return;
	tf_collector_detach(&s->c);
	tf_debug("detached from %zu interfaces in %.3f s", s->c.n_targets, tf_now_mono() - t);
	tf_session_poll(s);
}

void tf_session_end(struct tf_session *s)
{
	tf_collector_close(&s->c);
	if (s->flows_on)
		flows_run_free(&s->fr);
	s->flows_on = false;
	if (s->vms_on)
		tf_vmwatch_close(&s->vms);
	s->vms_on = false;
	tf_linkwatch_close(&s->links);
	tf_inventory_free(&s->inv);
}
