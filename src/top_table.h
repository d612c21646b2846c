/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The two tables of tapflow top, the interfaces and the flows: their
 * columns, the order in which the columns give way as the terminal narrows,
 * and the cells of a row. Drawing is cmd_top.c's; the layout is layout.c's.
 */
#ifndef TF_TOP_TABLE_H
#define TF_TOP_TABLE_H

#include "collector.h"
#include "layout.h"
#include "report.h"

/* Columns of the interface table, in display order. */
enum {
	TF_TT_VM, TF_TT_IFACE, TF_TT_ROLE, TF_TT_RX_RATE, TF_TT_TX_RATE, TF_TT_RX_BYTES,
	TF_TT_TX_BYTES, TF_TT_RX_PKTS, TF_TT_TX_PKTS, TF_TT_DROPS,
	TF_TT_RTT_OUT, TF_TT_RTT_IN, TF_TT_RETRANS,	/* --tcp */
	TF_TT_COLS
};

/* Columns of the flow table, in display order (DETAIL: the head-less rest of PROTO). */
enum {
	TF_FT_VM, TF_FT_IFACE, TF_FT_PROTO, TF_FT_DETAIL, TF_FT_LOCAL, TF_FT_NAT, TF_FT_REMOTE,
	TF_FT_TX_RATE, TF_FT_RX_RATE, TF_FT_TX_BYTES, TF_FT_RX_BYTES, TF_FT_TX_PKTS,
	TF_FT_RX_PKTS, TF_FT_DROPS,
	TF_FT_COLS
};

extern const struct tf_table tf_top_targets;
extern const struct tf_table tf_top_flows;

/* Room for a cell: a VM name (any bytes, TF_NAME_MAX of them) and a suffix. */
#define TF_TOP_CELL (TF_NAME_MAX + 32)

struct tf_top_cells {
	char buf[TF_FT_COLS][TF_TOP_CELL];
	const char *cell[TF_FT_COLS];
};

/*
 * Which columns are on: DROPS with the drop tracer, NAT with the NAT join,
 * the TCP ones with --tcp (tcp: the run's TCP state, NULL: off).
 */
void tf_top_targets_on(const struct tf_collector *c, const struct tf_tcp_health *tcp,
		       bool on[TF_TT_COLS]);
void tf_top_flows_on(const struct tf_flow_report *r, bool on[TF_FT_COLS]);

/* The cells of target i of c (rates over its last interval). */
void tf_top_target_cells(const struct tf_collector *c, const struct tf_tcp_health *tcp, size_t i,
			 struct tf_top_cells *out);
/* The cells of a flow row (or of an aggregate: its kind where REMOTE is). */
void tf_top_flow_cells(const struct tf_flow_row *row, struct tf_top_cells *out);

#endif /* TF_TOP_TABLE_H */
