// SPDX-License-Identifier: GPL-2.0
/*
 * TCP health's pure parts (src/tcp_health.c): a flow's figures from its
 * states (SYNs unanswered while the attempt is pending, answered, refused
 * or over; RTTs of the interval or the run; the VM's view, mirrored by
 * nobody here), two kernel states of one flow added up, and the
 * histogram's bucket bounds against the kernel's bucketing.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tcp_health.h"

#define MS 1000000ULL

static struct tf_tcp_figures figures(const struct tf_tcp_entry *e, bool whole_run, bool ended)
{
	struct tf_tcp_figures out;

	memset(&out, 0x5a, sizeof(out));	/* every field must be written */
	tf_tcp_flow_figures(e, whole_run, ended, &out);
	return out;
}

/* An entry whose current state opened with syns SYNs from the VM, flags as given. */
static struct tf_tcp_entry syn_entry(uint64_t syns, uint32_t flags)
{
	struct tf_tcp_entry e;

	memset(&e, 0, sizeof(e));
	e.cur.dir[1].syns = syns;
	e.cur.flags = flags;
	e.cur.syn_dir = 1;
	e.cur.syn_ns = 1000 * MS;
	return e;
}

/* ---- SYNs unanswered ------------------------------------------------- */

/* Answered: every SYN but the one answered, whether the flow lives or not. */
static void test_syn_answered(void **state)
{
	struct tf_tcp_entry e = syn_entry(1, TF_TCPF_SYN | TF_TCPF_ANSWERED);

	(void)state;
	e.cur.handshake_ns = 2500000;
	assert_int_equal(figures(&e, false, false).syn_unanswered, 0);
	assert_int_equal(figures(&e, true, true).syn_unanswered, 0);
	assert_true(fabs(figures(&e, false, false).handshake_ms - 2.5) < 1e-9);
	/* Sent three times, the third answered. */
	e = syn_entry(3, TF_TCPF_SYN | TF_TCPF_FAILED | TF_TCPF_ANSWERED);
	e.cur.handshake_ns = 3000 * MS;
	assert_int_equal(figures(&e, false, false).syn_unanswered, 2);
	assert_int_equal(figures(&e, false, true).syn_unanswered, 2);
	assert_true(fabs(figures(&e, true, true).handshake_ms - 3000.0) < 1e-9);
}

/* Refused: no SYN was answered, whether the flow lives or not. */
static void test_syn_refused(void **state)
{
	struct tf_tcp_entry e = syn_entry(1, TF_TCPF_SYN | TF_TCPF_REFUSED | TF_TCPF_FAILED);

	(void)state;
	assert_int_equal(figures(&e, false, false).syn_unanswered, 1);
	assert_int_equal(figures(&e, false, true).syn_unanswered, 1);
	assert_true(figures(&e, false, false).handshake_ms < 0);
	e = syn_entry(2, TF_TCPF_SYN | TF_TCPF_REFUSED | TF_TCPF_FAILED);
	assert_int_equal(figures(&e, false, false).syn_unanswered, 2);
	assert_int_equal(figures(&e, true, true).syn_unanswered, 2);
}

/*
 * Pending: the last SYN may still be answered while the flow lives, so it
 * counts only once the flow (or the run) ended; the count never drops.
 */
static void test_syn_pending(void **state)
{
	struct tf_tcp_entry e = syn_entry(1, TF_TCPF_SYN);

	(void)state;
	assert_int_equal(figures(&e, false, false).syn_unanswered, 0);
	assert_int_equal(figures(&e, false, true).syn_unanswered, 1);
	assert_int_equal(figures(&e, true, true).syn_unanswered, 1);
	assert_true(figures(&e, false, true).handshake_ms < 0);
	e = syn_entry(3, TF_TCPF_SYN | TF_TCPF_FAILED);
	assert_int_equal(figures(&e, false, false).syn_unanswered, 2);
	assert_int_equal(figures(&e, false, true).syn_unanswered, 3);
	/* A flow seen mid-connection: no SYN, nothing unanswered, no underflow. */
	e = syn_entry(0, 0);
	assert_int_equal(figures(&e, false, false).syn_unanswered, 0);
	assert_int_equal(figures(&e, false, true).syn_unanswered, 0);
	assert_true(figures(&e, false, true).handshake_ms < 0);
	/* SYNs to the VM count the same. */
	e = syn_entry(0, TF_TCPF_SYN);
	e.cur.syn_dir = 0;
	e.cur.dir[0].syns = 2;
	assert_int_equal(figures(&e, false, false).syn_unanswered, 1);
	assert_int_equal(figures(&e, false, true).syn_unanswered, 2);
}

