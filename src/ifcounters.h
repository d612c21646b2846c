/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where the BPF programs count an interface (see if_counters in
 * bpf/tapflow.bpf.c): its slot of the per-CPU array if_counters, slot =
 * ifindex % TF_IF_SLOTS when tf_if_owner[slot] (.bss) names it, or else its
 * entry of the per-CPU hash if_spill. The collector, the tests and the
 * benchmarks give interfaces their place and read them back through here.
 */
#ifndef TF_IFCOUNTERS_H
#define TF_IFCOUNTERS_H

#include <stdbool.h>
#include <linux/types.h>
#include <bpf/libbpf.h>

#include "tapflow.h"

struct tf_ifc {
	int slots_fd;		/* if_counters */
	int spill_fd;		/* if_spill */
	__u32 *owner;		/* the mmapped .bss tf_if_owner[TF_IF_SLOTS] */
	int ncpus;		/* possible CPUs: values per entry */
};

/*
 * The interface counters of a loaded skeleton of bpf/tapflow.bpf.c (any
 * build of it: the benchmarks have a second one), for n possible CPUs.
 */
#define TF_IFC_OF(skel, n)                                                 \
	((struct tf_ifc){                                                  \
		.slots_fd = bpf_map__fd((skel)->maps.if_counters),         \
		.spill_fd = bpf_map__fd((skel)->maps.if_spill),            \
		.owner = (skel)->bss->tf_if_owner,                         \
		.ncpus = (n),                                              \
	})

/* The slot an ifindex would have. */
static inline __u32 tf_ifc_slot(__u32 ifindex)
{
	return ifindex & (TF_IF_SLOTS - 1);
}

/*
 * Give ifindex a place with zeroed counters, before its programs are
 * attached: its slot if free (or already its own), else an if_spill entry.
 * 0, or -errno.
 */
int tf_ifc_add(const struct tf_ifc *m, __u32 ifindex);

/*
 * Has ifindex a place (its slot, or an if_spill entry)? An earlier agent's
 * interface does, with its counts so far (agent --pin).
 */
bool tf_ifc_placed(const struct tf_ifc *m, __u32 ifindex);

/*
 * The counters of ifindex summed over the CPUs into *sum. 0, or -errno
 * (-ENOENT: it has no place, or -ENOMEM).
 */
int tf_ifc_read(const struct tf_ifc *m, __u32 ifindex, struct tf_if_counters *sum);

/*
 * Give back the place of an interface that is gone (its counters read for
 * the last time): its slot is free for the next interface. 0, or -errno.
 */
int tf_ifc_del(const struct tf_ifc *m, __u32 ifindex);

#endif
