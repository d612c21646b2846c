// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "preflight.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

int tf_enter_netns(const char *name, char *err, size_t errlen)
{
	char path[300];
	int fd;

	if (!*name || strchr(name, '/')) {
		snprintf(err, errlen, "invalid network namespace name '%s'", name);
		return -1;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "network namespace '%s' not found (%s: %s; see ip netns list)",
			 name, path, strerror(errno));
		return -1;
	}
	if (setns(fd, CLONE_NEWNET)) {
		snprintf(err, errlen, "cannot enter network namespace '%s': %s%s", name,
			 strerror(errno), errno == EPERM ? " (needs root)" : "");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static bool has_cap(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

int tf_check_privileges(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data)) {
		snprintf(err, errlen, "cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	if ((has_cap(data, CAP_BPF) || has_cap(data, CAP_SYS_ADMIN)) &&
	    has_cap(data, CAP_NET_ADMIN))
		return 0;
	snprintf(err, errlen, "needs root, or CAP_BPF and CAP_NET_ADMIN, to load and "
		 "attach BPF programs (try sudo)");
	return -1;
}

int tf_check_btf(char *err, size_t errlen)
{
	static const char path[] = "/sys/kernel/btf/vmlinux";

	if (access(path, R_OK) == 0)
		return 0;
	snprintf(err, errlen, "kernel has no BTF (%s: %s); tapflow's CO-RE programs need "
		 "a kernel built with CONFIG_DEBUG_INFO_BTF=y", path, strerror(errno));
	return -1;
}