/* ---- counters and RTTs ------------------------------------------------ */

/*
 * The figures are the VM's view, [0] rx and [1] tx as the kernel counts
 * them (a report mirrors them, not this); resets both ways together; base
 * (earlier lives) and cur added.
 */
static void test_counters_not_mirrored(void **state)
{
	struct tf_tcp_entry e;
	struct tf_tcp_figures f;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.cur.dir[0].retrans = 3;
	e.cur.dir[1].retrans = 5;
	e.cur.dir[0].zero_win = 7;
	e.cur.dir[1].zero_win = 11;
	e.cur.dir[0].resets = 1;
	e.cur.dir[1].resets = 2;
	e.base.dir[0].retrans = 100;
	e.base.dir[1].zero_win = 1000;
	e.base.dir[1].resets = 4;
	f = figures(&e, false, false);
	assert_int_equal(f.retrans[0], 103);
	assert_int_equal(f.retrans[1], 5);
	assert_int_equal(f.zero_win[0], 7);
	assert_int_equal(f.zero_win[1], 1011);
	assert_int_equal(f.resets, 7);
	assert_int_equal(f.syn_unanswered, 0);
	assert_true(f.handshake_ms < 0);
	assert_int_equal(f.rtt[TF_TCP_OUTSIDE].samples, 0);
	assert_int_equal(f.rtt[TF_TCP_INSIDE].samples, 0);
}

static void set_rtt(struct tf_tcp_rtt *r, uint64_t count, uint64_t sum, uint64_t min,
		    uint64_t max)
{
	r->count = count;
	r->sum_ns = sum;
	r->min_ns = min;
	r->max_ns = max;
}

static void assert_rtt(const struct tf_tcp_rtt_fig *f, uint64_t samples, double min_ms,
		       double avg_ms, double max_ms)
{
	assert_int_equal(f->samples, samples);
	assert_true(fabs(f->min_ms - min_ms) < 1e-9);
	assert_true(fabs(f->avg_ms - avg_ms) < 1e-9);
	assert_true(fabs(f->max_ms - max_ms) < 1e-9);
}

/* RTTs of the run: base + cur; of the interval: what the last poll measured. */
static void test_rtt_figures(void **state)
{
	struct tf_tcp_entry e;
	struct tf_tcp_figures f;

	(void)state;
	memset(&e, 0, sizeof(e));
	set_rtt(&e.base.rtt[TF_TCP_OUTSIDE], 2, 3 * MS, 1 * MS, 2 * MS);
	set_rtt(&e.cur.rtt[TF_TCP_OUTSIDE], 1, 4 * MS, 4 * MS, 4 * MS);
	set_rtt(&e.cur.rtt[TF_TCP_INSIDE], 4, 2 * MS, MS / 4, MS);
	e.ival_count[TF_TCP_OUTSIDE] = 1;
	e.ival_sum_ns[TF_TCP_OUTSIDE] = 4 * MS;
	e.ival_min_ns[TF_TCP_OUTSIDE] = 4 * MS;
	e.ival_max_ns[TF_TCP_OUTSIDE] = 4 * MS;

	f = figures(&e, true, true);
	assert_rtt(&f.rtt[TF_TCP_OUTSIDE], 3, 1.0, 7.0 / 3, 4.0);
	assert_rtt(&f.rtt[TF_TCP_INSIDE], 4, 0.25, 0.5, 1.0);
	f = figures(&e, false, false);
	assert_rtt(&f.rtt[TF_TCP_OUTSIDE], 1, 4.0, 4.0, 4.0);
	assert_rtt(&f.rtt[TF_TCP_INSIDE], 0, 0, 0, 0);	/* none in the interval */
}

