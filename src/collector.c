// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "tapflow.skel.h"
#include "counters.h"
#include "collector.h"
#include "fdb.h"
#include "log.h"
#include "oncpu.h"

const char *tf_role_name(enum tf_role role)
{
	switch (role) {
	case TF_ROLE_TAP: return "tap";
	case TF_ROLE_BRIDGE: return "bridge";
	case TF_ROLE_UPLINK: return "uplink";
	case TF_ROLE_IFACE: return "iface";
	}
	return "?";
}

double tf_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool map_is_percpu(const struct bpf_map *m)
{
	enum bpf_map_type t = bpf_map__type(m);

	return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	       t == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* The id of name (of kind) in the running kernel's BTF, or 0. */
static __u32 kernel_btf_id(const char *name, __u32 kind)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int id;

	if (!btf)
		return 0;
	id = btf__find_by_name_kind(btf, name, kind);
	btf__free(btf);
	return id > 0 ? (__u32)id : 0;
}

static void autoload(struct bpf_program *p, bool on)
{
	if (p)
		bpf_program__set_autoload(p, on);
}

/*
 * Load only the programs this run may attach: the verifier takes the flow,
 * NAT join and flush programs from CAP_PERFMON holders only, the
 * counters-only ones from CAP_BPF and CAP_NET_ADMIN, which is then all
 * that stats asks for.
 */
static void set_autoload(struct tf_collector *c, struct bpf_program *tap_in,
			 struct bpf_program *tap_eg, struct bpf_program *up_in,
			 struct bpf_program *up_eg)
{
	autoload(tap_in, c->flows);
	autoload(tap_eg, c->flows);
	autoload(up_in, c->nat);
	autoload(up_eg, c->nat);
	autoload(c->skel->progs.tf_uplink_flush, c->nat);
}


static int read_target(struct tf_collector *c, struct tf_target *t);
static int read_aggr(struct tf_collector *c, struct tf_target *t, void *buf);
static void *aggr_buf(const struct tf_collector *c);

/* ---- carried over from an earlier agent (--pin) ------------------------------ */

_Static_assert(sizeof(struct tf_totals) == TF_PIN_TOTALS * sizeof(__u64),
	       "a pin record's totals are struct tf_totals");
_Static_assert(TF_PIN_OLD == TF_OLD_IFINDEXES, "a pin record keeps every old ifindex");

/* Who t is for the next agent: the same VM NIC, or the same name in the same role. */
static void pin_key_of(const struct tf_target *t, struct tf_pin_key *k)
{
	memset(k, 0, sizeof(*k));
	k->role = (__u8)t->role;
	k->vif = t->has_vif;
	if (t->has_vif)
		snprintf(k->id, sizeof(k->id), "%s %s", t->vif.uuid, t->vif.mac);
	else
		snprintf(k->id, sizeof(k->id), "%s", t->ifname);
}

/* Write what the next agent needs of t: it changes at attach, restart and when t goes. */
static void pin_save(struct tf_collector *c, const struct tf_target *t)
{
	struct tf_pin_record r = { .ifindex = (__u32)t->ifindex, .live = !t->gone,
				   .restarts = t->restarts };
	struct tf_pin_key k;
	int ret;

	if (!c->pin)
		return;
	pin_key_of(t, &k);
	memcpy(r.old_ifindex, t->old_ifindex, sizeof(r.old_ifindex));
	snprintf(r.ifname, sizeof(r.ifname), "%s", t->ifname);
	snprintf(r.label, sizeof(r.label), "%s", t->first_ifname);
	/* Gone: its counters' place is given back, its totals are final. */
	if (t->gone) {
		r.gone_at = (__u64)t->gone_at.tv_sec;
		memcpy(r.base[0], &t->now, sizeof(t->now));
		memcpy(r.base[1], &t->overflow, sizeof(t->overflow));
		memcpy(r.base[2], &t->unparsed, sizeof(t->unparsed));
	} else {
		memcpy(r.base[0], &t->base, sizeof(t->base));
		memcpy(r.base[1], &t->base_overflow, sizeof(t->base_overflow));
		memcpy(r.base[2], &t->base_unparsed, sizeof(t->base_unparsed));
	}
	ret = tf_pin_record_put(c->pin, &k, &r);
	if (ret)
		tf_debug("pins: cannot keep the state of %s: %s", t->ifname, strerror(-ret));
}

/*
 * A record whose counts are in the maps at its ifindex, whose interface
 * is not traced any more: its totals made final (its base), its places in
 * the maps given back.
 */
static void pin_fold(struct tf_collector *c, const struct tf_pin_key *k, struct tf_pin_record r)
{
	struct tf_target t = { .ifindex = (int)r.ifindex, .role = (enum tf_role)k->role };
	__u32 key = r.ifindex;
	void *buf = aggr_buf(c);
	struct timespec now;

	memcpy(&t.base, r.base[0], sizeof(t.base));
	memcpy(&t.base_overflow, r.base[1], sizeof(t.base_overflow));
	memcpy(&t.base_unparsed, r.base[2], sizeof(t.base_unparsed));
	t.now = t.base;
	t.overflow = t.base_overflow;
	t.unparsed = t.base_unparsed;
	read_target(c, &t);
	if (buf && c->tap_aggr_fd >= 0 && !read_aggr(c, &t, buf))
		bpf_map_delete_elem(c->tap_aggr_fd, &key);
	free(buf);
	tf_ifc_del(&c->ifc, key);
	memcpy(r.base[0], &t.now, sizeof(t.now));
	memcpy(r.base[1], &t.overflow, sizeof(t.overflow));
	memcpy(r.base[2], &t.unparsed, sizeof(t.unparsed));
	clock_gettime(CLOCK_REALTIME, &now);
	r.live = 0;
	r.gone_at = (__u64)now.tv_sec;
	if (tf_pin_record_put(c->pin, k, &r))
		tf_debug("pins: cannot keep the totals of %s", r.ifname);
}

