// SPDX-License-Identifier: GPL-2.0
/* TCP health: the kernel's per-flow and per-tap TCP state, read every poll. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "collector.h"
#include "tcp_health.h"

#define TCP_BUCKETS_MIN 1024
/* Polls a state may outlive its flow's place in the flow table (evicted, not yet read). */
#define TCP_ORPHAN_POLLS 3

int tf_tcp_init(struct tf_tcp_health *h, int flows_fd, int taps_fd, uint32_t *epoch, int ncpus)
{
	memset(h, 0, sizeof(*h));
	h->flows_fd = flows_fd;
	h->taps_fd = taps_fd;
	h->epoch = epoch;
	h->ncpus = ncpus > 0 ? ncpus : 1;
	h->nbuckets = TCP_BUCKETS_MIN;
	h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
	h->percpu = calloc((size_t)h->ncpus, sizeof(*h->percpu));
	if (!h->buckets || !h->percpu) {
		tf_tcp_free(h);
		return -ENOMEM;
	}
	return 0;
}

void tf_tcp_free(struct tf_tcp_health *h)
{
	for (size_t i = 0; h->buckets && i < h->nbuckets; i++) {
		struct tf_tcp_entry *e = h->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			free(e);
		}
	}
	free(h->buckets);
	free(h->taps);
	free(h->percpu);
	memset(h, 0, sizeof(*h));
	h->flows_fd = h->taps_fd = -1;
}

static size_t slot_of(const struct tf_tcp_health *h, const struct tf_flow_key *k)
{
	return tf_flow_key_hash(k) & (h->nbuckets - 1);
}

const struct tf_tcp_entry *tf_tcp_find(const struct tf_tcp_health *h, const struct tf_flow_key *k)
{
	if (!h || !h->buckets)
		return NULL;
	for (struct tf_tcp_entry *e = h->buckets[slot_of(h, k)]; e; e = e->hnext)
		if (!memcmp(&e->key, k, sizeof(*k)))
			return e;
	return NULL;
}

/* Twice the buckets when the table is as full as it has buckets. */
static void grow(struct tf_tcp_health *h)
{
	size_t n = h->nbuckets * 2;
	struct tf_tcp_entry **b;

	if (h->n < h->nbuckets)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;	/* longer chains, nothing lost */
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct tf_tcp_entry *e = h->buckets[i], *next;

		for (; e; e = next) {
			size_t s = tf_flow_key_hash(&e->key) & (n - 1);

			next = e->hnext;
			e->hnext = b[s];
			b[s] = e;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = n;
}

static struct tf_tcp_entry *get(struct tf_tcp_health *h, const struct tf_flow_key *k)
{
	struct tf_tcp_entry *e = (struct tf_tcp_entry *)tf_tcp_find(h, k);
	size_t s;

	if (e)
		return e;
	grow(h);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = *k;
	s = slot_of(h, k);
	e->hnext = h->buckets[s];
	h->buckets[s] = e;
	h->n++;
	return e;
}

static void rtt_add(struct tf_tcp_rtt *d, const struct tf_tcp_rtt *s)
{
	d->sum_ns += s->sum_ns;
	d->count += s->count;
	if (s->min_ns && (!d->min_ns || s->min_ns < d->min_ns))
		d->min_ns = s->min_ns;
	if (s->max_ns > d->max_ns)
		d->max_ns = s->max_ns;
}

void tf_tcp_flow_add(struct tf_tcp_flow *dst, const struct tf_tcp_flow *src)
{
	for (int d = 0; d < 2; d++) {
		dst->dir[d].retrans += src->dir[d].retrans;
		dst->dir[d].zero_win += src->dir[d].zero_win;
		dst->dir[d].resets += src->dir[d].resets;
		dst->dir[d].syns += src->dir[d].syns;
	}
	for (int s = 0; s < TF_TCP_SIDES; s++)
		rtt_add(&dst->rtt[s], &src->rtt[s]);
	/*
	 * The handshake is the first life's: a flow opens once. If its SYN
	 * was still unanswered when that life ended (the SYN's backoff can
	 * outlast the idle timeout) and a later life's SYN-ACK answered it,
	 * the handshake ran from the first SYN to that SYN-ACK, as it does
	 * within one life (the same clock: ns since boot).
	 */
	if (!(dst->flags & TF_TCPF_SYN) && (src->flags & TF_TCPF_SYN)) {
		dst->syn_ns = src->syn_ns;
		dst->syn_dir = src->syn_dir;
		dst->handshake_ns = src->handshake_ns;
	} else if ((dst->flags & (TF_TCPF_SYN | TF_TCPF_ANSWERED)) == TF_TCPF_SYN &&
		   (src->flags & TF_TCPF_ANSWERED) &&
		   src->syn_ns + src->handshake_ns > dst->syn_ns) {
		dst->handshake_ns = src->syn_ns + src->handshake_ns - dst->syn_ns;
	}
	dst->flags |= src->flags;
}

/* The interval's RTT figures of e, from the state just read (epoch: the one just closed). */
static void interval_of(struct tf_tcp_entry *e, uint32_t epoch)
{
	for (int s = 0; s < TF_TCP_SIDES; s++) {
		const struct tf_tcp_rtt *r = &e->cur.rtt[s];
		uint64_t sum = e->base.rtt[s].sum_ns + r->sum_ns;
		uint64_t count = e->base.rtt[s].count + r->count;

		e->ival_count[s] = count - e->prev_count[s];
		e->ival_sum_ns[s] = sum - e->prev_sum_ns[s];
		e->prev_count[s] = count;
		e->prev_sum_ns[s] = sum;
		/*
		 * Samples of the closed epoch, or of the new one if a sample
		 * came between the epoch's change and this read (it started
		 * the new epoch's min and max over).
		 */
		if (e->ival_count[s] && (r->epoch == epoch || r->epoch == epoch + 1)) {
			e->ival_min_ns[s] = r->ep_min_ns;
			e->ival_max_ns[s] = r->ep_max_ns;
		} else {
			e->ival_min_ns[s] = e->ival_max_ns[s] = 0;
		}
	}
}

/* Read tcp_flows: every state into the table (gen marks those read). */
static int read_flows(struct tf_tcp_health *h, uint32_t epoch)
{
	struct tf_flow_key key, next;
	struct tf_tcp_flow v;
	const void *prev = NULL;
	int err;

	/*
	 * One key at a time: states are made by the flows' first segments
	 * and this map is as large as the flow map only on busy hosts.
	 */
	while (!(err = bpf_map_get_next_key(h->flows_fd, prev, &next))) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(h->flows_fd, &key, &v))
			continue;	/* deleted since: by this module only, so never */
		struct tf_tcp_entry *e = get(h, &key);

		if (!e)
			return -ENOMEM;
		e->cur = v;
		e->gen = h->gen;
		e->in_kernel = true;
		interval_of(e, epoch);
	}
	return err == -ENOENT ? 0 : err;
}

