/* SPDX-License-Identifier: GPL-2.0 */
/* What must hold before BPF programs can be loaded and attached. */
#ifndef TF_PREFLIGHT_H
#define TF_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/capability.h>

/* For uapi headers older than Linux 5.8, which lack them. */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/*
 * What a command asks of the kernel (main.c's command table); README,
 * "Privileges", has the table these stand for.
 */
/* BPF maps and the counters-only TC programs, attached: CAP_BPF, CAP_NET_ADMIN. */
#define TF_PRIV_LOAD	(1u << 0)
/*
 * Programs the verifier accepts from CAP_PERFMON holders only (pointer
 * comparisons and arithmetic, kernel reads, raw tracepoints): flows,
 * the NAT join, capture.
 */
#define TF_PRIV_TRUSTED	(1u << 1)
/* The kfree_skb drop tracer (CAP_PERFMON): without it, drops are not counted. */
#define TF_PRIV_DROPS	(1u << 2)

struct tf_priv_need {
	const char *command;
	unsigned int privs;		/* TF_PRIV_* */
	bool netns;			/* --netns: setns() needs CAP_SYS_ADMIN */
};

/* What the process holds and what the running kernel is. */
struct tf_priv_facts {
	uint64_t effective;		/* effective capabilities, 1 << CAP_* */
	bool cap_bpf_known;		/* the kernel has CAP_BPF and CAP_PERFMON (5.8+) */
	bool memlock_charged;		/* BPF memory counts against RLIMIT_MEMLOCK (< 5.11) */
	bool memlock_unlimited;		/* ... and its hard limit is RLIM_INFINITY */
};

/* Read the facts; the RLIMIT_MEMLOCK ones only if probe_memlock. 0, or -1 with reason. */
int tf_priv_facts_read(struct tf_priv_facts *f, bool probe_memlock, char *err, size_t errlen);
/*
 * Check need against f. 0: go ahead, *drops_ok says whether the drop tracer
 * can load (if asked for; else warn says why not). -1: err is the one line
 * naming what is missing.
 */
int tf_priv_check(const struct tf_priv_need *need, const struct tf_priv_facts *f,
		  bool *drops_ok, char *warn, size_t warnlen, char *err, size_t errlen);
/* Both, for this process: prints the error or the warning. 0 or -1. */
int tf_check_privileges(const struct tf_priv_need *need, bool *drops_ok);
/* privs as capabilities for the usage: "CAP_BPF, CAP_NET_ADMIN; CAP_PERFMON to ...". */
void tf_priv_describe(unsigned int privs, char *buf, size_t len);
/* Why /proc/kallsyms shows no addresses (CAP_SYSLOG, kptr_restrict), into buf. */
void tf_kallsyms_hidden_why(char *buf, size_t len);

/* Enter network namespace NAME (/run/netns/NAME). 0, or -1 with reason. */
int tf_enter_netns(const char *name, char *err, size_t errlen);
/* Kernel BTF, needed by the CO-RE programs. 0, or -1 with reason. */
int tf_check_btf(char *err, size_t errlen);

#endif /* TF_PREFLIGHT_H */
