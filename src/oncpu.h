/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-CPU write-back caches of the drop tracer (drop_cache,
 * tf_drop_flush) and of the NAT join (uplink_cache, tf_uplink_flush): each
 * CPU counts repeats of a key in slots of its own, and only that CPU moves
 * them into the map, when a program running there needs the slot or when
 * userspace runs the flush program there (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU: an interrupt into that CPU). Before it reads the
 * map, userspace reads every CPU's slots (a map lookup: no interrupt) and
 * runs the flush program only on the CPUs that have something pending, so
 * that an idle CPU (a VM's pinned or isolated vCPU core) is left alone.
 */
#ifndef TF_ONCPU_H
#define TF_ONCPU_H

#include <stdbool.h>
#include <linux/types.h>

/* Run prog_fd on cpu (-1: the calling CPU). 0, or -errno; -ENXIO: offline. */
int tf_run_on_cpu(int prog_fd, int cpu);

/*
 * Run prog_fd on each of ncpus CPUs. An offline CPU keeps what its cache
 * holds until a run after it is back. 0, or the first -errno.
 */
int tf_run_on_each_cpu(int prog_fd, int ncpus);

/* Run prog_fd on each CPU marked in cpus[ncpus]: how many it ran on, or -errno. */
int tf_run_on_cpus(int prog_fd, const bool *cpus, int ncpus);

struct tf_percpu_cache {
	int map_fd;		/* a PERCPU_ARRAY of nslots slots of slot_size bytes */
	int flush_fd;		/* empties the slots of the CPU it runs on */
	int ncpus;		/* possible CPUs (libbpf_num_possible_cpus) */
	__u32 nslots;
	__u32 slot_size;
	/* Has this slot something only a flush on its CPU moves? */
	int (*pending)(const void *slot);
};

/*
 * Mark in cpus[ncpus] the CPUs that have a pending slot: 0, or -errno
 * (then every CPU is marked, so that a caller that flushes anyway loses
 * nothing).
 */
int tf_cache_pending_cpus(const struct tf_percpu_cache *c, bool *cpus);

/*
 * Read the slots, then run the flush program on the CPUs marked: how many
 * it ran on, or -errno. What the map holds afterwards is exact:
 *
 * A count leaves a slot only on the slot's own CPU, by the flush program
 * or by a program there that takes the slot for another key; never from
 * here. So every count that sat in a slot when the slots were read is in
 * the map once this returns: its CPU was marked, and the flush program ran
 * there after the read, moving it and whatever that CPU counted in between
 * (a packet that lands between the read and the flush is flushed with
 * it). A count made on an unmarked CPU after the read stays in its slot,
 * neither lost nor counted twice, until the next poll reads it, just as a
 * count made right after the flush on a marked CPU: a poll covers what was
 * counted before it read the slots, no more. The read does not stop the
 * programs: a count it sees half made (busy set) marks the CPU; one not
 * visible yet is one made after the read. Offline CPUs: as
 * tf_run_on_each_cpu.
 */
int tf_cache_flush(const struct tf_percpu_cache *c);

#endif