/*
 * Just loaded: an interface traced by the earlier agent whose hooks are
 * not there any more went (or was renamed) while no agent ran. Its totals
 * are made final; if it comes back it is a restart, as within a run.
 */
static void settle(struct tf_collector *c)
{
	for (size_t i = 0; i < c->pin->n_recs; i++) {
		struct tf_pin_key k = c->pin->keys[i];
		struct tf_pin_record r = c->pin->recs[i];

		if (!r.live || tf_pin_hook_find(c->pin, (int)r.ifindex))
			continue;
		r.ifname[sizeof(r.ifname) - 1] = '\0';
		pin_fold(c, &k, r);
		tf_note("pins in %s: %s (ifindex %u) went while no agent ran: its hooks are "
			"removed, its totals kept", c->pin->dir, r.ifname, r.ifindex);
	}
}

/*
 * The first attach of t in this process: what an earlier agent knew of
 * it (restarts, base totals, earlier ifindexes, its first name) is t's.
 * Returns the hooks it left on t's interface to take over (NULL: none);
 * *counts: the maps hold t's counts already and must not be zeroed.
 */
static struct tf_pin_hook *pin_carry_in(struct tf_collector *c, struct tf_target *t, bool *counts)
{
	struct tf_pin_hook *ph = tf_pin_hook_find(c->pin, t->ifindex);
	const struct tf_pin_record *r;
	const struct tf_pin_key *ok;
	struct tf_pin_key k;
	long other;

	pin_key_of(t, &k);
	/* Counted here under another identity (its role changed): those counts are that one's. */
	other = tf_pin_record_live_at(c->pin, t->ifindex, &ok);
	if (other >= 0 && memcmp(ok, &k, sizeof(k))) {
		struct tf_pin_key okey = *ok;

		pin_fold(c, &okey, c->pin->recs[other]);
	}
	r = tf_pin_record_find(c->pin, &k);
	/* Its earlier interface is still there, hooked, but it is here now: that lifetime ended. */
	if (r && r->live && (int)r->ifindex != t->ifindex) {
		pin_fold(c, &k, *r);
		r = tf_pin_record_find(c->pin, &k);
	}
	*counts = ph && (!r || r->live) && tf_ifc_placed(&c->ifc, (__u32)t->ifindex);
	if (!r)
		return ph;
	t->carried = true;
	t->restarts = r->restarts;
	memcpy(t->old_ifindex, r->old_ifindex, sizeof(t->old_ifindex));
	memcpy(&t->base, r->base[0], sizeof(t->base));
	memcpy(&t->base_overflow, r->base[1], sizeof(t->base_overflow));
	memcpy(&t->base_unparsed, r->base[2], sizeof(t->base_unparsed));
	memcpy(t->first_ifname, r->label, sizeof(r->label) < sizeof(t->first_ifname)
					      ? sizeof(r->label) : sizeof(t->first_ifname));
	t->first_ifname[sizeof(t->first_ifname) - 1] = '\0';
	if (!r->live) {
		/* It went during an earlier agent's life: this is its next lifetime. */
		memmove(t->old_ifindex + 1, t->old_ifindex, sizeof(t->old_ifindex) - sizeof(int));
		t->old_ifindex[0] = (int)r->ifindex;
		t->restarts++;
	}
	t->now = t->prev = t->base;
	t->overflow = t->prev_overflow = t->base_overflow;
	t->unparsed = t->prev_unparsed = t->base_unparsed;
	return ph;
}

/*
 * After the first attach: hooks of the earlier agent that no target of
 * this one took (its interface is not selected any more) are removed, and
 * their totals made final for when it is traced again.
 */
static void pin_release_unclaimed(struct tf_collector *c)
{
	for (size_t i = 0; i < c->pin->n_hooks; i++) {
		struct tf_pin_hook *ph = &c->pin->hooks[i];
		const struct tf_pin_key *k;
		long r;

		if (tf_pin_hook_find(c->pin, ph->ifindex) != ph)
			continue;
		/* Removed first: the totals read after are final. */
		tf_pin_hook_remove(c->pin, ph);
		r = tf_pin_record_live_at(c->pin, ph->ifindex, &k);
		if (r >= 0) {
			struct tf_pin_key key = *k;

			pin_fold(c, &key, c->pin->recs[r]);
		}
		tf_note("pins in %s: %s is not traced by this agent: its hooks are removed%s",
			c->pin->dir, ph->ifname, r >= 0 ? ", its totals kept" : "");
	}
}

/* Let go of a hook: a pinned one counts on for the next agent, others are detached. */
static void let_go(struct tf_hook *h)
{
	if (h->pinned)
		tf_hook_release(h);
	else
		tf_hook_detach(h);
}

