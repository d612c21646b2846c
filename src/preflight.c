// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/capability.h>

#include "log.h"
#include "preflight.h"

int tf_enter_netns(const char *name, char *err, size_t errlen)
{
	char path[300];
	int fd;

	if (!*name || strchr(name, '/')) {
		snprintf(err, errlen, "invalid network namespace name '%s'", name);
		return -1;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "network namespace '%s' not found (%s: %s; see ip netns list)",
			 name, path, strerror(errno));
		return -1;
	}
	if (setns(fd, CLONE_NEWNET)) {
		snprintf(err, errlen, "cannot enter network namespace '%s': %s%s", name,
			 strerror(errno), errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* ---- capabilities -------------------------------------------------------- */

static const char *cap_name(int cap)
{
	switch (cap) {
	case CAP_BPF: return "CAP_BPF";
	case CAP_PERFMON: return "CAP_PERFMON";
	case CAP_NET_ADMIN: return "CAP_NET_ADMIN";
	case CAP_SYS_RESOURCE: return "CAP_SYS_RESOURCE";
	case CAP_SYS_ADMIN: return "CAP_SYS_ADMIN";
	}
	return "?";
}

/* Capabilities in the order the messages name them, each once. */
struct cap_list {
	int cap[8];
	int n;
};

static bool cap_in(const struct cap_list *l, int cap)
{
	for (int i = 0; i < l->n; i++)
		if (l->cap[i] == cap)
			return true;
	return false;
}

static void cap_add(struct cap_list *l, int cap)
{
	if (!cap_in(l, cap) && l->n < (int)(sizeof(l->cap) / sizeof(l->cap[0])))
		l->cap[l->n++] = cap;
}

/* "A", "A and B", "A, B and C". */
static void cap_list_fmt(const struct cap_list *l, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < l->n && off < len; i++) {
		const char *sep = !i ? "" : i == l->n - 1 ? " and " : ", ";
		int n = snprintf(buf + off, len - off, "%s%s", sep, cap_name(l->cap[i]));

		if (n < 0)
			return;
		off += (size_t)n;
	}
}

/* Before 5.8 the kernel asks CAP_SYS_ADMIN where it now asks CAP_BPF or CAP_PERFMON. */
static int in_kernel_terms(const struct tf_priv_facts *f, int cap)
{
	if (!f->cap_bpf_known && (cap == CAP_BPF || cap == CAP_PERFMON))
		return CAP_SYS_ADMIN;
	return cap;
}

/* The kernel's own test: bpf_capable() and perfmon_capable() take CAP_SYS_ADMIN too. */
static bool holds(const struct tf_priv_facts *f, int cap)
{
	if (f->effective & (1ULL << cap))
		return true;
	return (cap == CAP_BPF || cap == CAP_PERFMON) &&
	       (f->effective & (1ULL << CAP_SYS_ADMIN));
}

/* Why this kernel asks for more than CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, or "". */
static void kernel_note(const struct tf_priv_facts *f, const struct cap_list *needs,
			unsigned int privs, char *buf, size_t len)
{
	bool old_caps = !f->cap_bpf_known && (privs & (TF_PRIV_LOAD | TF_PRIV_TRUSTED));
	bool memlock = cap_in(needs, CAP_SYS_RESOURCE);

	buf[0] = '\0';
	if (!old_caps && !memlock)
		return;
	snprintf(buf, len, " on this kernel (%s%s%s)",
		 old_caps ? "no CAP_BPF or CAP_PERFMON before Linux 5.8" : "",
		 old_caps && memlock ? "; " : "",
		 memlock ? "BPF memory counts against RLIMIT_MEMLOCK before Linux 5.11" : "");
}

static void needs_of(const struct tf_priv_need *need, const struct tf_priv_facts *f,
		     struct cap_list *needs)
{
	memset(needs, 0, sizeof(*needs));
	if (need->privs & TF_PRIV_LOAD)
		cap_add(needs, in_kernel_terms(f, CAP_BPF));
	if (need->privs & TF_PRIV_TRUSTED)
		cap_add(needs, in_kernel_terms(f, CAP_PERFMON));
	if (need->privs & TF_PRIV_LOAD) {
		/* TC programs, TCX links, and clsact filters over rtnetlink. */
		cap_add(needs, CAP_NET_ADMIN);
		/* There libbpf raises RLIMIT_MEMLOCK to infinity, beyond a finite hard limit. */
		if (f->memlock_charged && !f->memlock_unlimited)
			cap_add(needs, CAP_SYS_RESOURCE);
	}
	if (need->netns)
		cap_add(needs, CAP_SYS_ADMIN);
}

void tf_priv_describe(unsigned int privs, char *buf, size_t len)
{
	const struct tf_priv_facts f = { .cap_bpf_known = true };
	const struct tf_priv_need need = { .privs = privs };
	struct cap_list needs;

	needs_of(&need, &f, &needs);
	cap_list_fmt(&needs, buf, len);
	if ((privs & TF_PRIV_DROPS) && !(privs & TF_PRIV_TRUSTED) && strlen(buf) < len)
		snprintf(buf + strlen(buf), len - strlen(buf), "; CAP_PERFMON to count drops");
}

int tf_priv_check(const struct tf_priv_need *need, const struct tf_priv_facts *f,
		  bool *drops_ok, char *warn, size_t warnlen, char *err, size_t errlen)
{
	int tracer_cap = in_kernel_terms(f, CAP_PERFMON);
	struct cap_list needs, missing = {};
	char needs_s[128], missing_s[128], note[160];

	warn[0] = err[0] = '\0';
	needs_of(need, f, &needs);
	for (int i = 0; i < needs.n; i++)
		if (!holds(f, needs.cap[i]))
			cap_add(&missing, needs.cap[i]);
	*drops_ok = holds(f, tracer_cap);
	if (!missing.n) {
		if ((need->privs & TF_PRIV_DROPS) && !*drops_ok)
			snprintf(warn, warnlen, "drops are not counted: the drop tracer needs %s "
				 "(grant it too, or give --no-drops)", cap_name(tracer_cap));
		return 0;
	}
	cap_list_fmt(&needs, needs_s, sizeof(needs_s));
	cap_list_fmt(&missing, missing_s, sizeof(missing_s));
	kernel_note(f, &needs, need->privs, note, sizeof(note));
	snprintf(err, errlen, "%s%s needs %s%s; missing %s (run as root, or grant %s: setpriv, "
		 "capsh or systemd AmbientCapabilities=)%s", need->command,
		 need->netns ? " with --netns" : "", needs_s, note, missing_s,
		 missing.n > 1 ? "them" : "it",
		 !cap_in(&missing, CAP_SYS_RESOURCE) ? "" :
		 "; or lift the hard memlock limit instead (ulimit -l unlimited, "
		 "LimitMEMLOCK=infinity)");
	return -1;
}

/*
 * Does the kernel charge BPF memory to RLIMIT_MEMLOCK? Its memcg accounting
 * (5.11) came with bpf_ktime_get_coarse_ns(): libbpf's own test, after
 * which it leaves the limit alone. Where the probe cannot load (no CAP_BPF:
 * the check fails anyway), the release number.
 */
static bool memlock_charged(void)
{
	int ret = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCKET_FILTER,
					  BPF_FUNC_ktime_get_coarse_ns, NULL);
	struct utsname u;
	int major, minor;

	if (ret >= 0)
		return ret == 0;
	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return false;
	return major < 5 || (major == 5 && minor < 11);
}

