/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TCP health: userspace's side of the kernel's TCP analysis
 * (include/tcp_state.h).
 *
 * Every poll, after the flows were read, this module
 *   - advances the kernel's RTT epoch, then reads every flow's TCP state
 *     (tcp_flows) into its own table, keyed like the flow table;
 *   - deletes the kernel state of flows that ended (the flow table expired
 *     them), keeping what they counted, so that a flow that comes back
 *     carries on from its totals;
 *   - reads the taps' counters and RTT histograms (tcp_taps), summed over
 *     the CPUs: the per-VM figures of `top` and the agent, which outlive
 *     the flows.
 * Reports take a flow's figures from tf_tcp_flow_figures().
 */
#ifndef TF_TCP_HEALTH_USER_H
#define TF_TCP_HEALTH_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows.h"
#include "tapflow.h"

/* One flow's TCP state as this run knows it. */
struct tf_tcp_entry {
	struct tf_flow_key key;
	struct tf_tcp_flow cur;		/* the kernel's state, as last read */
	struct tf_tcp_flow base;	/* what earlier kernel states of the flow counted */
	/* RTT totals at the previous poll: the interval's samples are the difference. */
	uint64_t prev_sum_ns[TF_TCP_SIDES], prev_count[TF_TCP_SIDES];
	uint64_t ival_sum_ns[TF_TCP_SIDES], ival_count[TF_TCP_SIDES];
	uint64_t ival_min_ns[TF_TCP_SIDES], ival_max_ns[TF_TCP_SIDES];
	uint32_t gen;			/* the poll that last read its kernel state */
	uint32_t orphan_polls;		/* polls its flow was not in the flow table */
	bool in_kernel;
	struct tf_tcp_entry *hnext;
};

/* A tap's counters, summed over the CPUs, at the last two polls. */
struct tf_tcp_tap_total {
	uint32_t ifindex;
	struct tf_tcp_tap t, prev;
	double t_s, prev_s;		/* their CLOCK_MONOTONIC times */
};

/* A tap's figures over the last interval (`top`). */
struct tf_tcp_tap_interval {
	uint64_t samples[TF_TCP_SIDES];
	double rtt_ms[TF_TCP_SIDES];	/* average; 0 without samples */
	double retrans_per_s;		/* both ways */
};

struct tf_tcp_health {
	int flows_fd, taps_fd;		/* the kernel maps */
	uint32_t *epoch;		/* .bss tf_tcp_epoch */
	int ncpus;
	struct tf_tcp_entry **buckets;
	size_t nbuckets, n;
	uint32_t gen;
	struct tf_tcp_tap_total *taps;
	size_t n_taps, cap_taps;
	struct tf_tcp_tap *percpu;	/* a lookup's buffer: ncpus values */
	uint64_t read_errors;		/* polls whose read of a map failed */
};

/* 0, or -ENOMEM. epoch points at the kernel's tf_tcp_epoch (mmap'ed .bss). */
int tf_tcp_init(struct tf_tcp_health *h, int flows_fd, int taps_fd, uint32_t *epoch, int ncpus);
void tf_tcp_free(struct tf_tcp_health *h);
/*
 * One poll, after tf_flows_poll() on fl: read the kernel's state, delete
 * that of ended flows, read the taps. 0, or -errno (what was read stays).
 */
int tf_tcp_poll(struct tf_tcp_health *h, const struct tf_flows *fl);
/* The TCP state of a flow, or NULL (not TCP, or no segment analysed). */
const struct tf_tcp_entry *tf_tcp_find(const struct tf_tcp_health *h, const struct tf_flow_key *k);
/* A tap's totals, or NULL. */
const struct tf_tcp_tap *tf_tcp_tap_of(const struct tf_tcp_health *h, uint32_t ifindex);
/* A tap's figures over the last interval: false if it has none (no TCP yet). */
bool tf_tcp_tap_interval(const struct tf_tcp_health *h, uint32_t ifindex,
			 struct tf_tcp_tap_interval *out);
/* RTT samples in a side's histogram. */
uint64_t tf_tcp_tap_samples(const struct tf_tcp_tap *t, int side);

/* ---- figures (pure, unit-tested) ---------------------------------------- */

struct tf_tcp_rtt_fig {
	uint64_t samples;
	double min_ms, avg_ms, max_ms;
};

/* A flow's figures as a report gives them; [0]/[1] are rx/tx in the VM's view. */
struct tf_tcp_figures {
	struct tf_tcp_rtt_fig rtt[TF_TCP_SIDES];	/* [TF_TCP_OUTSIDE], [TF_TCP_INSIDE] */
	double handshake_ms;		/* < 0: not seen */
	uint64_t retrans[2], zero_win[2];
	uint64_t resets;		/* both ways */
	uint64_t syn_unanswered;
};

/*
 * The figures of e: RTTs over the last interval, or over the whole run if
 * whole_run (the final report); ended: the run or the flow is over, so a
 * SYN still waiting is unanswered.
 */
void tf_tcp_flow_figures(const struct tf_tcp_entry *e, bool whole_run, bool ended,
			 struct tf_tcp_figures *out);
/* dst += src: the counters and RTT totals of two kernel states of one flow. */
void tf_tcp_flow_add(struct tf_tcp_flow *dst, const struct tf_tcp_flow *src);
/* An average RTT as the tables show it: "1.03 ms", "14.1 ms"; "-" without samples. */
void tf_tcp_rtt_cell(uint64_t samples, double avg_ms, char *out, size_t len);
/* The upper bound of histogram bucket b in seconds (include/tcp_state.h); +Inf last. */
double tf_tcp_bucket_le(unsigned int b);

#endif /* TF_TCP_HEALTH_USER_H */
