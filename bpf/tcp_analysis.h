/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Passive TCP analysis on the taps (include/tcp_state.h says what is
 * kept and why the sides are what they are). Included by tapflow.bpf.c
 * after the flow path's helpers; called from account_flow() for TCP
 * segments, after the segment was counted, so that nothing here can make
 * a packet miss its counters.
 *
 * The state is shared by the CPUs that carry a flow's two directions.
 * Counters are atomic adds; the timing fields are plain stores, each
 * written by one direction's segments (one queue, so one CPU): a race
 * costs a sample at most, never a count.
 */
#ifndef TAPFLOW_TCP_ANALYSIS_H
#define TAPFLOW_TCP_ANALYSIS_H

#include "tcp_state.h"	/* include/: the types userspace reads */

#define TF_TCP_FIN 0x01
#define TF_TCP_SYN 0x02
#define TF_TCP_RST 0x04
#define TF_TCP_ACK 0x10

/* TCP options: at most 40 bytes; the usual data segment's start with NOP NOP TS. */
#define TF_TCP_OPT_MAX 40
#define TF_TCP_NOP_NOP_TS 0x0101080aU

/* Set before load: off, the verifier drops the analysis from the programs. */
const volatile bool tf_tcp_on = false;

/* Advanced by userspace before each read of tcp_flows (struct tf_tcp_rtt). */
__u32 tf_tcp_epoch = 0;

/* TCP segments of flows that had no state and could get none (tcp_flows full). */
__u64 tcp_flow_map_full = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TF_FLOWS_DEFAULT);	/* userspace: --max-flows, 1 when off */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tf_flow_key);
	__type(value, struct tf_tcp_flow);
} tcp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TF_MAX_IFACES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct tf_tcp_tap);
} tcp_taps SEC(".maps");

/*
 * Zeroed values for new entries: a map value can be the update's source,
 * and these are too large for the stack the call chain leaves.
 */
const struct tf_tcp_tap tcp_tap_zero = {};
const struct tf_tcp_flow tcp_flow_zero = {};

/* The fields of a segment that the analysis reads, host order. */
struct tf_tcp_seg {
	__u32 seq, ack;
	__u32 len;		/* data bytes */
	__u32 tsval, tsecr;
	__u16 win;		/* as sent (unscaled: zero is zero at any scale) */
	__u8 flags;
	__u8 has_ts;
};

static __always_inline bool seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

/* The option walk's state, for bpf_loop: its callback is verified once. */
struct tf_tcp_optwalk {
	__u8 o[TF_TCP_OPT_MAX];
	__u32 i, olen;
	__u32 tsval, tsecr;
	__u32 found;
};

/* One option at w->i: 1 to stop (end of list, malformed, or the timestamps found). */
static long tcp_opt_step(__u32 n __attribute__((unused)), void *ctx)
{
	struct tf_tcp_optwalk *w = ctx;
	__u32 i = w->i;
	__u8 kind, len;

	if (i >= w->olen || i >= TF_TCP_OPT_MAX - 1)
		return 1;
	kind = w->o[i];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->i = i + 1;
		return 0;
	}
	len = w->o[i + 1];
	if (len < 2 || i + len > w->olen)
		return 1;
	if (kind == 8 && len == 10 && i + 10 <= TF_TCP_OPT_MAX) {
		w->tsval = (__u32)w->o[i + 2] << 24 | (__u32)w->o[i + 3] << 16 |
			   (__u32)w->o[i + 4] << 8 | w->o[i + 5];
		w->tsecr = (__u32)w->o[i + 6] << 24 | (__u32)w->o[i + 7] << 16 |
			   (__u32)w->o[i + 8] << 8 | w->o[i + 9];
		w->found = 1;
		return 1;
	}
	w->i = i + len;
	return 0;
}

/*
 * TSval/TSecr of options that do not start with NOP NOP TS (SYNs, and
 * stacks that order them otherwise): a walk of at most 40 bytes. 1 if
 * found (the caller uses the result: a subprogram's return register must
 * hold a value, never what the compiler left there).
 */
