/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Names of kernel things, for the drop tracer:
 * - text addresses -> "symbol+0xoff" from /proc/kallsyms;
 * - enum skb_drop_reason values -> names, from the running kernel's BTF
 *   (the enum changes between kernels: never a table of our own).
 */
#ifndef TF_KSYMS_H
#define TF_KSYMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tf_ksym {
	uint64_t addr;
	char *name;
};

struct tf_ksyms {
	struct tf_ksym *syms;		/* sorted by address */
	size_t n;
	char *names;			/* one buffer for all names */
};

/*
 * Read kallsyms from f (text symbols: types t/T/W/w). 0, -ENOENT if no
 * symbol has an address (kptr_restrict hides them from us), -ENOMEM.
 */
int tf_ksyms_load(struct tf_ksyms *k, FILE *f);
void tf_ksyms_free(struct tf_ksyms *k);
/*
 * "symbol+0xoff" of addr into out; "0x<addr>" if no symbol is at or below
 * it (or the table is empty).
 */
void tf_ksyms_name(const struct tf_ksyms *k, uint64_t addr, char *out, size_t outlen);

struct btf;

struct tf_drop_reasons {
	char **names;			/* by value; NULL: no such value */
	uint32_t n;			/* values 0 .. n-1 */
	uint32_t subsys_mask;		/* SKB_DROP_REASON_SUBSYS_MASK, 0 if none */
};

/*
 * The names of enum skb_drop_reason in btf, without the
 * "SKB_DROP_REASON_" prefix ("NETFILTER_DROP"; "CONSUMED" and
 * "NOT_DROPPED_YET" too). 0, -ENOENT if the enum is not there (kernel
 * before 5.17), -ENOMEM.
 */
int tf_drop_reasons_load(struct tf_drop_reasons *r, const struct btf *btf);
void tf_drop_reasons_free(struct tf_drop_reasons *r);
/*
 * The name of reason into out: its name, "SUBSYS_<n>:<m>" for the reasons
 * of a subsystem (mac80211, openvswitch, ...), or the number if unknown.
 */
void tf_drop_reason_name(const struct tf_drop_reasons *r, uint32_t reason, char *out,
			 size_t outlen);

/*
 * The names drops are reported with: reasons from BTF (needed: -1, said
 * why), symbols from kallsyms (nice to have: without them, a warning, and
 * locations print as addresses). 0 or -1.
 */
int tf_drop_names_load(struct tf_drop_reasons *reasons, struct tf_ksyms *ksyms);

#endif /* TF_KSYMS_H */
