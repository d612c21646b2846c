/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which IPFIX flow records the agent exports, and when: one per flow and
 * direction (uniflow), as the deltas since that flow's previous record,
 *   - when the flow ends: idle for the idle timeout (flowEndReason idle),
 *     also when the flow table lets an ended flow go (evicted);
 *   - while it lasts, every active timeout (active);
 *   - at the end of the run (forced end).
 * Read from the same flow table as every report, after the same poll, so
 * that a flow's records add up to its totals in `flows` exactly.
 *
 * A flow's records carry its VM (domain name, UUID, tap, MAC), the NAT
 * join's translation when the flow was translated, and the drops the
 * tracer attributed to the flow in that direction.
 */
#ifndef TF_IPFIX_FLOWS_H
#define TF_IPFIX_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows.h"
#include "ipfix.h"
#include "ksyms.h"

struct tf_session;

/* What has been exported of one flow. */
struct tf_ipfix_mark {
	struct tf_flow_key key;
	struct tf_dir_counters sent[2];	/* [0] rx, [1] tx: totals already in records */
	uint64_t drop_packets[2], drop_bytes[2];
	uint64_t end_ns;		/* the previous record's end (ktime), 0: none yet */
	uint64_t exported_ns;		/* when it was last exported, or first seen (mono) */
	bool ended;			/* its end was exported; activity again starts anew */
	struct tf_ipfix_mark *next;
};

struct tf_ipfix_flows {
	struct tf_ipfix **dest;		/* where every record goes */
	size_t n_dest;
	uint64_t active_ns;		/* 0: no active timeout */
	/*
	 * Flows carried on from an earlier agent (--pin): their counts so far
	 * are that agent's, taken as exported at the first export.
	 */
	bool baseline;
	struct tf_ipfix_mark **buckets;
	size_t nbuckets, n;
	/* Flows the table let go since the last export: their last record is due. */
	struct tf_flow *gone;
	size_t n_gone, cap_gone;
	uint64_t unrecorded;		/* flows whose mark could not be kept (out of memory) */
	bool reasons_set;		/* the drop reasons' options records are set */
};

/* 0 or -ENOMEM. Hooks itself to the session's flow table (evictions). */
int tf_ipfix_flows_init(struct tf_ipfix_flows *x, struct tf_session *s, double active_s);
void tf_ipfix_flows_free(struct tf_ipfix_flows *x);
/*
 * After a poll: make the records that are due and hand them to every
 * destination; final: the end of the run, every flow's rest. Also sets
 * the interfaces' options records when the targets changed, and the drop
 * reasons' once (reasons may be NULL).
 */
void tf_ipfix_flows_export(struct tf_ipfix_flows *x, struct tf_session *s,
			   const struct tf_drop_reasons *reasons, bool final);

/* ---- pure helpers (unit-tested) ---------------------------------------- */

/* The IP bytes of a flow direction's frames: frame bytes less their Ethernet headers. */
uint64_t tf_ipfix_ip_octets(const struct tf_flow_key *k, const struct tf_dir_counters *d);
/* "52:54:00:aa:bb:cc" into 6 bytes; false if it is not a MAC. */
bool tf_ipfix_parse_mac(const char *s, uint8_t out[6]);
/* A UUID's 36 characters into 16 bytes; false if it is not one. */
bool tf_ipfix_parse_uuid(const char *s, uint8_t out[16]);

#endif /* TF_IPFIX_FLOWS_H */
