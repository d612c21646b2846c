// SPDX-License-Identifier: GPL-2.0
#include <string.h>

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

/* The identity fields every vm and stats record carries. */
static void vif_identity(struct tf_json *j, const struct tf_vif *vif, int ifindex,
			 const char *ifname, bool attached)
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
	tf_json_bool(j, "attached", attached);
}

void tf_report_vm_json(struct tf_json *j, const struct tf_vif *vif, bool attached,
		       const struct timespec *now, FILE *f)
{
	tf_json_begin(j, "vm", now);
	vif_identity(j, vif, vif->ifindex, vif->ifname, attached);
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
	switch (vif->fdb) {
	case TF_FDB_OK:
		snprintf(out, outlen, "ok");
		break;
	case TF_FDB_NOT_LEARNED:
		snprintf(out, outlen, "not learned");
		break;
	case TF_FDB_OTHER_PORT:
		snprintf(out, outlen, "on %s (!)", vif->fdb_port);
		break;
	default:
		snprintf(out, outlen, "-");
	}
}

void tf_report_vm_table(const struct tf_inventory *inv, const bool *attached, FILE *f)
{
	fprintf(f, "%-16s %-10s %-17s %-12s %-10s %-8s %-8s %-14s %s\n", "VM", "TAP", "MAC",
		"NETWORK", "BRIDGE", "MODE", "ATTACHED", "FDB", "NOTE");
	for (size_t i = 0; i < inv->n_vifs; i++) {
		const struct tf_vif *v = &inv->vifs[i];
		char fdb[48];

		char line[1024];
		size_t len;

		fdb_text(v, fdb, sizeof(fdb));
		snprintf(line, sizeof(line), "%-16s %-10s %-17s %-12s %-10s %-8s %-8s %-14s %s",
			 v->vm, or_dash(v->ifname), or_dash(v->mac), or_dash(v->network),
			 or_dash(v->bridge), tf_mode_name(v->mode),
			 attached[i] ? "yes" : "no", fdb, v->note);
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

		if (v->fdb == TF_FDB_OTHER_PORT) {
			fprintf(f, "warning: %s: MAC %s is learned on bridge port %s, not on "
				"its tap %s (misconfiguration or spoofing)\n",
				v->vm, v->mac, v->fdb_port, v->ifname);
			n++;
		}
		if (v->bridge[0] && v->ifindex > 0 && !v->tap_mac_ok) {
			fprintf(f, "warning: %s: tap %s does not carry the fe:.. form of the "
				"VM MAC %s (misconfiguration or spoofing)\n",
				v->vm, v->ifname, v->mac);
			n++;
		}
	}
	return n;
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

		tf_json_begin(j, "stats", now);
		vif_identity(j, t->has_vif ? &t->vif : NULL, t->ifindex, t->ifname,
			     t->hook.attached || t->gone);
		tf_json_str(j, "role", tf_role_name(t->role));
		tf_json_u64(j, "rx_packets", t->now.rx_packets);
		tf_json_u64(j, "rx_bytes", t->now.rx_bytes);
		tf_json_u64(j, "tx_packets", t->now.tx_packets);
		tf_json_u64(j, "tx_bytes", t->now.tx_bytes);
		tf_json_u64(j, "rx_segs", t->now.rx_segs);
		tf_json_u64(j, "tx_segs", t->now.tx_segs);
		tf_json_num(j, "rx_bps", rate_bps(t->now.rx_bytes, t->prev.rx_bytes, dt));
		tf_json_num(j, "tx_bps", rate_bps(t->now.tx_bytes, t->prev.tx_bytes, dt));
		/* Not measured until the drop tracer exists: null, never a made-up 0. */
		tf_json_null(j, "drops");
		tf_json_bool(j, "gone", t->gone);
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
	fprintf(f, "%-16s %-10s %-7s %9s %10s %12s %9s %10s %12s\n", "VM", "IFACE", "ROLE",
		"RX PKTS", "RX BYTES", "RX RATE", "TX PKTS", "TX BYTES", "TX RATE");
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		double dt = t->now_t - t->prev_t;
		char rxp[16], txp[16], rxb[16], txb[16], rxr[20], txr[20];

		tf_format_count(t->now.rx_packets, rxp, sizeof(rxp));
		tf_format_count(t->now.tx_packets, txp, sizeof(txp));
		tf_format_bytes(t->now.rx_bytes, rxb, sizeof(rxb));
		tf_format_bytes(t->now.tx_bytes, txb, sizeof(txb));
		tf_format_rate(rate_bps(t->now.rx_bytes, t->prev.rx_bytes, dt), rxr, sizeof(rxr));
		tf_format_rate(rate_bps(t->now.tx_bytes, t->prev.tx_bytes, dt), txr, sizeof(txr));
		fprintf(f, "%-16s %-10s %-7s %9s %10s %12s %9s %10s %12s%s\n",
			t->has_vif ? t->vif.vm : "-", t->ifname,
			tf_role_name(t->role), rxp, rxb, rxr, txp, txb, txr,
			t->gone ? "  (gone)" : "");
	}
	fputc('\n', f);
}

void tf_summary_fill(struct tf_summary *s, const struct tf_collector *c)
{
	memset(s, 0, sizeof(*s));
	s->duration_s = c->attach_t > 0 ? tf_now_mono() - c->attach_t : 0;
	s->attach_mode = tf_attach_mode_name(c->attacher.chosen);
	s->interfaces = c->n_targets;
	for (size_t i = 0; i < c->n_targets; i++) {
		const struct tf_target *t = &c->targets[i];
		bool seen = false;

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

void tf_report_summary_json(struct tf_json *j, const struct tf_collector *c,
			    const struct tf_summary *s, const struct timespec *now, FILE *f)
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
	tf_json_u64(j, "map_full", s->losses.map_full);
	tf_json_u64(j, "ringbuf_lost", s->losses.ringbuf_lost);
	tf_json_u64(j, "parse_errors", s->losses.parse_errors);
	tf_json_end(j, f);
}

void tf_report_summary_table(const struct tf_collector *c, const struct tf_summary *s,
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
	fprintf(f, "not recorded: map_full %llu, ringbuf_lost %llu, parse_errors %llu%s\n",
		(unsigned long long)s->losses.map_full,
		(unsigned long long)s->losses.ringbuf_lost,
		(unsigned long long)s->losses.parse_errors,
		s->vanished ? "; some interfaces vanished during the run" : "");
}
