// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

/* The highest capability this kernel knows. */
static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int n = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &n) != 1 || n < 0 || n > 63)
			n = CAP_LAST_CAP;
		fclose(f);
	}
	return n;
}

uint64_t tf_caps_agent_keeps(void)
{
	/* EINVAL: a kernel before CAP_BPF, which asks CAP_SYS_ADMIN for BPF instead. */
	bool cap_bpf = prctl(PR_CAPBSET_READ, CAP_BPF, 0, 0, 0) >= 0;

	return 1ULL << CAP_NET_ADMIN | 1ULL << (cap_bpf ? CAP_BPF : CAP_SYS_ADMIN);
}

uint64_t tf_caps_effective(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (syscall(SYS_capget, &hdr, d))
		return 0;
	return d[0].effective | (uint64_t)d[1].effective << 32;
}

int tf_caps_keep_only(uint64_t keep, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};
	uint64_t eff, perm;
	int last = last_cap();

	if (syscall(SYS_capget, &hdr, d)) {
		snprintf(err, errlen, "cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	eff = d[0].effective | (uint64_t)d[1].effective << 32;
	perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	/*
	 * The bounding set first: dropping from it takes CAP_SETPCAP, which
	 * goes with the rest below. Without CAP_SETPCAP (a service given
	 * only what it needs) there is nothing in it to fear: no execve.
	 */
	if (eff & (1ULL << CAP_SETPCAP))
		for (int cap = 0; cap <= last; cap++)
			if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) &&
			    errno != EINVAL) {
				snprintf(err, errlen, "cannot drop capability %d from the bounding "
					 "set: %s", cap, strerror(errno));
				return -1;
			}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	eff &= keep;
	perm &= keep;
	d[0].effective = (uint32_t)eff;
	d[1].effective = (uint32_t)(eff >> 32);
	d[0].permitted = (uint32_t)perm;
	d[1].permitted = (uint32_t)(perm >> 32);
	d[0].inheritable = d[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, d)) {
		snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}
