/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sampled frames: what the TC programs put in the capture ring
 * buffer, shared by bpf/ and src/ (fixed-width __u* types only).
 *
 * With capture on (.rodata tf_cap_on, so that the code is compiled away
 * by the verifier otherwise), every program samples the frames of the
 * interfaces in .bss tf_cap_if_bits, 1 in tf_cap_sample at random
 * (bpf_get_prandom_u32), optionally only those of one flow
 * (tf_cap_filter), and copies the first tf_cap_snaplen bytes after a
 * struct tf_cap_hdr into the ring buffer `cap_rb`. Per interface and
 * direction, if_counters counts the samples taken and the samples lost
 * to a full ring buffer.
 */
#ifndef TF_CAPTURE_H
#define TF_CAPTURE_H

/* The largest --snaplen: a jumbo frame, and a ring buffer record size. */
#define TF_CAP_SNAPLEN_MAX 9216
#define TF_CAP_SNAPLEN_DEFAULT 9216	/* whole frames, up to jumbo */

struct tf_cap_hdr {
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u32 ifindex;
	__u32 orig_len;		/* skb->len: the frame as the interface has it */
	__u32 cap_len;		/* bytes of it that follow */
	__u32 sample;		/* 1 in sample frames were taken */
	__u8 hook;		/* TF_HOOK_INGRESS / TF_HOOK_EGRESS */
	__u8 pad[7];
};

/*
 * --flow: a protocol and up to two endpoints, matched either way round.
 * Zero fields match anything (port 0: any port; ip_set 0: any address).
 */
struct tf_cap_endpoint {
	__u8 ip[16];		/* IPv4 in the first 4 bytes */
	__u8 ip_set;
	__u8 pad;
	__u16 port;		/* host order */
};

struct tf_cap_filter {
	__u8 on;
	__u8 family;		/* 4, 6, 0: any */
	__u8 proto;		/* IPPROTO_*, 0: any */
	__u8 pad;
	struct tf_cap_endpoint a, b;
};

/* Ifindexes below this can be captured (a bitmap in .bss). */
#define TF_CAP_IF_BITS 65536

#endif /* TF_CAPTURE_H */
