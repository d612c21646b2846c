/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The conntrack entry of an skb, read from a TC program (the NAT join).
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
#include "kernel.h"

#define TF_NFCT_INFOMASK 7UL

/*
 * The kernel BTF id of struct nf_conn, for bpf_rdonly_cast(); set by
 * userspace before load (0: unknown). Not bpf_core_type_id_kernel(): the
 * kernel also has struct nf_conn___init, which CO-RE takes for a flavor of
 * the same type, and the relocation is ambiguous.
 */
const volatile __u32 tf_nf_conn_btf_id = 0;

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

/*
 * Is the source of ct's tuple of direction dir still (ip, port)? 1 yes,
 * 0 no, -1 cannot tell (no bpf_rdonly_cast). An entry freed and another
 * allocated at the same address (the slab reuses it at once) has the same
 * address but another tuple: this tells them apart on every packet for
 * the price of two plain loads (bpf_rdonly_cast: faulting loads, no
 * helper call). port is in network order; check_port false skips it.
 */
static __always_inline int ct_src_is(__u64 ct_addr, int dir, bool v6, const __u8 ip[16],
				     __be16 port, bool check_port)
{
	const struct nf_conntrack_man *src;
	struct nf_conn *ct;

	if (!bpf_ksym_exists(bpf_rdonly_cast) || !tf_nf_conn_btf_id)
		return -1;
	ct = bpf_rdonly_cast((void *)ct_addr, tf_nf_conn_btf_id);
	/* Constant indexes: the verifier takes no variable offset into a BTF pointer. */
	src = dir ? &ct->tuplehash[1].tuple.src : &ct->tuplehash[0].tuple.src;
	if (check_port && src->u.all != port)
		return 0;
	if (src->u3.ip != *(const __be32 *)ip)
		return 0;
	if (v6 && (src->u3.ip6[1] != ((const __be32 *)ip)[1] ||
		   src->u3.ip6[2] != ((const __be32 *)ip)[2] ||
		   src->u3.ip6[3] != ((const __be32 *)ip)[3]))
		return 0;
	return 1;
}

#endif /* TF_CONNTRACK_H */
