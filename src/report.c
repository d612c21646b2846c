// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "counters.h"
#include "report.h"

const char *tf_fdb_state_name(enum tf_fdb_state state)
{
	switch (state) {
	case TF_FDB_OK: return "ok";
	case TF_FDB_NOT_LEARNED: return "not_learned";
	case TF_FDB_OTHER_PORT: return "other_port";
	default: return "unchecked";
	}
}

static const char *or_null(const char *s)
{
	return s && *s ? s : NULL;
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* The printf width that pads s, already made safe, to cols columns. */
static int pad_to(const char *s, size_t cols)
{
	return (int)(cols + strlen(s) - tf_term_width(s));
}

/* The identity fields every vm and stats record carries; attached < 0: null. */
static void vif_identity(struct tf_json *j, const struct tf_vif *vif, int ifindex,
			 const char *ifname, int attached)
{
	tf_json_str(j, "vm", vif ? vif->vm : NULL);
	tf_json_str(j, "uuid", vif ? or_null(vif->uuid) : NULL);
	tf_json_str(j, "ifname", or_null(ifname));
	if (ifindex > 0)
		tf_json_i64(j, "ifindex", ifindex);
	else
		tf_json_null(j, "ifindex");
	tf_json_str(j, "mac", vif ? or_null(vif->mac) : NULL);
	tf_json_str(j, "network", vif ? or_null(vif->network) : NULL);
	tf_json_str(j, "bridge", vif ? or_null(vif->bridge) : NULL);
	tf_json_str(j, "mode", vif ? tf_mode_name(vif->mode) : NULL);
	if (attached < 0)
		tf_json_null(j, "attached");
	else
		tf_json_bool(j, "attached", attached);
}

void tf_report_vm_json(struct tf_json *j, const struct tf_vif *vif,
		       enum tf_attach_state attached, const struct timespec *now, FILE *f)
{
	tf_json_begin(j, "vm", now);
	/* Unknown (the state files are root's): null, never a guess. */
	vif_identity(j, vif, vif->ifindex, vif->ifname,
		     attached == TF_ATTACH_STATE_UNKNOWN ? -1 : attached != TF_ATTACH_STATE_NONE);
	if (attached == TF_ATTACH_STATE_UNKNOWN)
		tf_json_null(j, "orphaned");
	else
		tf_json_bool(j, "orphaned", attached == TF_ATTACH_STATE_ORPHANED);
	tf_json_str(j, "model", or_null(vif->model));
	if (vif->bridge[0] && vif->ifindex > 0)
		tf_json_bool(j, "tap_mac_ok", vif->tap_mac_ok);
	else
		tf_json_null(j, "tap_mac_ok");
	tf_json_str(j, "fdb", tf_fdb_state_name(vif->fdb));
	tf_json_str(j, "fdb_port", or_null(vif->fdb_port));
	tf_json_str(j, "note", or_null(vif->note));
	tf_json_end(j, f);
}

static void fdb_text(const struct tf_vif *vif, char *out, size_t outlen)
{
	char port[TF_TERM_SIZE(IFNAMSIZ)];

	switch (vif->fdb) {
	case TF_FDB_OK:
		snprintf(out, outlen, "ok");
		break;
	case TF_FDB_NOT_LEARNED:
		snprintf(out, outlen, "not learned");
		break;
	case TF_FDB_OTHER_PORT:
		snprintf(out, outlen, "on %s (!)",
			 tf_term_str(vif->fdb_port, 0, 0, port, sizeof(port)));
		break;
	default:
		snprintf(out, outlen, "-");
	}
}

static const char *attach_state_text(enum tf_attach_state s)
{
	switch (s) {
	case TF_ATTACH_STATE_LIVE: return "yes";
	case TF_ATTACH_STATE_ORPHANED: return "orphaned";
	case TF_ATTACH_STATE_UNKNOWN: return "?";
	default: return "no";
	}
}

void tf_report_vm_table(const struct tf_inventory *inv, const enum tf_attach_state *attached,
			FILE *f)
{
	fprintf(f, "%-16s %-10s %-17s %-12s %-10s %-8s %-8s %-14s %s\n", "VM", "TAP", "MAC",
		"NETWORK", "BRIDGE", "MODE", "ATTACHED", "FDB", "NOTE");
	for (size_t i = 0; i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];
		char vm[TF_TERM_SIZE(TF_NAME_MAX)], tap[TF_TERM_SIZE(IFNAMSIZ)];
		char net[TF_TERM_SIZE(TF_NAME_MAX)], br[TF_TERM_SIZE(IFNAMSIZ)];
		char fdb[TF_TERM_SIZE(IFNAMSIZ + 16)], note[TF_TERM_SIZE(sizeof(v->note))];
		char line[4096];
		size_t len;

		fdb_text(v, fdb, sizeof(fdb));
		snprintf(line, sizeof(line), "%s %s %-17s %s %s %-8s %-8s %-*s %s",
			 tf_term_str(v->vm, 16, 0, vm, sizeof(vm)),
			 tf_term_str(or_dash(v->ifname), 10, 0, tap, sizeof(tap)),
			 or_dash(v->mac),
			 tf_term_str(or_dash(v->network), 12, 0, net, sizeof(net)),
			 tf_term_str(or_dash(v->bridge), 10, 0, br, sizeof(br)),
			 tf_mode_name(v->mode), attach_state_text(attached[i]), pad_to(fdb, 14), fdb,
			 tf_term_str(v->note, 0, 0, note, sizeof(note)));
		len = strlen(line);
		while (len && line[len - 1] == ' ')
			line[--len] = '\0';	/* no note: no trailing blanks */
		fprintf(f, "%s\n", line);
	}
	if (!inv->n_vifs)
		fprintf(f, "(no running VM with a network interface)\n");
}

int tf_report_vm_warnings(const struct tf_inventory *inv, FILE *f)
{
	int n = 0;

	for (size_t i = 0; i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];
		char vm[TF_TERM_SIZE(TF_NAME_MAX)], tap[TF_TERM_SIZE(IFNAMSIZ)];
		char port[TF_TERM_SIZE(IFNAMSIZ)];

		tf_term_str(v->vm, 0, 0, vm, sizeof(vm));
		tf_term_str(v->ifname, 0, 0, tap, sizeof(tap));
		if (v->fdb == TF_FDB_OTHER_PORT) {
			fprintf(f, "warning: %s: MAC %s is learned on bridge port %s, not on "
				"its tap %s (misconfiguration or spoofing)\n",
				vm, v->mac, tf_term_str(v->fdb_port, 0, 0, port, sizeof(port)), tap);
			n++;
		}
		if (v->bridge[0] && v->ifindex > 0 && !v->tap_mac_ok) {
			fprintf(f, "warning: %s: tap %s does not carry the fe:.. form of the "
				"VM MAC %s (misconfiguration or spoofing)\n",
				vm, tap, v->mac);
			n++;
		}
	}
	return n;
}

