// SPDX-License-Identifier: GPL-2.0
/*
 * The privilege check: what each command needs in the capabilities of the
 * running kernel, the one line that names what is missing, and what only
 * degrades. Kernels this machine is not (before 5.8: no CAP_BPF; before
 * 5.11: BPF memory charged to RLIMIT_MEMLOCK) are given as facts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <linux/capability.h>

#include "preflight.h"

#define BIT(cap) (1ULL << (cap))
#define TRACE_CAPS (BIT(CAP_BPF) | BIT(CAP_PERFMON) | BIT(CAP_NET_ADMIN))

static const struct tf_priv_need stats = { "stats", TF_PRIV_LOAD | TF_PRIV_DROPS, false };
static const struct tf_priv_need flows = {
	"flows", TF_PRIV_LOAD | TF_PRIV_TRUSTED | TF_PRIV_DROPS, false
};
static const struct tf_priv_need list = { "list", 0, false };

struct verdict {
	int ret;
	bool drops_ok;
	char warn[256], err[512];
};

static struct verdict check(const struct tf_priv_need *need, uint64_t effective,
			    bool cap_bpf_known)
{
	struct tf_priv_facts f = { .effective = effective, .cap_bpf_known = cap_bpf_known };
	struct verdict v;

	v.ret = tf_priv_check(need, &f, &v.drops_ok, v.warn, sizeof(v.warn), v.err,
			      sizeof(v.err));
	return v;
}

static void assert_has(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' not in '%s'", part, s);
}

static void test_enough(void **state)
{
	struct tf_priv_need quiet = stats;
	struct verdict v;

	(void)state;
	v = check(&flows, TRACE_CAPS, true);
	assert_int_equal(v.ret, 0);
	assert_true(v.drops_ok);
	assert_string_equal(v.warn, "");
	assert_string_equal(v.err, "");
	/* stats without CAP_PERFMON: runs, the drop tracer does not. */
	v = check(&stats, BIT(CAP_BPF) | BIT(CAP_NET_ADMIN), true);
	assert_int_equal(v.ret, 0);
	assert_false(v.drops_ok);
	assert_has(v.warn, "drops are not counted: the drop tracer needs CAP_PERFMON");
	/* ... and not asking for it (--no-drops): no warning. */
	quiet.privs &= ~TF_PRIV_DROPS;
	v = check(&quiet, BIT(CAP_BPF) | BIT(CAP_NET_ADMIN), true);
	assert_int_equal(v.ret, 0);
	assert_string_equal(v.warn, "");
	/* list asks for nothing. */
	v = check(&list, 0, true);
	assert_int_equal(v.ret, 0);
}

/* Drop each capability of flows in turn: named as the missing one, alone. */
static void test_each_missing(void **state)
{
	static const struct { int cap; const char *name; } caps[] = {
		{ CAP_BPF, "CAP_BPF" }, { CAP_PERFMON, "CAP_PERFMON" },
		{ CAP_NET_ADMIN, "CAP_NET_ADMIN" },
	};
	struct verdict v;

	(void)state;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		char want[64];

		v = check(&flows, TRACE_CAPS & ~BIT(caps[i].cap), true);
		assert_int_equal(v.ret, -1);
		assert_has(v.err, "flows needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; ");
		snprintf(want, sizeof(want), "missing %s (run as root, or grant it", caps[i].name);
		assert_has(v.err, want);
		assert_null(strchr(v.err, '\n'));
	}
	v = check(&stats, 0, true);
	assert_int_equal(v.ret, -1);
	assert_has(v.err, "stats needs CAP_BPF and CAP_NET_ADMIN; "
		   "missing CAP_BPF and CAP_NET_ADMIN (run as root, or grant them");
}

/* CAP_SYS_ADMIN passes the kernel's CAP_BPF and CAP_PERFMON tests, not CAP_NET_ADMIN's. */
static void test_sys_admin(void **state)
{
	struct verdict v;

	(void)state;
	v = check(&flows, BIT(CAP_SYS_ADMIN) | BIT(CAP_NET_ADMIN), true);
	assert_int_equal(v.ret, 0);
	assert_true(v.drops_ok);
	v = check(&flows, BIT(CAP_SYS_ADMIN), true);
	assert_int_equal(v.ret, -1);
	assert_has(v.err, "missing CAP_NET_ADMIN (");
}

