// SPDX-License-Identifier: GPL-2.0
/*
 * ipi_count's program: counts, per target CPU, the function calls that one
 * process's threads queue for another CPU (smp_call_function_single and
 * the like: what BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU does for a
 * CPU other than the caller's), so that the function-call interrupts
 * (/proc/interrupts, CAL) that process causes stand apart from the rest
 * of the machine's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define IPI_MAX_CPUS 256

const volatile __u32 ipi_tgid = 0;
__u64 ipi_sent[IPI_MAX_CPUS] = {};

/* Its arguments: the target CPU, the call site, the function. */
SEC("tp_btf/ipi_send_cpu")
int ipi_send_cpu(__u64 *ctx)
{
	__u32 cpu = (__u32)ctx[0];

	if (bpf_get_current_pid_tgid() >> 32 != ipi_tgid || cpu >= IPI_MAX_CPUS)
		return 0;
	__sync_fetch_and_add(&ipi_sent[cpu], 1);
	return 0;
}