int tf_collector_open(struct tf_collector *c, const struct tf_collector_opts *opts,
		      char *err, size_t errlen)
{
	struct bpf_program *tap_in, *tap_eg, *up_in, *up_eg;
	struct bpf_map *flows, *uplink_flows, *aggr;
	int ret;

	memset(c, 0, sizeof(*c));
	c->flows_fd = c->uplink_flows_fd = c->tap_aggr_fd = -1;
	c->tcp_flows_fd = c->tcp_taps_fd = -1;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		snprintf(err, errlen, "cannot count possible CPUs");
		return -1;
	}
	c->skel = tapflow_bpf__open();
	if (!c->skel) {
		snprintf(err, errlen, "cannot open BPF object: %s", strerror(errno));
		return -1;
	}
	tap_in = bpf_object__find_program_by_name(c->skel->obj, "tf_tap_ingress");
	tap_eg = bpf_object__find_program_by_name(c->skel->obj, "tf_tap_egress");
	up_in = bpf_object__find_program_by_name(c->skel->obj, "tf_uplink_ingress");
	up_eg = bpf_object__find_program_by_name(c->skel->obj, "tf_uplink_egress");
	flows = bpf_object__find_map_by_name(c->skel->obj, "flows");
	uplink_flows = bpf_object__find_map_by_name(c->skel->obj, "uplink_flows");
	aggr = bpf_object__find_map_by_name(c->skel->obj, "tap_aggr");
	c->flows = opts && opts->flows;
	c->nat = c->flows && opts->nat && up_in && up_eg && uplink_flows;
	c->nat_loaded = c->nat;
	if (!c->nat) {
		/* Unused without the join: as small as the kernel allows. */
		ret = bpf_map__set_max_entries(c->skel->maps.nat_retired, 1);
		if (!ret && uplink_flows)
			ret = bpf_map__set_max_entries(uplink_flows, 1);
		if (ret) {
			snprintf(err, errlen, "cannot size the NAT maps: %s", strerror(-ret));
			goto fail;
		}
	}
	c->cap_rb_fd = -1;
	if (opts && opts->capture) {
		const struct tf_capture_opts *co = opts->capture;

		c->capture = true;
		c->capture_taps_only = co->taps_only;
		c->skel->rodata->tf_cap_on = true;
		c->skel->rodata->tf_cap_sample = co->sample ? co->sample : 1;
		c->skel->rodata->tf_cap_snaplen = co->snaplen;
		c->skel->rodata->tf_cap_filter = co->filter;
		ret = bpf_map__set_max_entries(c->skel->maps.cap_rb, co->ringbuf_bytes);
		if (ret) {
			snprintf(err, errlen, "cannot size the capture buffer: %s", strerror(-ret));
			goto fail;
		}
	}
	if (opts) {
		c->want_drops = opts->drops;
		c->drop_events = opts->drop_events;
		c->on_drop_event = opts->on_drop_event;
		c->drop_event_ctx = opts->drop_event_ctx;
	}
	if (c->nat) {
		c->nat_ct = kernel_btf_id("bpf_cast_to_kern_ctx", BTF_KIND_FUNC) != 0;
		/* For telling a reused conntrack entry from the one before (same address). */
		c->skel->rodata->tf_nf_conn_btf_id = kernel_btf_id("nf_conn", BTF_KIND_STRUCT);
		if (!c->nat_ct)
			tf_warn("this kernel cannot show TC programs the conntrack entry "
				"(no bpf_cast_to_kern_ctx, Linux 6.2+): NAT translations are "
				"not shown, only routed flows are followed through the uplink");
	}
	if (c->flows && (!tap_in || !tap_eg || !flows || !aggr)) {
		snprintf(err, errlen, "this build's BPF object has no flow programs");
		goto fail;
	}
	if (flows) {
		/*
		 * Without flows nothing ever reads the map: keep it tiny (a hash
		 * map's entries may be preallocated, per CPU).
		 */
		c->max_flows = !c->flows ? 1 : opts->max_flows ? opts->max_flows
							      : TF_FLOWS_DEFAULT;
		ret = bpf_map__set_max_entries(flows, c->max_flows);
		/* As many uplink flows as VM flows: bpf/tapflow.bpf.c says why. */
		if (!ret && c->nat)
			ret = bpf_map__set_max_entries(uplink_flows, c->max_flows);
		/* A TCP flow's state lives as long as its flow entry. */
		c->tcp = c->flows && opts->tcp;
		c->skel->rodata->tf_tcp_on = c->tcp;
		if (!ret)
			ret = bpf_map__set_max_entries(c->skel->maps.tcp_flows,
						       c->tcp ? c->max_flows : 1);
		if (!ret && !c->tcp)
			ret = bpf_map__set_max_entries(c->skel->maps.tcp_taps, 1);
		if (ret) {
			snprintf(err, errlen, "cannot size the flow map: %s", strerror(-ret));
			goto fail;
		}
	}
	set_autoload(c, tap_in, tap_eg, up_in, up_eg);
	c->pin = opts ? opts->pin : NULL;
	/* Sized first: the flow map's size is part of the layout a pin set must match. */
	if (c->pin && tf_pin_maps(c->pin, c->skel->obj, err, errlen))
		goto fail;
	ret = tapflow_bpf__load(c->skel);
	if (ret == -ESRCH || ret == -ENOENT) {
		/* libbpf's answer when it cannot read or use the kernel's BTF. */
		snprintf(err, errlen, "cannot load BPF programs: kernel BTF not usable (%s)%s",
			 strerror(-ret), tf_verbose ? "" : "; run with -v for details");
		goto fail;
	}
	if (ret == -E2BIG || (ret == -ENOMEM && c->flows && c->max_flows > TF_FLOWS_DEFAULT)) {
		snprintf(err, errlen, "cannot create the flow map with %u entries: %s",
			 c->max_flows, ret == -E2BIG ? "more than the kernel allows"
						     : strerror(-ret));
		goto fail;
	}
	if (ret) {
		snprintf(err, errlen, "cannot load BPF programs: %s%s", strerror(-ret),
			 tf_verbose ? "" : " (run with -v for the verifier log)");
		goto fail;
	}
	c->ifc = TF_IFC_OF(c->skel, c->ncpus);
	tf_attacher_init(&c->attacher, opts ? opts->attach_mode : TF_ATTACH_AUTO);
	tf_progs_init(&c->progs_counters, bpf_program__fd(c->skel->progs.tf_ingress),
		      bpf_program__fd(c->skel->progs.tf_egress));
	if (c->flows)
		tf_progs_init(&c->progs_flows, bpf_program__fd(tap_in), bpf_program__fd(tap_eg));
	if (flows) {
		c->flows_fd = bpf_map__fd(flows);
		c->flows_percpu = map_is_percpu(flows);
	}
	if (c->tcp) {
		c->tcp_flows_fd = bpf_map__fd(c->skel->maps.tcp_flows);
		c->tcp_taps_fd = bpf_map__fd(c->skel->maps.tcp_taps);
		c->tcp_epoch = &c->skel->bss->tf_tcp_epoch;
		/* Epoch 0 is a new state's: the first poll's samples are told apart from it. */
		if (!*c->tcp_epoch)
			*c->tcp_epoch = 1;
	}
	if (aggr) {
		c->tap_aggr_fd = bpf_map__fd(aggr);
		c->tap_aggr_percpu = map_is_percpu(aggr);
	}
	if (c->nat) {
		tf_progs_init(&c->progs_uplink, bpf_program__fd(up_in), bpf_program__fd(up_eg));
		c->uplink_flows_fd = bpf_map__fd(uplink_flows);
		c->uplink_flows_percpu = map_is_percpu(uplink_flows);
		c->nat_retired_fd = bpf_map__fd(c->skel->maps.nat_retired);
		/* The uplink flows' per-CPU cache only where it can be emptied every poll. */
		ret = tf_run_on_cpu(bpf_program__fd(c->skel->progs.tf_uplink_flush), -1);
		if (ret)
			tf_debug("NAT join: no per-CPU cache (cannot run tf_uplink_flush: %s)",
				 strerror(-ret));
		c->skel->bss->tf_uplink_cache_on = !ret;
	}
	if (c->capture)
		c->cap_rb_fd = bpf_map__fd(c->skel->maps.cap_rb);
	if (c->pin) {
		if (tf_pin_loaded(c->pin, err, errlen))
			goto fail;
		settle(c);
	}
	return 0;
