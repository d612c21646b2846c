// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "counters.h"
#include "ifcounters.h"

/* Is ifindex counted in its slot? Programs read the owner as they run. */
static bool owns_slot(const struct tf_ifc *m, __u32 ifindex)
{
	return __atomic_load_n(&m->owner[tf_ifc_slot(ifindex)], __ATOMIC_ACQUIRE) == ifindex;
}

int tf_ifc_add(const struct tf_ifc *m, __u32 ifindex)
{
	__u32 slot = tf_ifc_slot(ifindex);
	__u32 owner = __atomic_load_n(&m->owner[slot], __ATOMIC_ACQUIRE);
	void *zero = calloc((size_t)m->ncpus, sizeof(struct tf_if_counters));
	int err = 0;

	if (!zero)
		return -ENOMEM;
	if (!ifindex) {
		err = -EINVAL;	/* 0 marks a free slot */
	} else if (owner == 0 || owner == ifindex) {
		/* Zeroed first: the owner makes the programs count here. */
		if (bpf_map_update_elem(m->slots_fd, &slot, zero, BPF_ANY))
			err = -errno;
		else
			__atomic_store_n(&m->owner[slot], ifindex, __ATOMIC_RELEASE);
	} else if (bpf_map_update_elem(m->spill_fd, &ifindex, zero, BPF_ANY)) {
		err = -errno;
	}
	free(zero);
	return err;
}

bool tf_ifc_placed(const struct tf_ifc *m, __u32 ifindex)
{
	struct tf_if_counters *v;
	bool in_spill;

	if (ifindex && owns_slot(m, ifindex))
		return true;
	v = calloc((size_t)m->ncpus, sizeof(*v));
	in_spill = v && !bpf_map_lookup_elem(m->spill_fd, &ifindex, v);
	free(v);
	return in_spill;
}

int tf_ifc_read(const struct tf_ifc *m, __u32 ifindex, struct tf_if_counters *sum)
{
	struct tf_if_counters *v = calloc((size_t)m->ncpus, sizeof(*v));
	__u32 slot = tf_ifc_slot(ifindex);
	int err = 0;

	memset(sum, 0, sizeof(*sum));
	if (!v)
		return -ENOMEM;
	if (owns_slot(m, ifindex) ? bpf_map_lookup_elem(m->slots_fd, &slot, v)
				  : bpf_map_lookup_elem(m->spill_fd, &ifindex, v)) {
		err = -errno;
		goto out;
	}
	for (int cpu = 0; cpu < m->ncpus; cpu++)
		for (int d = 0; d < TF_HOOK_DIRS; d++) {
			tf_dir_add(&sum->dir[d], &v[cpu].dir[d]);
			sum->cap_samples[d] += v[cpu].cap_samples[d];
			sum->cap_lost[d] += v[cpu].cap_lost[d];
		}
out:
	free(v);
	return err;
}

int tf_ifc_del(const struct tf_ifc *m, __u32 ifindex)
{
	__u32 slot = tf_ifc_slot(ifindex);

	if (owns_slot(m, ifindex)) {
		/* Freed, not zeroed: the next owner zeroes it before it takes it (tf_ifc_add). */
		__atomic_store_n(&m->owner[slot], 0, __ATOMIC_RELEASE);
		return 0;
	}
	if (bpf_map_delete_elem(m->spill_fd, &ifindex) && errno != ENOENT)
		return -errno;
	return 0;
}
