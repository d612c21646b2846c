/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flows: tapflow's userspace table of the kernel's per-flow counters.
 *
 * Every poll reads the whole kernel flow map (batched lookups, or one key
 * at a time on kernels without batch ops), expires idle flows and harvests
 * long-lived ones with an atomic lookup-and-delete, and keeps what it took
 * out of the kernel in the flow's userspace entry. A flow's counters are
 * therefore totals since attach, whatever happened to its kernel entry, and
 * the run's totals stay exact across expiry.
 *
 * The kernel map is reached through a small ops table, so that the table
 * logic is unit-tested against a fake map.
 *
 * The VM flows' table can own a second one, of the NAT join's uplink flows
 * (their own kernel map, include/tapflow.h), polled and expired with it by
 * the same rules; an uplink flow also keeps the VM side (struct
 * tf_nat_vm) of what it counted, which a VM flow has no room for.
 */
#ifndef TF_FLOWS_H
#define TF_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <arpa/inet.h>
#include <linux/types.h>

#include "tapflow.h"

/* The kernel's ENOTSUPP (not in userspace errno.h). */
#define TF_ENOTSUPP 524

/* err (-errno): what an old kernel answers for a map command it does not have. */
bool tf_map_cmd_unsupported(int err);

/* Kernel flow map access; each returns 0 or -errno (as libbpf does). */
struct tf_flow_map_ops {
	int (*lookup_batch)(void *ctx, void *in_batch, void *out_batch, void *keys,
			    void *values, uint32_t *count);
	int (*get_next_key)(void *ctx, const void *key, void *next_key);
	int (*lookup)(void *ctx, const void *key, void *value);
	int (*lookup_and_delete)(void *ctx, const void *key, void *value);
	int (*delete_elem)(void *ctx, const void *key);
};

struct tf_flow_map {
	const struct tf_flow_map_ops *ops;
	void *ctx;
	int nvalues;			/* values per key: possible CPUs if per-CPU, else 1 */
	bool no_batch;			/* batch lookups unsupported: found out once */
	bool no_lookup_and_delete;	/* atomic lookup-and-delete unsupported */
};

/* The BPF map behind fd (nvalues as above). */
void tf_flow_map_bpf(struct tf_flow_map *m, int fd, int nvalues);

/* One flow of the run: what was harvested from the kernel + its live entry. */
struct tf_flow {
	struct tf_flow_key key;		/* the kernel's: VM point of view */
	struct tf_flow_value base;	/* kernel entries taken out (expiry, active timeout) */
	struct tf_flow_value cur;	/* the live kernel entry, zero if none */
	uint64_t prev_rx_bytes, prev_tx_bytes;	/* totals at the previous poll */
	uint64_t prev_rx_packets, prev_tx_packets;
	double rx_bps, tx_bps;		/* over the last interval */
	double rx_pps, tx_pps;
	bool in_kernel;			/* has a kernel entry (as of the last poll) */
	bool expired;			/* idle for the idle timeout: ended (for now) */
	bool end_exported;		/* its end went out in IPFIX records (ipfix_flows.h) */
	uint32_t gen;			/* poll that last saw the kernel entry */
	uint32_t group;			/* its group in the index (tf_flow_index) */
	struct tf_flow *hnext;
};

/*
 * A flow of an uplink table: its counts in f, as any flow's, and the VM
 * side each part of them was last counted under (zero: none yet).
 */
struct tf_uplink_flow {
	struct tf_flow f;
	struct tf_nat_vm base_nat;	/* of f.base: kernel entries taken out */
	struct tf_nat_vm cur_nat;	/* of f.cur: the live kernel entry */
};

/* The uplink flow whose counts f holds (f from an uplink table only). */
static inline struct tf_uplink_flow *tf_uplink_flow_of(const struct tf_flow *f)
{
	return (struct tf_uplink_flow *)((char *)f - offsetof(struct tf_uplink_flow, f));
}

/* An uplink flow's totals: its counts, and the VM side of the latest of them. */
struct tf_uplink_total {
	struct tf_flow_value v;
	struct tf_nat_vm nat;
};

/*
 * The flows grouped by interface, rebuilt at the end of every poll (the
 * only time flows come and go), so that one interface's flows cost what
 * they are, not a walk of the whole table: a report over every interface
 * then costs time in proportion to the flows, whatever the interfaces.
 */
struct tf_flow_group {
	uint32_t ifindex;
	uint32_t n;			/* its flows: flows[first .. first + n) */
	size_t first;
};