fail:
	tapflow_bpf__destroy(c->skel);
	c->skel = NULL;
	return -1;
}

static bool answers_to(const struct tf_target *t, int ifindex)
{
	if (t->ifindex == ifindex)
		return true;
	for (int k = 0; k < TF_OLD_IFINDEXES; k++)
		if (t->old_ifindex[k] == ifindex)
			return true;
	return false;
}

struct tf_target *tf_collector_target(const struct tf_collector *c, int ifindex)
{
	struct tf_target *found = NULL;

	/* ifindexes are not reused soon, but a live target wins if one is. */
	for (size_t i = 0; i < c->n_targets; i++)
		if (answers_to(&c->targets[i], ifindex)) {
			found = &c->targets[i];
			if (!found->gone && found->ifindex == ifindex)
				break;
		}
	return found;
}

/* A gone target that is what comes back: the same VM NIC (UUID, MAC), or the same name. */
static struct tf_target *came_back(struct tf_collector *c, const char *ifname, enum tf_role role,
				   const struct tf_vif *vif)
{
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		if (!t->gone || t->role != role || t->has_vif != (vif != NULL))
			continue;
		if (vif ? !strcmp(t->vif.uuid, vif->uuid) && !strcmp(t->vif.mac, vif->mac)
			: !strcmp(t->ifname, ifname))
			return t;
	}
	return NULL;
}

/* Bring target t back on ifindex: its totals so far become its base. */
static void revive(struct tf_target *t, const char *ifname, int ifindex)
{
	memmove(t->old_ifindex + 1, t->old_ifindex, sizeof(t->old_ifindex) - sizeof(int));
	t->old_ifindex[0] = t->ifindex;
	t->ifindex = ifindex;
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	t->restarts++;
	t->gone = t->gone_warned = false;
	memset(&t->gone_at, 0, sizeof(t->gone_at));
	memset(&t->hook, 0, sizeof(t->hook));
	t->base = t->prev = t->now;
	t->base_overflow = t->prev_overflow = t->overflow;
	t->base_unparsed = t->prev_unparsed = t->unparsed;
	t->captured = t->flows = t->nat = false;
	t->bridge_ifindex = 0;
	memset(t->cap_samples, 0, sizeof(t->cap_samples));
	memset(t->cap_lost, 0, sizeof(t->cap_lost));
}

