/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace arithmetic on the counter structs the kernel side fills. */
#ifndef TF_COUNTERS_H
#define TF_COUNTERS_H

#include <linux/types.h>

#include "tapflow.h"

static inline void tf_dir_add(struct tf_dir_counters *dst, const struct tf_dir_counters *src)
{
	dst->packets += src->packets;
	dst->bytes += src->bytes;
	dst->segs += src->segs;
}

#endif /* TF_COUNTERS_H */
