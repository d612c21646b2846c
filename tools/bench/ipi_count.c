// SPDX-License-Identifier: GPL-2.0
/*
 * ipi_count: the function calls one process queues for other CPUs (each
 * one an IPI, counted in /proc/interrupts as CAL on the target), per
 * target CPU, over an interval: tp_btf/ipi_send_cpu, filtered by the
 * process id.
 *
 *   ipi_count PID SECONDS     prints one line: the count of each possible CPU
 *
 * ipi.sh runs it next to the CAL counts, which the rest of the machine
 * moves too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "ipi_count.skel.h"

#define IPI_MAX_CPUS 256

int main(int argc, char **argv)
{
	struct ipi_count_bpf *skel;
	int ncpus = libbpf_num_possible_cpus(), secs, ret = 1;
	long pid;

	if (argc != 3 || (pid = strtol(argv[1], NULL, 10)) <= 0 || (secs = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: ipi_count PID SECONDS\n");
		return 2;
	}
	if (ncpus <= 0 || ncpus > IPI_MAX_CPUS) {
		fprintf(stderr, "ipi_count: cannot count %d CPUs\n", ncpus);
		return 1;
	}
	skel = ipi_count_bpf__open();
	if (!skel) {
		fprintf(stderr, "ipi_count: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->ipi_tgid = (__u32)pid;
	if (ipi_count_bpf__load(skel) || ipi_count_bpf__attach(skel)) {
		fprintf(stderr, "ipi_count: cannot load or attach tp_btf/ipi_send_cpu: %s\n",
			strerror(errno));
		goto out;
	}
	sleep((unsigned int)secs);
	for (int cpu = 0; cpu < ncpus; cpu++)
		printf("%s%llu", cpu ? " " : "", (unsigned long long)skel->bss->ipi_sent[cpu]);
	printf("\n");
	ret = 0;
out:
	ipi_count_bpf__destroy(skel);
	return ret;
}
