// SPDX-License-Identifier: GPL-2.0
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_metrics.h"
#include "cli.h"
#include "ipfix.h"
#include "ipfix_flows.h"
#include "tapflow.skel.h"

/* ---- flow series ----------------------------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct tf_flow_series *)a)->l, &((const struct tf_flow_series *)b)->l,
		      sizeof(struct tf_series_label));
}

size_t tf_flow_series_merge(struct tf_flow_series *g, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(g, n, sizeof(*g), label_cmp);
	for (size_t i = 1; i < n; i++) {
		if (!label_cmp(&g[k], &g[i])) {
			for (int f = 0; f < TF_FS_N; f++)
				g[k].v[f] += g[i].v[f];
		} else {
			g[++k] = g[i];
		}
	}
	return k + 1;
}

static uint64_t bytes_of(const struct tf_flow_series *g)
{
	return g->v[TF_FS_RX_BYTES] + g->v[TF_FS_TX_BYTES];
}

/* Candidates in the order they get a series: the interval's bytes, then an existing series. */
struct candidate {
	const struct tf_flow_series *gain;
	const struct tf_flow_series *old;	/* its series so far, or NULL */
};

static int candidate_cmp(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	uint64_t bx = bytes_of(x->gain), by = bytes_of(y->gain);

	if (bx != by)
		return bx > by ? -1 : 1;
	if (!x->old != !y->old)
		return x->old ? -1 : 1;
	return label_cmp(x->gain, y->gain);
}

int tf_flow_series_step(struct tf_flow_series **series, size_t *n_series,
			const struct tf_flow_series *gain, size_t n_gain, size_t top,
			const uint64_t iface[TF_FS_N], uint64_t other[TF_FS_N])
{
	struct candidate *cand = calloc(n_gain + 1, sizeof(*cand));
	struct tf_flow_series *next;
	size_t n_cand = 0, n_next = 0;
	uint64_t sum[TF_FS_N] = {};

	if (!cand)
		return -ENOMEM;
	for (size_t i = 0; i < n_gain; i++) {
		const struct tf_flow_series *old =
			*n_series ? bsearch(&gain[i], *series, *n_series, sizeof(**series),
					    label_cmp)
				  : NULL;

		/* A label idle since its series went has nothing to show. */
		if (!old && !bytes_of(&gain[i]) && !gain[i].v[TF_FS_RX_PACKETS] &&
		    !gain[i].v[TF_FS_TX_PACKETS])
			continue;
		cand[n_cand++] = (struct candidate){ .gain = &gain[i], .old = old };
	}
	qsort(cand, n_cand, sizeof(*cand), candidate_cmp);
	if (n_cand > top)
		n_cand = top;
	next = calloc(n_cand + 1, sizeof(*next));
	if (!next) {
		free(cand);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_cand; i++) {
		struct tf_flow_series *s = &next[n_next++];

		*s = *cand[i].gain;
		s->exported = true;
		for (int f = 0; f < TF_FS_N; f++) {
			if (cand[i].old)
				s->v[f] += cand[i].old->v[f];
			sum[f] += s->v[f];
		}
	}
	free(cand);
	qsort(next, n_next, sizeof(*next), label_cmp);
	free(*series);
	*series = next;
	*n_series = n_next;
	/*
	 * A series that goes hands its value to other, which therefore only
	 * grows; the interface's counters are read before the flows, so a
	 * packet in between can make the series sum pass them for one
	 * interval: other waits, it does not go back.
	 */
	for (int f = 0; f < TF_FS_N; f++)
		if (iface[f] >= sum[f] && iface[f] - sum[f] > other[f])
			other[f] = iface[f] - sum[f];
	return 0;
}

/* ---- per target ------------------------------------------------------------ */

static int mark_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct tf_flow_mark *)a)->key, &((const struct tf_flow_mark *)b)->key,
		      sizeof(struct tf_flow_key));
}