int tf_collector_add(struct tf_collector *c, const char *ifname, enum tf_role role,
		     const struct tf_vif *vif, char *err, size_t errlen)
{
	int ifindex = (int)if_nametoindex(ifname);
	struct tf_target *t;

	if (!ifindex) {
		snprintf(err, errlen, "interface %s not found", ifname);
		return -1;
	}
	for (size_t i = 0; i < c->n_targets; i++) {
		t = &c->targets[i];
		if (t->ifindex != ifindex || t->gone)
			continue;
		/* A tap keeps its VM; a host interface may be promoted to a tap. */
		if (role == TF_ROLE_TAP && t->role != TF_ROLE_TAP) {
			t->role = role;
			t->has_vif = vif != NULL;
			if (vif)
				t->vif = *vif;
		}
		return 0;
	}
	t = came_back(c, ifname, role, vif);
	if (t) {
		revive(t, ifname, ifindex);
		if (vif)
			t->vif = *vif;
		return 0;
	}
	t = realloc(c->targets, (c->n_targets + 1) * sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->targets = t;
	t = &c->targets[c->n_targets++];
	memset(t, 0, sizeof(*t));
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	t->ifindex = ifindex;
	t->role = role;
	if (vif) {
		t->has_vif = true;
		t->vif = *vif;
	}
	return 0;
}

/* Does this target get the flow programs? */
static bool wants_flows(const struct tf_collector *c, const struct tf_target *t)
{
	return c->flows && (t->role == TF_ROLE_TAP || t->role == TF_ROLE_IFACE);
}

static const struct tf_progs *target_progs(const struct tf_collector *c, const struct tf_target *t)
{
	if (t->flows)
		return &c->progs_flows;
	if (t->nat)
		return &c->progs_uplink;
	return &c->progs_counters;
}

/*
 * The VMs' bridges for the uplink programs: bridge targets, and the master
 * of every tap and --iface (a VM's packets come in on its bridge: at the
 * uplink, skb->ingress_ifindex). 0, or -1 if there are more than the
 * programs take.
 */
static int set_bridges(struct tf_collector *c, char *err, size_t errlen)
{
	__u32 *br = c->skel->bss->tf_bridges;
	__u32 n = 0;

	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];
		int ifindex = 0;
		__u32 k;

		if (t->role == TF_ROLE_BRIDGE)
			ifindex = t->ifindex;
		else if (t->role == TF_ROLE_TAP || t->role == TF_ROLE_IFACE)
			ifindex = t->bridge_ifindex;
		if (ifindex <= 0)
			continue;
		for (k = 0; k < n && br[k] != (__u32)ifindex; k++)
			;
		if (k < n)
			continue;
		if (n == TF_MAX_BRIDGES) {
			snprintf(err, errlen, "more than %d bridges: the NAT join cannot follow "
				 "them all (use --no-nat)", TF_MAX_BRIDGES);
			return -1;
		}
		br[n++] = (__u32)ifindex;
	}
	c->skel->bss->tf_n_bridges = n;
	return 0;
}

/*
 * The interfaces whose frames are sampled: every target, or with --vm the
 * selected VMs' taps (and --iface interfaces) only, so that a bridge or the
 * uplink does not add other VMs' frames. 0, or -1 if one cannot be.
 */
static int set_captured_one(struct tf_collector *c, struct tf_target *t, char *err,
			    size_t errlen)
{
	__u32 ifindex = (__u32)t->ifindex;

	if (c->capture_taps_only && t->role != TF_ROLE_TAP && t->role != TF_ROLE_IFACE)
		return 0;
	if (ifindex >= TF_CAP_IF_BITS) {
		snprintf(err, errlen, "cannot capture %s: ifindex %u is beyond %u", t->ifname,
			 ifindex, TF_CAP_IF_BITS - 1);
		return -1;
	}
	__atomic_fetch_or(&c->skel->bss->tf_cap_if_bits[ifindex / 64], 1ULL << (ifindex % 64),
			  __ATOMIC_RELAXED);
	t->captured = true;
	return 0;
}

static int set_captured(struct tf_collector *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n_targets; i++)
		if (set_captured_one(c, &c->targets[i], err, errlen))
			return -1;
	return 0;
}

/* Gone, or its ifindex now names another interface. */
static bool vanished(const struct tf_target *t)
{
	char name[IF_NAMESIZE];

	if (!if_indextoname((unsigned int)t->ifindex, name))
		return errno == ENXIO || errno == ENODEV;
	return strcmp(name, t->ifname) != 0;
}

/*
 * Attach one target: its map entries first, so its first packet is counted.
 * With a pin set, an earlier agent's hooks on it are taken over (their
 * programs swapped in place), its counts so far kept, and the hooks pinned.
 */
static int attach_target(struct tf_collector *c, struct tf_target *t, const void *zero,
			 char *err, size_t errlen)
{
	__u32 key = (__u32)t->ifindex;
	struct tf_pin_hook *ph = NULL;
	bool counts = false;
	int ret = 0;

	if (c->pin && !t->traced)
		ph = pin_carry_in(c, t, &counts);
	if (!counts)
		ret = tf_ifc_add(&c->ifc, key);
	if (ret) {
		snprintf(err, errlen, "cannot add %s to the counters map: %s", t->ifname,
			 strerror(-ret));
		return -1;
	}
	if (t->flows &&
	    bpf_map_update_elem(c->tap_aggr_fd, &key, zero, counts ? BPF_NOEXIST : BPF_ANY) &&
	    !(counts && errno == EEXIST)) {
		snprintf(err, errlen, "cannot add %s to the flow aggregates map: %s", t->ifname,
			 strerror(errno));
		return -1;
	}
	if (ph && tf_hook_adopt(&c->attacher, &t->hook, target_progs(c, t), t->ifindex,
				t->ifname, &ph->from, err, errlen)) {
		/* Never two programs counting one packet: the old hooks go first. */
		tf_warn("%s; attaching anew", err);
		tf_pin_hook_remove(c->pin, ph);
		ph = NULL;
	} else if (ph) {
		ph->taken = true;
	}
	if (!ph && tf_hook_attach(&c->attacher, &t->hook, target_progs(c, t), t->ifindex,
				  t->ifname, err, errlen))
		return -1;
	if (c->pin) {
		ret = tf_pin_hook_keep(c->pin, &t->hook);
		if (ret)
			tf_warn("%s: cannot pin its hooks (%s): they stop with this agent",
				t->ifname, strerror(-ret));
	}
	t->traced = true;
	if (!t->first_ifname[0])
		snprintf(t->first_ifname, sizeof(t->first_ifname), "%s", t->ifname);
	pin_save(c, t);
	return 0;
}

/*
 * The drop tracer on every target and the bridges of the taps and --iface
 * interfaces (a VM's routed packets are dropped with the bridge as their
 * device); if it cannot run, tapflow goes on without.
 */