struct tf_flow_index {
	struct tf_flow **flows;		/* every flow, grouped by ifindex */
	size_t cap_flows;
	struct tf_flow_group *groups;	/* in order of first appearance */
	size_t n_groups, cap_groups;
	uint32_t *slots;		/* open addressing: group + 1 by ifindex; 0 free */
	size_t n_slots;			/* a power of 2, at least twice n_groups */
	bool valid;			/* matches the table (else: walk the table) */
};

/* What ended flows dropped from memory left behind, per interface. */
struct tf_flow_evicted {
	uint32_t ifindex;
	uint64_t flows;
	struct tf_flow_value v;
};

/*
 * An uplink flow's counts from before its outside tuple went to another VM
 * side (the NAT join): kept apart so that the join gives them to the VM
 * they belong to, not to the tuple's next user.
 */
struct tf_flow_retired {
	struct tf_flow_key key;		/* the uplink flow */
	struct tf_uplink_total t;	/* its counts then, with that VM side */
};

struct tf_flow_counts {
	uint64_t seen;			/* distinct flows of the run */
	uint64_t expired;		/* idle expiries */
	uint64_t active;		/* active-timeout harvests of busy flows */
	uint64_t races;			/* lookup + delete without the atomic op */
	uint64_t evicted;		/* ended flows folded into the expired aggregate */
	uint64_t vanished;		/* kernel entries gone without us deleting them */
	uint64_t retired;		/* uplink flow segments retired (VM side changed) */
	uint64_t retired_dropped;	/* ... and dropped from memory (the oldest) */
};

struct tf_flows {
	struct tf_flow_map map;
	bool is_uplink;			/* uplink flows: struct tf_uplink_flow, tf_uplink_value */
	struct tf_flows *uplinks;	/* the uplink table polled with this one; NULL: none */
	uint64_t idle_ns, active_ns;	/* 0: never */
	size_t max_ended;		/* ended flows kept one by one; 0: no limit */
	struct tf_flow **buckets;
	size_t nbuckets, n, n_expired;
	uint32_t gen;
	uint64_t now_ns;		/* this poll's time (uplink flows' last seen) */
	struct tf_flow_counts counts;
	struct tf_flow_evicted *evicted;
	size_t n_evicted;
	/* Uplink tables: segments of flows whose VM side changed, oldest first. */
	struct tf_flow_retired *retired;
	size_t n_retired, cap_retired;
	struct tf_flow_index ix;
	/* Told of each ended flow the table lets go, before it is freed (NULL: none). */
	void (*on_evict)(void *ctx, const struct tf_flow *f);
	void *evict_ctx;
	/* Batch buffers. */
	uint32_t batch_cap;
	struct tf_flow_key *keys;
	void *values;
};

/* A table of VM flows (kernel values: struct tf_flow_value). 0 or -ENOMEM. */
int tf_flows_init(struct tf_flows *fl, const struct tf_flow_map *map, uint64_t idle_ns,
		  uint64_t active_ns, size_t max_ended);
/*
 * Give fl an uplink table (fl->uplinks) over map (kernel values: struct
 * tf_uplink_value), with fl's timeouts and limit. 0 or -ENOMEM.
 */
int tf_flows_init_uplinks(struct tf_flows *fl, const struct tf_flow_map *map);
/* Free the table, its uplink table too. */
void tf_flows_free(struct tf_flows *fl);
/*
 * Read the kernel map into the table, expire and harvest, update rates over
 * dt seconds; then the same for its uplink table. now_ns is CLOCK_MONOTONIC
 * (what bpf_ktime_get_ns() counts). 0, or -errno if a map could not be read
 * (its table stays as it was).
 */
int tf_flows_poll(struct tf_flows *fl, uint64_t now_ns, double dt);
/* The counts of the table and its uplink table, added up. */
void tf_flows_counts(const struct tf_flows *fl, struct tf_flow_counts *out);
/* Flows of the table and its uplink table: all of them, and those not ended. */
size_t tf_flows_n(const struct tf_flows *fl);
size_t tf_flows_n_live(const struct tf_flows *fl);
/* The flow of key, or NULL. */
struct tf_flow *tf_flows_find(const struct tf_flows *fl, const struct tf_flow_key *key);
/*
 * The flows of one interface (ifindex; 0: all), in *out (malloc'ed, caller
 * frees). Returns how many, or -1 on out of memory. Costs the interface's
 * flows, through the index (a walk of the whole table if it could not be
 * built).
 */
long tf_flows_collect(const struct tf_flows *fl, uint32_t ifindex, struct tf_flow ***out);
/*
 * The flows of ifindex as the index holds them, without a copy: *out
 * points into the index and stays valid until the next poll. Returns how
 * many, or -1 if there is no index (then use tf_flows_collect).
 */