static void row_label(const struct tf_flow_row *row, struct tf_series_label *l)
{
	const struct tf_nat_link *n = &row->nat;

	memset(l, 0, sizeof(*l));
	snprintf(l->proto, sizeof(l->proto), "%s", row->v.proto_name);
	snprintf(l->local, sizeof(l->local), "%s", row->v.local_ip);
	snprintf(l->remote, sizeof(l->remote), "%s", row->v.remote_ip);
	l->remote_port = row->v.remote_port;
	if (!row->joinable || !n->n_up)
		return;
	if (n->translated)
		tf_flow_ip_str(n->up_key.family, n->up_key.local_ip, l->nat, sizeof(l->nat));
	else
		snprintf(l->nat, sizeof(l->nat), "routed");
}

static void row_totals(const struct tf_flow_row *row, uint64_t tot[TF_FS_N])
{
	tot[TF_FS_RX_BYTES] = row->v.rx.bytes;
	tot[TF_FS_RX_PACKETS] = row->v.rx.packets;
	tot[TF_FS_TX_BYTES] = row->v.tx.bytes;
	tot[TF_FS_TX_PACKETS] = row->v.tx.packets;
}

static void totals_of(const struct tf_target *t, uint64_t out[TF_FS_N])
{
	out[TF_FS_RX_BYTES] = t->now.rx_bytes;
	out[TF_FS_RX_PACKETS] = t->now.rx_packets;
	out[TF_FS_TX_BYTES] = t->now.tx_bytes;
	out[TF_FS_TX_PACKETS] = t->now.tx_packets;
}

/* One interval of target t's flow series. 0, or -ENOMEM (they wait for the next). */
static int flows_step(struct tf_series_target *st, const struct tf_flow_report *rep,
		      const struct tf_target *t, size_t top)
{
	struct tf_flow_row *rows;
	struct tf_flow_mark *marks = NULL;
	struct tf_flow_series *gain = NULL;
	uint64_t iface[TF_FS_N];
	long n = tf_flow_rows(rep, t, TF_SORT_BYTES, false, &rows);
	size_t n_marks = 0, n_gain = 0;
	int err = -ENOMEM;

	if (n < 0)
		return -ENOMEM;
	marks = calloc((size_t)n + 1, sizeof(*marks));
	gain = calloc((size_t)n + 1, sizeof(*gain));
	if (!marks || !gain)
		goto out;
	for (long i = 0; i < n; i++) {
		const struct tf_flow_row *row = &rows[i];
		struct tf_flow_mark *mk, *prev;
		struct tf_flow_series *g;

		if (!row->flow)
			continue;	/* aggregates: their traffic is other's */
		mk = &marks[n_marks++];
		mk->key = row->flow->key;
		row_totals(row, mk->tot);
		prev = st->n_marks ? bsearch(mk, st->marks, st->n_marks, sizeof(*mk), mark_cmp)
				   : NULL;
		g = &gain[n_gain++];
		row_label(row, &g->l);
		/* Counts only grow while a flow lives: a lower one is a flow that began again. */
		for (int f = 0; f < TF_FS_N && !st->basing; f++)
			g->v[f] = prev && prev->tot[f] <= mk->tot[f] ? mk->tot[f] - prev->tot[f]
								    : mk->tot[f];
	}
	qsort(marks, n_marks, sizeof(*marks), mark_cmp);
	n_gain = tf_flow_series_merge(gain, n_gain);
	totals_of(t, iface);
	/* Carried on: the series count what comes after this render (the marks, the base). */
	if (st->basing)
		memcpy(st->iface_base, iface, sizeof(iface));
	for (int f = 0; f < TF_FS_N; f++)
		iface[f] -= iface[f] > st->iface_base[f] ? st->iface_base[f] : iface[f];
	err = tf_flow_series_step(&st->series, &st->n_series, gain, n_gain, top, iface,
				  st->other);
	if (!err) {
		free(st->marks);
		st->marks = marks;
		st->n_marks = n_marks;
		marks = NULL;
	}
out:
	free(rows);
	free(marks);
	free(gain);
	return err;
}

static int grow_targets(struct tf_agent_metrics *m, size_t n)
{
	struct tf_series_target *t;

	if (n <= m->n_t)
		return 0;
	t = realloc(m->t, n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + m->n_t, 0, (n - m->n_t) * sizeof(*t));
	m->t = t;
	m->n_t = n;
	return 0;
}