static void open_drops(struct tf_collector *c)
{
	int *ifindexes = calloc(2 * c->n_targets + 1, sizeof(*ifindexes));
	size_t n = 0;

	if (!ifindexes) {
		snprintf(c->drops_off, sizeof(c->drops_off), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n_targets; i++) {
		ifindexes[n++] = c->targets[i].ifindex;
		if (c->targets[i].bridge_ifindex > 0)
			ifindexes[n++] = c->targets[i].bridge_ifindex;
	}
	if (!tf_drop_tracer_open(&c->drop_tracer, ifindexes, n, c->drop_events,
				 c->on_drop_event, c->drop_event_ctx, c->drops_off,
				 sizeof(c->drops_off)))
		c->drops_on = true;
out:
	free(ifindexes);
	if (!c->drops_on)
		tf_warn("drops are not counted: %s", c->drops_off);
}

/* Which programs a target gets, and the bridge it is a port of. */
static void prepare_target(struct tf_collector *c, struct tf_target *t)
{
	struct tf_link link;

	t->flows = wants_flows(c, t);
	t->nat = c->nat_loaded && t->role == TF_ROLE_UPLINK;
	if ((t->role == TF_ROLE_TAP || t->role == TF_ROLE_IFACE) && !tf_link_get(t->ifindex, &link))
		t->bridge_ifindex = link.master;
}

/* Room for a tap_aggr value of every CPU, zeroed: new entries start from it, reads land in it. */
static void *aggr_buf(const struct tf_collector *c)
{
	return calloc((size_t)c->ncpus, sizeof(struct tf_tap_aggr));
}

int tf_collector_attach(struct tf_collector *c, char *err, size_t errlen)
{
	void *zero = aggr_buf(c);
	bool any_nat = false;

	if (!zero) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->n_targets; i++) {
		prepare_target(c, &c->targets[i]);
		any_nat |= c->targets[i].nat;
	}
	/* No uplink (no NAT/routed VM, --no-uplink): nothing to join. */
	c->nat = any_nat;
	if (c->capture && set_captured(c, err, errlen))
		goto fail;
	if (c->nat && set_bridges(c, err, errlen))
		goto fail;
	/*
	 * Uplinks first, their ingress armed last (tf_uplink_rx_armed): each
	 * way, the end where packets leave the host counts before the end
	 * where they enter it. A packet of a running flow may then be counted
	 * only where it leaves, never only where it enters, which would read
	 * as a forwarding loss.
	 */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c->n_targets; i++) {
			struct tf_target *t = &c->targets[i];

			if ((t->role == TF_ROLE_UPLINK) != (pass == 0))
				continue;
			if (!attach_target(c, t, zero, err, errlen))
				continue;
			if (!t->has_vif || !vanished(t))
				goto fail;
			/*
			 * A VM that stopped since the inventory took its tap with
			 * it: nothing of it to trace, and no reason to stop the others.
			 */
			tf_warn("VM %s stopped before tapflow could attach to its tap %s; "
				"not traced", t->vif.vm, t->ifname);
			memmove(t, t + 1, (c->n_targets - i - 1) * sizeof(*t));
			c->n_targets--;
			i--;
		}
	}
	free(zero);
	if (c->nat)
		__atomic_store_n(&c->skel->bss->tf_uplink_rx_armed, 1, __ATOMIC_SEQ_CST);
	if (c->pin)
		pin_release_unclaimed(c);
	c->attach_t = tf_now_mono();
	for (size_t i = 0; i < c->n_targets; i++)
		c->targets[i].now_t = c->targets[i].prev_t = c->attach_t;
	if (c->want_drops)
		open_drops(c);
	return 0;
fail:
	free(zero);
	for (size_t i = 0; i < c->n_targets; i++)
		let_go(&c->targets[i].hook);
	return -1;
}

/*
 * Give back what a target that is gone holds: its hooks (a deleted
 * device's are gone with it; a renamed one's must go), its drop tracing,
 * its place in the counter and aggregate maps. Its last counters are read
 * first and stay in now.
 */
static void release_target(struct tf_collector *c, struct tf_target *t)
{
	__u32 key = (__u32)t->ifindex;
	bool still_used = false;

	tf_hook_detach(&t->hook);
	if (c->pin)
		tf_pin_hook_forget(c->pin, &t->hook);
	t->gone = true;
	clock_gettime(CLOCK_REALTIME, &t->gone_at);
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *o = &c->targets[i];

		still_used |= !o->gone && (o->ifindex == t->ifindex ||
					   o->bridge_ifindex == t->ifindex);
	}
	if (c->drops_on && !still_used)
		tf_drop_tracer_watch(&c->drop_tracer, t->ifindex, false);
	if (t->captured)
		__atomic_fetch_and(&c->skel->bss->tf_cap_if_bits[key / 64], ~(1ULL << (key % 64)),
				   __ATOMIC_RELAXED);
	if (tf_ifc_del(&c->ifc, key))
		tf_debug("cannot free the counters of %s", t->ifname);
	if (t->flows && c->tap_aggr_fd >= 0)
		bpf_map_delete_elem(c->tap_aggr_fd, &key);
	if (t->traced)
		pin_save(c, t);
}

