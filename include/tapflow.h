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

/*
 * Per-flow accounting on VM taps ([2/8]). The key is in the VM's point of
 * view (local = the VM side, remote = the peer), so that both directions of
 * a connection land in one entry.
 */
#define TF_FLOWS_DEFAULT 65536

enum tf_flow_family {
	TF_FAM_OTHER = 0,	/* not IP: counted by ethertype (ARP, ...) */
	TF_FAM_IPV4 = 4,
	TF_FAM_IPV6 = 6,
};

struct tf_flow_key {
	__u32 ifindex;		/* the VM's tap */
	__u16 vlan;		/* VLAN id (in-packet or offloaded tag), 0 = none */
	__u16 ethertype;	/* host order; the inner one for VLAN frames */
	__u8 family;		/* enum tf_flow_family */
	__u8 proto;		/* IPPROTO_*; 0 for TF_FAM_OTHER */
	__u16 pad;
	__u8 local_ip[16];	/* IPv4 in the first 4 bytes, rest zero */
	__u8 remote_ip[16];
	/*
	 * TCP/UDP: ports, host order. ICMP/ICMPv6 echo and other queries:
	 * local_port = identifier, remote_port = (request type << 8) | code,
	 * so that a request and its reply share one flow, as in conntrack.
	 * Other ICMP errors: local_port 0, remote_port = (type << 8) | code.
	 */
	__u16 local_port;
	__u16 remote_port;
};

struct tf_flow_value {
	struct tf_dir_counters rx;	/* delivered to the VM */
	struct tf_dir_counters tx;	/* sent by the VM */
	__u64 first_seen_ns;		/* bpf_ktime_get_ns() */
	__u64 last_seen_ns;
	__u8 tcp_flags_rx;		/* OR of the TCP flags seen each way */
	__u8 tcp_flags_tx;
	__u8 pad[6];
};

/*
 * Per-tap aggregate of what is on the tap but in no flow entry, so that
 * for every VM: sum(flows) + overflow + unparsed = its stats counters.
 */
struct tf_tap_aggr {
	struct tf_dir_counters overflow_rx, overflow_tx;	/* flow map was full */
	struct tf_dir_counters unparsed_rx, unparsed_tx;	/* truncated/malformed */
};

#endif /* TAPFLOW_H */