void tf_agent_metrics_free(struct tf_agent_metrics *m)
{
	for (size_t i = 0; i < m->n_t; i++) {
		free(m->t[i].series);
		free(m->t[i].marks);
	}
	free(m->t);
	m->t = NULL;
	m->n_t = 0;
}

/* ---- rendering ------------------------------------------------------------- */

static const char *vm_or_empty(const struct tf_target *t)
{
	return t->has_vif ? t->vif.vm : "";
}

/* The bridge a target sits on (or is), for its labels. */
static void bridge_of(const struct tf_target *t, char *out, size_t len)
{
	char name[IF_NAMESIZE];

	if (t->role == TF_ROLE_BRIDGE)
		snprintf(out, len, "%s", t->ifname);
	else if (t->has_vif && t->vif.bridge[0])
		snprintf(out, len, "%s", t->vif.bridge);
	else if (t->bridge_ifindex > 0 && if_indextoname((unsigned int)t->bridge_ifindex, name))
		snprintf(out, len, "%s", name);
	else
		out[0] = '\0';
}

struct iface_labels {
	char bridge[IF_NAMESIZE];
	const char *l[17];
};

static void iface_labels(const struct tf_target *t, struct iface_labels *il)
{
	bridge_of(t, il->bridge, sizeof(il->bridge));
	const char *l[] = {
		"domain", vm_or_empty(t), "uuid", t->has_vif ? t->vif.uuid : "",
		"interface", t->first_ifname, "mac", t->has_vif ? t->vif.mac : "",
		"bridge", il->bridge, "network", t->has_vif ? t->vif.network : "",
		"mode", t->has_vif ? tf_mode_name(t->vif.mode) : "",
		"role", tf_role_name(t->role), NULL,
	};
	memcpy(il->l, l, sizeof(l));
}

static const struct {
	const char *name, *help;
	size_t field;
} iface_counters[] = {
	{ "tapflow_interface_receive_bytes_total",
	  "Bytes received: delivered to the VM for a tap, the interface's own otherwise.",
	  offsetof(struct tf_totals, rx_bytes) },
	{ "tapflow_interface_transmit_bytes_total",
	  "Bytes transmitted: sent by the VM for a tap, the interface's own otherwise.",
	  offsetof(struct tf_totals, tx_bytes) },
	{ "tapflow_interface_receive_packets_total", "Packets (skbs) received.",
	  offsetof(struct tf_totals, rx_packets) },
	{ "tapflow_interface_transmit_packets_total", "Packets (skbs) transmitted.",
	  offsetof(struct tf_totals, tx_packets) },
	{ "tapflow_interface_receive_segments_total",
	  "Segments received (a GSO packet counts its segments).",
	  offsetof(struct tf_totals, rx_segs) },
	{ "tapflow_interface_transmit_segments_total", "Segments transmitted.",
	  offsetof(struct tf_totals, tx_segs) },
};

static void render_interfaces(const struct tf_collector *c, struct tf_prom *p)
{
	struct iface_labels il;

	for (size_t k = 0; k < sizeof(iface_counters) / sizeof(iface_counters[0]); k++) {
		tf_prom_family(p, iface_counters[k].name, "counter", iface_counters[k].help);
		for (size_t i = 0; i < c->n_targets; i++) {
			const struct tf_target *t = &c->targets[i];

			if (!t->traced)
				continue;
			iface_labels(t, &il);
			tf_prom_u64(p, iface_counters[k].name, il.l,
				    *(const uint64_t *)((const char *)&t->now + iface_counters[k].field));
		}
	}
	tf_prom_family(p, "tapflow_interface_traced", "gauge",
		       "1 while the interface is traced, 0 once it is gone (VM stopped, NIC "
		       "detached, interface deleted); its counters keep their last values.");
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];

		if (!t->traced)
			continue;
		iface_labels(t, &il);
		tf_prom_u64(p, "tapflow_interface_traced", il.l, !t->gone);
	}
	tf_prom_family(p, "tapflow_interface_restarts_total", "counter",
		       "Times the interface came back (the VM restarted, its tap was re-created).");
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];

		if (!t->traced)
			continue;
		iface_labels(t, &il);
		tf_prom_u64(p, "tapflow_interface_restarts_total", il.l, t->restarts);
	}
}