bool tf_target_drops(const struct tf_collector *c, size_t i, uint64_t *out)
{
	const struct tf_drop_table *d = &c->drop_tab;

	*out = 0;
	if (!c->drops_on)
		return false;
	if (i < d->n_taps)
		*out = c->targets[i].role == TF_ROLE_TAP || c->targets[i].role == TF_ROLE_IFACE
			       ? d->tap_packets[i] : d->dev_packets[i];
	return true;
}

static double rate_bps(uint64_t now, uint64_t prev, double dt)
{
	return dt > 0 && now >= prev ? (double)(now - prev) * 8.0 / dt : 0;
}

void tf_report_stats_json(struct tf_json *j, const struct tf_collector *c,
			  const struct timespec *now, bool final, FILE *f)
{
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		double dt = t->now_t - t->prev_t;
		uint64_t drops;

		tf_json_begin(j, "stats", now);
		vif_identity(j, t->has_vif ? &t->vif : NULL, t->ifindex, t->ifname,
			     t->traced);
		tf_json_str(j, "role", tf_role_name(t->role));
		tf_json_u64(j, "rx_packets", t->now.rx_packets);
		tf_json_u64(j, "rx_bytes", t->now.rx_bytes);
		tf_json_u64(j, "tx_packets", t->now.tx_packets);
		tf_json_u64(j, "tx_bytes", t->now.tx_bytes);
		tf_json_u64(j, "rx_segs", t->now.rx_segs);
		tf_json_u64(j, "tx_segs", t->now.tx_segs);
		tf_json_num(j, "rx_bps", rate_bps(t->now.rx_bytes, t->prev.rx_bytes, dt));
		tf_json_num(j, "tx_bps", rate_bps(t->now.tx_bytes, t->prev.tx_bytes, dt));
		/* Not traced (no tracer on this kernel, --no-drops): null, never a made-up 0. */
		if (tf_target_drops(c, i, &drops))
			tf_json_u64(j, "drops", drops);
		else
			tf_json_null(j, "drops");
		tf_json_bool(j, "gone", t->gone);
		if (t->gone) {
			char at[64];

			tf_format_ts(&t->gone_at, at, sizeof(at));
			tf_json_str(j, "gone_at", at);
		} else {
			tf_json_null(j, "gone_at");
		}
		tf_json_u64(j, "restarts", t->restarts);
		tf_json_bool(j, "final", final);
		tf_json_end(j, f);
	}
}

void tf_report_stats_table(const struct tf_collector *c, const struct timespec *now,
			   bool final, FILE *f)
{
	char ts[64];

	tf_format_ts(now, ts, sizeof(ts));
	fprintf(f, "%s%s\n", final ? "final report, " : "", ts);
	fprintf(f, "%-16s %-10s %-7s %9s %10s %12s %9s %10s %12s %7s\n", "VM", "IFACE", "ROLE",
		"RX PKTS", "RX BYTES", "RX RATE", "TX PKTS", "TX BYTES", "TX RATE", "DROPS");
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		double dt = t->now_t - t->prev_t;
		char rxp[16], txp[16], rxb[16], txb[16], rxr[20], txr[20], drp[16] = "-";
		char vm[TF_TERM_SIZE(TF_NAME_MAX)], ifn[TF_TERM_SIZE(IFNAMSIZ)];
		uint64_t drops;

		tf_format_count(t->now.rx_packets, rxp, sizeof(rxp));
		tf_format_count(t->now.tx_packets, txp, sizeof(txp));
		tf_format_bytes(t->now.rx_bytes, rxb, sizeof(rxb));
		tf_format_bytes(t->now.tx_bytes, txb, sizeof(txb));
		tf_format_rate(rate_bps(t->now.rx_bytes, t->prev.rx_bytes, dt), rxr, sizeof(rxr));
		tf_format_rate(rate_bps(t->now.tx_bytes, t->prev.tx_bytes, dt), txr, sizeof(txr));
		if (tf_target_drops(c, i, &drops))
			tf_format_count(drops, drp, sizeof(drp));
		fprintf(f, "%s %s %-7s %9s %10s %12s %9s %10s %12s %7s%s\n",
			tf_term_str(t->has_vif ? t->vif.vm : "-", 16, 0, vm, sizeof(vm)),
			tf_term_str(t->ifname, 10, 0, ifn, sizeof(ifn)),
			tf_role_name(t->role), rxp, rxb, rxr, txp, txb, txr, drp,
			t->gone ? "  (gone)" : "");
	}
	fputc('\n', f);
}

void tf_summary_fill(struct tf_summary *s, const struct tf_collector *c)
{
	memset(s, 0, sizeof(*s));
	s->duration_s = c->attach_t > 0 ? tf_now_mono() - c->attach_t : 0;
	s->attach_mode = tf_attach_mode_name(c->attacher.chosen);
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		bool seen = false;

		s->interfaces++;
		s->vanished += t->gone;
		if (!t->has_vif)
			continue;
		/* Count each VM once, however many NICs it has. */
		for (size_t k = 0; k < i; k++)
			if (c->targets[k].has_vif && !strcmp(c->targets[k].vif.vm, t->vif.vm))
				seen = true;
		s->vms += !seen;
	}
	tf_collector_losses(c, &s->losses);
}

static void vm_totals(const struct tf_collector *c, struct tf_totals *tot)
{
	memset(tot, 0, sizeof(*tot));
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];

		if (t->role != TF_ROLE_TAP)
			continue;
		tot->rx_packets += t->now.rx_packets;
		tot->rx_bytes += t->now.rx_bytes;
		tot->rx_segs += t->now.rx_segs;
		tot->tx_packets += t->now.tx_packets;
		tot->tx_bytes += t->now.tx_bytes;
		tot->tx_segs += t->now.tx_segs;
	}
}

/* The frees the tracer found were no losses, by kind; false if it is off. */
static bool drops_kept(const struct tf_collector *c, uint64_t kept[TF_KEPT_KINDS],
		       uint64_t *total)
{
	*total = 0;
	if (!c->drops_on)
		return false;
	tf_drop_tracer_kept(&c->drop_tracer, kept);
	for (int k = 0; k < TF_KEPT_KINDS; k++)
		*total += kept[k];
	return true;
}

/* The drop tracer's part of the summary: what it saw and what it could not record. */
static void drops_summary_json(struct tf_json *j, const struct tf_collector *c)
{
	const struct tf_drop_table *d = &c->drop_tab;
	uint64_t kept[TF_KEPT_KINDS], delivered;
	struct tf_drop_losses l;
	uint64_t vm = 0;

	tf_json_str(j, "drops_hook", c->drops_on ? c->drop_tracer.hook : NULL);
	if (!drops_kept(c, kept, &delivered)) {
		tf_json_null(j, "drops");
		tf_json_null(j, "host_drops");
		tf_json_null(j, "drops_delivered");
		tf_json_null(j, "drops_delivered_raw");
		tf_json_null(j, "drops_socket_copies");
		tf_json_null(j, "drops_not_for_host");
		return;
	}
	for (size_t i = 0; i < d->n_taps; i++)
		vm += d->tap_packets[i];
	tf_drop_tracer_losses(&c->drop_tracer, &l);
	tf_json_u64(j, "drops", vm);
	tf_json_u64(j, "host_drops", d->host_packets);
	/* Freed with a drop reason, yet delivered: never in the drops above. */
	tf_json_u64(j, "drops_delivered", delivered);
	tf_json_u64(j, "drops_delivered_raw", kept[TF_KEPT_RAW]);
	tf_json_u64(j, "drops_socket_copies", kept[TF_KEPT_COPY]);
	tf_json_u64(j, "drops_not_for_host", kept[TF_KEPT_NOT_HOST]);
	tf_json_u64(j, "drop_map_full", l.map_full);
	tf_json_u64(j, "drop_events_lost", l.events_lost);
	tf_json_u64(j, "drop_events_suppressed", l.events_suppressed);
	tf_json_u64(j, "drop_harvest_races", l.harvest_races);
}