static __noinline int tcp_ts_walk(struct __sk_buff *skb, __u32 off, __u32 olen,
				  struct tf_tcp_seg *s)
{
	struct tf_tcp_optwalk w = {};

	if (!skb || !s || olen == 0 || olen > TF_TCP_OPT_MAX ||
	    bpf_skb_load_bytes(skb, off, w.o, olen))
		return 0;
	w.olen = olen;
	bpf_loop(TF_TCP_OPT_MAX, tcp_opt_step, &w, 0);
	if (!w.found)
		return 0;
	s->tsval = w.tsval;
	s->tsecr = w.tsecr;
	return 1;
}

/*
 * The segment whose TCP header starts at pos->off (the IP packet ends at
 * pos->end), read in one cursor mode. 0, or -1 (direct: c->need_copy if
 * it was not in the linear area).
 */
static __always_inline int tcp_seg_parse(const struct tf_skb_view *v, const struct tf_l4pos *pos,
					 bool direct, struct tf_tcp_seg *s, struct hdr_cursor *c)
{
	struct tf_tcphdr hbuf, *th;
	__be32 obuf[3], *o;
	__u32 doff, olen;

	cursor_init(c, v, direct);
	c->off = pos->off;
	c->end = pos->end;
	th = cursor_pull(c, &hbuf, sizeof(hbuf));
	if (!th)
		return -1;
	doff = (th->doff_res >> 4) * 4;
	if (doff < sizeof(*th) || !cursor_has(c, doff - sizeof(*th)))
		return -1;
	s->seq = bpf_ntohl(th->seq);
	s->ack = bpf_ntohl(th->ack_seq);
	s->win = bpf_ntohs(th->window);
	s->flags = th->flags;
	s->len = c->end - c->off - (doff - sizeof(*th));
	s->has_ts = 0;
	olen = doff - sizeof(*th);
	if (olen >= sizeof(obuf)) {
		o = cursor_pull(c, obuf, sizeof(obuf));
		if (!o)
			return -1;
		if (o[0] == bpf_htonl(TF_TCP_NOP_NOP_TS)) {
			s->tsval = bpf_ntohl(o[1]);
			s->tsecr = bpf_ntohl(o[2]);
			s->has_ts = 1;
			return 0;
		}
	}
	if (olen)
		s->has_ts = tcp_ts_walk(v->skb, pos->off + sizeof(*th), olen, s);
	return 0;
}

/* This tap's TCP counters on this CPU (made on first use), or NULL. */
static __always_inline struct tf_tcp_tap *tcp_tap(__u32 ifindex)
{
	struct tf_tcp_tap *t = bpf_map_lookup_elem(&tcp_taps, &ifindex);

	if (!t) {
		bpf_map_update_elem(&tcp_taps, &ifindex, &tcp_tap_zero, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&tcp_taps, &ifindex);
	}
	return t;
}

/* log2 bucket of an RTT (include/tcp_state.h): fls of the microseconds. */
static __always_inline __u32 rtt_bucket(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 b = 0;

	if (us >> 32) { b += 32; us >>= 32; }
	if (us >> 16) { b += 16; us >>= 16; }
	if (us >> 8) { b += 8; us >>= 8; }
	if (us >> 4) { b += 4; us >>= 4; }
	if (us >> 2) { b += 2; us >>= 2; }
	if (us >> 1) { b += 1; us >>= 1; }
	b += us;	/* us is 0 or 1 now: fls */
	return b < TF_TCP_HIST_BUCKETS ? b : TF_TCP_HIST_BUCKETS - 1;
}

static __always_inline void rtt_minmax(__u64 *min, __u64 *max, __u64 ns)
{
	if (!*min || ns < *min)
		*min = ns;
	if (ns > *max)
		*max = ns;
}