static void flow_series(struct tf_prom *p, const char *name, const char *const *base,
			const struct tf_series_label *l, const char *dir, uint64_t v)
{
	char port[12] = "";
	const char *labels[19];
	size_t k = 0;

	if (l->remote_port >= 0)
		snprintf(port, sizeof(port), "%d", l->remote_port);
	while (base[k]) {
		labels[k] = base[k];
		k++;
	}
	const char *more[] = {
		"proto", l->proto, "local", l->local, "remote", l->remote,
		"remote_port", port, "nat", l->nat, "direction", dir, NULL,
	};
	memcpy(labels + k, more, sizeof(more));
	tf_prom_u64(p, name, labels, v);
}

static void render_flows(struct tf_agent_metrics *m, const struct tf_collector *c,
			 struct tf_prom *p)
{
	static const struct {
		const char *name, *help;
		int rx, tx;
	} fam[] = {
		{ "tapflow_flow_bytes_total",
		  "Bytes of the top flows of each interface by bytes since the previous scrape "
		  "(--flow-metrics), from when their series began; proto=\"other\" is the rest, "
		  "so that an interface's flow series add up to its interface series.",
		  TF_FS_RX_BYTES, TF_FS_TX_BYTES },
		{ "tapflow_flow_packets_total", "Packets of the flow series (see tapflow_flow_bytes_total).",
		  TF_FS_RX_PACKETS, TF_FS_TX_PACKETS },
	};
	static const struct tf_series_label other = { .proto = "other", .remote_port = -1 };

	if (!m->flow_top)
		return;
	for (size_t k = 0; k < 2; k++) {
		tf_prom_family(p, fam[k].name, "counter", fam[k].help);
		for (size_t i = 0; i < c->n_targets; i++) {
			const struct tf_target *t = &c->targets[i];
			const struct tf_series_target *st = &m->t[i];
			const char *base[] = { "domain", vm_or_empty(t), "interface",
					       t->first_ifname, NULL };

			if (!t->traced || !t->flows)
				continue;
			for (size_t s = 0; s < st->n_series; s++) {
				flow_series(p, fam[k].name, base, &st->series[s].l, "receive",
					    st->series[s].v[fam[k].rx]);
				flow_series(p, fam[k].name, base, &st->series[s].l, "transmit",
					    st->series[s].v[fam[k].tx]);
			}
			flow_series(p, fam[k].name, base, &other, "receive", st->other[fam[k].rx]);
			flow_series(p, fam[k].name, base, &other, "transmit", st->other[fam[k].tx]);
		}
	}
}

static void render_nat(struct tf_agent_metrics *m, const struct tf_flows_run *fr,
		       const struct tf_collector *c, struct tf_prom *p)
{
	if (!c->nat || !fr->rep.nat)
		return;
	tf_prom_family(p, "tapflow_nat_forwarding_lost_total", "counter",
		       "Packets of a VM's forwarded flows that entered the host and did not "
		       "leave it: transmit = sent by the VM, never left the uplink; receive = "
		       "arrived on the uplink, never delivered to the VM.");
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		struct tf_series_target *st = &m->t[i];
		struct tf_nat_link l;

		if (!t->traced || t->role != TF_ROLE_TAP)
			continue;
		tf_flow_target_fwd(&fr->rep, t, &l);
		if (st->basing) {
			st->lost_base_tx = l.lost_tx;
			st->lost_base_rx = l.lost_rx;
		}
		l.lost_tx -= l.lost_tx > st->lost_base_tx ? st->lost_base_tx : l.lost_tx;
		l.lost_rx -= l.lost_rx > st->lost_base_rx ? st->lost_base_rx : l.lost_rx;
		/* A packet between the tap and the uplink at the read looks lost for a poll. */
		if (l.lost_tx > st->lost_tx)
			st->lost_tx = l.lost_tx;
		if (l.lost_rx > st->lost_rx)
			st->lost_rx = l.lost_rx;
		const char *tx[] = { "domain", vm_or_empty(t), "interface", t->first_ifname,
				     "direction", "transmit", NULL };
		const char *rx[] = { "domain", vm_or_empty(t), "interface", t->first_ifname,
				     "direction", "receive", NULL };
		tf_prom_u64(p, "tapflow_nat_forwarding_lost_total", tx, st->lost_tx);
		tf_prom_u64(p, "tapflow_nat_forwarding_lost_total", rx, st->lost_rx);
	}
}