long tf_flows_of(const struct tf_flows *fl, uint32_t ifindex, struct tf_flow *const **out);
/* (Re)build the index from the table: 0 or -ENOMEM (then it is not valid). */
int tf_flows_index(struct tf_flows *fl);
/*
 * Keep, in uplink table fl, an uplink flow segment whose VM side was
 * replaced (from the kernel's nat_retired, or found by ingest). At most
 * max_ended of them are kept (0: no limit): the oldest go first (counted).
 * 0 or -ENOMEM.
 */
int tf_flows_retire(struct tf_flows *fl, const struct tf_flow_key *key,
		    const struct tf_uplink_total *t);
/* The evicted aggregate of ifindex, or NULL. */
const struct tf_flow_evicted *tf_flows_evicted(const struct tf_flows *fl, uint32_t ifindex);

/* ---- pure helpers (unit-tested) ---------------------------------------- */

/* FNV-1a of n bytes: the userspace tables' hash of kernel map keys. */
uint64_t tf_fnv1a(const void *p, size_t n);
/* FNV-1a of the whole key (keys are zeroed before they are filled). */
uint64_t tf_flow_key_hash(const struct tf_flow_key *k);
/* dst += src: counters add, first/last seen widen, TCP flags OR. */
void tf_flow_value_add(struct tf_flow_value *dst, const struct tf_flow_value *src);
/* Merge n per-CPU values (n = 1: a plain copy). */
void tf_flow_value_sum(const struct tf_flow_value *values, int n, struct tf_flow_value *out);
/* base + cur: the flow's totals since attach. */
void tf_flow_total(const struct tf_flow *f, struct tf_flow_value *out);
/* The same for a flow of an uplink table, with the VM side of the latest part. */
void tf_uplink_total(const struct tf_flow *f, struct tf_uplink_total *out);

enum tf_flow_sort {
	TF_SORT_BYTES = 0,		/* rx + tx bytes */
	TF_SORT_PACKETS,		/* rx + tx packets */
	TF_SORT_RATE,			/* rx + tx bits/s over the last interval */
};
const char *tf_flow_sort_name(enum tf_flow_sort by);
/* Biggest first; ties by the other measures, then by key: a stable order. */
void tf_flows_sort(struct tf_flow **v, size_t n, enum tf_flow_sort by);

/*
 * A flow as reported: in the VM's view (taps), or mirrored into the
 * interface's own view (local/remote and rx/tx swapped: --iface).
 */
struct tf_flow_view {
	int family;			/* 4, 6, 0: not IP */
	int proto;			/* IP protocol, -1: not IP */
	char proto_name[24];		/* tcp, udp, icmp, icmpv6, "47", arp, "ethertype 0x88cc" */
	int vlan;			/* -1: none; the outermost tag */
	int vlan_inner;			/* -1: none; QinQ */
	char local_ip[INET6_ADDRSTRLEN];	/* "" if not IP (ARP: its IPv4 addresses) */
	char remote_ip[INET6_ADDRSTRLEN];
	int local_port, remote_port;	/* -1: the protocol has none */
	int icmp_type, icmp_code;	/* -1: not ICMP */
	int icmp_id;			/* -1: not an ICMP query (echo ...) */
	struct tf_dir_counters rx, tx;
	uint8_t tcp_flags;		/* OR of both ways */
};

void tf_flow_view(const struct tf_flow_key *k, const struct tf_flow_value *v, bool mirrored,
		  struct tf_flow_view *out);
/* "10.0.0.1", compressed IPv6 ("fe80::1"); "" if family is not 4 or 6. */
void tf_flow_ip_str(int family, const uint8_t ip[16], char *out, size_t outlen);
/* "10.0.0.1:80", "[fe80::1]:80", "10.0.0.1" (no port: port < 0). */
void tf_flow_endpoint_str(int family, const char *ip, int port, char *out, size_t outlen);
/* TCP flags as letters in the order CEUAPRSF ("" if none): "APSF". */
void tf_tcp_flags_str(uint8_t flags, char *out, size_t outlen);
/* ICMP(v6) query types (echo, timestamp, ...): the key carries an identifier. */
bool tf_icmp_is_query(int family, int type);

/* CLOCK_REALTIME - CLOCK_MONOTONIC in ns, to put bpf_ktime_get_ns() on the wall clock. */
int64_t tf_mono_to_real_offset(void);
void tf_ktime_to_timespec(uint64_t ktime_ns, int64_t offset_ns, struct timespec *out);
uint64_t tf_now_mono_ns(void);

#endif /* TF_FLOWS_H */
