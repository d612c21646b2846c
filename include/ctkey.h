/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flow keys from conntrack tuples (the NAT join), shared by the BPF
 * programs and userspace (and so unit-tested there): the VM side of an
 * uplink flow is written in the same key as the VM's tap flow, so that
 * userspace can join them with a plain key compare.
 *
 * Fixed-width types and static inline functions only; compiled by clang
 * -target bpf and by gcc.
 */
#ifndef TF_CTKEY_H
#define TF_CTKEY_H

#include "tapflow.h"

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

/*
 * One conntrack tuple (struct nf_conntrack_tuple) in plain fields: ports
 * and the ICMP identifier in host order; for ICMP/ICMPv6 src_port is the
 * identifier and dst_port is unused (type and code instead).
 */
struct tf_ct_tuple {
	__u8 family;		/* TF_FAM_IPV4 or TF_FAM_IPV6 */
	__u8 proto;
	__u8 icmp_type, icmp_code;
	__u16 src_port, dst_port;
	__u8 src_ip[16], dst_ip[16];	/* IPv4 in the first 4 bytes */
};

/*
 * ICMP/ICMPv6 key ports, as conntrack keys queries: a query and its reply
 * share the request's type, local = the identifier; errors and the rest
 * have no identifier (local 0, remote = type << 8 | code).
 */
static inline void tf_icmp_key_ports(__u8 type, __u8 code, __u16 id, int v6, __u16 *local,
				     __u16 *remote)
{
	int req = -1;

	if (!v6) {
		switch (type) {
		case 8: case 0: req = 8; break;		/* echo */
		case 13: case 14: req = 13; break;	/* timestamp */
		case 15: case 16: req = 15; break;	/* information */
		case 17: case 18: req = 17; break;	/* address mask */
		}
	} else {
		switch (type) {
		case 128: case 129: req = 128; break;	/* echo */
		case 139: case 140: req = 139; break;	/* node information */
		}
	}
	if (req >= 0) {
		*local = id;
		*remote = (__u16)(req << 8 | code);
	} else {
		*local = 0;
		*remote = (__u16)(type << 8 | code);
	}
}

/*
 * Rewrite vm (a copy of the packet's key, family and proto set) into the
 * VM side of tuple t, the packet's own conntrack direction before any
 * translation: addresses and ports (ICMP: identifier, request type) of t,
 * in the same key layout as a tap flow of the VM. Key ports that are 0 for
 * a port protocol (a non-first fragment) stay 0, as on the tap.
 */
static inline void tf_ct_vm_key(struct tf_flow_key *vm, const struct tf_ct_tuple *t)
{
	int v6 = vm->family == TF_FAM_IPV6;
	int n = v6 ? 16 : 4;

	for (int i = 0; i < 16; i++) {
		vm->local_ip[i] = i < n ? t->src_ip[i] : 0;
		vm->remote_ip[i] = i < n ? t->dst_ip[i] : 0;
	}
	switch (vm->proto) {
	case 6:		/* TCP */
	case 17:	/* UDP */
	case 136:	/* UDP-Lite */
	case 132:	/* SCTP */
	case 33:	/* DCCP */
		if (vm->local_port || vm->remote_port) {
			vm->local_port = t->src_port;
			vm->remote_port = t->dst_port;
		}
		break;
	case 1:		/* ICMP */
	case IPPROTO_ICMPV6:
		/* Ports 0/0: a non-first fragment, keyed so on the tap too. */
		if ((vm->proto == IPPROTO_ICMPV6) == v6 && (vm->local_port || vm->remote_port))
			tf_icmp_key_ports(t->icmp_type, t->icmp_code, t->src_port, v6,
					  &vm->local_port, &vm->remote_port);
		break;
	}
}

#endif /* TF_CTKEY_H */
