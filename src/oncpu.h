/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Run a BPF program once on a given CPU (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU): how userspace empties the per-CPU caches of the
 * drop tracer (tf_drop_flush) and of the NAT join (tf_uplink_flush) into
 * their maps before it reads them.
 */
#ifndef TF_ONCPU_H
#define TF_ONCPU_H

/* Run prog_fd on cpu (-1: the calling CPU). 0, or -errno; -ENXIO: offline. */
int tf_run_on_cpu(int prog_fd, int cpu);

/*
 * Run prog_fd on each of ncpus CPUs. An offline CPU keeps what its cache
 * holds until a run after it is back. 0, or the first -errno.
 */
int tf_run_on_each_cpu(int prog_fd, int ncpus);

#endif