int tf_priv_facts_read(struct tf_priv_facts *f, bool probe_memlock, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	struct rlimit rl;

	memset(f, 0, sizeof(*f));
	if (syscall(SYS_capget, &hdr, data)) {
		snprintf(err, errlen, "cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	f->effective = data[0].effective | (uint64_t)data[1].effective << 32;
	/* EINVAL for a capability the kernel does not know. */
	f->cap_bpf_known = prctl(PR_CAPBSET_READ, CAP_BPF, 0, 0, 0) >= 0;
	if (probe_memlock) {
		f->memlock_charged = memlock_charged();
		f->memlock_unlimited = !getrlimit(RLIMIT_MEMLOCK, &rl) &&
				       rl.rlim_max == RLIM_INFINITY;
	}
	return 0;
}

int tf_check_privileges(const struct tf_priv_need *need, bool *drops_ok)
{
	struct tf_priv_facts f;
	char err[512], warn[256];

	if (tf_priv_facts_read(&f, need->privs & TF_PRIV_LOAD, err, sizeof(err)) ||
	    tf_priv_check(need, &f, drops_ok, warn, sizeof(warn), err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	if (warn[0])
		tf_warn("%s", warn);
	return 0;
}

static int read_int(const char *path, int dflt)
{
	FILE *f = fopen(path, "r");
	int v;

	if (!f)
		return dflt;
	if (fscanf(f, "%d", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

void tf_kallsyms_hidden_why(char *buf, size_t len)
{
	int kptr = read_int("/proc/sys/kernel/kptr_restrict", -1);
	int paranoid = read_int("/proc/sys/kernel/perf_event_paranoid", -1);
	struct tf_priv_facts f;
	char err[128];

	if (kptr >= 2)
		snprintf(buf, len, "kernel.kptr_restrict=%d hides kernel addresses in "
			 "/proc/kallsyms from everyone", kptr);
	else if (!tf_priv_facts_read(&f, false, err, sizeof(err)) &&
		 !(f.effective & (1ULL << CAP_SYSLOG)))
		snprintf(buf, len, "/proc/kallsyms shows kernel addresses only with CAP_SYSLOG "
			 "(kernel.kptr_restrict=%d, kernel.perf_event_paranoid=%d)", kptr,
			 paranoid);
	else
		snprintf(buf, len, "/proc/kallsyms shows no kernel addresses");
}

int tf_check_btf(char *err, size_t errlen)
{
	static const char path[] = "/sys/kernel/btf/vmlinux";

	if (access(path, R_OK) == 0)
		return 0;
	snprintf(err, errlen, "kernel has no BTF (%s: %s); tapflow's CO-RE programs need "
		 "a kernel built with CONFIG_DEBUG_INFO_BTF=y", path, strerror(errno));
	return -1;
}
