// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>

#include "flows.h"
#include "report.h"
#include "report_drops.h"

/*
 * A dropped packet's flow as its row shows flows: in the VM's view on a
 * tap (tx: the VM's own packet), mirrored into the interface's own view
 * for --iface (rx: received by the interface, local: this side), as the
 * same flow's record in `flows` is. *tx says which way it went, in that view.
 */
static void drop_view(const struct tf_drop_report *r, const struct tf_drop_key *k,
		      const struct tf_drop_attr *a, struct tf_flow_view *v, bool *tx)
{
	const struct tf_target *t = a->tap >= 0 ? &r->c->targets[a->tap] : NULL;
	bool m = t && tf_target_mirrored(t);
	struct tf_flow_key fk;

	if (a->has_flow)
		fk = a->flow;
	else
		tf_drop_flow_key(&k->pkt, 0, a->tap < 0 || a->tx, &fk);
	tf_flow_view(&fk, &(struct tf_flow_value){}, m, v);
	*tx = (a->tap < 0 || a->tx) != m;
}

static const char *ifname_of(const struct tf_collector *c, uint32_t ifindex, char *buf,
			     size_t len)
{
	const struct tf_target *t = tf_collector_target(c, (int)ifindex);

	if (t)
		return t->ifname;
	if (!ifindex || !if_indextoname(ifindex, buf))
		return NULL;
	buf[len - 1] = '\0';
	return buf;
}

/* Groups in report order: VMs (by target, biggest first), then the host's. */
static int cmp_groups(const void *a, const void *b)
{
	const struct tf_drop_group *x = *(const struct tf_drop_group *const *)a;
	const struct tf_drop_group *y = *(const struct tf_drop_group *const *)b;
	int xt = x->tap < 0 ? 1 << 30 : x->tap, yt = y->tap < 0 ? 1 << 30 : y->tap;

	if (xt != yt)
		return xt < yt ? -1 : 1;
	if (x->packets != y->packets)
		return x->packets > y->packets ? -1 : 1;
	return x->reason < y->reason ? -1 : x->reason > y->reason;
}

