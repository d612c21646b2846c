// SPDX-License-Identifier: GPL-2.0
/*
 * The tables of tapflow top. Priorities (1 goes last) say what a narrow
 * terminal keeps: which VM, whom it talks to and how fast, first; then
 * where from, on which NIC and protocol, the totals; NAT and drops when
 * there is room; packet counts and protocol details last. The README's
 * `tapflow top` section lists the same order.
 */
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "top_table.h"

/* "99.9 Mbit/s": the widest rate below 1000 Tbit/s. */
#define RATE_COLS 11

/*
 * Names and addresses are cut to min at the narrowest, numbers never; rates
 * take their widest from the start, so that columns do not move as they change.
 */
static const struct tf_col target_cols[TF_TT_COLS] = {
	[TF_TT_VM]       = { "VM",       1, 6, 24 },
	[TF_TT_IFACE]    = { "IFACE",    2, 6, 24 },
	[TF_TT_ROLE]     = { "ROLE",     5, 0, 0 },
	[TF_TT_RX_RATE]  = { "RX RATE",  3, 0, 0, RATE_COLS, .right = true },
	[TF_TT_TX_RATE]  = { "TX RATE",  4, 0, 0, RATE_COLS, .right = true },
	[TF_TT_RX_BYTES] = { "RX BYTES", 6, 0, 0, .right = true },
	[TF_TT_TX_BYTES] = { "TX BYTES", 7, 0, 0, .right = true },
	[TF_TT_RX_PKTS]  = { "RX PKTS",  9, 0, 0, .right = true },
	[TF_TT_TX_PKTS]  = { "TX PKTS", 10, 0, 0, .right = true },
	[TF_TT_DROPS]    = { "DROPS",    8, 0, 0, .right = true },
	[TF_TT_RTT_OUT]  = { "RTT OUT", 11, 0, 0, .right = true },
	[TF_TT_RTT_IN]   = { "RTT IN",  12, 0, 0, .right = true },
	[TF_TT_RETRANS]  = { "RETR/s",  13, 0, 0, .right = true },
};

const struct tf_table tf_top_targets = { target_cols, TF_TT_COLS, 4 };

static const struct tf_col flow_cols[TF_FT_COLS] = {
	[TF_FT_VM]       = { "VM",        1, 6, 24 },
	[TF_FT_IFACE]    = { "IFACE",     6, 0, 16 },
	[TF_FT_PROTO]    = { "PROTO",     7, 0, 16 },
	[TF_FT_DETAIL]   = { "",         14, 0, 24 },
	[TF_FT_LOCAL]    = { "LOCAL",     5, 15, 0, .middle = true },
	[TF_FT_NAT]      = { "NAT",      10, 0, 0, .middle = true },
	[TF_FT_REMOTE]   = { "REMOTE",    2, 15, 0, .middle = true },
	[TF_FT_TX_RATE]  = { "TX RATE",   3, 0, 0, RATE_COLS, .right = true },
	[TF_FT_RX_RATE]  = { "RX RATE",   4, 0, 0, RATE_COLS, .right = true },
	[TF_FT_TX_BYTES] = { "TX BYTES",  8, 0, 0, .right = true },
	[TF_FT_RX_BYTES] = { "RX BYTES",  9, 0, 0, .right = true },
	[TF_FT_TX_PKTS]  = { "TX PKTS",  12, 0, 0, .right = true },
	[TF_FT_RX_PKTS]  = { "RX PKTS",  13, 0, 0, .right = true },
	[TF_FT_DROPS]    = { "DROPS",    11, 0, 0, .right = true },
};

const struct tf_table tf_top_flows = { flow_cols, TF_FT_COLS, 5 };

void tf_top_targets_on(const struct tf_collector *c, const struct tf_tcp_health *tcp,
		       bool on[TF_TT_COLS])
{
	for (int i = 0; i < TF_TT_COLS; i++)
		on[i] = true;
	on[TF_TT_DROPS] = c->drops_on;
	on[TF_TT_RTT_OUT] = on[TF_TT_RTT_IN] = on[TF_TT_RETRANS] = tcp != NULL;
}

void tf_top_flows_on(const struct tf_flow_report *r, bool on[TF_FT_COLS])
{
	for (int i = 0; i < TF_FT_COLS; i++)
		on[i] = true;
	on[TF_FT_NAT] = r->nat != NULL;
	on[TF_FT_DROPS] = r->c->drops_on;
}

static void cells_init(struct tf_top_cells *out)
{
	for (int i = 0; i < TF_FT_COLS; i++) {
		out->buf[i][0] = '\0';
		out->cell[i] = out->buf[i];
	}
}

static double rate(uint64_t now, uint64_t prev, double dt)
{
	return dt > 0 && now >= prev ? (double)(now - prev) * 8.0 / dt : 0;
}

