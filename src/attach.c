// SPDX-License-Identifier: GPL-2.0
/*
 * TC attachment: TCX links first (kernel >= 6.6: per-program links that are
 * released when the process dies, and that never disturb other users of the
 * device), clsact + cls_bpf as the fallback for older kernels.
 *
 * Every live tapflow process records its hooks in /run/tapflow/hooks.<pid>
 * (see "The state file" below). For clsact the record is what lets a later
 * start remove the filters of a process that was SIGKILLed (cls_bpf
 * filters outlive their loader); for both modes it lets `list` tell which
 * taps are being traced, and which carry such orphaned filters.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

unsigned long tf_netns_inode(void)
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

/*
 * The state file of this process: STATE_DIR/hooks.<pid>, shared by every
 * attacher of the process. It is created under a temporary name, locked
 * (flock, exclusive) and only then renamed into place, and the lock is
 * held for as long as the process lives: a reader that can take the lock
 * knows the owner is dead, whatever process now has its pid. Records are
 * appended, one write() per hook, never rewritten, so a kill at any
 * instant leaves every complete record readable:
 *   tapflow-state 2                    (the first line)
 *   + <netns inode> <ifindex> <mode> <dir> <handle> <priority> <prog id>
 *   - <netns inode> <ifindex>          (that hook was detached)
 *   p <netns inode> <ifindex>          (a pin set holds it: not stale when we die)
 * A file without the first line is an older tapflow's, which took no lock
 * and rewrote "<netns inode> <ifindex> ..." lines: its owner lives as long
 * as its pid does, so that an upgrade never takes a running old tapflow's
 * record away.
 */
#define STATE_MAGIC "tapflow-state 2\n"
static struct {
	int fd;				/* -1: no state file (yet, or not possible) */
	int err;			/* why not (an errno), once tried */
	int users;			/* attachers of this process */
	char path[64];
} state = { .fd = -1 };

/*
 * The state directory, created 0700 if missing; an existing one must be a
 * directory of ours that nobody else can write (an older tapflow made it
 * 0755: tightened). 0, or an errno: it cannot be used, no state is kept.
 */
static int state_dir_ok(void)
{
	struct stat st;

	if (mkdir(STATE_DIR, 0700) && errno != EEXIST)
		return errno;
	if (lstat(STATE_DIR, &st))
		return errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return EPERM;
	if ((st.st_mode & 077) && chmod(STATE_DIR, 0700))
		return errno;
	return 0;
}

