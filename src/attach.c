// SPDX-License-Identifier: GPL-2.0
/*
 * TC attachment: TCX links first (kernel >= 6.6: per-program links that are
 * released when the process dies, and that never disturb other users of the
 * device), clsact + cls_bpf as the fallback for older kernels.
 *
 * Every live tapflow process records its hooks in /run/tapflow/hooks.<pid>.
 * For clsact the record is what lets a later start remove the filters of a
 * process that was SIGKILLed (cls_bpf filters outlive their loader); for
 * both modes it lets `list` tell which taps are being traced.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "attach.h"
#include "log.h"

/* Debian 12's uapi headers predate TCX (kernel 6.6). */
#define TF_BPF_TCX_INGRESS 46
#define TF_BPF_TCX_EGRESS 47

#define STATE_DIR "/run/tapflow"

static const char *const dir_name[2] = { "ingress", "egress" };

const char *tf_attach_mode_name(enum tf_attach_mode mode)
{
	switch (mode) {
	case TF_ATTACH_TCX: return "tcx";
	case TF_ATTACH_CLSACT: return "clsact";
	default: return "auto";
	}
}

int tf_attach_mode_parse(const char *name)
{
	if (!strcmp(name, "auto"))
		return TF_ATTACH_AUTO;
	if (!strcmp(name, "tcx"))
		return TF_ATTACH_TCX;
	if (!strcmp(name, "clsact"))
		return TF_ATTACH_CLSACT;
	return -1;
}

static unsigned long netns_inode(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : (unsigned long)st.st_ino;
}

static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

void tf_progs_init(struct tf_progs *p, int ingress_fd, int egress_fd)
{
	p->fd[0] = ingress_fd;
	p->fd[1] = egress_fd;
	p->id[0] = prog_id_of(ingress_fd);
	p->id[1] = prog_id_of(egress_fd);
}

int tf_attacher_init(struct tf_attacher *a, enum tf_attach_mode want)
{
	memset(a, 0, sizeof(*a));
	a->want = want;
	a->chosen = want;
	mkdir(STATE_DIR, 0755);
	snprintf(a->state_path, sizeof(a->state_path), STATE_DIR "/hooks.%d", (int)getpid());
	return 0;
}

/* Rewrite the whole record: small, and never half-written (rename). */
static void state_add(struct tf_attacher *a, const struct tf_hook *h)
{
	char tmp[160];
	FILE *in, *out;
	char line[256];

	snprintf(tmp, sizeof(tmp), "%s.tmp", a->state_path);
	out = fopen(tmp, "w");
	if (!out)
		return;
	in = fopen(a->state_path, "r");
	if (in) {
		while (fgets(line, sizeof(line), in))
			fputs(line, out);
		fclose(in);
	}
	for (int d = 0; d < 2; d++)
		fprintf(out, "%lu %d %s %s %u %u %u\n", netns_inode(), h->ifindex,
			tf_attach_mode_name(h->mode), dir_name[d], h->handle[d],
			h->priority[d], h->progs.id[d]);
	fclose(out);
	rename(tmp, a->state_path);
}

static void state_remove(struct tf_attacher *a, const struct tf_hook *h)
{
	char tmp[160], line[256];
	unsigned long ns;
	int ifindex, kept = 0;
	FILE *in, *out;

	in = fopen(a->state_path, "r");
	if (!in)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->state_path);
	out = fopen(tmp, "w");
	if (!out) {
		fclose(in);
		return;
	}
	while (fgets(line, sizeof(line), in)) {
		if (sscanf(line, "%lu %d", &ns, &ifindex) == 2 &&
		    ns == netns_inode() && ifindex == h->ifindex)
			continue;
		fputs(line, out);
		kept++;
	}
	fclose(in);
	fclose(out);
	if (kept)
		rename(tmp, a->state_path);
	else {
		unlink(tmp);
		unlink(a->state_path);
	}
}

static int tcx_attach(struct tf_hook *h)
{
	static const int type[2] = { TF_BPF_TCX_INGRESS, TF_BPF_TCX_EGRESS };

	for (int d = 0; d < 2; d++) {
		int fd = bpf_link_create(h->progs.fd[d], h->ifindex, type[d], NULL);

		if (fd < 0) {
			int err = -errno;

			if (d == 1)
				close(h->link_fd[0]);
			h->link_fd[0] = h->link_fd[1] = -1;
			return err;
		}
		h->link_fd[d] = fd;
	}
	return 0;
}

/*
 * Filters on the ingress + egress parents of ifindex's clsact qdisc (any
 * owner): their number, and the lowest priority in use on each parent
 * (min_prio[d], 0 if none). -1 if it cannot be told.
 */
