/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TCP health on the taps: what bpf/tcp_analysis.h keeps, shared with
 * userspace (fixed-width __u* types only).
 *
 * With .rodata tf_tcp_on (set before load, so that the verifier drops the
 * analysis otherwise), the tap programs look at every TCP segment of a
 * flow after counting it, and keep:
 *   - per flow, map `tcp_flows` (struct tf_flow_key -> struct
 *     tf_tcp_flow), a shared hash of at most --max-flows entries, made by
 *     the flow's first segment and deleted by userspace when the flow
 *     expires;
 *   - per tap, map `tcp_taps` (__u32 ifindex -> struct tf_tcp_tap), per
 *     CPU: RTT histograms and event counters that never expire (the
 *     agent's metrics).
 * Directions are the flow value's: [0] rx (delivered to the VM: tap TC
 * egress), [1] tx (sent by the VM: tap TC ingress). Sides of the RTT:
 *   [TF_TCP_OUTSIDE] a segment the VM sent until the ACK that covers it
 *                    comes back: the network and the remote end;
 *   [TF_TCP_INSIDE]  a segment delivered to the VM until the VM's ACK for
 *                    it: the guest's stack and scheduling.
 * One segment is timed at a time per direction, until the first segment
 * the other way that echoes its TSval (where it carries timestamps) or
 * else ACKs it (not if the segment is sent again meanwhile: Karn). So a
 * flow yields about one sample per round trip each way it sends data.
 */
#ifndef TF_TCP_STATE_H
#define TF_TCP_STATE_H

enum tf_tcp_side {
	TF_TCP_OUTSIDE = 0,
	TF_TCP_INSIDE = 1,
	TF_TCP_SIDES = 2,
};

/*
 * RTT histogram buckets, log2 of microseconds: bucket 0 counts RTTs under
 * 1 us, bucket i (1 .. N-2) those in [2^(i-1), 2^i) us, the last one
 * everything from 2^(N-2) us (~4.2 s) up.
 */
#define TF_TCP_HIST_BUCKETS 24

/* struct tf_tcp_dir.flags */
enum tf_tcp_dir_flags {
	TF_TCPD_NXT = 1,	/* nxt is known (a segment was seen this way) */
	TF_TCPD_TS = 2,		/* this way's segments carry timestamps */
	TF_TCPD_WIN0 = 4,	/* this way's latest segment advertised a zero window */
};

/* One direction of travel of a flow. */
struct tf_tcp_dir {
	__u32 nxt;		/* highest end sequence seen (seq + data + SYN + FIN) */
	__u32 flags;		/* enum tf_tcp_dir_flags */
	__u32 ts_val;		/* the TSval being timed */
	__u32 ts_last;		/* the newest TSval seen this way */
	__u32 seq_end;		/* the end sequence of the segment being timed */
	__u32 pad;
	__u64 ts_ns;		/* when ts_val was first seen; 0: not timed by its TSval */
	__u64 seq_ns;		/* when the segment ending at seq_end was; 0: not timed by it */
	/*
	 * Segments with data, SYN or FIN that start below nxt (sent again,
	 * or reordered before the tap); a keep-alive (at most 1 byte at
	 * nxt - 1) is not one. A zero-window probe (1 byte at nxt while the
	 * other way's window is zero) does not move nxt, so that the data
	 * sent at that place once the window opens is not one either (as
	 * tshark counts them).
	 */
	__u64 retrans;
	__u64 zero_win;		/* segments advertising a zero window (not SYN/FIN/RST) */
	__u64 resets;		/* RST segments */
	__u64 syns;		/* SYN segments without ACK */
};

/* RTT samples of one side. */
struct tf_tcp_rtt {
	__u64 sum_ns;
	__u64 count;
	__u64 min_ns, max_ns;		/* since the flow's state was made */
	/* Since .bss tf_tcp_epoch became epoch (userspace advances it each poll). */
	__u64 ep_min_ns, ep_max_ns;
	__u32 epoch;
	__u32 pad;
};

/* struct tf_tcp_flow.flags */
enum tf_tcp_flow_flags {
	TF_TCPF_SYN = 1,	/* a SYN was seen (syn_dir: which way) */
	TF_TCPF_ANSWERED = 2,	/* ... and a SYN-ACK came back */
	TF_TCPF_REFUSED = 4,	/* ... and a RST came back instead */
	TF_TCPF_FAILED = 8,	/* counted in the tap's connect_failures */
};

struct tf_tcp_flow {
	struct tf_tcp_dir dir[2];		/* [0] rx, [1] tx */
	struct tf_tcp_rtt rtt[TF_TCP_SIDES];
	__u64 syn_ns;		/* the first SYN */
	__u64 handshake_ns;	/* first SYN until the SYN-ACK; 0: not seen */
	__u32 flags;		/* enum tf_tcp_flow_flags */
	__u32 syn_dir;		/* 0 rx: opened from outside; 1 tx: by the VM */
};

/* Per tap, per CPU: what outlives the flows. */
struct tf_tcp_tap {
	__u64 rtt_hist[TF_TCP_SIDES][TF_TCP_HIST_BUCKETS];
	__u64 rtt_sum_ns[TF_TCP_SIDES];
	__u64 retrans[2];		/* [0] rx, [1] tx, as in struct tf_tcp_dir */
	__u64 zero_win[2];
	__u64 resets[2];
	/*
	 * Connection attempts that failed, counted once each: refused (a
	 * RST answered the SYN) or unanswered for the initial retransmission
	 * timeout (the SYN was sent again). [0]: to the VM, [1]: by the VM.
	 */
	__u64 connect_failures[2];
};

#endif /* TF_TCP_STATE_H */