int tf_collector_attach_added(struct tf_collector *c)
{
	void *zero = aggr_buf(c);
	double now = tf_now_mono();
	char err[512];
	int n = 0;

	if (!zero)
		return 0;
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		if (t->gone || t->hook.attached)
			continue;
		prepare_target(c, t);
		/* The first uplink of the run starts the join (its ingress is armed below). */
		c->nat |= t->nat;
		if ((c->nat && set_bridges(c, err, sizeof(err))) ||
		    (c->capture && set_captured_one(c, t, err, sizeof(err))) ||
		    attach_target(c, t, zero, err, sizeof(err))) {
			if (!vanished(t))
				tf_warn("%s%s%s: not traced: %s", t->ifname, t->has_vif ? " of VM " : "",
					t->has_vif ? t->vif.vm : "", err);
			t->gone_warned = true;
			release_target(c, t);
			continue;
		}
		t->now_t = t->prev_t = now;
		if (c->drops_on) {
			tf_drop_tracer_watch(&c->drop_tracer, t->ifindex, true);
			tf_drop_tracer_watch(&c->drop_tracer, t->bridge_ifindex, true);
		}
		n++;
	}
	/*
	 * As at the start: an uplink's ingress counts into uplink flows only
	 * once its egress does, so that a packet is never counted only where
	 * it enters (which would read as lost in forwarding).
	 */
	if (c->nat)
		__atomic_store_n(&c->skel->bss->tf_uplink_rx_armed, 1, __ATOMIC_SEQ_CST);
	free(zero);
	return n;
}

int tf_collector_refresh_bridges(struct tf_collector *c)
{
	char err[256];
	int n = 0;

	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];
		struct tf_link link;

		if (t->gone || !t->hook.attached ||
		    (t->role != TF_ROLE_TAP && t->role != TF_ROLE_IFACE) ||
		    tf_link_get(t->ifindex, &link) || link.master == t->bridge_ifindex)
			continue;
		t->bridge_ifindex = link.master;
		if (c->drops_on)
			tf_drop_tracer_watch(&c->drop_tracer, t->bridge_ifindex, true);
		n++;
	}
	if (n && c->nat && set_bridges(c, err, sizeof(err)))
		tf_warn("%s", err);
	return n;
}

/* tf_collector_reap with buf, room for one tap_aggr value of every CPU (NULL: none). */
static int reap(struct tf_collector *c, void *buf)
{
	int n = 0;

	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		if (t->gone || !t->hook.attached || !vanished(t))
			continue;
		/* The map entry outlives the device: its last counters are still there. */
		read_target(c, t);
		if (t->flows && buf)
			read_aggr(c, t, buf);
		release_target(c, t);
		n++;
	}
	return n;
}

void tf_collector_release(struct tf_collector *c, size_t i)
{
	struct tf_target *t = &c->targets[i];
	void *buf;

	if (t->gone)
		return;
	buf = aggr_buf(c);
	read_target(c, t);
	if (t->flows && buf)
		read_aggr(c, t, buf);
	free(buf);
	release_target(c, t);
}

int tf_collector_reap(struct tf_collector *c)
{
	void *buf = aggr_buf(c);
	int n = reap(c, buf);

	free(buf);
	return n;
}

static void dir_to_totals(const struct tf_dir_counters *rx, const struct tf_dir_counters *tx,
			  struct tf_totals *out)
{
	out->rx_packets = rx->packets;
	out->rx_bytes = rx->bytes;
	out->rx_segs = rx->segs;
	out->tx_packets = tx->packets;
	out->tx_bytes = tx->bytes;
	out->tx_segs = tx->segs;
}

static void totals_add(struct tf_totals *a, const struct tf_totals *b)
{
	a->rx_packets += b->rx_packets;
	a->rx_bytes += b->rx_bytes;
	a->rx_segs += b->rx_segs;
	a->tx_packets += b->tx_packets;
	a->tx_bytes += b->tx_bytes;
	a->tx_segs += b->tx_segs;
}

/* The overflow and unparsed aggregates of a flow target, in its view. */
static int read_aggr(struct tf_collector *c, struct tf_target *t, void *buf)
{
	struct tf_tap_aggr sum = {};
	__u32 key = (__u32)t->ifindex;
	int n = c->tap_aggr_percpu ? c->ncpus : 1;
	bool m = tf_target_mirrored(t);

	if (bpf_map_lookup_elem(c->tap_aggr_fd, &key, buf))
		return -errno;
	for (int cpu = 0; cpu < n; cpu++) {
		const struct tf_tap_aggr *v = (const struct tf_tap_aggr *)buf + cpu;

		tf_dir_add(&sum.overflow_rx, &v->overflow_rx);
		tf_dir_add(&sum.overflow_tx, &v->overflow_tx);
		tf_dir_add(&sum.unparsed_rx, &v->unparsed_rx);
		tf_dir_add(&sum.unparsed_tx, &v->unparsed_tx);
	}
	/* The kernel's rx is the VM's: TC egress. Others: their own view. */
	dir_to_totals(m ? &sum.overflow_tx : &sum.overflow_rx,
		      m ? &sum.overflow_rx : &sum.overflow_tx, &t->overflow);
	dir_to_totals(m ? &sum.unparsed_tx : &sum.unparsed_rx,
		      m ? &sum.unparsed_rx : &sum.unparsed_tx, &t->unparsed);
	totals_add(&t->overflow, &t->base_overflow);
	totals_add(&t->unparsed, &t->base_unparsed);
	return 0;
}

/* Sum the per-CPU values of one interface into VM-view totals. */
static int read_target(struct tf_collector *c, struct tf_target *t)
{
	struct tf_if_counters sum;
	int rx, tx, ret;

	ret = tf_ifc_read(&c->ifc, (__u32)t->ifindex, &sum);
	if (ret)
		return ret;
	for (int d = 0; d < TF_HOOK_DIRS; d++) {
		t->cap_samples[d] = sum.cap_samples[d];
		t->cap_lost[d] = sum.cap_lost[d];
	}
	/* On a tap, TC ingress is what the VM sent: its tx. */
	rx = t->role == TF_ROLE_TAP ? TF_HOOK_EGRESS : TF_HOOK_INGRESS;
	tx = !rx;
	dir_to_totals(&sum.dir[rx], &sum.dir[tx], &t->now);
	totals_add(&t->now, &t->base);
	return 0;
}