static int clsact_filters(int ifindex, unsigned int min_prio[2])
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg tc;
	} req;
	char buf[16384];
	int fd, total = 0;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	for (int d = 0; d < 2; d++) {
		if (min_prio)
			min_prio[d] = 0;
		memset(&req, 0, sizeof(req));
		req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
		req.nh.nlmsg_type = RTM_GETTFILTER;
		req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		req.nh.nlmsg_seq = d + 1;
		req.tc.tcm_family = AF_UNSPEC;
		req.tc.tcm_ifindex = ifindex;
		req.tc.tcm_parent = TC_H_MAKE(TC_H_CLSACT,
					      d ? TC_H_MIN_EGRESS : TC_H_MIN_INGRESS);
		if (send(fd, &req, req.nh.nlmsg_len, 0) < 0)
			goto fail;
		for (bool done = false; !done;) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			struct nlmsghdr *nh;

			if (n <= 0)
				goto fail;
			for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
			     nh = NLMSG_NEXT(nh, n)) {
				struct tcmsg *tc = NLMSG_DATA(nh);
				unsigned int prio;

				if (nh->nlmsg_type == NLMSG_DONE) {
					done = true;
					break;
				}
				if (nh->nlmsg_type == NLMSG_ERROR)
					goto fail;
				if (nh->nlmsg_type != RTM_NEWTFILTER)
					continue;
				prio = TC_H_MAJ(tc->tcm_info) >> 16;
				if (min_prio && prio && (!min_prio[d] || prio < min_prio[d]))
					min_prio[d] = prio;
				/* One chain-head message per priority has no kind; count filters. */
				if (tc->tcm_handle)
					total++;
			}
		}
	}
	close(fd);
	return total;
fail:
	close(fd);
	return -1;
}

static int clsact_filter_count(int ifindex)
{
	return clsact_filters(ifindex, NULL);
}

/* A clsact qdisc that some tapflow created: the last one to leave removes it. */
static void qdisc_marker(int ifindex, char *path, size_t len)
{
	snprintf(path, len, STATE_DIR "/clsact.%lu.%d", netns_inode(), ifindex);
}

static void remove_qdisc_if_ours_and_empty(int ifindex, bool created)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	char marker[160];

	qdisc_marker(ifindex, marker, sizeof(marker));
	if (!created && access(marker, F_OK))
		return;
	if (clsact_filter_count(ifindex) != 0)
		return;
	bpf_tc_hook_destroy(&hook);
	unlink(marker);
}

static int clsact_attach(struct tf_hook *h)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = h->ifindex,
			    .attach_point = BPF_TC_INGRESS);
	int err;

	unsigned int min_prio[2] = { 0, 0 };

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	h->created_qdisc = !err;
	if (h->created_qdisc) {
		char marker[160];
		FILE *f;

		qdisc_marker(h->ifindex, marker, sizeof(marker));
		f = fopen(marker, "w");
		if (f)
			fclose(f);
	}
	/* Before every filter already there: one with a verdict would hide packets. */
	clsact_filters(h->ifindex, min_prio);
	for (int d = 0; d < 2; d++) {
		/* handle 0: the kernel picks a free one; priority 0: it picks one too. */
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = h->progs.fd[d],
				    .priority = min_prio[d] > 1 ? min_prio[d] - 1 : 0);

		hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		err = bpf_tc_attach(&hook, &opts);
		if (err) {
			if (d == 1) {
				DECLARE_LIBBPF_OPTS(bpf_tc_opts, undo, .handle = h->handle[0],
						    .priority = h->priority[0]);
				hook.attach_point = BPF_TC_INGRESS;
				bpf_tc_detach(&hook, &undo);
			}
			return err;
		}
		h->handle[d] = opts.handle;
		h->priority[d] = opts.priority;
	}
	return 0;
}

int tf_hook_attach(struct tf_attacher *a, struct tf_hook *h, const struct tf_progs *progs,
		   int ifindex, const char *ifname, char *err, size_t errlen)
{
	int ret = -EINVAL;

	memset(h, 0, sizeof(*h));
	h->progs = *progs;
	h->ifindex = ifindex;
	h->link_fd[0] = h->link_fd[1] = -1;
	snprintf(h->ifname, sizeof(h->ifname), "%s", ifname);

	if (a->chosen == TF_ATTACH_AUTO || a->chosen == TF_ATTACH_TCX) {
		ret = tcx_attach(h);
		if (!ret) {
			h->mode = TF_ATTACH_TCX;
			a->chosen = TF_ATTACH_TCX;
			goto attached;
		}
		/* EINVAL: this kernel does not know the TCX attach types. */
		if (a->chosen == TF_ATTACH_AUTO && ret == -EINVAL) {
			tf_debug("TCX not available (%s), using clsact", strerror(-ret));
			a->chosen = TF_ATTACH_CLSACT;
		} else {
			snprintf(err, errlen, "cannot attach TCX programs to %s: %s",
				 ifname, strerror(-ret));
			return ret;
		}
	}
	ret = clsact_attach(h);
	if (ret) {
		snprintf(err, errlen, "cannot attach clsact filters to %s: %s",
			 ifname, strerror(-ret));
		return ret;
	}
	h->mode = TF_ATTACH_CLSACT;
attached:
	h->attached = true;
	state_add(a, h);
	tf_debug("attached to %s (ifindex %d) with %s", ifname, ifindex,
		 tf_attach_mode_name(h->mode));
	return 0;
}

