/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by the BPF programs (bpf/) and userspace (src/).
 * Fixed-width __u* types only: this header is compiled by clang -target bpf
 * against vmlinux.h and by gcc against <linux/types.h>.
 */
#ifndef TAPFLOW_H
#define TAPFLOW_H

/*
 * TC hook the packet was seen on. Which of these is the VM's rx or tx
 * depends on the interface's role (tap: ingress = sent by the VM), which
 * only userspace knows; the kernel side stays role-agnostic.
 */
enum tf_hook_dir {
	TF_HOOK_INGRESS = 0,
	TF_HOOK_EGRESS = 1,
	TF_HOOK_DIRS = 2,
};

struct tf_dir_counters {
	__u64 packets;	/* skbs */
	__u64 bytes;	/* skb->len at the hook, Ethernet header included */
	__u64 segs;	/* sum of max(gso_segs, 1) */
};

/* Value of the per-CPU if_counters map, keyed by __u32 ifindex. */
struct tf_if_counters {
	struct tf_dir_counters dir[TF_HOOK_DIRS];
};

/* Default capacity of if_counters; userspace can raise it before load. */
#define TF_MAX_IFACES 4096

#endif /* TAPFLOW_H */