static int state_create(void)
{
	char tmp[80];
	int fd, err = state_dir_ok();

	if (err)
		return err;
	snprintf(state.path, sizeof(state.path), STATE_DIR "/hooks.%d", (int)getpid());
	snprintf(tmp, sizeof(tmp), STATE_DIR "/.hooks.%d.tmp", (int)getpid());
	unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno;
	/* Locked before it has its name: nobody ever sees it unlocked while we live. */
	if (flock(fd, LOCK_EX) ||
	    write(fd, STATE_MAGIC, strlen(STATE_MAGIC)) != (ssize_t)strlen(STATE_MAGIC) ||
	    rename(tmp, state.path)) {
		err = errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	state.fd = fd;
	return 0;
}

/*
 * Once per process. Without a state file TCX hooks lose nothing (their
 * links die with us; `list` cannot tell they are ours), but clsact
 * filters left by a kill could not be found again: that is worth a word.
 */
static void state_open(enum tf_attach_mode mode)
{
	if (state.fd >= 0 || state.err)
		return;
	state.err = state_create();
	if (!state.err)
		return;
	if (mode == TF_ATTACH_CLSACT)
		tf_warn("cannot keep state in %s (%s): if this run is killed, the next one cannot "
			"remove its clsact filters", STATE_DIR, strerror(state.err));
	else
		tf_debug("cannot keep state in %s: %s", STATE_DIR, strerror(state.err));
}

static void state_append(const char *buf, size_t len)
{
	if (state.fd >= 0 && write(state.fd, buf, len) != (ssize_t)len)
		tf_debug("cannot record a hook in %s: %s", state.path, strerror(errno));
}

int tf_attacher_init(struct tf_attacher *a, enum tf_attach_mode want)
{
	memset(a, 0, sizeof(*a));
	a->want = want;
	a->chosen = want;
	a->shares_state = true;
	state.users++;
	return 0;
}

static void state_add(const struct tf_hook *h)
{
	char buf[256];
	int n = 0;

	state_open(h->mode);
	for (int d = 0; d < 2; d++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "+ %lu %d %s %s %u %u %u\n",
			      tf_netns_inode(), h->ifindex, tf_attach_mode_name(h->mode),
			      dir_name[d], h->handle[d], h->priority[d], h->progs.id[d]);
	state_append(buf, (size_t)n);
}

static void state_remove(const struct tf_hook *h)
{
	char buf[64];
	int n;

	n = snprintf(buf, sizeof(buf), "- %lu %d\n", tf_netns_inode(), h->ifindex);
	state_append(buf, (size_t)n);
}

/* A pin set holds the hook: its "+" records are not the stale cleanup's. */
static void state_pinned(const struct tf_hook *h)
{
	char buf[64];
	int n;

	n = snprintf(buf, sizeof(buf), "p %lu %d\n", tf_netns_inode(), h->ifindex);
	state_append(buf, (size_t)n);
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
	snprintf(path, len, STATE_DIR "/clsact.%lu.%d", tf_netns_inode(), ifindex);
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
		int fd;

		qdisc_marker(h->ifindex, marker, sizeof(marker));
		fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			close(fd);
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
	state_add(h);
	tf_debug("attached to %s (ifindex %d) with %s", ifname, ifindex,
		 tf_attach_mode_name(h->mode));
	return 0;
}

/* TCX: the pinned links' programs swapped; a direction without one gets a new link. */
static int tcx_adopt(struct tf_hook *h, const struct tf_hook_adopt *from)
{
	static const int type[2] = { TF_BPF_TCX_INGRESS, TF_BPF_TCX_EGRESS };
	int made[2] = { -1, -1 };

	for (int d = 0; d < 2; d++) {
		int err;

		if (from->link_fd[d] >= 0) {
			if (!bpf_link_update(from->link_fd[d], h->progs.fd[d], NULL))
				continue;
		} else {
			made[d] = bpf_link_create(h->progs.fd[d], h->ifindex, type[d], NULL);
			if (made[d] >= 0)
				continue;
		}
		err = -errno;
		if (made[0] >= 0)
			close(made[0]);
		return err;
	}
	for (int d = 0; d < 2; d++)
		h->link_fd[d] = from->link_fd[d] >= 0 ? from->link_fd[d] : made[d];
	return 0;
}

/* clsact: the same filters (handle, priority) with the new programs, replaced in place. */
static int clsact_adopt(struct tf_hook *h, const struct tf_hook_adopt *from)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = h->ifindex);

	for (int d = 0; d < 2; d++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = h->progs.fd[d],
				    .handle = from->handle[d], .priority = from->priority[d],
				    .flags = BPF_TC_F_REPLACE);
		int err;

		hook.attach_point = d ? BPF_TC_EGRESS : BPF_TC_INGRESS;
		err = bpf_tc_attach(&hook, &opts);
		if (err)
			return err;
		h->handle[d] = opts.handle;
		h->priority[d] = opts.priority;
	}
	return 0;
}

int tf_hook_adopt(struct tf_attacher *a, struct tf_hook *h, const struct tf_progs *progs,
		  int ifindex, const char *ifname, const struct tf_hook_adopt *from, char *err,
		  size_t errlen)
{
	int ret;

	(void)a;
	memset(h, 0, sizeof(*h));
	h->progs = *progs;
	h->ifindex = ifindex;
	h->link_fd[0] = h->link_fd[1] = -1;
	snprintf(h->ifname, sizeof(h->ifname), "%s", ifname);
	h->mode = from->clsact ? TF_ATTACH_CLSACT : TF_ATTACH_TCX;
	ret = from->clsact ? clsact_adopt(h, from) : tcx_adopt(h, from);
	if (ret) {
		snprintf(err, errlen, "cannot take over the %s hooks of %s: %s",
			 tf_attach_mode_name(h->mode), ifname, strerror(-ret));
		return ret;
	}
	h->attached = true;
	state_add(h);
	tf_debug("took over the %s hooks of %s (ifindex %d)", tf_attach_mode_name(h->mode),
		 ifname, ifindex);
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

void tf_hook_detach(struct tf_hook *h)
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
	state_remove(h);
}

void tf_hook_set_pinned(struct tf_hook *h)
{
	if (!h->attached || h->pinned)
		return;
	h->pinned = true;
	state_pinned(h);
}

void tf_hook_release(struct tf_hook *h)
{
	if (!h->attached)
		return;
	/* Closed, not detached: a pinned link lives on in its pin. */
	for (int d = 0; d < 2; d++) {
		if (h->link_fd[d] >= 0)
			close(h->link_fd[d]);
		h->link_fd[d] = -1;
	}
	h->attached = false;
}

uint32_t tf_clsact_prog_id(int ifindex, int dir, uint32_t handle, uint32_t priority)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = dir ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = priority);

	return bpf_tc_query(&hook, &q) ? 0 : q.prog_id;
}