/* A drop series: its labels rendered, so that groups that share them are summed. */
struct drop_series {
	char domain[TF_NAME_MAX];
	char interface[IFNAMSIZ];
	char reason[64];
	char location[128];
	uint64_t packets;
};

static int drop_cmp(const void *a, const void *b)
{
	return memcmp(a, b, offsetof(struct drop_series, packets));
}

static void render_drops(struct tf_agent_metrics *m, const struct tf_collector *c,
			 struct tf_prom *p)
{
	const struct tf_drop_table *dt = &c->drop_tab;
	struct drop_series *ds;
	size_t n = 0;

	if (!c->drops_on || !m->reasons)
		return;
	tf_prom_family(p, "tapflow_drops_total", "counter",
		       "Packets the kernel dropped, by reason and the function that dropped them; "
		       "a VM's own packets carry its domain and tap, the host's have domain=\"\".");
	ds = calloc(dt->n + 1, sizeof(*ds));
	if (!ds)
		return;
	for (size_t i = 0; i < dt->n; i++) {
		const struct tf_drop_group *g = &dt->g[i];
		struct drop_series *d = &ds[n++];

		if (g->tap >= 0 && (size_t)g->tap < c->n_targets) {
			snprintf(d->domain, sizeof(d->domain), "%s", vm_or_empty(&c->targets[g->tap]));
			const struct tf_target *t = &c->targets[g->tap];

			snprintf(d->interface, sizeof(d->interface), "%s",
				 t->first_ifname[0] ? t->first_ifname : t->ifname);
		}
		tf_drop_reason_name(m->reasons, g->reason, d->reason, sizeof(d->reason));
		if (g->location && m->ksyms)
			tf_ksyms_name(m->ksyms, g->location, d->location, sizeof(d->location));
		d->packets = g->packets;
	}
	qsort(ds, n, sizeof(*ds), drop_cmp);
	for (size_t i = 0; i < n; i++) {
		uint64_t sum = ds[i].packets;

		while (i + 1 < n && !drop_cmp(&ds[i], &ds[i + 1]))
			sum += ds[++i].packets;
		const char *l[] = { "domain", ds[i].domain, "interface", ds[i].interface,
				    "reason", ds[i].reason, "location", ds[i].location, NULL };
		tf_prom_u64(p, "tapflow_drops_total", l, sum);
	}
	free(ds);
}

/* One family of the programs' run statistics: their run time (seconds), or their runs. */
static void bpf_stat(const struct tf_collector *c, struct tf_prom *p, const char *name,
		     const char *help, bool seconds)
{
	struct bpf_program *prog;

	tf_prom_family(p, name, "counter", help);
	bpf_object__for_each_program(prog, c->skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);
		const char *l[] = { "program", bpf_program__name(prog), NULL };

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		if (seconds)
			tf_prom_num(p, name, l, (double)info.run_time_ns / 1e9);
		else
			tf_prom_u64(p, name, l, info.run_cnt);
	}
}

/* BPF programs' run time, where the kernel keeps it (kernel.bpf_stats_enabled). */
static void render_bpf_stats(const struct tf_collector *c, struct tf_prom *p)
{
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r");
	int on = 0;

	if (f) {
		if (fscanf(f, "%d", &on) != 1)
			on = 0;
		fclose(f);
	}
	if (!on || !c->skel)
		return;
	bpf_stat(c, p, "tapflow_bpf_run_seconds_total",
		 "Time the kernel spent in each tapflow program (kernel.bpf_stats_enabled).", true);
	bpf_stat(c, p, "tapflow_bpf_runs_total",
		 "Runs of each tapflow program (kernel.bpf_stats_enabled).", false);
}