static void clsact_detach(const struct tf_hook *h)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = h->ifindex);

	for (int d = 0; d < 2; d++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = h->handle[d],
				    .priority = h->priority[d]);

		hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		bpf_tc_detach(&hook, &opts);	/* ENOENT/ENODEV: already gone */
	}
	remove_qdisc_if_ours_and_empty(h->ifindex, h->created_qdisc);
}

void tf_hook_detach(struct tf_attacher *a, struct tf_hook *h)
{
	if (!h->attached)
		return;
	if (h->mode == TF_ATTACH_TCX) {
		for (int d = 0; d < 2; d++) {
			if (h->link_fd[d] >= 0) {
				/* Detach now: the fd may be shared with a forked child. */
				bpf_link_detach(h->link_fd[d]);
				close(h->link_fd[d]);
				h->link_fd[d] = -1;
			}
		}
	} else {
		clsact_detach(h);
	}
	h->attached = false;
	state_remove(a, h);
}

void tf_attacher_fini(struct tf_attacher *a)
{
	unlink(a->state_path);
}

static bool pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Call fn on each line of each hooks file; alive tells whose file it is. */
static void for_each_record(void (*fn)(const char *path, int pid, bool alive, void *arg),
			    void *arg)
{
	DIR *dir = opendir(STATE_DIR);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char path[300];
		int pid;

		if (sscanf(de->d_name, "hooks.%d", &pid) != 1 || strstr(de->d_name, ".tmp"))
			continue;
		snprintf(path, sizeof(path), STATE_DIR "/%s", de->d_name);
		fn(path, pid, pid != getpid() && pid_alive(pid), arg);
	}
	closedir(dir);
}

struct stale_ctx {
	int removed;
	bool verbose;
};

static void clean_file(const char *path, int pid, bool alive, void *arg)
{
	struct stale_ctx *ctx = arg;
	char line[256], mode[16], dir[16];
	unsigned long ns;
	unsigned int handle, prio, prog_id;
	int ifindex, other_ns = 0;
	FILE *f;

	if (alive || pid == getpid())
		return;
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lu %d %15s %15s %u %u %u", &ns, &ifindex, mode, dir,
			   &handle, &prio, &prog_id) != 7)
			continue;
		if (ns != netns_inode()) {
			/* clsact: cleaned by a start in that namespace; TCX: nothing to do */
			if (!strcmp(mode, "clsact"))
				other_ns++;
			continue;
		}
		if (strcmp(mode, "clsact"))
			continue;	/* TCX links died with their process */
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
				    .attach_point = strcmp(dir, "egress") ? BPF_TC_INGRESS
									 : BPF_TC_EGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = prio);
		/* Only if that slot still holds the dead process's program. */
		if (bpf_tc_query(&hook, &q) == 0 && q.prog_id == prog_id) {
			DECLARE_LIBBPF_OPTS(bpf_tc_opts, del, .handle = handle,
					    .priority = prio);
			if (bpf_tc_detach(&hook, &del) == 0) {
				remove_qdisc_if_ours_and_empty(ifindex, false);
				ctx->removed++;
				if (ctx->verbose)
					fprintf(stderr, "tapflow: removed stale %s filter of "
						"pid %d from ifindex %d\n", dir, pid, ifindex);
			}
		}
	}
	fclose(f);
	if (!other_ns)
		unlink(path);
}

int tf_attach_clean_stale(bool verbose)
{
	struct stale_ctx ctx = { .verbose = verbose };

	for_each_record(clean_file, &ctx);
	return ctx.removed;
}

struct in_use_ctx {
	int ifindex;
	bool found;
};

static void in_use_file(const char *path, int pid, bool alive, void *arg)
{
	struct in_use_ctx *ctx = arg;
	char line[256];
	unsigned long ns;
	int ifindex;
	FILE *f;

	if (!alive && pid != getpid())
		return;
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lu %d", &ns, &ifindex) == 2 &&
		    ns == netns_inode() && ifindex == ctx->ifindex)
			ctx->found = true;
	fclose(f);
}

bool tf_attach_ifindex_in_use(int ifindex)
{
	struct in_use_ctx ctx = { .ifindex = ifindex };

	for_each_record(in_use_file, &ctx);
	return ctx.found;
}
