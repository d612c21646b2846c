// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "oncpu.h"

int tf_run_on_cpu(int prog_fd, int cpu)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	if (cpu >= 0) {
		opts.flags = BPF_F_TEST_RUN_ON_CPU;
		opts.cpu = (uint32_t)cpu;
	}
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	return 0;
}

int tf_run_on_each_cpu(int prog_fd, int ncpus)
{
	for (int cpu = 0; cpu < ncpus; cpu++) {
		int err = tf_run_on_cpu(prog_fd, cpu);

		if (err && err != -ENXIO)
			return err;
	}
	return 0;
}

int tf_run_on_cpus(int prog_fd, const bool *cpus, int ncpus)
{
	int n = 0;

	for (int cpu = 0; cpu < ncpus; cpu++) {
		int err;

		if (!cpus[cpu])
			continue;
		err = tf_run_on_cpu(prog_fd, cpu);
		if (err && err != -ENXIO)
			return err;
		n += !err;
	}
	return n;
}

/*
 * Every slot of every CPU into vals (nslots x ncpus values of stride
 * bytes, the kernel's layout): one batch, or a lookup per slot where the
 * kernel has no batch lookup for the map. 0 or -errno.
 */
static int read_slots(const struct tf_percpu_cache *c, void *vals, size_t stride)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = calloc(c->nslots, sizeof(*keys));
	__u32 out_batch = 0, count = c->nslots;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	if (bpf_map_lookup_batch(c->map_fd, NULL, &out_batch, keys, vals, &count, &opts) &&
	    !(errno == ENOENT && count == c->nslots)) {
		for (__u32 i = 0; i < c->nslots && !err; i++)
			if (bpf_map_lookup_elem(c->map_fd, &i,
						(char *)vals + (size_t)i * c->ncpus * stride))
				err = -errno;
	} else if (count != c->nslots) {
		err = -EIO;
	}
	free(keys);
	return err;
}

int tf_cache_pending_cpus(const struct tf_percpu_cache *c, bool *cpus)
{
	/* The kernel copies each CPU's value at an 8-byte stride. */
	size_t stride = ((size_t)c->slot_size + 7) & ~(size_t)7;
	char *vals = calloc((size_t)c->nslots * (size_t)c->ncpus, stride);
	int err;

	memset(cpus, 0, (size_t)c->ncpus * sizeof(*cpus));
	err = vals ? read_slots(c, vals, stride) : -ENOMEM;
	if (err) {
		memset(cpus, 1, (size_t)c->ncpus * sizeof(*cpus));
		goto out;
	}
	/* Value j of a slot is possible CPU j's; possible CPUs are 0..ncpus-1. */
	for (__u32 i = 0; i < c->nslots; i++) {
		const char *slot = vals + (size_t)i * (size_t)c->ncpus * stride;

		for (int cpu = 0; cpu < c->ncpus; cpu++)
			if (!cpus[cpu] && c->pending(slot + (size_t)cpu * stride))
				cpus[cpu] = true;
	}
out:
	free(vals);
	return err;
}

int tf_cache_flush(const struct tf_percpu_cache *c)
{
	bool *cpus = calloc((size_t)c->ncpus, sizeof(*cpus));
	int ret;

	if (!cpus)
		return -ENOMEM;
	/* Slots it cannot read mark every CPU: nothing waits in them for a poll. */
	tf_cache_pending_cpus(c, cpus);
	ret = tf_run_on_cpus(c->flush_fd, cpus, c->ncpus);
	free(cpus);
	return ret;
}