int tf_clsact_remove(int ifindex, int dir, uint32_t handle, uint32_t priority, uint32_t prog_id)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = dir ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, del, .handle = handle, .priority = priority);

	/* Only if that slot still holds the program it was given: nobody else's. */
	if (!prog_id || tf_clsact_prog_id(ifindex, dir, handle, priority) != prog_id)
		return -ENOENT;
	if (bpf_tc_detach(&hook, &del))
		return -ENOENT;
	remove_qdisc_if_ours_and_empty(ifindex, false);
	return 0;
}

void tf_attacher_fini(struct tf_attacher *a)
{
	if (!a->shares_state)
		return;
	a->shares_state = false;
	/*
	 * The last attacher of the process: every hook it recorded is
	 * detached, or held by a pin set that outlives it.
	 */
	if (--state.users > 0 || state.fd < 0)
		return;
	unlink(state.path);
	close(state.fd);
	state.fd = -1;
}

/* A hook as its record says, and whether a later record said it is gone. */
struct record {
	unsigned long ns;
	int ifindex;
	char mode[16], dir[16];
	unsigned int handle, prio, prog_id;
	bool pinned;			/* a "p" record followed: a pin set holds it */
};

/*
 * The hooks a state file says are attached: "+" records not followed by a
 * "-" for their netns and ifindex ("p": a pin set holds them). An
 * incomplete last line (a kill in the middle of a write) is skipped.
 * Returns how many, *out to free; -1: ENOMEM.
 */
static int read_records(FILE *f, struct record **out)
{
	struct record *r = NULL, one;
	size_t n = 0, cap = 0;
	char line[256];

	while (fgets(line, sizeof(line), f)) {
		if (!strchr(line, '\n'))
			break;
		if (sscanf(line, "- %lu %d", &one.ns, &one.ifindex) == 2) {
			size_t kept = 0;

			for (size_t i = 0; i < n; i++)
				if (r[i].ns != one.ns || r[i].ifindex != one.ifindex)
					r[kept++] = r[i];
			n = kept;
			continue;
		}
		if (sscanf(line, "p %lu %d", &one.ns, &one.ifindex) == 2) {
			for (size_t i = 0; i < n; i++)
				r[i].pinned |= r[i].ns == one.ns && r[i].ifindex == one.ifindex;
			continue;
		}
		/* An older tapflow's lines are records of attached hooks without the "+". */
		if (sscanf(line + (line[0] == '+'), " %lu %d %15s %15s %u %u %u", &one.ns,
			   &one.ifindex, one.mode, one.dir, &one.handle, &one.prio,
			   &one.prog_id) != 7)
			continue;
		one.pinned = false;
		if (n == cap) {
			struct record *nr = realloc(r, (cap ? cap * 2 : 16) * sizeof(*r));

			if (!nr) {
				free(r);
				return -1;
			}
			r = nr;
			cap = cap ? cap * 2 : 16;
		}
		r[n++] = one;
	}
	*out = r;
	return (int)n;
}

static bool has_magic(FILE *f)
{
	char line[32];

	return fgets(line, sizeof(line), f) && !strcmp(line, STATE_MAGIC);
}

/* A state file, opened and, if its owner is dead, locked by us. */
struct state_file {
	FILE *f;
	int pid;
	bool alive;
};

/*
 * Open a state file and tell whether its owner lives: it holds the lock
 * for its whole life, so a lock we can take means it is gone. how: the
 * lock to take if it is (LOCK_EX to clean up, LOCK_SH to look).
 */
static int state_file_open(int dirfd, const char *name, int how, struct state_file *sf)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	sf->alive = flock(fd, how | LOCK_NB) != 0;
	if (sf->alive && errno != EWOULDBLOCK) {
		close(fd);
		return -1;
	}
	sf->f = fdopen(fd, "r");
	if (!sf->f) {
		close(fd);
		return -1;
	}
	if (sscanf(name, "hooks.%d", &sf->pid) != 1)
		sf->pid = 0;
	if (!sf->alive && !has_magic(sf->f))
		sf->alive = sf->pid > 0 && (kill(sf->pid, 0) == 0 || errno == EPERM);
	rewind(sf->f);
	return 0;
}

/* Is the clsact filter of this record still the program it recorded? */
static bool record_still_attached(const struct record *r)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = r->ifindex,
			    .attach_point = strcmp(r->dir, "egress") ? BPF_TC_INGRESS
								     : BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = r->handle, .priority = r->prio);

	return bpf_tc_query(&hook, &q) == 0 && q.prog_id == r->prog_id;
}

/*
 * Remove a dead process's clsact filters in this netns (TCX links died
 * with it). Returns how many; *other_ns: filters it left in other netns,
 * for a start there to clean.
 */
