/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Giving capabilities up for good once a long run is set up: what the
 * agent keeps is what following the host needs (attaching a new tap's
 * links: CAP_BPF, or CAP_SYS_ADMIN where the kernel predates CAP_BPF, and
 * CAP_NET_ADMIN); loading programs (CAP_PERFMON), entering a namespace
 * (CAP_SYS_ADMIN) and reading kernel symbols (CAP_SYSLOG) were done at the
 * start and are given up, from the bounding set too, with no_new_privs.
 */
#ifndef TF_CAPS_H
#define TF_CAPS_H

#include <stddef.h>
#include <stdint.h>

/* The capabilities (bits) the agent keeps once attached. */
uint64_t tf_caps_agent_keeps(void);
/*
 * Keep only the capabilities in keep (bits by CAP_* number), in the
 * effective, permitted, inheritable, ambient and bounding sets, and set
 * no_new_privs. 0, or -1 with a reason in err (nothing is dropped then,
 * or only part: the caller says so and goes on).
 */
int tf_caps_keep_only(uint64_t keep, char *err, size_t errlen);
/* The effective capabilities (bits), or 0 if they cannot be read. */
uint64_t tf_caps_effective(void);

#endif /* TF_CAPS_H */