static void gauge(struct tf_prom *p, const char *name, const char *help, double v)
{
	tf_prom_family(p, name, "gauge", help);
	tf_prom_num(p, name, NULL, v);
}

static void counter(struct tf_prom *p, const char *name, const char *help, uint64_t v)
{
	tf_prom_family(p, name, "counter", help);
	tf_prom_u64(p, name, NULL, v);
}

/* The --ipfix destinations: one series each, labelled with the destination as given. */
static void render_ipfix(struct tf_prom *p, const struct tf_agent_health *h)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
		bool flag;
	} f[] = {
		{ "tapflow_ipfix_records_total", "counter",
		  "IPFIX flow records sent to the destination.",
		  offsetof(struct tf_ipfix_stats, records), false },
		{ "tapflow_ipfix_records_lost_total", "counter",
		  "IPFIX flow records lost: queue full while the collector was away, or a send failed.",
		  offsetof(struct tf_ipfix_stats, records_lost), false },
		{ "tapflow_ipfix_messages_total", "counter", "IPFIX messages sent.",
		  offsetof(struct tf_ipfix_stats, messages), false },
		{ "tapflow_ipfix_bytes_total", "counter", "IPFIX message bytes sent.",
		  offsetof(struct tf_ipfix_stats, bytes), false },
		{ "tapflow_ipfix_connects_total", "counter",
		  "TCP connections made to the collector (the first one included).",
		  offsetof(struct tf_ipfix_stats, connects), false },
		{ "tapflow_ipfix_send_errors_total", "counter", "Sends and writes that failed.",
		  offsetof(struct tf_ipfix_stats, send_errors), false },
		{ "tapflow_ipfix_up", "gauge",
		  "1 if the destination takes records (TCP: connected; UDP, file: the last send worked).",
		  offsetof(struct tf_ipfix_stats, up), true },
	};
	struct tf_ipfix_stats *st;

	if (!h->ipfix_flows)
		return;
	st = calloc(h->n_ipfix + 1, sizeof(*st));
	if (!st) {
		p->oom = true;
		return;
	}
	for (size_t i = 0; i < h->n_ipfix; i++)
		tf_ipfix_get_stats(h->ipfix[i], &st[i]);
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		tf_prom_family(p, f[k].name, f[k].type, f[k].help);
		for (size_t i = 0; i < h->n_ipfix; i++) {
			const char *labels[] = { "destination", tf_ipfix_url(h->ipfix[i]), NULL };
			const char *v = (const char *)&st[i] + f[k].off;

			tf_prom_u64(p, f[k].name, labels,
				    f[k].flag ? *(const bool *)v : *(const uint64_t *)v);
		}
	}
	free(st);
	counter(p, "tapflow_ipfix_flows_unrecorded_total",
		"Flows whose IPFIX export state could not be kept (out of memory).",
		h->ipfix_flows->unrecorded);
}

/* The standard process metrics of Prometheus' client libraries. */
static void render_process(struct tf_prom *p, const struct tf_agent_health *h)
{
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long utime = 0, stime = 0;
	long rss = 0;
	size_t fds = 0;
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	DIR *d;

	if (f) {
		/* The command name may hold spaces and parentheses: fields count from the last ')'. */
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		char *rp;

		buf[n] = '\0';
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
				  "%*d %*d %*d %*d %*d %*d %*u %*u %ld", &utime, &stime, &rss) != 3)
			utime = stime = 0, rss = 0;
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		for (struct dirent *e; (e = readdir(d));)
			fds += e->d_name[0] != '.';
		closedir(d);
	}
	tf_prom_family(p, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.");
	tf_prom_num(p, "process_cpu_seconds_total", NULL, (double)(utime + stime) / (double)tick);
	gauge(p, "process_resident_memory_bytes", "Resident memory size in bytes.",
	      (double)rss * (double)page);
	gauge(p, "process_open_fds", "Number of open file descriptors.", (double)fds);
	gauge(p, "process_start_time_seconds",
	      "Start time of the process since unix epoch in seconds.", h->start_time);
}

