/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the BPF programs take from the running kernel beyond helpers, in
 * one place: kfuncs (weak: the object still loads where one is missing;
 * test with bpf_ksym_exists()) and the kernel config values libbpf fills
 * in at load (__kconfig; 0 where libbpf cannot read the config).
 */
#ifndef TF_BPF_KERNEL_H
#define TF_BPF_KERNEL_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* The TC program's sk_buff as the kernel's struct sk_buff (6.2+). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;
/* A kernel address as a read-only pointer of BTF type btf_id (0: any memory, 6.16+). */
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym __weak;

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/*
 * Keeps the compiler from moving stores across it: the per-CPU caches'
 * busy flags (drops.bpf.c, tapflow.bpf.c) must be set before a slot changes
 * and cleared after.
 */
#define barrier() asm volatile("" ::: "memory")

/* Ticks per second: jiffies turned into time (flows' and drops' last seen). */
extern unsigned int CONFIG_HZ __kconfig __weak;

#endif /* TF_BPF_KERNEL_H */