static const struct tf_drop_group **sorted_groups(const struct tf_drop_table *d)
{
	const struct tf_drop_group **v = malloc((d->n ? d->n : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < d->n; i++)
		v[i] = &d->g[i];
	qsort(v, d->n, sizeof(*v), cmp_groups);
	return v;
}

/* The flow fields of a dropped packet, in its row's view (drop_view). */
static void flow_fields_json(struct tf_json *j, const struct tf_drop_report *r,
			     const struct tf_drop_key *k, const struct tf_drop_attr *a, bool vm)
{
	struct tf_flow_view v;
	bool tx;

	if (!vm) {
		/* The host aggregate lists no flow. */
		tf_json_null(j, "direction");
		tf_json_null(j, "family");
		tf_json_null(j, "proto");
		tf_json_null(j, "local_ip");
		tf_json_null(j, "local_port");
		tf_json_null(j, "remote_ip");
		tf_json_null(j, "remote_port");
		tf_json_null(j, "icmp_type");
		tf_json_null(j, "icmp_code");
		tf_json_null(j, "icmp_id");
		tf_json_null(j, "flow_known");
		return;
	}
	drop_view(r, k, a, &v, &tx);
	tf_json_str(j, "direction", tx ? "tx" : "rx");
	tf_json_int_or_null(j, "family", v.family ? v.family : -1);
	if (v.family && (v.proto == 6 || v.proto == 17 || v.proto == 1 || v.proto == 58))
		tf_json_str(j, "proto", v.proto_name);
	else if (v.family)
		tf_json_i64(j, "proto", v.proto);
	else
		tf_json_str(j, "proto", v.proto_name[0] ? v.proto_name : NULL);
	tf_json_str(j, "local_ip", v.local_ip[0] ? v.local_ip : NULL);
	tf_json_int_or_null(j, "local_port", v.local_port);
	tf_json_str(j, "remote_ip", v.remote_ip[0] ? v.remote_ip : NULL);
	tf_json_int_or_null(j, "remote_port", v.remote_port);
	tf_json_int_or_null(j, "icmp_type", v.icmp_type);
	tf_json_int_or_null(j, "icmp_code", v.icmp_code);
	tf_json_int_or_null(j, "icmp_id", v.icmp_id);
	/* true: one of the VM's flows (flows shows it); false: only its addresses. */
	tf_json_bool(j, "flow_known", a->has_flow);
}

void tf_report_drops_json(struct tf_json *j, const struct tf_drop_report *r,
			  const struct timespec *now, FILE *f)
{
	const struct tf_drop_table *d = &r->c->drop_tab;
	const struct tf_drop_group **v = sorted_groups(d);
	char reason[64], loc[256], b1[IF_NAMESIZE], b2[IF_NAMESIZE];

	if (!v)
		return;
	for (size_t i = 0; i < d->n; i++) {
		const struct tf_drop_group *g = v[i];
		const struct tf_target *t = g->tap >= 0 ? &r->c->targets[g->tap] : NULL;

		tf_drop_reason_name(r->reasons, g->reason, reason, sizeof(reason));
		tf_json_begin(j, "drop", now);
		tf_json_str(j, "vm", t && t->has_vif ? t->vif.vm : NULL);
		tf_json_str(j, "ifname", t ? t->ifname : NULL);
		tf_json_str(j, "aggregate", t ? NULL : "host");
		tf_json_str(j, "reason", reason);
		tf_json_u64(j, "reason_code", g->reason);
		if (t) {
			tf_ksyms_name(r->ksyms, g->location, loc, sizeof(loc));
			tf_json_str(j, "location", loc);
			tf_json_str(j, "dev", ifname_of(r->c, g->ifindex, b1, sizeof(b1)));
			tf_json_str(j, "in_dev", ifname_of(r->c, g->last.iif, b2, sizeof(b2)));
			tf_json_str(j, "attributed_by", g->last_attr.how);
		} else {
			tf_json_null(j, "location");
			tf_json_null(j, "dev");
			tf_json_null(j, "in_dev");
			tf_json_null(j, "attributed_by");
		}
		tf_json_u64(j, "count", g->packets);
		tf_json_u64(j, "bytes", g->bytes);
		tf_report_json_ktime(j, "first_seen", g->first_ns, r->clock_offset);
		tf_report_json_ktime(j, "last_seen", g->last_ns, r->clock_offset);
		flow_fields_json(j, r, &g->last, &g->last_attr, t != NULL);
		tf_json_bool(j, "final", r->final);
		tf_json_end(j, f);
	}
	free(v);
}

/* "tx udp 192.168.122.10:40000 -> 10.99.0.2:7", "rx icmp echo id 7 ..." */
static void flow_text(const struct tf_drop_report *r, const struct tf_drop_key *k,
		      const struct tf_drop_attr *a, char *out, size_t len)
{
	char l[INET6_ADDRSTRLEN + 8], rem[INET6_ADDRSTRLEN + 8], proto[48];
	struct tf_flow_row row = {};
	struct tf_flow_view v;
	bool tx;

	drop_view(r, k, a, &v, &tx);
	row.v = v;
	tf_flow_row_proto(&row, proto, sizeof(proto));
	tf_flow_endpoint_str(v.family, v.local_ip, v.local_port, l, sizeof(l));
	tf_flow_endpoint_str(v.family, v.remote_ip, v.remote_port, rem, sizeof(rem));
	if (!v.family)
		snprintf(out, len, "%s %s", tx ? "tx" : "rx", proto);
	else
		snprintf(out, len, "%s %s %s %s %s", tx ? "tx" : "rx", proto, l, tx ? "->" : "<-",
			 rem);
}

void tf_report_drops_table(const struct tf_drop_report *r, const struct timespec *now,
			   FILE *f)
{
	const struct tf_drop_table *d = &r->c->drop_tab;
	const struct tf_drop_group **v = sorted_groups(d);
	char ts[64], reason[64], loc[256], flow[256], cnt[16], b1[IF_NAMESIZE];

	if (!v)
		return;
	tf_format_ts(now, ts, sizeof(ts));
	fprintf(f, "%s%s\n", r->final ? "final report, " : "", ts);
	fprintf(f, "%-16s %-8s %-10s %-26s %-44s %8s  %s\n", "VM", "IFACE", "DROPPED AT",
		"REASON", "LOCATION", "COUNT", "LAST DROPPED PACKET");
	for (size_t i = 0; i < d->n; i++) {
		const struct tf_drop_group *g = v[i];
		const struct tf_target *t = g->tap >= 0 ? &r->c->targets[g->tap] : NULL;
		char vm[TF_TERM_SIZE(TF_NAME_MAX)], ifn[TF_TERM_SIZE(IFNAMSIZ)];
		char dev[TF_TERM_SIZE(IFNAMSIZ)];

		tf_drop_reason_name(r->reasons, g->reason, reason, sizeof(reason));
		tf_format_count(g->packets, cnt, sizeof(cnt));
		if (!t) {
			fprintf(f, "%-16s %-8s %-10s %-26s %-44s %8s  %s\n", "(host)", "-", "-",
				reason, "-", cnt, "(not a VM's packet)");
			continue;
		}
		tf_term_str(ifname_of(r->c, g->ifindex, b1, sizeof(b1)) ?: "-", 10, 0, dev,
			    sizeof(dev));
		tf_ksyms_name(r->ksyms, g->location, loc, sizeof(loc));
		flow_text(r, &g->last, &g->last_attr, flow, sizeof(flow));
		fprintf(f, "%s %s %s %-26s %-44s %8s  %s\n",
			tf_term_str(t->has_vif ? t->vif.vm : "-", 16, 0, vm, sizeof(vm)),
			tf_term_str(t->ifname, 8, 0, ifn, sizeof(ifn)), dev, reason, loc, cnt,
			flow);
	}
	if (!d->n)
		fprintf(f, "(no drops)\n");
	fputc('\n', f);
	free(v);
}

void tf_report_drop_event(struct tf_json *j, const struct tf_drop_report *r,
			  const struct tf_drop_event *e, bool json, FILE *f)
{
	const struct tf_target *t;
	struct tf_drop_attr a;
	struct timespec ts;
	char reason[64], loc[256], flow[256], tss[64], b1[IF_NAMESIZE], b2[IF_NAMESIZE];
	char vm[TF_TERM_SIZE(TF_NAME_MAX)], dev[TF_TERM_SIZE(IFNAMSIZ)];

	tf_drop_attribute(r->c, r->fl, r->va, &e->key, &a);
	t = a.tap >= 0 ? &r->c->targets[a.tap] : NULL;
	tf_drop_reason_name(r->reasons, e->key.reason, reason, sizeof(reason));
	tf_ksyms_name(r->ksyms, e->key.location, loc, sizeof(loc));
	tf_ktime_to_timespec(e->ts_ns, r->clock_offset, &ts);
	if (json) {
		tf_json_begin(j, "drop_event", &ts);
		tf_json_str(j, "vm", t && t->has_vif ? t->vif.vm : NULL);
		tf_json_str(j, "ifname", t ? t->ifname : NULL);
		tf_json_str(j, "reason", reason);
		tf_json_u64(j, "reason_code", e->key.reason);
		tf_json_str(j, "location", loc);
		tf_json_str(j, "dev", ifname_of(r->c, e->key.ifindex, b1, sizeof(b1)));
		tf_json_str(j, "in_dev", ifname_of(r->c, e->key.iif, b2, sizeof(b2)));
		tf_json_u64(j, "len", e->len);
		flow_fields_json(j, r, &e->key, &a, true);
		tf_json_end(j, f);
		return;
	}
	tf_format_ts(&ts, tss, sizeof(tss));
	flow_text(r, &e->key, &a, flow, sizeof(flow));
	fprintf(f, "%s %s %s %s %s %s (%u B)\n", tss,
		tf_term_str(t && t->has_vif ? t->vif.vm : "(host)", 0, 0, vm, sizeof(vm)),
		tf_term_str(ifname_of(r->c, e->key.ifindex, b1, sizeof(b1)) ?: "-", 0, 0, dev,
			    sizeof(dev)),
		reason, loc, flow, e->len);
}