static __always_inline void rtt_sample(struct tf_tcp_flow *st, __u32 side, __u64 ns, __u32 ifindex)
{
	struct tf_tcp_rtt *r;
	struct tf_tcp_tap *t;
	__u32 ep = tf_tcp_epoch;

	if (!st)
		return;
	r = &st->rtt[side & 1];
	__sync_fetch_and_add(&r->sum_ns, ns);
	__sync_fetch_and_add(&r->count, 1);
	rtt_minmax(&r->min_ns, &r->max_ns, ns);
	if (r->epoch != ep) {
		r->ep_min_ns = ns;
		r->ep_max_ns = ns;
		r->epoch = ep;
	} else {
		rtt_minmax(&r->ep_min_ns, &r->ep_max_ns, ns);
	}
	t = tcp_tap(ifindex);
	if (t) {
		t->rtt_hist[side & 1][rtt_bucket(ns)]++;
		t->rtt_sum_ns[side & 1] += ns;
	}
}

enum tf_tcp_event { TF_TCPE_RETRANS, TF_TCPE_ZERO_WIN, TF_TCPE_RESET, TF_TCPE_CONNECT_FAIL };

/* Count an event of direction d in the tap's counters. */
static __always_inline void tap_event(__u32 ifindex, __u32 ev, __u32 d)
{
	struct tf_tcp_tap *t = tcp_tap(ifindex);

	if (!t)
		return;
	d &= 1;
	switch (ev) {
	case TF_TCPE_RETRANS: t->retrans[d]++; break;
	case TF_TCPE_ZERO_WIN: t->zero_win[d]++; break;
	case TF_TCPE_RESET: t->resets[d]++; break;
	case TF_TCPE_CONNECT_FAIL: t->connect_failures[d]++; break;
	}
}

/* The connection attempt opened in direction d failed: counted once. */
static __always_inline void connect_failed(struct tf_tcp_flow *st, __u32 ifindex, __u32 d)
{
	if (st->flags & TF_TCPF_FAILED)
		return;
	__sync_fetch_and_or(&st->flags, TF_TCPF_FAILED);
	tap_event(ifindex, TF_TCPE_CONNECT_FAIL, d);
}

/* SYN, SYN-ACK and RST: the handshake, its time and its failures. */
static __always_inline void tcp_handshake(struct tf_tcp_flow *st, const struct tf_tcp_seg *s,
					  __u32 d, __u32 ifindex, __u64 *now)
{
	__u32 f = st->flags;

	if ((s->flags & (TF_TCP_SYN | TF_TCP_ACK)) == TF_TCP_SYN) {
		__sync_fetch_and_add(&st->dir[d].syns, 1);
		if (!(f & TF_TCPF_SYN)) {
			*now = bpf_ktime_get_ns();
			st->syn_ns = *now;
			st->syn_dir = d;
			__sync_fetch_and_or(&st->flags, TF_TCPF_SYN);
		} else if (st->syn_dir == d && !(f & TF_TCPF_ANSWERED)) {
			/* Sent again: unanswered for the initial RTO. */
			connect_failed(st, ifindex, d);
		}
	} else if ((s->flags & (TF_TCP_SYN | TF_TCP_ACK)) == (TF_TCP_SYN | TF_TCP_ACK)) {
		if ((f & (TF_TCPF_SYN | TF_TCPF_ANSWERED)) == TF_TCPF_SYN && st->syn_dir != d) {
			if (!*now)
				*now = bpf_ktime_get_ns();
			st->handshake_ns = *now - st->syn_ns;
			__sync_fetch_and_or(&st->flags, TF_TCPF_ANSWERED);
		}
	}
	if (s->flags & TF_TCP_RST) {
		__sync_fetch_and_add(&st->dir[d].resets, 1);
		tap_event(ifindex, TF_TCPE_RESET, d);
		if ((f & (TF_TCPF_SYN | TF_TCPF_ANSWERED | TF_TCPF_REFUSED)) == TF_TCPF_SYN &&
		    st->syn_dir != d) {
			__sync_fetch_and_or(&st->flags, TF_TCPF_REFUSED);
			connect_failed(st, ifindex, st->syn_dir);
		}
	}
}