/* Before 5.8 there is no CAP_BPF or CAP_PERFMON: CAP_SYS_ADMIN is what is asked for. */
static void test_old_kernel_caps(void **state)
{
	struct verdict v;

	(void)state;
	v = check(&flows, BIT(CAP_NET_ADMIN), false);
	assert_int_equal(v.ret, -1);
	assert_has(v.err, "flows needs CAP_SYS_ADMIN and CAP_NET_ADMIN on this kernel "
		   "(no CAP_BPF or CAP_PERFMON before Linux 5.8); missing CAP_SYS_ADMIN (");
	assert_null(strstr(v.err, "CAP_BPF,"));
	v = check(&flows, BIT(CAP_SYS_ADMIN) | BIT(CAP_NET_ADMIN), false);
	assert_int_equal(v.ret, 0);
	v = check(&stats, BIT(CAP_NET_ADMIN) | BIT(CAP_BPF), false);
	assert_int_equal(v.ret, -1);
	assert_has(v.err, "missing CAP_SYS_ADMIN (");
}

/* Before 5.11 BPF memory counts against RLIMIT_MEMLOCK, which libbpf lifts to infinity. */
static void test_memlock(void **state)
{
	struct tf_priv_facts f = { .effective = TRACE_CAPS, .cap_bpf_known = true,
				   .memlock_charged = true };
	char warn[256], err[512];
	bool drops_ok;

	(void)state;
	assert_int_equal(tf_priv_check(&flows, &f, &drops_ok, warn, sizeof(warn), err,
				       sizeof(err)), -1);
	assert_has(err, "flows needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_RESOURCE "
		   "on this kernel (BPF memory counts against RLIMIT_MEMLOCK before Linux "
		   "5.11); missing CAP_SYS_RESOURCE (");
	assert_has(err, "ulimit -l unlimited");
	f.effective |= BIT(CAP_SYS_RESOURCE);
	assert_int_equal(tf_priv_check(&flows, &f, &drops_ok, warn, sizeof(warn), err,
				       sizeof(err)), 0);
	/* An unlimited hard limit: nothing to lift. */
	f.effective = TRACE_CAPS;
	f.memlock_unlimited = true;
	assert_int_equal(tf_priv_check(&flows, &f, &drops_ok, warn, sizeof(warn), err,
				       sizeof(err)), 0);
	/* list loads nothing: no memlock either. */
	f.memlock_unlimited = false;
	f.effective = 0;
	assert_int_equal(tf_priv_check(&list, &f, &drops_ok, warn, sizeof(warn), err,
				       sizeof(err)), 0);
}

static void test_netns(void **state)
{
	struct tf_priv_need n = flows;
	struct tf_priv_need l = list;
	struct verdict v;

	(void)state;
	n.netns = l.netns = true;
	v = check(&n, TRACE_CAPS, true);
	assert_int_equal(v.ret, -1);
	assert_has(v.err, "flows with --netns needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and "
		   "CAP_SYS_ADMIN; missing CAP_SYS_ADMIN (");
	v = check(&n, TRACE_CAPS | BIT(CAP_SYS_ADMIN), true);
	assert_int_equal(v.ret, 0);
	v = check(&l, 0, true);
	assert_int_equal(v.ret, -1);
	assert_has(v.err, "list with --netns needs CAP_SYS_ADMIN; missing CAP_SYS_ADMIN (");
	/* Before 5.8 CAP_SYS_ADMIN is named once. */
	v = check(&n, BIT(CAP_NET_ADMIN), false);
	assert_has(v.err, "needs CAP_SYS_ADMIN and CAP_NET_ADMIN on this kernel");
	assert_has(v.err, "missing CAP_SYS_ADMIN (");
}

/*
 * The facts of this process: the memlock probe (a program load as root,
 * else the release number) agrees with the release number.
 */
static void test_facts_read(void **state)
{
	struct tf_priv_facts f;
	struct utsname u;
	int major, minor;
	char err[128];

	(void)state;
	assert_int_equal(uname(&u), 0);
	assert_int_equal(sscanf(u.release, "%d.%d", &major, &minor), 2);
	assert_int_equal(tf_priv_facts_read(&f, true, err, sizeof(err)), 0);
	assert_int_equal(f.memlock_charged, major < 5 || (major == 5 && minor < 11));
	assert_int_equal(f.cap_bpf_known, major > 5 || (major == 5 && minor >= 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enough),
		cmocka_unit_test(test_each_missing),
		cmocka_unit_test(test_sys_admin),
		cmocka_unit_test(test_old_kernel_caps),
		cmocka_unit_test(test_memlock),
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_facts_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
