// SPDX-License-Identifier: GPL-2.0
/*
 * The baseline of prog_cost: a TC program that does nothing, so that the
 * cost BPF_PROG_TEST_RUN adds around every run (the loop, the timer, the
 * indirect call) can be subtracted from tapflow's figures.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_UNSPEC (-1)

SEC("tc")
int tf_empty(struct __sk_buff *skb __attribute__((unused)))
{
	return TC_ACT_UNSPEC;
}