/*
 * The segment's place in its direction's sequence space: a retransmission
 * (or a segment reordered before the tap) starts below the highest end
 * seen. Returns true for those; a timed segment they overlap is not timed
 * any more (Karn: its ACK could be the copy's).
 */
static __always_inline bool tcp_sequence(struct tf_tcp_dir *D, const struct tf_tcp_dir *R,
					 const struct tf_tcp_seg *s, __u32 seglen)
{
	__u32 end = s->seq + seglen, cur;
	bool again = false;

	if (!seglen)
		return false;
	if (!(D->flags & TF_TCPD_NXT)) {
		D->nxt = end;
		__sync_fetch_and_or(&D->flags, TF_TCPD_NXT);
		return false;
	}
	/* A zero-window probe: not new data yet (tcp_state.h, retrans). */
	if (s->len == 1 && s->seq == D->nxt && (R->flags & TF_TCPD_WIN0))
		return false;
	if (seq_before(s->seq, D->nxt)) {
		/* A keep-alive: at most one byte just below what was sent. */
		again = !(s->len <= 1 && !(s->flags & (TF_TCP_SYN | TF_TCP_FIN)) &&
			  s->seq == D->nxt - 1);
		if (again && D->seq_ns && seq_before(s->seq, D->seq_end))
			D->seq_ns = 0;
	}
	/*
	 * Only ever forward: two CPUs can carry one direction's segments at
	 * once (the sender's process and its ACK processing), and a plain
	 * store of the smaller end after the larger would make the next
	 * retransmission of what lies between look new.
	 */
	cur = D->nxt;
	for (int i = 0; i < 4 && seq_before(cur, end); i++) {
		__u32 was = __sync_val_compare_and_swap(&D->nxt, cur, end);

		if (was == cur)
			break;
		cur = was;
	}
	return again;
}

/*
 * Time a segment of direction D (seglen > 0, not sent again), if none is
 * being timed: by its end sequence, and also by its TSval if it is the
 * first segment that carries it (later ones in the same clock tick would
 * be matched to an ACK of an earlier one). The first TSval of a direction
 * has nothing to be newer than: TSvals start at a random offset, and half
 * of them would not be after the 0 that ts_last holds until then.
 */
static __always_inline void tcp_time(struct tf_tcp_dir *D, const struct tf_tcp_seg *s,
				     __u32 seglen, __u64 *now)
{
	if (D->ts_ns || D->seq_ns)
		return;
	if (!*now)
		*now = bpf_ktime_get_ns();
	D->seq_end = s->seq + seglen;
	D->seq_ns = *now;
	if (s->has_ts && (!(D->flags & TF_TCPD_TS) || seq_before(D->ts_last, s->tsval))) {
		D->ts_val = s->tsval;
		D->ts_ns = *now;
	}
}

/*
 * The segment as an answer to the other direction R: the echo of its timed
 * segment's TSval, or else the first ACK that covers that segment,
 * completes a sample of side `side`. Both: a receiver echoes the TSval of
 * the first segment since its last ACK, so a segment timed in the middle
 * of a burst is never echoed, and those are the ones whose ACK waits
 * longest; the echo alone would leave them out and read low. The echo
 * still times a segment whose copy was sent again (its ACK could be the
 * copy's, its echo not).
 */
static __always_inline void tcp_match(struct tf_tcp_flow *st, struct tf_tcp_dir *R,
				      const struct tf_tcp_seg *s, __u32 side, __u32 ifindex,
				      __u64 *now)
{
	__u64 t0 = 0;

	if (R->ts_ns) {
		if (!s->has_ts)
			R->ts_ns = 0;	/* this end does not echo: nothing to match */
		else if (s->tsecr == R->ts_val)
			t0 = R->ts_ns;
		else if (seq_before(R->ts_val, s->tsecr))
			R->ts_ns = 0;	/* a later TSval was echoed: this one never will be */
	}
	if (!t0 && R->seq_ns && (s->flags & TF_TCP_ACK) && !seq_before(s->ack, R->seq_end))
		t0 = R->seq_ns;
	if (!t0)
		return;
	if (!*now)
		*now = bpf_ktime_get_ns();
	rtt_sample(st, side, *now - t0, ifindex);
	R->ts_ns = 0;
	R->seq_ns = 0;
}