static void drops_summary_table(const struct tf_collector *c, FILE *f)
{
	const struct tf_drop_table *d = &c->drop_tab;
	uint64_t kept[TF_KEPT_KINDS], delivered;
	struct tf_drop_losses l;
	uint64_t vm = 0;

	if (!drops_kept(c, kept, &delivered))
		return;
	for (size_t i = 0; i < d->n_taps; i++)
		vm += d->tap_packets[i];
	tf_drop_tracer_losses(&c->drop_tracer, &l);
	fprintf(f, "drops: %llu of VMs' packets, %llu of the host's (%s)%s\n",
		(unsigned long long)vm, (unsigned long long)d->host_packets, c->drop_tracer.hook,
		l.map_full ? "; some not recorded: see drop_map_full" : "");
	if (delivered)
		fprintf(f, "not drops: %llu frees of delivered packets (%llu received by raw "
			"sockets, %llu sockets' own copies, %llu host copies of frames not for it)\n",
			(unsigned long long)delivered, (unsigned long long)kept[TF_KEPT_RAW],
			(unsigned long long)kept[TF_KEPT_COPY],
			(unsigned long long)kept[TF_KEPT_NOT_HOST]);
}

/* The summary fields every tracing command reports, before its loss counters. */
static void summary_json_head(struct tf_json *j, const struct tf_collector *c,
			      const struct tf_summary *s, const struct timespec *now)
{
	struct tf_totals tot;

	vm_totals(c, &tot);
	tf_json_begin(j, "summary", now);
	tf_json_num(j, "duration_s", (double)(int64_t)(s->duration_s * 1000) / 1000);
	tf_json_str(j, "attach_mode", s->attach_mode);
	tf_json_u64(j, "vms", s->vms);
	tf_json_u64(j, "interfaces", s->interfaces);
	tf_json_u64(j, "vanished", s->vanished);
	tf_json_u64(j, "rx_packets", tot.rx_packets);
	tf_json_u64(j, "rx_bytes", tot.rx_bytes);
	tf_json_u64(j, "tx_packets", tot.tx_packets);
	tf_json_u64(j, "tx_bytes", tot.tx_bytes);
	tf_json_u64(j, "rx_segs", tot.rx_segs);
	tf_json_u64(j, "tx_segs", tot.tx_segs);
	drops_summary_json(j, c);
}

void tf_report_summary_json(struct tf_json *j, const struct tf_collector *c,
			    const struct tf_summary *s, const struct timespec *now, FILE *f)
{
	summary_json_head(j, c, s, now);
	tf_json_u64(j, "map_full", s->losses.map_full);
	tf_json_u64(j, "ringbuf_lost", s->losses.ringbuf_lost);
	tf_json_u64(j, "parse_errors", s->losses.parse_errors);
	tf_json_end(j, f);
}

static void summary_table_head(const struct tf_collector *c, const struct tf_summary *s,
			       FILE *f)
{
	struct tf_totals tot;
	char rxb[16], txb[16];

	vm_totals(c, &tot);
	tf_format_bytes(tot.rx_bytes, rxb, sizeof(rxb));
	tf_format_bytes(tot.tx_bytes, txb, sizeof(txb));
	fprintf(f, "summary: %zu VMs, %zu interfaces (%s), %.1f s; VM rx %llu pkts %s, "
		"tx %llu pkts %s\n", s->vms, s->interfaces, s->attach_mode, s->duration_s,
		(unsigned long long)tot.rx_packets, rxb, (unsigned long long)tot.tx_packets, txb);
	drops_summary_table(c, f);
}

void tf_report_summary_table(const struct tf_collector *c, const struct tf_summary *s,
			     FILE *f)
{
	summary_table_head(c, s, f);
	fprintf(f, "not recorded: map_full %llu, ringbuf_lost %llu, parse_errors %llu%s\n",
		(unsigned long long)s->losses.map_full,
		(unsigned long long)s->losses.ringbuf_lost,
		(unsigned long long)s->losses.parse_errors,
		s->vanished ? "; some interfaces vanished during the run" : "");
}

/* ---- flows ---------------------------------------------------------------- */

static void dir_of(const struct tf_totals *t, struct tf_dir_counters *rx,
		   struct tf_dir_counters *tx)
{
	rx->packets = t->rx_packets;
	rx->bytes = t->rx_bytes;
	rx->segs = t->rx_segs;
	tx->packets = t->tx_packets;
	tx->bytes = t->tx_bytes;
	tx->segs = t->tx_segs;
}

static void aggr_row(struct tf_flow_row *row, const struct tf_target *t, const char *kind)
{
	memset(row, 0, sizeof(*row));
	row->t = t;
	row->aggregate = kind;
	row->v.vlan = row->v.vlan_inner = -1;
	row->v.proto = -1;
	row->v.local_port = row->v.remote_port = -1;
	row->v.icmp_type = row->v.icmp_code = row->v.icmp_id = -1;
}

/* An aggregate of the collector (overflow, unparsed): rates from its snapshots. */
static void totals_row(struct tf_flow_row *row, const struct tf_target *t, const char *kind,
		       const struct tf_totals *now, const struct tf_totals *prev)
{
	double dt = t->now_t - t->prev_t;

	aggr_row(row, t, kind);
	dir_of(now, &row->v.rx, &row->v.tx);
	row->rx_bps = rate_bps(now->rx_bytes, prev->rx_bytes, dt);
	row->tx_bps = rate_bps(now->tx_bytes, prev->tx_bytes, dt);
}

