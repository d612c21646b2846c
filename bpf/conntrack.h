/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The conntrack entry of an skb, read from a TC program ([3/8] NAT join).
 *
 * skb->_nfct holds the entry's address and, in its low 3 bits, the
 * packet's ctinfo (which direction, new/established/related). TC programs
 * get the kernel sk_buff through the bpf_cast_to_kern_ctx() kfunc (Linux
 * 6.2+); it is a weak symbol, so that the object still loads where it is
 * missing and the join is simply off (userspace tells the user). Reading
 * the entry's pointer costs a load; its tuples are read with
 * bpf_probe_read_kernel() only when the entry of a flow changes, never per
 * packet. Chosen over the bpf_skb_ct_lookup() kfunc, which hashes the
 * tuple into the conntrack table and takes and drops a reference on every
 * call, for what is already attached to the skb: on the uplink's egress
 * every forwarded packet carries its entry.
 */
#ifndef TF_CONNTRACK_H
#define TF_CONNTRACK_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

#define TF_NFCT_INFOMASK 7UL

/* ctinfo values (enum ip_conntrack_info), stable kernel ABI. */
#define TF_CT_ESTABLISHED 0
#define TF_CT_RELATED 1
#define TF_CT_NEW 2
#define TF_CT_IS_REPLY 3
#define TF_CT_RELATED_REPLY 4

/* skb->_nfct (entry address | ctinfo), or 0: none or not readable here. */
static __always_inline __u64 skb_nfct(struct __sk_buff *skb)
{
	struct sk_buff *kskb;

	if (!bpf_ksym_exists(bpf_cast_to_kern_ctx))
		return 0;
	kskb = bpf_cast_to_kern_ctx(skb);
	if (!bpf_core_field_exists(kskb->_nfct))
		return 0;
	return kskb->_nfct;
}

/* What the join needs of an entry: its two tuples, status and zone. */
struct tf_ct_info {
	struct nf_conntrack_tuple tuple[2];	/* [IP_CT_DIR_ORIGINAL], [IP_CT_DIR_REPLY] */
	__u32 status;				/* IPS_* (low 32 bits) */
	__u16 zone;
	__u8 zone_dir;				/* NF_CT_ZONE_DIR_* bits */
};

/* Read ct's tuples, status and zone. 0, or -1 if the reads failed. */
static __always_inline int ct_read(const struct nf_conn *ct, struct tf_ct_info *out)
{
	unsigned long status = 0;

	__builtin_memset(out, 0, sizeof(*out));
	if (bpf_core_read(&out->tuple[0], sizeof(out->tuple[0]), &ct->tuplehash[0].tuple) ||
	    bpf_core_read(&out->tuple[1], sizeof(out->tuple[1]), &ct->tuplehash[1].tuple) ||
	    bpf_core_read(&status, sizeof(status), &ct->status))
		return -1;
	out->status = (__u32)status;
	/* Only with CONFIG_NF_CONNTRACK_ZONES: else every entry is zone 0. */
	if (bpf_core_field_exists(ct->zone)) {
		struct nf_conntrack_zone z = {};

		if (!bpf_core_read(&z, sizeof(z), &ct->zone)) {
			out->zone = z.id;
			out->zone_dir = z.dir;
		}
	}
	return 0;
}

#endif /* TF_CONNTRACK_H */