/* ---- two kernel states of one flow ------------------------------------ */

static void test_flow_add_counters(void **state)
{
	struct tf_tcp_flow d, s;

	(void)state;
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 2; i++) {
		d.dir[i].retrans = 1 + i;
		d.dir[i].zero_win = 10 + i;
		d.dir[i].resets = 20 + i;
		d.dir[i].syns = 30 + i;
		s.dir[i].retrans = 100;
		s.dir[i].zero_win = 200;
		s.dir[i].resets = 300;
		s.dir[i].syns = 400;
	}
	/* The kernel's per-direction timing state is no total: not added. */
	s.dir[1].nxt = 12345;
	s.dir[1].ts_ns = 99;
	tf_tcp_flow_add(&d, &s);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(d.dir[i].retrans, 101 + i);
		assert_int_equal(d.dir[i].zero_win, 210 + i);
		assert_int_equal(d.dir[i].resets, 320 + i);
		assert_int_equal(d.dir[i].syns, 430 + i);
	}
	assert_int_equal(d.dir[1].nxt, 0);
	assert_int_equal(d.dir[1].ts_ns, 0);
}

/* RTT totals add; min ignores a side without samples (min 0). */
static void test_flow_add_rtt(void **state)
{
	struct tf_tcp_flow d, s;

	(void)state;
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	set_rtt(&s.rtt[TF_TCP_OUTSIDE], 2, 10, 4, 6);
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].count, 2);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].sum_ns, 10);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].min_ns, 4);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].max_ns, 6);
	assert_int_equal(d.rtt[TF_TCP_INSIDE].count, 0);
	assert_int_equal(d.rtt[TF_TCP_INSIDE].min_ns, 0);
	/* No samples in src: min stays. */
	memset(&s, 0, sizeof(s));
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].min_ns, 4);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].count, 2);
	/* A lower min and a higher max. */
	set_rtt(&s.rtt[TF_TCP_OUTSIDE], 3, 30, 2, 20);
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].count, 5);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].sum_ns, 40);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].min_ns, 2);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].max_ns, 20);
	/* A higher min and a lower max change nothing. */
	set_rtt(&s.rtt[TF_TCP_OUTSIDE], 1, 5, 5, 5);
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].min_ns, 2);
	assert_int_equal(d.rtt[TF_TCP_OUTSIDE].max_ns, 20);
}

/* The handshake is the first life's that saw a SYN; the flags add up. */
static void test_flow_add_handshake(void **state)
{
	struct tf_tcp_flow d, s;

	(void)state;
	/* The first life saw none: the second's. */
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	s.flags = TF_TCPF_SYN | TF_TCPF_ANSWERED;
	s.syn_ns = 5000;
	s.syn_dir = 1;
	s.handshake_ns = 700;
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.flags, TF_TCPF_SYN | TF_TCPF_ANSWERED);
	assert_int_equal(d.syn_ns, 5000);
	assert_int_equal(d.syn_dir, 1);
	assert_int_equal(d.handshake_ns, 700);
	/* Answered in the first life: a later SYN changes nothing but the flags. */
	memset(&s, 0, sizeof(s));
	s.flags = TF_TCPF_SYN | TF_TCPF_FAILED;
	s.syn_ns = 90000;
	s.syn_dir = 0;
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.flags, TF_TCPF_SYN | TF_TCPF_ANSWERED | TF_TCPF_FAILED);
	assert_int_equal(d.syn_ns, 5000);
	assert_int_equal(d.syn_dir, 1);
	assert_int_equal(d.handshake_ns, 700);
	/* A later life without a SYN: nothing. */
	memset(&s, 0, sizeof(s));
	tf_tcp_flow_add(&d, &s);
	assert_int_equal(d.syn_ns, 5000);
	assert_int_equal(d.handshake_ns, 700);
}

/*
 * The first life's SYN went unanswered until the flow expired (the SYN's
 * backoff outlasts the idle timeout); sent again in the second life and
 * answered. The handshake is answered, and as within one life it runs
 * from the first SYN to the SYN-ACK.
 */