static bool row_empty(const struct tf_flow_row *row)
{
	return !row->v.rx.packets && !row->v.tx.packets && !row->flows;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* In a mirrored row (the interface's own view) rx and tx swap. */
static void mirror_link(struct tf_nat_link *l)
{
	struct tf_dir_counters d = l->up_rx;
	uint64_t x = l->lost_rx;

	l->up_rx = l->up_tx;
	l->up_tx = d;
	l->lost_rx = l->lost_tx;
	l->lost_tx = x;
}

/* Was the flow forwarded through the uplink, even if none of it got there? */
static bool forwarded(const struct tf_nat_link *l)
{
	return l->n_up || l->never_left;
}

static size_t tslot_of(uint32_t ifindex, size_t n_slots)
{
	/* Fibonacci hashing, as the flow index: the top bits of the product. */
	return (size_t)((uint32_t)(ifindex * 2654435761u) >>
			(32 - (unsigned int)__builtin_ctzl(n_slots))) & (n_slots - 1);
}

int tf_flow_report_index(struct tf_flow_report *r)
{
	size_t n = 64;

	while (n < 2 * r->c->n_targets)
		n *= 2;
	if (n != r->n_tslots) {
		uint32_t *slots = calloc(n, sizeof(*slots));

		if (!slots) {
			tf_flow_report_free(r);
			return -ENOMEM;
		}
		free(r->tslots);
		r->tslots = slots;
		r->n_tslots = n;
	} else {
		memset(r->tslots, 0, n * sizeof(*r->tslots));
	}
	for (size_t i = 0; i < r->c->n_targets; i++) {
		size_t s = tslot_of((uint32_t)r->c->targets[i].ifindex, n);

		while (r->tslots[s])
			s = (s + 1) & (n - 1);
		r->tslots[s] = (uint32_t)i + 1;
	}
	return 0;
}

void tf_flow_report_free(struct tf_flow_report *r)
{
	free(r->tslots);
	r->tslots = NULL;
	r->n_tslots = 0;
}

/* The target of ifindex: through the index, checked; else by a walk. */
static const struct tf_target *report_target(const struct tf_flow_report *r, uint32_t ifindex)
{
	size_t mask = r->n_tslots - 1;

	for (size_t s = r->n_tslots ? tslot_of(ifindex, r->n_tslots) : 0;
	     r->n_tslots && r->tslots[s]; s = (s + 1) & mask) {
		size_t pos = r->tslots[s] - 1;

		if (pos < r->c->n_targets && (uint32_t)r->c->targets[pos].ifindex == ifindex)
			return &r->c->targets[pos];
	}
	return tf_collector_target(r->c, (int)ifindex);
}

/*
 * A flow without an uplink flow whose own packets the host dropped while
 * it forwarded them to an uplink (a FORWARD rule, TTL, a full queue: the
 * drop tracer's out_ifindex): it was forwarded, and every packet it sent
 * was lost on the way. Without the drop tracer nothing says so.
 */
static void join_never_left(const struct tf_flow_report *r, const struct tf_flow *f,
			    const struct tf_flow_value *tot, struct tf_nat_link *out)
{
	uint32_t up = r->c->drops_on ? tf_drop_table_fwd_out(&r->c->drop_tab, &f->key) : 0;
	const struct tf_target *u = up ? report_target(r, up) : NULL;

	if (!u || u->role != TF_ROLE_UPLINK)
		return;
	out->never_left = true;
	out->up_key.ifindex = up;
	out->lost_tx = tot->tx.packets;
}

/* The NAT join of one flow of t, in the row's view; false if it cannot run. */
static bool join_flow(const struct tf_flow_report *r, const struct tf_target *t,
		      const struct tf_flow *f, const struct tf_flow_value *tot,
		      struct tf_nat_link *out)
{
	memset(out, 0, sizeof(*out));
	if (!r->nat || t->bridge_ifindex <= 0)
		return false;
	tf_nat_join(r->nat, &f->key, t->bridge_ifindex, tot, out);
	if (!out->n_up)
		join_never_left(r, f, tot, out);
	if (tf_target_mirrored(t))
		mirror_link(out);
	return true;
}

/*
 * A target's flows: those of its ifindex and, if it came back on a new one
 * (a VM started again), those its earlier ifindexes still have. -1: no memory.
 */
static long target_flows(const struct tf_flows *fl, const struct tf_target *t,
			 struct tf_flow ***out)
{
	long n = tf_flows_collect(fl, (uint32_t)t->ifindex, out);

	for (int k = 0; n >= 0 && k < TF_OLD_IFINDEXES && t->old_ifindex[k] > 0; k++) {
		struct tf_flow **more, **v;
		long m = tf_flows_collect(fl, (uint32_t)t->old_ifindex[k], &more);

		v = m < 0 ? NULL : realloc(*out, ((size_t)(n + m) + 1) * sizeof(*v));
		if (!v) {
			free(m < 0 ? NULL : more);
			free(*out);
			*out = NULL;
			return -1;
		}
		if (m)
			memcpy(v + n, more, (size_t)m * sizeof(*v));
		free(more);
		*out = v;
		n += m;
	}
	return n;
}

/* The flows a target's ifindexes (see target_flows) saw expire, summed. */
static void target_evicted(const struct tf_flows *fl, const struct tf_target *t,
			   struct tf_flow_evicted *out)
{
	memset(out, 0, sizeof(*out));
	for (int k = -1; k < TF_OLD_IFINDEXES; k++) {
		int ifindex = k < 0 ? t->ifindex : t->old_ifindex[k];
		const struct tf_flow_evicted *ev;

		if (ifindex <= 0)
			continue;
		ev = tf_flows_evicted(fl, (uint32_t)ifindex);
		if (!ev)
			continue;
		out->flows += ev->flows;
		tf_flow_value_add(&out->v, &ev->v);
	}
}

void tf_flow_target_fwd(const struct tf_flow_report *r, const struct tf_target *t,
			struct tf_nat_link *out)
{
	struct tf_flow **flows;
	long n = target_flows(r->fl, t, &flows);

	memset(out, 0, sizeof(*out));
	for (long i = 0; i < n; i++) {
		struct tf_flow_value tot;
		struct tf_nat_link l;

		tf_flow_total(flows[i], &tot);
		if (!join_flow(r, t, flows[i], &tot, &l) || !forwarded(&l))
			continue;
		out->n_up++;
		tf_dir_add(&out->up_tx, &l.up_tx);
		tf_dir_add(&out->up_rx, &l.up_rx);
		out->lost_tx += l.lost_tx;
		out->lost_rx += l.lost_rx;
	}
	free(flows);
}

/*
 * What the interface counted but no flow or aggregate holds: packets that
 * hit a kernel entry just as it was expired (the kernel's lookup-and-delete
 * is atomic against other map operations, not against a program already
 * holding a pointer to the entry). Only meaningful once detached (final).
 * True if there is any.
 */
static bool unaccounted_row(const struct tf_target *t, const struct tf_flow_row *rows,
			    size_t n, struct tf_flow_row *out)
{
	struct tf_dir_counters rx = {}, tx = {};

	for (size_t i = 0; i < n; i++) {
		tf_dir_add(&rx, &rows[i].v.rx);
		tf_dir_add(&tx, &rows[i].v.tx);
	}
	aggr_row(out, t, "unaccounted");
	out->v.rx.packets = sat_sub(t->now.rx_packets, rx.packets);
	out->v.rx.bytes = sat_sub(t->now.rx_bytes, rx.bytes);
	out->v.rx.segs = sat_sub(t->now.rx_segs, rx.segs);
	out->v.tx.packets = sat_sub(t->now.tx_packets, tx.packets);
	out->v.tx.bytes = sat_sub(t->now.tx_bytes, tx.bytes);
	out->v.tx.segs = sat_sub(t->now.tx_segs, tx.segs);
	return !row_empty(out) || out->v.rx.bytes || out->v.tx.bytes;
}

long tf_flow_rows(const struct tf_flow_report *r, const struct tf_target *t,
		  enum tf_flow_sort by, bool with_zero_aggr, struct tf_flow_row **rows)
{
	struct tf_flow_evicted evicted, *ev = &evicted;
	bool m = tf_target_mirrored(t);
	struct tf_flow **flows;
	struct tf_flow_row *out, others, row;
	long n = target_flows(r->fl, t, &flows);
	size_t shown, k = 0;

	target_evicted(r->fl, t, &evicted);

	*rows = NULL;
	if (n < 0)
		return -1;
	tf_flows_sort(flows, (size_t)n, by);
	shown = r->top_n && (size_t)n > r->top_n ? r->top_n : (size_t)n;
	out = calloc(shown + 5, sizeof(*out));
	if (!out) {
		free(flows);
		return -1;
	}
	aggr_row(&others, t, "others");
	for (size_t i = 0; i < (size_t)n; i++) {
		struct tf_flow_value tot;

		tf_flow_total(flows[i], &tot);
		if (i >= shown) {
			struct tf_flow_view v;

			tf_flow_view(&flows[i]->key, &tot, m, &v);
			tf_dir_add(&others.v.rx, &v.rx);
			tf_dir_add(&others.v.tx, &v.tx);
			others.rx_bps += m ? flows[i]->tx_bps : flows[i]->rx_bps;
			others.tx_bps += m ? flows[i]->rx_bps : flows[i]->tx_bps;
			others.flows++;
			continue;
		}
		row = (struct tf_flow_row){ .t = t, .flow = flows[i] };
		tf_flow_view(&flows[i]->key, &tot, m, &row.v);
		row.expired = flows[i]->expired;
		row.rx_bps = m ? flows[i]->tx_bps : flows[i]->rx_bps;
		row.tx_bps = m ? flows[i]->rx_bps : flows[i]->tx_bps;
		row.first_seen_ns = tot.first_seen_ns;
		row.last_seen_ns = tot.last_seen_ns;
		row.joinable = join_flow(r, t, flows[i], &tot, &row.nat);
		row.drops_known = r->c->drops_on;
		row.drops = tf_drop_table_flow(&r->c->drop_tab, &flows[i]->key);
		out[k++] = row;
	}
	free(flows);
	if (!row_empty(&others))
		out[k++] = others;
	if (ev->flows) {
		aggr_row(&row, t, "expired");
		row.flows = ev->flows;
		row.v.rx = m ? ev->v.tx : ev->v.rx;
		row.v.tx = m ? ev->v.rx : ev->v.tx;
		out[k++] = row;
	}
	totals_row(&row, t, "overflow", &t->overflow, &t->prev_overflow);
	if (with_zero_aggr || !row_empty(&row))
		out[k++] = row;
	totals_row(&row, t, "unparsed", &t->unparsed, &t->prev_unparsed);
	if (with_zero_aggr || !row_empty(&row))
		out[k++] = row;
	if (r->final && unaccounted_row(t, out, k, &row))
		out[k++] = row;
	*rows = out;
	return (long)k;
}

void tf_report_json_ktime(struct tf_json *j, const char *key, uint64_t ns, int64_t off)
{
	struct timespec ts;
	char buf[64];

	if (!ns) {
		tf_json_null(j, key);
		return;
	}
	tf_ktime_to_timespec(ns, off, &ts);
	tf_format_ts(&ts, buf, sizeof(buf));
	tf_json_str(j, key, buf);
}

static const char *ifname_of(const struct tf_flow_report *r, uint32_t ifindex)
{
	const struct tf_target *t = report_target(r, ifindex);

	return t ? t->ifname : NULL;
}

/*
 * nat: the address and port (ICMP: identifier) the flow leaves the host as,
 * null if it is not translated or not forwarded; the uplink's counters and
 * the forwarding loss, null if no uplink flow carried it.
 */
static void flow_nat_json(struct tf_json *j, const struct tf_flow_report *r,
			  const struct tf_flow_row *row)
{
	const struct tf_nat_link *l = &row->nat;
	bool fwd = row->joinable && forwarded(l);
	char ip[INET6_ADDRSTRLEN];

	/* A flow that never left has no translation to show: null. */
	if (fwd && l->translated) {
		tf_flow_ip_str(l->up_key.family, l->up_key.local_ip, ip, sizeof(ip));
		tf_json_object_begin(j, "nat");
		tf_json_str(j, "ip", ip);
		tf_json_i64(j, "port", l->up_key.local_port);
		tf_json_str(j, "ifname", ifname_of(r, l->up_key.ifindex));
		tf_json_i64(j, "zone", l->nat.zone);
		tf_json_object_end(j);
	} else {
		tf_json_null(j, "nat");
	}
	tf_json_str(j, "uplink", fwd ? ifname_of(r, l->up_key.ifindex) : NULL);
	tf_json_u64_or_null(j, "uplink_tx_packets", fwd, l->up_tx.packets);
	tf_json_u64_or_null(j, "uplink_tx_bytes", fwd, l->up_tx.bytes);
	tf_json_u64_or_null(j, "uplink_rx_packets", fwd, l->up_rx.packets);
	tf_json_u64_or_null(j, "uplink_rx_bytes", fwd, l->up_rx.bytes);
	tf_json_u64_or_null(j, "fwd_lost_tx", fwd, l->lost_tx);
	tf_json_u64_or_null(j, "fwd_lost_rx", fwd, l->lost_rx);
}

/* fwd: per VM tap (and --iface), its forwarded flows joined with the uplink. */
static void fwd_json(struct tf_json *j, const struct tf_flow_report *r, const struct tf_target *t,
		     const struct timespec *now, FILE *f)
{
	struct tf_nat_link l;

	tf_flow_target_fwd(r, t, &l);
	tf_json_begin(j, "fwd", now);
	tf_json_str(j, "vm", t->has_vif ? t->vif.vm : NULL);
	tf_json_str(j, "ifname", t->ifname);
	tf_json_u64(j, "flows", l.n_up);
	tf_json_u64(j, "uplink_tx_packets", l.up_tx.packets);
	tf_json_u64(j, "uplink_tx_bytes", l.up_tx.bytes);
	tf_json_u64(j, "uplink_rx_packets", l.up_rx.packets);
	tf_json_u64(j, "uplink_rx_bytes", l.up_rx.bytes);
	tf_json_u64(j, "fwd_lost_tx", l.lost_tx);
	tf_json_u64(j, "fwd_lost_rx", l.lost_rx);
	tf_json_bool(j, "final", r->final);
	tf_json_end(j, f);
}

/*
 * A TCP flow's figures in the row's view (an --iface row mirrored: rx and
 * tx swapped; the RTT sides stay the host's). false if the flow has no TCP
 * state (no segment analysed yet, or the state map was full).
 */
static bool row_tcp(const struct tf_flow_report *r, const struct tf_flow_row *row,
		    struct tf_tcp_figures *out)
{
	const struct tf_tcp_entry *e = row->flow ? tf_tcp_find(r->tcp, &row->flow->key) : NULL;

	if (!e)
		return false;
	tf_tcp_flow_figures(e, r->final, r->final || row->expired, out);
	if (tf_target_mirrored(row->t)) {
		uint64_t x = out->retrans[0];

		out->retrans[0] = out->retrans[1];
		out->retrans[1] = x;
		x = out->zero_win[0];
		out->zero_win[0] = out->zero_win[1];
		out->zero_win[1] = x;
	}
	return true;
}

static void rtt_json(struct tf_json *j, const char *key, const struct tf_tcp_rtt_fig *f)
{
	if (!f->samples) {
		tf_json_null(j, key);
		return;
	}
	tf_json_object_begin(j, key);
	tf_json_num(j, "min", f->min_ms);
	tf_json_num(j, "avg", f->avg_ms);
	tf_json_num(j, "max", f->max_ms);
	tf_json_u64(j, "samples", f->samples);
	tf_json_object_end(j);
}

/* The TCP health fields (--tcp), null where the flow has no TCP state. */
static void flow_tcp_json(struct tf_json *j, const struct tf_flow_report *r,
			  const struct tf_flow_row *row)
{
	static const char *const counts[] = {
		"retrans_rx", "retrans_tx", "zero_win_rx", "zero_win_tx", "syn_unanswered", "resets",
	};
	struct tf_tcp_figures t;

	if (!row_tcp(r, row, &t)) {
		tf_json_null(j, "rtt_out_ms");
		tf_json_null(j, "rtt_in_ms");
		tf_json_null(j, "handshake_ms");
		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
			tf_json_null(j, counts[i]);
		return;
	}
	rtt_json(j, "rtt_out_ms", &t.rtt[TF_TCP_OUTSIDE]);
	rtt_json(j, "rtt_in_ms", &t.rtt[TF_TCP_INSIDE]);
	if (t.handshake_ms >= 0)
		tf_json_num(j, "handshake_ms", t.handshake_ms);
	else
		tf_json_null(j, "handshake_ms");
	tf_json_u64(j, "retrans_rx", t.retrans[0]);
	tf_json_u64(j, "retrans_tx", t.retrans[1]);
	tf_json_u64(j, "zero_win_rx", t.zero_win[0]);
	tf_json_u64(j, "zero_win_tx", t.zero_win[1]);
	tf_json_u64(j, "syn_unanswered", t.syn_unanswered);
	tf_json_u64(j, "resets", t.resets);
}

static void flow_row_json(struct tf_json *j, const struct tf_flow_report *r,
			  const struct tf_flow_row *row, const struct timespec *now, FILE *f)
{
	const struct tf_flow_view *v = &row->v;
	char flags[16];

	tf_json_begin(j, "flow", now);
	tf_json_str(j, "vm", row->t->has_vif ? row->t->vif.vm : NULL);
	tf_json_str(j, "ifname", row->t->ifname);
	tf_json_str(j, "aggregate", row->aggregate);
	if (row->aggregate) {
		tf_json_null(j, "family");
		tf_json_null(j, "proto");
	} else {
		tf_json_int_or_null(j, "family", v->family ? v->family : -1);
		if (v->family && v->proto != IPPROTO_TCP && v->proto != IPPROTO_UDP &&
		    v->proto != IPPROTO_ICMP && v->proto != IPPROTO_ICMPV6)
			tf_json_i64(j, "proto", v->proto);
		else
			tf_json_str(j, "proto", v->proto_name);
	}
	tf_json_int_or_null(j, "vlan", v->vlan);
	tf_json_int_or_null(j, "vlan_inner", v->vlan_inner);
	tf_json_str(j, "local_ip", v->local_ip[0] ? v->local_ip : NULL);
	tf_json_int_or_null(j, "local_port", v->local_port);
	tf_json_str(j, "remote_ip", v->remote_ip[0] ? v->remote_ip : NULL);
	tf_json_int_or_null(j, "remote_port", v->remote_port);
	tf_json_int_or_null(j, "icmp_type", v->icmp_type);
	tf_json_int_or_null(j, "icmp_code", v->icmp_code);
	tf_json_int_or_null(j, "icmp_id", v->icmp_id);
	tf_json_u64(j, "tx_packets", v->tx.packets);
	tf_json_u64(j, "tx_bytes", v->tx.bytes);
	tf_json_u64(j, "rx_packets", v->rx.packets);
	tf_json_u64(j, "rx_bytes", v->rx.bytes);
	tf_json_u64(j, "tx_segs", v->tx.segs);
	tf_json_u64(j, "rx_segs", v->rx.segs);
	tf_json_num(j, "tx_bps", row->tx_bps);
	tf_json_num(j, "rx_bps", row->rx_bps);
	tf_report_json_ktime(j, "first_seen", row->first_seen_ns, r->clock_offset);
	tf_report_json_ktime(j, "last_seen", row->last_seen_ns, r->clock_offset);
	if (!row->aggregate && v->proto == IPPROTO_TCP) {
		tf_tcp_flags_str(v->tcp_flags, flags, sizeof(flags));
		tf_json_str(j, "tcp_flags", flags);
	} else {
		tf_json_null(j, "tcp_flags");
	}
	flow_nat_json(j, r, row);
	if (r->tcp && !row->aggregate && v->proto == IPPROTO_TCP)
		flow_tcp_json(j, r, row);
	tf_json_u64_or_null(j, "drops", row->drops_known, row->drops);
	if (row->aggregate && (!strcmp(row->aggregate, "others") ||
			       !strcmp(row->aggregate, "expired")))
		tf_json_u64(j, "flows", row->flows);
	else
		tf_json_null(j, "flows");
	tf_json_bool(j, "expired", row->expired);
	tf_json_bool(j, "final", r->final);
	tf_json_end(j, f);
}

void tf_report_flows_json(struct tf_json *j, const struct tf_flow_report *r,
			  const struct timespec *now, FILE *f)
{
	for (size_t i = 0; i < r->c->n_targets; i++) {
		const struct tf_target *t = &r->c->targets[i];
		struct tf_flow_row *rows;
		long n;

		if (!t->flows)
			continue;
		n = tf_flow_rows(r, t, TF_SORT_BYTES, true, &rows);
		for (long k = 0; k < n; k++)
			flow_row_json(j, r, &rows[k], now, f);
		free(rows);
		if (r->nat && t->bridge_ifindex > 0)
			fwd_json(j, r, t, now, f);
	}
}

static const char *icmp_query_name(int family, int type)
{
	if (family == 4) {
		switch (type) {
		case 0: case 8: return "echo";
		case 13: case 14: return "timestamp";
		case 15: case 16: return "info";
		case 17: case 18: return "mask";
		}
	} else {
		switch (type) {
		case 128: case 129: return "echo";
		case 139: case 140: return "nodeinfo";
		}
	}
	return "query";
}

void tf_flow_row_proto(const struct tf_flow_row *row, char *out, size_t outlen)
{
	const struct tf_flow_view *v = &row->v;
	char vlan[40] = "";

	if (row->aggregate) {
		if (row->flows)
			snprintf(out, outlen, "(%s: %llu flows)", row->aggregate,
				 (unsigned long long)row->flows);
		else
			snprintf(out, outlen, "(%s)", row->aggregate);
		return;
	}
	if (v->vlan >= 0 && v->vlan_inner >= 0)
		snprintf(vlan, sizeof(vlan), " vlan %d.%d", v->vlan, v->vlan_inner);
	else if (v->vlan >= 0)
		snprintf(vlan, sizeof(vlan), " vlan %d", v->vlan);
	if (v->icmp_id >= 0)
		snprintf(out, outlen, "%s %s id %d%s", v->proto_name,
			 icmp_query_name(v->family, v->icmp_type), v->icmp_id, vlan);
	else if (v->icmp_type >= 0)
		snprintf(out, outlen, "%s %d/%d%s", v->proto_name, v->icmp_type, v->icmp_code,
			 vlan);
	else
		snprintf(out, outlen, "%s%s", v->proto_name, vlan);
}

static void hms(uint64_t ns, int64_t off, char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;

	if (!ns) {
		snprintf(out, outlen, "-");
		return;
	}
	tf_ktime_to_timespec(ns, off, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(out, outlen, "%H:%M:%S", &tm);
}

#define FLOW_COLS 21
#define FLOW_COL_DROPS 13
#define FLOW_COL_NAT 14
#define FLOW_COL_TCP 16	/* --tcp: RTT OUT, RTT IN, RETR, ZWIN, SYN/RST */

void tf_flow_row_nat(const struct tf_flow_row *row, char *nat, char *lost, size_t outlen)
{
	const struct tf_nat_link *l = &row->nat;
	char ip[INET6_ADDRSTRLEN];

	if (!row->joinable || !forwarded(l)) {
		snprintf(nat, outlen, "-");
		snprintf(lost, outlen, "-");
		return;
	}
	if (l->never_left) {
		snprintf(nat, outlen, "never left");
	} else if (l->translated) {
		tf_flow_ip_str(l->up_key.family, l->up_key.local_ip, ip, sizeof(ip));
		tf_flow_endpoint_str(l->up_key.family, ip,
				     row->v.local_port < 0 && row->v.icmp_id < 0 ? -1
									 : l->up_key.local_port,
				     nat, outlen);
	} else {
		snprintf(nat, outlen, "routed");
	}
	snprintf(lost, outlen, "%llu/%llu", (unsigned long long)l->lost_tx,
		 (unsigned long long)l->lost_rx);
}

/* A cell holds a VM name made safe for the terminal; the others are shorter. */
#define FLOW_CELL TF_TERM_SIZE(TF_NAME_MAX)

/* RTT OUT, RTT IN (averages), RETR tx/rx, ZWIN tx/rx, SYN/RST: "-" if not TCP. */
static void flow_tcp_cells(const struct tf_flow_report *r, const struct tf_flow_row *row,
			   char cells[5][FLOW_CELL])
{
	struct tf_tcp_figures t;

	if (!r->tcp || row->aggregate || row->v.proto != IPPROTO_TCP || !row_tcp(r, row, &t)) {
		for (int i = 0; i < 5; i++)
			snprintf(cells[i], FLOW_CELL, "-");
		return;
	}
	tf_tcp_rtt_cell(t.rtt[TF_TCP_OUTSIDE].samples, t.rtt[TF_TCP_OUTSIDE].avg_ms, cells[0],
			FLOW_CELL);
	tf_tcp_rtt_cell(t.rtt[TF_TCP_INSIDE].samples, t.rtt[TF_TCP_INSIDE].avg_ms, cells[1],
			FLOW_CELL);
	snprintf(cells[2], FLOW_CELL, "%llu/%llu", (unsigned long long)t.retrans[1],
		 (unsigned long long)t.retrans[0]);
	snprintf(cells[3], FLOW_CELL, "%llu/%llu", (unsigned long long)t.zero_win[1],
		 (unsigned long long)t.zero_win[0]);
	snprintf(cells[4], FLOW_CELL, "%llu/%llu", (unsigned long long)t.syn_unanswered,
		 (unsigned long long)t.resets);
}

static void flow_cells(const struct tf_flow_report *r, const struct tf_flow_row *row,
		       char cells[FLOW_COLS][FLOW_CELL])
{
	const struct tf_flow_view *v = &row->v;

	tf_term_str(row->t->has_vif ? row->t->vif.vm : "-", 0, 0, cells[0], sizeof(cells[0]));
	tf_term_str(row->t->ifname, 0, 0, cells[1], sizeof(cells[0]));
	tf_flow_row_proto(row, cells[2], sizeof(cells[0]));
	tf_flow_endpoint_str(v->family, v->local_ip, v->local_port, cells[3], sizeof(cells[0]));
	tf_flow_endpoint_str(v->family, v->remote_ip, v->remote_port, cells[4], sizeof(cells[0]));
	tf_format_count(v->tx.packets, cells[5], sizeof(cells[0]));
	tf_format_bytes(v->tx.bytes, cells[6], sizeof(cells[0]));
	tf_format_rate(row->tx_bps, cells[7], sizeof(cells[0]));
	tf_format_count(v->rx.packets, cells[8], sizeof(cells[0]));
	tf_format_bytes(v->rx.bytes, cells[9], sizeof(cells[0]));
	tf_format_rate(row->rx_bps, cells[10], sizeof(cells[0]));
	hms(row->first_seen_ns, r->clock_offset, cells[11], sizeof(cells[0]));
	hms(row->last_seen_ns, r->clock_offset, cells[12], sizeof(cells[0]));
	if (row->drops_known)
		tf_format_count(row->drops, cells[13], sizeof(cells[0]));
	else
		snprintf(cells[13], sizeof(cells[0]), "-");
	tf_flow_row_nat(row, cells[14], cells[15], sizeof(cells[0]));
	flow_tcp_cells(r, row, &cells[FLOW_COL_TCP]);
}

/* Per VM: its forwarded flows and what got lost on the way, one line each. */
static void fwd_table(const struct tf_flow_report *r, FILE *f)
{
	bool head = false;

	for (size_t i = 0; i < r->c->n_targets; i++) {
		const struct tf_target *t = &r->c->targets[i];
		char vm[TF_TERM_SIZE(TF_NAME_MAX)], ifn[TF_TERM_SIZE(IFNAMSIZ)];
		struct tf_nat_link l;

		if (!t->flows || t->bridge_ifindex <= 0)
			continue;
		tf_flow_target_fwd(r, t, &l);
		if (!l.n_up)
			continue;
		if (!head)
			fprintf(f, "forwarded through the uplink:\n");
		head = true;
		fprintf(f, "  %s %s: %zu flow%s, uplink tx %llu pkts rx %llu pkts, "
			"lost in forwarding tx %llu rx %llu\n",
			tf_term_str(t->has_vif ? t->vif.vm : "-", 0, 0, vm, sizeof(vm)),
			tf_term_str(t->ifname, 0, 0, ifn, sizeof(ifn)), l.n_up, l.n_up == 1 ? "" : "s",
			(unsigned long long)l.up_tx.packets, (unsigned long long)l.up_rx.packets,
			(unsigned long long)l.lost_tx, (unsigned long long)l.lost_rx);
	}
}

void tf_report_flows_table(const struct tf_flow_report *r, const struct timespec *now, FILE *f)
{
	static const char *const head[FLOW_COLS] = {
		"VM", "IFACE", "PROTO", "LOCAL", "REMOTE", "TX PKTS", "TX BYTES", "TX RATE",
		"RX PKTS", "RX BYTES", "RX RATE", "FIRST", "LAST", "DROPS", "NAT", "FWD LOST",
		"RTT OUT", "RTT IN", "RETR TX/RX", "ZWIN TX/RX", "SYN!/RST",
	};
	/* Columns of what is on: DROPS with the drop tracer, NAT ones with the join. */
	bool show[FLOW_COLS];
	/* Text columns left-aligned, numbers right-aligned. */
	static const bool left[FLOW_COLS] = {
		true, true, true, true, true, [FLOW_COL_NAT] = true,
	};
	struct tf_flow_row **per = calloc(r->c->n_targets, sizeof(*per));
	long *nper = calloc(r->c->n_targets, sizeof(*nper));
	size_t width[FLOW_COLS];
	char cells[FLOW_COLS][FLOW_CELL], ts[64];
	size_t rows = 0;

	if (!per || !nper)
		goto out;
	for (int c = 0; c < FLOW_COLS; c++) {
		show[c] = c < FLOW_COL_DROPS ||
			  (c == FLOW_COL_DROPS ? r->c->drops_on
					       : c < FLOW_COL_TCP ? !!r->nat : !!r->tcp);
		width[c] = strlen(head[c]);
	}
	for (size_t i = 0; i < r->c->n_targets; i++) {
		const struct tf_target *t = &r->c->targets[i];

		if (!t->flows)
			continue;
		nper[i] = tf_flow_rows(r, t, TF_SORT_BYTES, false, &per[i]);
		for (long k = 0; k < nper[i]; k++, rows++) {
			flow_cells(r, &per[i][k], cells);
			for (int c = 0; c < FLOW_COLS; c++)
				if (tf_term_width(cells[c]) > width[c])
					width[c] = tf_term_width(cells[c]);
		}
	}
	tf_format_ts(now, ts, sizeof(ts));
	fprintf(f, "%s%s\n", r->final ? "final report, " : "", ts);
	for (int c = 0; c < FLOW_COLS; c++)
		if (show[c])
			fprintf(f, "%s%*s", c ? "  " : "",
				left[c] ? -(int)width[c] : (int)width[c], head[c]);
	fputc('\n', f);
	for (size_t i = 0; i < r->c->n_targets; i++) {
		for (long k = 0; k < nper[i]; k++) {
			flow_cells(r, &per[i][k], cells);
			for (int c = 0; c < FLOW_COLS; c++)
				if (show[c])
					fprintf(f, "%s%*s", c ? "  " : "",
						left[c] ? -pad_to(cells[c], width[c])
							: pad_to(cells[c], width[c]),
						cells[c]);
			fprintf(f, "%s\n", per[i][k].expired ? "  (ended)" : "");
		}
	}
	if (!rows)
		fprintf(f, "(no flows yet)\n");
	if (r->nat)
		fwd_table(r, f);
	fputc('\n', f);
out:
	for (size_t i = 0; per && i < r->c->n_targets; i++)
		free(per[i]);
	free(per);
	free(nper);
}

static void flows_loss_fields(struct tf_json *j, const struct tf_flow_report *r,
			      const struct tf_summary *s)
{
	struct tf_flow_counts counts, *fc = &counts;

	tf_flows_counts(r->fl, &counts);
	tf_json_u64(j, "map_full", s->losses.flow_map_full);
	tf_json_u64(j, "if_map_full", s->losses.map_full);
	tf_json_u64(j, "ringbuf_lost", s->losses.ringbuf_lost);
	tf_json_u64(j, "parse_errors", s->losses.parse_errors);
	tf_json_u64(j, "expire_races", fc->races);
	tf_json_u64(j, "max_flows", r->c->max_flows);
	tf_json_u64(j, "flows_seen", fc->seen);
	tf_json_u64(j, "flows_expired", fc->expired);
	tf_json_u64(j, "flows_evicted", fc->evicted);
	/* The NAT join: its uplink flows are counted in flows_seen too. */
	tf_json_bool(j, "nat_join", r->nat != NULL);
	tf_json_u64(j, "uplink_flows", r->nat ? r->nat->n : 0);
	tf_json_u64(j, "uplink_map_full", s->losses.uplink_flow_map_full);
	tf_json_u64(j, "uplink_retired", fc->retired);
	tf_json_u64(j, "uplink_retired_dropped", fc->retired_dropped);
	tf_json_u64(j, "nat_retired_full", s->losses.nat_retired_full);
	tf_json_u64(j, "uplink_cache_lost", s->losses.uplink_cache_lost);
	if (r->tcp)
		tf_json_u64(j, "tcp_map_full", s->losses.tcp_flow_map_full);
	else
		tf_json_null(j, "tcp_map_full");
}

void tf_report_flows_summary_json(struct tf_json *j, const struct tf_flow_report *r,
				  const struct tf_summary *s, const struct timespec *now, FILE *f)
{
	summary_json_head(j, r->c, s, now);
	flows_loss_fields(j, r, s);
	tf_json_end(j, f);
}

void tf_report_flows_summary_table(const struct tf_flow_report *r, const struct tf_summary *s,
				   FILE *f)
{
	struct tf_flow_counts counts, *fc = &counts;

	tf_flows_counts(r->fl, &counts);
	summary_table_head(r->c, s, f);
	fprintf(f, "flows: %llu seen, %llu expired (idle), %llu in the table",
		(unsigned long long)fc->seen, (unsigned long long)fc->expired,
		(unsigned long long)tf_flows_n(r->fl));
	if (r->nat)
		fprintf(f, " (%zu of them uplink flows of the NAT join)", r->nat->n);
	fprintf(f, "; flow map %u entries\n", r->c->max_flows);
	fprintf(f, "not recorded: map_full %llu (flow map; counted in the overflow aggregates), "
		"parse_errors %llu, if_map_full %llu, expire_races %llu",
		(unsigned long long)s->losses.flow_map_full,
		(unsigned long long)s->losses.parse_errors,
		(unsigned long long)s->losses.map_full, (unsigned long long)fc->races);
	if (r->c->nat_loaded)
		fprintf(f, ", uplink_map_full %llu (uplink flow map; joined with no VM flow)",
			(unsigned long long)s->losses.uplink_flow_map_full);
	if (r->tcp)
		fprintf(f, ", tcp_map_full %llu (TCP segments not analysed: no room for their state)",
			(unsigned long long)s->losses.tcp_flow_map_full);
	fprintf(f, "%s\n", s->vanished ? "; some interfaces vanished during the run" : "");
}