/* Ended flows: their kernel state goes, what it counted stays in base. */
static void expire(struct tf_tcp_health *h, const struct tf_flows *fl)
{
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct tf_tcp_entry **pp = &h->buckets[i], *e;

		while ((e = *pp)) {
			const struct tf_flow *f = tf_flows_find(fl, &e->key);
			bool ended = f && f->expired;
			bool orphan = !f && ++e->orphan_polls >= TCP_ORPHAN_POLLS;

			if (f)
				e->orphan_polls = 0;
			if (e->in_kernel && e->gen != h->gen) {
				/* Gone without us: nothing to keep but what was read. */
				e->in_kernel = false;
			}
			if ((ended || orphan) && e->in_kernel) {
				bpf_map_delete_elem(h->flows_fd, &e->key);
				tf_tcp_flow_add(&e->base, &e->cur);
				memset(&e->cur, 0, sizeof(e->cur));
				e->in_kernel = false;
			}
			if (orphan && !e->in_kernel) {
				/* The flow left the table (evicted): its rows are gone. */
				*pp = e->hnext;
				free(e);
				h->n--;
				continue;
			}
			pp = &e->hnext;
		}
	}
}

static struct tf_tcp_tap_total *tap_slot(struct tf_tcp_health *h, uint32_t ifindex)
{
	for (size_t i = 0; i < h->n_taps; i++)
		if (h->taps[i].ifindex == ifindex)
			return &h->taps[i];
	if (h->n_taps == h->cap_taps) {
		size_t cap = h->cap_taps ? h->cap_taps * 2 : 16;
		struct tf_tcp_tap_total *t = realloc(h->taps, cap * sizeof(*t));

		if (!t)
			return NULL;
		h->taps = t;
		h->cap_taps = cap;
	}
	memset(&h->taps[h->n_taps], 0, sizeof(h->taps[0]));
	h->taps[h->n_taps].t_s = h->taps[h->n_taps].prev_s = tf_now_mono();
	h->taps[h->n_taps].ifindex = ifindex;
	return &h->taps[h->n_taps++];
}

/* The taps' per-CPU counters, summed. The kernel never deletes them. */
static int read_taps(struct tf_tcp_health *h)
{
	uint32_t key, next;
	const void *prev = NULL;
	int err;

	while (!(err = bpf_map_get_next_key(h->taps_fd, prev, &next))) {
		struct tf_tcp_tap_total *tt;
		struct tf_tcp_tap *sum;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(h->taps_fd, &key, h->percpu))
			continue;
		tt = tap_slot(h, key);
		if (!tt)
			return -ENOMEM;
		tt->prev = tt->t;
		tt->prev_s = tt->t_s;
		tt->t_s = tf_now_mono();
		sum = &tt->t;
		memset(sum, 0, sizeof(*sum));
		for (int c = 0; c < h->ncpus; c++) {
			const uint64_t *src = (const uint64_t *)&h->percpu[c];
			uint64_t *dst = (uint64_t *)sum;

			/* Every field is a __u64 counter: add them as an array. */
			for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++)
				dst[i] += src[i];
		}
	}
	return err == -ENOENT ? 0 : err;
}