static void test_flow_add_answered_later(void **state)
{
	struct tf_tcp_entry e;
	struct tf_tcp_figures f;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.base.flags = TF_TCPF_SYN | TF_TCPF_FAILED;
	e.base.syn_dir = 1;
	e.base.syn_ns = 1000 * MS;
	e.base.dir[1].syns = 6;
	e.cur.flags = TF_TCPF_SYN | TF_TCPF_ANSWERED;
	e.cur.syn_dir = 1;
	e.cur.syn_ns = 64000 * MS;
	e.cur.handshake_ns = 20 * MS;
	e.cur.dir[1].syns = 1;
	f = figures(&e, true, true);
	assert_true(fabs(f.handshake_ms - 63020.0) < 1e-6);
	assert_int_equal(f.syn_unanswered, 6);

	tf_tcp_flow_add(&e.base, &e.cur);
	assert_int_equal(e.base.flags, TF_TCPF_SYN | TF_TCPF_FAILED | TF_TCPF_ANSWERED);
	assert_int_equal(e.base.syn_ns, 1000 * MS);
	assert_int_equal(e.base.handshake_ns, 63020 * MS);
	/* A third life answered again changes nothing. */
	memset(&e.cur, 0, sizeof(e.cur));
	e.cur.flags = TF_TCPF_SYN | TF_TCPF_ANSWERED;
	e.cur.syn_ns = 200000 * MS;
	e.cur.handshake_ns = 1 * MS;
	tf_tcp_flow_add(&e.base, &e.cur);
	assert_int_equal(e.base.handshake_ns, 63020 * MS);
}

/* ---- histogram bounds -------------------------------------------------- */

/* The kernel's bucket of an RTT (bpf/tcp_analysis.h rtt_bucket()): fls of the us. */
static unsigned int kernel_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned int b = 0;

	for (; us; us >>= 1)
		b++;
	return b < TF_TCP_HIST_BUCKETS ? b : TF_TCP_HIST_BUCKETS - 1;
}

static void test_bucket_le(void **state)
{
	static const uint64_t samples[] = {
		0, 1, 999, 1000, 1999, 2000, 3999, 4000, 1000000, 1048575, 1048576 * 1000,
		4194303999ULL, 4194304000ULL, 60000000000ULL, UINT64_MAX,
	};

	(void)state;
	assert_true(fabs(tf_tcp_bucket_le(0) - 1e-6) < 1e-15);
	assert_true(fabs(tf_tcp_bucket_le(1) - 2e-6) < 1e-15);
	assert_true(fabs(tf_tcp_bucket_le(10) - 1.024e-3) < 1e-15);
	assert_true(fabs(tf_tcp_bucket_le(TF_TCP_HIST_BUCKETS - 2) - 4.194304) < 1e-12);
	assert_true(isinf(tf_tcp_bucket_le(TF_TCP_HIST_BUCKETS - 1)));
	assert_true(isinf(tf_tcp_bucket_le(1000)));
	/*
	 * Every RTT lies below its bucket's bound and at or above the one
	 * before: the bounds are the kernel's buckets' upper ends (whole
	 * microseconds: the kernel drops the rest).
	 */
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		unsigned int b = kernel_bucket(samples[i]);
		double us = (double)(samples[i] / 1000);

		assert_true(us * 1e-6 < tf_tcp_bucket_le(b));
		if (b > 0)
			assert_true(us * 1e-6 >= tf_tcp_bucket_le(b - 1));
	}
	for (unsigned int b = 1; b < TF_TCP_HIST_BUCKETS; b++)
		assert_true(tf_tcp_bucket_le(b) > tf_tcp_bucket_le(b - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_answered),
		cmocka_unit_test(test_syn_refused),
		cmocka_unit_test(test_syn_pending),
		cmocka_unit_test(test_counters_not_mirrored),
		cmocka_unit_test(test_rtt_figures),
		cmocka_unit_test(test_flow_add_counters),
		cmocka_unit_test(test_flow_add_rtt),
		cmocka_unit_test(test_flow_add_handshake),
		cmocka_unit_test(test_flow_add_answered_later),
		cmocka_unit_test(test_bucket_le),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
