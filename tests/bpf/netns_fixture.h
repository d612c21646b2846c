/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared fixture of the BPF_PROG_TEST_RUN tests: a private network
 * namespace with a veth pair whose ifindexes the test runs use (the kernel
 * looks ctx_in.ifindex up in the caller's namespace).
 */
#ifndef TF_TEST_NETNS_FIXTURE_H
#define TF_TEST_NETNS_FIXTURE_H

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

/*
 * Enter a new network namespace and create veth dev_a/dev_b there. On
 * success fill the ifindexes and the CPU count; otherwise write why the
 * tests must be skipped into skip (the caller reports it). Returns 0.
 */
static inline int tf_test_netns_veths(const char *dev_a, const char *dev_b, int *if_a,
				      int *if_b, int *ncpus, char *skip, size_t skiplen)
{
	char cmd[128];

	if (geteuid() != 0) {
		snprintf(skip, skiplen, "needs root (BPF_PROG_TEST_RUN, a network namespace)");
		return 0;
	}
	if (unshare(CLONE_NEWNET)) {
		snprintf(skip, skiplen, "unshare(CLONE_NEWNET): %s", strerror(errno));
		return 0;
	}
	/*
	 * A veth pair (this kernel may lack the dummy driver). They need not
	 * be up: the test run only looks the device up by ifindex.
	 */
	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s", dev_a, dev_b);
	if (system(cmd)) {
		snprintf(skip, skiplen, "cannot create a veth pair in the test namespace");
		return 0;
	}
	*if_a = (int)if_nametoindex(dev_a);
	*if_b = (int)if_nametoindex(dev_b);
	*ncpus = libbpf_num_possible_cpus();
	if (*if_a <= 1 || *if_b <= 1 || *if_a == *if_b || *ncpus <= 0)
		snprintf(skip, skiplen, "bad test devices (%d, %d) or CPUs", *if_a, *if_b);
	return 0;
}

/*
 * One BPF_PROG_TEST_RUN of a TC program on frame, with ctx as given
 * (ifindex, ingress_ifindex, gso): 0 and the program's verdict in *retval
 * (may be NULL), or -errno. retval starts as a value no program returns,
 * so that a run that does not set it cannot pass for TC_ACT_UNSPEC.
 */
static inline int tf_test_run_tc(int prog_fd, const void *frame, size_t len,
				 struct __sk_buff *ctx, int repeat, __u32 *retval)
{
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts);
	int err;

	opts.data_in = frame;
	opts.data_size_in = (__u32)len;
	opts.ctx_in = ctx;
	opts.ctx_size_in = sizeof(*ctx);
	opts.repeat = repeat;
	opts.retval = 0x12345678;
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
		return err < 0 ? err : -errno;
	if (retval)
		*retval = opts.retval;
	return 0;
}

#endif /* TF_TEST_NETNS_FIXTURE_H */