static int uplink_slot_pending(const void *slot)
{
	return tf_uplink_slot_pending(slot);
}

void tf_uplink_cache_of(const struct tapflow_bpf *skel, int ncpus, struct tf_percpu_cache *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->map_fd = bpf_map__fd(skel->maps.uplink_cache);
	pc->flush_fd = bpf_program__fd(skel->progs.tf_uplink_flush);
	pc->ncpus = ncpus;
	pc->nslots = TF_UPLINK_CACHE_SLOTS;
	pc->slot_size = sizeof(struct tf_uplink_slot);
	pc->pending = uplink_slot_pending;
}

int tf_uplink_cache_flush(struct tapflow_bpf *skel, int ncpus)
{
	struct tf_percpu_cache pc;

	/*
	 * Every slot stale first: a CPU this poll does not run on keeps its
	 * idle slots, and a slot still current would count the next packet
	 * of a flow that the expiry after this read deletes, for an entry
	 * none of its packets makes again (lost at its flush). Stale, the
	 * packet takes the map path, which makes the entry; that costs each
	 * busy flow a map lookup per CPU and poll.
	 */
	__atomic_add_fetch(&skel->bss->tf_uplink_gen, 1, __ATOMIC_SEQ_CST);
	tf_uplink_cache_of(skel, ncpus, &pc);
	return tf_cache_flush(&pc);
}

int tf_collector_flush_flows(struct tf_collector *c)
{
	int ret;

	if (!c->skel || !c->skel->bss->tf_uplink_cache_on)
		return 0;
	ret = tf_uplink_cache_flush(c->skel, c->ncpus);
	return ret < 0 ? ret : 0;
}

int tf_collector_poll(struct tf_collector *c)
{
	void *buf = aggr_buf(c);
	double now = tf_now_mono();
	int gone;

	if (!buf)
		return 0;
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		t->prev = t->now;
		t->prev_t = t->now_t;
		t->now_t = now;
		t->prev_overflow = t->overflow;
		t->prev_unparsed = t->unparsed;
		/* A gone target's place in the maps is another's now: its counters are final. */
		if (t->gone)
			continue;
		read_target(c, t);
		if (t->flows)
			read_aggr(c, t, buf);
	}
	gone = reap(c, buf);
	free(buf);
	return gone;
}

void tf_collector_losses(const struct tf_collector *c, struct tf_losses *out)
{
	memset(out, 0, sizeof(*out));
	if (!c->skel || !c->skel->bss)
		return;
	/* The programs add with atomics: an 8-byte read sees whole values. */
	out->map_full = c->skel->bss->map_full;
	out->parse_errors = c->skel->bss->parse_errors;
	out->flow_map_full = c->skel->bss->flow_map_full;
	out->uplink_flow_map_full = c->skel->bss->uplink_flow_map_full;
	out->nat_retired_full = c->skel->bss->nat_retired_full;
	out->uplink_cache_lost = c->skel->bss->uplink_cache_lost;
	out->tcp_flow_map_full = c->skel->bss->tcp_flow_map_full;
}

void tf_collector_flows_freed(struct tf_collector *c)
{
	if (!c->skel || !c->skel->bss)
		return;
	/* The VM flow map may have room again: new flows may try an insert at once. */
	__atomic_store_n(&c->skel->bss->tf_flows_full_ns, 0, __ATOMIC_RELAXED);
	/*
	 * The NAT join's cached uplink flows are stale: one of them may be
	 * gone (an active timeout deletes busy flows), and its packets must
	 * go to the map path, which makes its entry again.
	 */
	__atomic_add_fetch(&c->skel->bss->tf_uplink_gen, 1, __ATOMIC_SEQ_CST);
}

void tf_collector_set_natports(struct tf_collector *c, const uint64_t *bits)
{
	if (c->skel && c->skel->bss)
		memcpy(c->skel->bss->tf_natport_bits, bits, sizeof(c->skel->bss->tf_natport_bits));
}

int tf_collector_poll_drops(struct tf_collector *c, const struct tf_flows *fl)
{
	if (!c->drops_on)
		return 0;
	return tf_drops_poll(&c->drop_tab, &c->drop_tracer, c, fl);
}

int tf_collector_harvest_drops(struct tf_collector *c)
{
	if (!c->drops_on)
		return 0;
	return tf_drops_harvest(&c->drop_tab, &c->drop_tracer);
}

int tf_collector_attribute_drops(struct tf_collector *c, const struct tf_flows *fl)
{
	if (!c->drops_on)
		return 0;
	return tf_drops_attribute(&c->drop_tab, c, fl);
}

void tf_collector_detach(struct tf_collector *c)
{
	/* The reverse of attach: where packets enter first, where they leave last. */
	if (c->skel && c->skel->bss)
		__atomic_store_n(&c->skel->bss->tf_uplink_rx_armed, 0, __ATOMIC_SEQ_CST);
	tf_drop_tracer_detach(&c->drop_tracer);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < c->n_targets; i++)
			if ((c->targets[i].role == TF_ROLE_UPLINK) == (pass == 1))
				tf_hook_detach(&c->targets[i].hook);
}

void tf_collector_close(struct tf_collector *c)
{
	for (size_t i = 0; i < c->n_targets; i++)
		let_go(&c->targets[i].hook);
	if (c->skel) {
		tf_attacher_fini(&c->attacher);
		tapflow_bpf__destroy(c->skel);
	}
	tf_drop_tracer_close(&c->drop_tracer);
	tf_drop_table_free(&c->drop_tab);
	free(c->targets);
	memset(c, 0, sizeof(*c));
}