void tf_top_target_cells(const struct tf_collector *c, const struct tf_tcp_health *tcp, size_t i,
			 struct tf_top_cells *out)
{
	const struct tf_target *t = &c->targets[i];
	struct tf_tcp_tap_interval iv;
	double dt = t->now_t - t->prev_t;
	uint64_t drops;
	char (*b)[TF_TOP_CELL] = out->buf;

	cells_init(out);
	out->cell[TF_TT_VM] = t->has_vif ? t->vif.vm : "-";
	snprintf(b[TF_TT_IFACE], TF_TOP_CELL, "%s%s", t->ifname, t->gone ? " (gone)" : "");
	snprintf(b[TF_TT_ROLE], TF_TOP_CELL, "%s", tf_role_name(t->role));
	tf_format_rate(rate(t->now.rx_bytes, t->prev.rx_bytes, dt), b[TF_TT_RX_RATE], TF_TOP_CELL);
	tf_format_rate(rate(t->now.tx_bytes, t->prev.tx_bytes, dt), b[TF_TT_TX_RATE], TF_TOP_CELL);
	tf_format_bytes(t->now.rx_bytes, b[TF_TT_RX_BYTES], TF_TOP_CELL);
	tf_format_bytes(t->now.tx_bytes, b[TF_TT_TX_BYTES], TF_TOP_CELL);
	tf_format_count(t->now.rx_packets, b[TF_TT_RX_PKTS], TF_TOP_CELL);
	tf_format_count(t->now.tx_packets, b[TF_TT_TX_PKTS], TF_TOP_CELL);
	if (tf_target_drops(c, i, &drops))
		tf_format_count(drops, b[TF_TT_DROPS], TF_TOP_CELL);
	else
		snprintf(b[TF_TT_DROPS], TF_TOP_CELL, "-");
	tf_tcp_tap_interval(tcp, (uint32_t)t->ifindex, &iv);
	tf_tcp_rtt_cell(iv.samples[TF_TCP_OUTSIDE], iv.rtt_ms[TF_TCP_OUTSIDE], b[TF_TT_RTT_OUT],
			TF_TOP_CELL);
	tf_tcp_rtt_cell(iv.samples[TF_TCP_INSIDE], iv.rtt_ms[TF_TCP_INSIDE], b[TF_TT_RTT_IN],
			TF_TOP_CELL);
	snprintf(b[TF_TT_RETRANS], TF_TOP_CELL, "%.1f", iv.retrans_per_s);
}

void tf_top_flow_cells(const struct tf_flow_row *row, struct tf_top_cells *out)
{
	const struct tf_flow_view *v = &row->v;
	char (*b)[TF_TOP_CELL] = out->buf, lost[64];
	size_t name = strlen(v->proto_name);

	cells_init(out);
	out->cell[TF_FT_VM] = row->t->has_vif ? row->t->vif.vm : "-";
	out->cell[TF_FT_IFACE] = row->t->ifname;
	if (row->aggregate) {
		/* "(expired: 3 flows)" where the peer would be: seen at any width. */
		out->cell[TF_FT_PROTO] = out->cell[TF_FT_LOCAL] = out->cell[TF_FT_NAT] = "-";
		tf_flow_row_proto(row, b[TF_FT_REMOTE], TF_TOP_CELL);
	} else {
		/* The protocol's name, and its details ("echo id 7", "vlan 5") apart. */
		tf_flow_row_proto(row, b[TF_FT_DETAIL], TF_TOP_CELL);
		if (!strncmp(b[TF_FT_DETAIL], v->proto_name, name))
			memmove(b[TF_FT_DETAIL], b[TF_FT_DETAIL] + name + (b[TF_FT_DETAIL][name] == ' '),
				strlen(b[TF_FT_DETAIL] + name) + 1);
		snprintf(b[TF_FT_PROTO], TF_TOP_CELL, "%s", v->proto_name);
		tf_flow_endpoint_str(v->family, v->local_ip, v->local_port, b[TF_FT_LOCAL],
				     TF_TOP_CELL);
		tf_flow_endpoint_str(v->family, v->remote_ip, v->remote_port, b[TF_FT_REMOTE],
				     TF_TOP_CELL);
		tf_flow_row_nat(row, b[TF_FT_NAT], lost, sizeof(lost));
	}
	tf_format_rate(row->tx_bps, b[TF_FT_TX_RATE], TF_TOP_CELL);
	tf_format_rate(row->rx_bps, b[TF_FT_RX_RATE], TF_TOP_CELL);
	tf_format_bytes(v->tx.bytes, b[TF_FT_TX_BYTES], TF_TOP_CELL);
	tf_format_bytes(v->rx.bytes, b[TF_FT_RX_BYTES], TF_TOP_CELL);
	tf_format_count(v->tx.packets, b[TF_FT_TX_PKTS], TF_TOP_CELL);
	tf_format_count(v->rx.packets, b[TF_FT_RX_PKTS], TF_TOP_CELL);
	if (row->drops_known)
		tf_format_count(row->drops, b[TF_FT_DROPS], TF_TOP_CELL);
	else
		snprintf(b[TF_FT_DROPS], TF_TOP_CELL, "-");
}