/* Direction labels of a target's TCP counters: [0]/[1] are the kernel's rx/tx. */
static const char *tcp_direction(const struct tf_target *t, int d)
{
	/* A tap's tx is what the VM sent; an --iface's is what it transmitted (rx there). */
	bool transmit = tf_target_mirrored(t) ? d == 0 : d == 1;

	return transmit ? "transmit" : "receive";
}

static void tcp_histogram(struct tf_prom *p, const struct tf_target *t, const struct tf_tcp_tap *tt,
			  int side)
{
	static const char *const sides[TF_TCP_SIDES] = { "outside", "inside" };
	uint64_t cum = 0;
	char le[32];

	for (unsigned int b = 0; b < TF_TCP_HIST_BUCKETS; b++) {
		double v = tf_tcp_bucket_le(b);

		cum += tt->rtt_hist[side][b];
		if (isinf(v))
			snprintf(le, sizeof(le), "+Inf");
		else
			snprintf(le, sizeof(le), "%.9g", v);
		const char *l[] = { "domain", vm_or_empty(t), "interface", t->first_ifname,
				    "side", sides[side], "le", le, NULL };
		tf_prom_u64(p, "tapflow_tcp_rtt_seconds_bucket", l, cum);
	}
	const char *l[] = { "domain", vm_or_empty(t), "interface", t->first_ifname,
			    "side", sides[side], NULL };
	tf_prom_num(p, "tapflow_tcp_rtt_seconds_sum", l, (double)tt->rtt_sum_ns[side] / 1e9);
	tf_prom_u64(p, "tapflow_tcp_rtt_seconds_count", l, cum);
}

/* --tcp: per interface, the taps' RTT histograms and TCP event counters. */
static void render_tcp(const struct tf_session *s, struct tf_prom *p)
{
	static const struct {
		const char *name, *help;
		size_t field;
	} counters[] = {
		{ "tapflow_tcp_retransmits_total",
		  "TCP segments with data, SYN or FIN sent again (or reordered before the "
		  "interface); transmit = sent by the VM.", offsetof(struct tf_tcp_tap, retrans) },
		{ "tapflow_tcp_zero_windows_total",
		  "TCP segments advertising a zero window; transmit = the VM's receiver is full.",
		  offsetof(struct tf_tcp_tap, zero_win) },
		{ "tapflow_tcp_resets_total", "TCP RST segments; transmit = sent by the VM.",
		  offsetof(struct tf_tcp_tap, resets) },
		{ "tapflow_tcp_connect_failures_total",
		  "TCP connection attempts refused (RST) or unanswered for the initial "
		  "retransmission timeout (SYN sent again); transmit = opened by the VM.",
		  offsetof(struct tf_tcp_tap, connect_failures) },
	};
	const struct tf_collector *c = &s->c;
	struct tf_losses loss;

	if (!s->flows_on || !s->fr.tcp_on)
		return;
	tf_prom_family(p, "tapflow_tcp_rtt_seconds", "histogram",
		       "TCP round-trip times: outside = a segment the VM sent until the ACK "
		       "that covers it came back (network and remote end); inside = a segment "
		       "delivered to the VM until the VM's ACK (the guest's stack and scheduling).");
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		const struct tf_tcp_tap *tt = tf_tcp_tap_of(&s->fr.tcp, (uint32_t)t->ifindex);

		if (!t->traced || !t->flows || !tt)
			continue;
		for (int side = 0; side < TF_TCP_SIDES; side++)
			tcp_histogram(p, t, tt, side);
	}
	for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
		tf_prom_family(p, counters[k].name, "counter", counters[k].help);
		for (size_t i = 0; i < c->n_targets; i++) {
			const struct tf_target *t = &c->targets[i];
			const struct tf_tcp_tap *tt = tf_tcp_tap_of(&s->fr.tcp, (uint32_t)t->ifindex);
			const uint64_t *v;

			if (!t->traced || !t->flows || !tt)
				continue;
			v = (const uint64_t *)((const char *)tt + counters[k].field);
			for (int d = 0; d < 2; d++) {
				const char *l[] = { "domain", vm_or_empty(t), "interface",
						    t->first_ifname, "direction", tcp_direction(t, d),
						    NULL };
				tf_prom_u64(p, counters[k].name, l, v[d]);
			}
		}
	}
	tf_collector_losses(c, &loss);
	counter(p, "tapflow_tcp_map_full_total",
		"TCP segments of flows whose TCP state found no room (not analysed).",
		loss.tcp_flow_map_full);
}