static int clean_records(const struct record *r, int n, int pid, bool verbose, int *other_ns)
{
	int removed = 0;

	for (int i = 0; i < n; i++) {
		/* A pinned filter counts on for the next agent of its pin set. */
		if (strcmp(r[i].mode, "clsact") || r[i].pinned)
			continue;
		if (r[i].ns != tf_netns_inode()) {
			(*other_ns)++;
			continue;
		}
		/* Only if that slot still holds the dead process's program. */
		if (!record_still_attached(&r[i]))
			continue;
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = r[i].ifindex,
				    .attach_point = strcmp(r[i].dir, "egress") ? BPF_TC_INGRESS
									       : BPF_TC_EGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, del, .handle = r[i].handle,
				    .priority = r[i].prio);
		if (bpf_tc_detach(&hook, &del) == 0) {
			remove_qdisc_if_ours_and_empty(r[i].ifindex, false);
			removed++;
			if (verbose)
				fprintf(stderr, "tapflow: removed stale %s filter of pid %d from "
					"ifindex %d\n", r[i].dir, pid, r[i].ifindex);
		}
	}
	return removed;
}

/* Call fn on every state file but ours; how: the lock to take of a dead one's. */
static int for_each_state_file(int how, void (*fn)(const char *name, struct state_file *sf,
						    void *arg), void *arg)
{
	DIR *dir = opendir(STATE_DIR);
	struct dirent *de;

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		struct state_file sf = {};
		bool tmp = !strncmp(de->d_name, ".hooks.", 7);

		if (strncmp(de->d_name, "hooks.", 6) && !tmp)
			continue;
		if (state.fd >= 0 && !strcmp(strrchr(state.path, '/') + 1, de->d_name))
			continue;
		if (state_file_open(dirfd(dir), de->d_name, how, &sf))
			continue;
		fn(de->d_name, &sf, arg);
		fclose(sf.f);
	}
	closedir(dir);
	return 0;
}

struct stale_ctx {
	int removed;
	bool verbose;
};

static void clean_file(const char *name, struct state_file *sf, void *arg)
{
	struct stale_ctx *ctx = arg;
	struct record *r = NULL;
	int n, other_ns = 0;

	if (sf->alive)
		return;
	n = read_records(sf->f, &r);
	if (n < 0)
		return;
	ctx->removed += clean_records(r, n, sf->pid, ctx->verbose, &other_ns);
	free(r);
	/* Still locked by us: no one else reads it between our check and this. */
	if (!other_ns) {
		char path[300];

		snprintf(path, sizeof(path), STATE_DIR "/%s", name);
		unlink(path);
	}
}

int tf_attach_clean_stale(bool verbose)
{
	struct stale_ctx ctx = { .verbose = verbose };

	for_each_state_file(LOCK_EX, clean_file, &ctx);
	return ctx.removed;
}

struct state_ctx {
	int ifindex;
	enum tf_attach_state state;
	int orphan_pid;
};

static void state_of_file(const char *name, struct state_file *sf, void *arg)
{
	struct state_ctx *ctx = arg;
	struct record *r = NULL;
	int n = read_records(sf->f, &r);

	(void)name;
	for (int i = 0; i < n; i++) {
		if (r[i].ns != tf_netns_inode() || r[i].ifindex != ctx->ifindex)
			continue;
		if (sf->alive) {
			ctx->state = TF_ATTACH_STATE_LIVE;
		} else if (ctx->state != TF_ATTACH_STATE_LIVE && !strcmp(r[i].mode, "clsact") &&
			   !r[i].pinned && record_still_attached(&r[i])) {
			ctx->state = TF_ATTACH_STATE_ORPHANED;
			ctx->orphan_pid = sf->pid;
		}
	}
	free(r);
}

enum tf_attach_state tf_attach_state_of(int ifindex, int *orphan_pid)
{
	struct state_ctx ctx = { .ifindex = ifindex, .state = TF_ATTACH_STATE_NONE };

	if (for_each_state_file(LOCK_SH, state_of_file, &ctx))
		return errno == ENOENT ? TF_ATTACH_STATE_NONE : TF_ATTACH_STATE_UNKNOWN;
	/* Our own hooks are not in another file. */
	if (state.fd >= 0 && ctx.state == TF_ATTACH_STATE_NONE) {
		FILE *f = fopen(state.path, "r");

		if (f) {
			struct state_file self = { .f = f, .pid = (int)getpid(), .alive = true };

			state_of_file(NULL, &self, &ctx);
			fclose(f);
		}
	}
	if (orphan_pid)
		*orphan_pid = ctx.orphan_pid;
	return ctx.state;
}