int tf_tcp_poll(struct tf_tcp_health *h, const struct tf_flows *fl)
{
	uint32_t epoch;
	int err, err2;

	if (!h || h->flows_fd < 0)
		return 0;
	/* The interval's samples are those of the epoch closed here. */
	epoch = *h->epoch;
	*h->epoch = epoch + 1;
	h->gen++;
	err = read_flows(h, epoch);
	if (!err)
		expire(h, fl);
	err2 = read_taps(h);
	if (err || err2)
		h->read_errors++;
	return err ? err : err2;
}

const struct tf_tcp_tap *tf_tcp_tap_of(const struct tf_tcp_health *h, uint32_t ifindex)
{
	for (size_t i = 0; h && i < h->n_taps; i++)
		if (h->taps[i].ifindex == ifindex)
			return &h->taps[i].t;
	return NULL;
}

uint64_t tf_tcp_tap_samples(const struct tf_tcp_tap *t, int side)
{
	uint64_t n = 0;

	for (int b = 0; b < TF_TCP_HIST_BUCKETS; b++)
		n += t->rtt_hist[side][b];
	return n;
}

bool tf_tcp_tap_interval(const struct tf_tcp_health *h, uint32_t ifindex,
			 struct tf_tcp_tap_interval *out)
{
	const struct tf_tcp_tap_total *tt = NULL;
	double dt;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; h && i < h->n_taps && !tt; i++)
		if (h->taps[i].ifindex == ifindex)
			tt = &h->taps[i];
	if (!tt)
		return false;
	for (int s = 0; s < TF_TCP_SIDES; s++) {
		uint64_t n = tf_tcp_tap_samples(&tt->t, s) - tf_tcp_tap_samples(&tt->prev, s);

		out->samples[s] = n;
		if (n)
			out->rtt_ms[s] = (double)(tt->t.rtt_sum_ns[s] - tt->prev.rtt_sum_ns[s]) /
					 (double)n / 1e6;
	}
	dt = tt->t_s - tt->prev_s;
	if (dt > 0)
		out->retrans_per_s = (double)(tt->t.retrans[0] + tt->t.retrans[1] -
					      tt->prev.retrans[0] - tt->prev.retrans[1]) / dt;
	return true;
}

/* ---- figures ---------------------------------------------------------------- */

static void rtt_fig(struct tf_tcp_rtt_fig *f, uint64_t count, uint64_t sum, uint64_t min,
		    uint64_t max)
{
	f->samples = count;
	if (!count) {
		f->min_ms = f->avg_ms = f->max_ms = 0;
		return;
	}
	f->avg_ms = (double)sum / (double)count / 1e6;
	f->min_ms = (double)min / 1e6;
	f->max_ms = (double)max / 1e6;
}

void tf_tcp_flow_figures(const struct tf_tcp_entry *e, bool whole_run, bool ended,
			 struct tf_tcp_figures *out)
{
	struct tf_tcp_flow t = e->base;
	uint64_t syns;

	memset(out, 0, sizeof(*out));
	tf_tcp_flow_add(&t, &e->cur);
	for (int s = 0; s < TF_TCP_SIDES; s++) {
		if (whole_run)
			rtt_fig(&out->rtt[s], t.rtt[s].count, t.rtt[s].sum_ns, t.rtt[s].min_ns,
				t.rtt[s].max_ns);
		else
			rtt_fig(&out->rtt[s], e->ival_count[s], e->ival_sum_ns[s],
				e->ival_min_ns[s], e->ival_max_ns[s]);
	}
	out->handshake_ms = (t.flags & TF_TCPF_ANSWERED) ? (double)t.handshake_ns / 1e6 : -1;
	for (int d = 0; d < 2; d++) {
		out->retrans[d] = t.dir[d].retrans;
		out->zero_win[d] = t.dir[d].zero_win;
		out->resets += t.dir[d].resets;
	}
	/*
	 * Every SYN but the one a SYN-ACK answered; the last one still waiting
	 * is not counted until the attempt is over (refused, or the flow or
	 * the run ended), so that the count only ever grows.
	 */
	syns = t.dir[0].syns + t.dir[1].syns;
	if (syns && ((t.flags & TF_TCPF_ANSWERED) || (!(t.flags & TF_TCPF_REFUSED) && !ended)))
		syns--;
	out->syn_unanswered = syns;
}

void tf_tcp_rtt_cell(uint64_t samples, double avg_ms, char *out, size_t len)
{
	if (!samples)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.*f ms", avg_ms < 10 ? 2 : 1, avg_ms);
}

double tf_tcp_bucket_le(unsigned int b)
{
	if (b >= TF_TCP_HIST_BUCKETS - 1)
		return INFINITY;
	return ldexp(1.0, (int)b) / 1e6;
}