int tf_agent_metrics_render(struct tf_agent_metrics *m, struct tf_session *s,
			    const struct tf_agent_health *h, struct tf_prom *p)
{
	const struct tf_collector *c = &s->c;
	struct tf_losses loss;
	struct tf_drop_losses dloss = {};
	size_t attached = 0;
	int err = 0;

	if (grow_targets(m, c->n_targets))
		return -ENOMEM;
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		struct tf_series_target *st = &m->t[i];

		attached += t->hook.attached;
		st->basing = t->traced && t->carried && !st->based;
		if (t->traced && t->flows && s->flows_on && m->flow_top &&
		    flows_step(st, &s->fr.rep, t, m->flow_top))
			err = -ENOMEM;
	}
	tf_prom_reset(p);
	tf_prom_family(p, "tapflow_build_info", "gauge", "tapflow's version; always 1.");
	{
		const char *l[] = { "version", TAPFLOW_VERSION, NULL };

		tf_prom_u64(p, "tapflow_build_info", l, 1);
	}
	gauge(p, "tapflow_up", "1: the agent traces and its last poll of the kernel worked.", 1);
	gauge(p, "tapflow_interfaces_attached", "Interfaces whose hooks are on now.",
	      (double)attached);
	gauge(p, "tapflow_inventory_stale",
	      "1 while libvirt cannot be read: VMs started meanwhile are not traced yet.",
	      s->stale);
	render_interfaces(c, p);
	if (s->flows_on) {
		render_flows(m, c, p);
		render_nat(m, &s->fr, c, p);
		render_tcp(s, p);
	}
	render_drops(m, c, p);
	for (size_t i = 0; i < c->n_targets; i++) {
		m->t[i].based |= m->t[i].basing;
		m->t[i].basing = false;
	}
	tf_collector_losses(c, &loss);
	if (c->drops_on)
		tf_drop_tracer_losses(&c->drop_tracer, &dloss);
	counter(p, "tapflow_map_full_total",
		"Packets not counted at all: no interface counter could be made.", loss.map_full);
	counter(p, "tapflow_parse_errors_total",
		"Frames the parser rejected (truncated or malformed); counted as unparsed.",
		loss.parse_errors);
	counter(p, "tapflow_flow_map_full_total",
		"Packets of new flows that found the flow map full (in the interface, in no flow).",
		loss.flow_map_full);
	counter(p, "tapflow_uplink_flow_map_full_total",
		"VMs' forwarded packets whose new uplink flow found the uplink flow map full "
		"(NAT join; on the uplink, joined with no VM flow).",
		loss.uplink_flow_map_full);
	counter(p, "tapflow_nat_retired_full_total",
		"Uplink flows whose earlier VM side could not be kept apart (NAT join).",
		loss.nat_retired_full);
	counter(p, "tapflow_uplink_cache_lost_total",
		"Uplink packets cached per CPU whose flow ended before the flush (NAT join).",
		loss.uplink_cache_lost);
	counter(p, "tapflow_drops_map_full_total",
		"Drops not aggregated: the drop tracer's map was full.", dloss.map_full);
	gauge(p, "tapflow_drop_tracer_up", "1 if dropped packets are traced.", c->drops_on);
	counter(p, "tapflow_scrapes_total", "Scrapes served.", h->scrapes);
	counter(p, "tapflow_scrapes_stale_total",
		"Scrapes served an older render: the agent did not answer in time.",
		h->scrapes_stale);
	counter(p, "tapflow_config_reloads_total", "Config reloads (SIGHUP) applied.", h->reloads);
	counter(p, "tapflow_config_reload_errors_total",
		"Config reloads refused (the old config stays).", h->reload_errors);
	render_bpf_stats(c, p);
	render_ipfix(p, h);
	render_process(p, h);
	if (p->oom)
		return -ENOMEM;
	return err;
}