/* The flow's TCP state, made on its first segment; NULL if tcp_flows is full. */
static __always_inline struct tf_tcp_flow *tcp_state(const struct tf_flow_key *key)
{
	struct tf_tcp_flow *st = bpf_map_lookup_elem(&tcp_flows, key);

	if (!st) {
		bpf_map_update_elem(&tcp_flows, key, &tcp_flow_zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&tcp_flows, key);
	}
	return st;
}

/*
 * A TCP segment of flow key, sent by the VM if tx, whose header starts at
 * pos->off. A function of its own: account_flow's frame has no room for
 * the header and options. Global (not static): the verifier checks it once,
 * on its own, not again along every path of its callers, which makes the
 * load of the programs much slower; so its arguments are checked here as if
 * anything could come in. 0, or -1 if the flow has no
 * state and could get none (the caller counts it: a subprogram's result
 * must be used, or the compiler may leave anything in its return register).
 */
__noinline int tcp_analyse(struct __sk_buff *skb, const struct tf_flow_key *key, __u32 tx,
				   const struct tf_l4pos *pos)
{
	struct tf_tcp_seg s = {};
	struct tf_tcp_flow *st;
	struct tf_tcp_dir *D;
	struct tf_skb_view v;
	struct hdr_cursor c;
	__u32 d = tx & 1, seglen;
	__u64 now = 0;

	if (!skb || !key || !pos)
		return 0;
	skb_view(&v, skb);
	if (tcp_seg_parse(&v, pos, true, &s, &c)) {
		if (!c.need_copy || tcp_seg_parse(&v, pos, false, &s, &c))
			return 0;	/* the flow path parsed it: cannot be cut here */
	}
	st = tcp_state(key);
	if (!st)
		return -1;
	D = &st->dir[d];
	if (s.flags & (TF_TCP_SYN | TF_TCP_RST))
		tcp_handshake(st, &s, d, key->ifindex, &now);
	if (s.win == 0 && !(s.flags & (TF_TCP_SYN | TF_TCP_FIN | TF_TCP_RST))) {
		__sync_fetch_and_add(&D->zero_win, 1);
		tap_event(key->ifindex, TF_TCPE_ZERO_WIN, d);
		if (!(D->flags & TF_TCPD_WIN0))
			__sync_fetch_and_or(&D->flags, TF_TCPD_WIN0);
	} else if (s.win && (D->flags & TF_TCPD_WIN0)) {
		__sync_fetch_and_and(&D->flags, ~TF_TCPD_WIN0);
	}
	seglen = s.len + !!(s.flags & TF_TCP_SYN) + !!(s.flags & TF_TCP_FIN);
	if (tcp_sequence(D, &st->dir[d ^ 1], &s, seglen)) {
		__sync_fetch_and_add(&D->retrans, 1);
		tap_event(key->ifindex, TF_TCPE_RETRANS, d);
	} else if (seglen) {
		tcp_time(D, &s, seglen, &now);
	}
	if (s.has_ts) {
		if (seq_before(D->ts_last, s.tsval) || !(D->flags & TF_TCPD_TS))
			D->ts_last = s.tsval;
		if (!(D->flags & TF_TCPD_TS))
			__sync_fetch_and_or(&D->flags, TF_TCPD_TS);
	}
	/* Data the VM sent, acked from outside: outside; the reverse: inside. */
	tcp_match(st, &st->dir[d ^ 1], &s, d ? TF_TCP_INSIDE : TF_TCP_OUTSIDE, key->ifindex, &now);
	return 0;
}

#endif /* TAPFLOW_TCP_ANALYSIS_H */
