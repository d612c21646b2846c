// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdint.h>
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
