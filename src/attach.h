/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Attach a pair of TC programs (ingress, egress) to an interface and remove
 * exactly what was added: TCX links where the kernel has them (they die with
 * the process), clsact + cls_bpf filters otherwise (recorded in a state file
 * so that the next start can remove those of a killed instance).
 */
#ifndef TF_ATTACH_H
#define TF_ATTACH_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

enum tf_attach_mode {
	TF_ATTACH_AUTO = 0,	/* TCX, else clsact */
	TF_ATTACH_TCX,
	TF_ATTACH_CLSACT,
};

const char *tf_attach_mode_name(enum tf_attach_mode mode);
/* "auto", "tcx", "clsact" -> mode; -1 if unknown. */
int tf_attach_mode_parse(const char *name);

/*
 * A pair of programs (ingress, egress). Each interface gets the pair of its
 * role: the flow programs on VM taps, the counters-only ones elsewhere.
 */
struct tf_progs {
	int fd[2];
	uint32_t id[2];			/* recorded for the stale cleanup */
};

/* Fill p from two program fds (looks up their ids). */
void tf_progs_init(struct tf_progs *p, int ingress_fd, int egress_fd);

struct tf_hook {
	int ifindex;
	char ifname[IFNAMSIZ];
	enum tf_attach_mode mode;	/* TCX or CLSACT once attached */
	bool attached;
	int link_fd[2];			/* TCX: ingress, egress */
	uint32_t handle[2], priority[2];/* clsact: what the kernel chose */
	bool created_qdisc;		/* clsact qdisc did not exist before us */
	struct tf_progs progs;		/* what is attached */
	/*
	 * A pin set (agent --pin, src/pin.h) holds it: it outlives the
	 * process, and the stale cleanup leaves it to the pin set.
	 */
	bool pinned;
};

/*
 * The hooks an earlier process left on an interface for this one to take
 * over (a pin set's): TCX links (link_fd >= 0), or clsact filters by
 * handle and priority. Their programs are swapped for the new ones in
 * place: no packet passes uncounted or is counted twice.
 */
struct tf_hook_adopt {
	int link_fd[2];			/* TCX: ingress, egress; -1: none */
	bool clsact;
	uint32_t handle[2], priority[2];
};

struct tf_attacher {
	enum tf_attach_mode want;	/* what the user asked for */
	enum tf_attach_mode chosen;	/* AUTO until the first attach decides */
	bool shares_state;		/* counted among the users of the state file */
};

int tf_attacher_init(struct tf_attacher *a, enum tf_attach_mode want);
/*
 * Attach progs (both directions) to ifindex. On failure nothing of this
 * hook stays attached; returns -errno and a one-line reason in err.
 */
int tf_hook_attach(struct tf_attacher *a, struct tf_hook *h, const struct tf_progs *progs,
		   int ifindex, const char *ifname, char *err, size_t errlen);
/*
 * The same with the hooks from (their programs replaced by progs, each
 * atomically); the link fds are the hook's from then on. On failure they
 * are left as they were; returns -errno and a one-line reason in err.
 */
int tf_hook_adopt(struct tf_attacher *a, struct tf_hook *h, const struct tf_progs *progs,
		  int ifindex, const char *ifname, const struct tf_hook_adopt *from, char *err,
		  size_t errlen);
/*
 * Remove what tf_hook_attach added. An interface that disappeared took its
 * hooks with it: that is not an error.
 */
void tf_hook_detach(struct tf_hook *h);
/* A pin set holds h from now on (h->pinned): the stale cleanup never removes it. */
void tf_hook_set_pinned(struct tf_hook *h);
/* Let go of a pinned hook without detaching it: it goes on counting. */
void tf_hook_release(struct tf_hook *h);
void tf_attacher_fini(struct tf_attacher *a);

/*
 * Remove the clsact filter (handle, priority) on ifindex's ingress
 * (dir 0) or egress (1), if it still runs program prog_id, and the qdisc
 * if tapflow made it and it is empty now. 0, or -ENOENT if it is not
 * there (or not that program any more).
 */
int tf_clsact_remove(int ifindex, int dir, uint32_t handle, uint32_t priority, uint32_t prog_id);
/* The id of the program the clsact filter (handle, priority) runs, 0 if none. */
uint32_t tf_clsact_prog_id(int ifindex, int dir, uint32_t handle, uint32_t priority);
/* The inode of this process's network namespace (0 if unknown). */
unsigned long tf_netns_inode(void);

/*
 * clsact filters left by tapflow processes that died without detaching
 * (SIGKILL) in this network namespace: remove them. Returns how many.
 */
int tf_attach_clean_stale(bool verbose);

enum tf_attach_state {
	TF_ATTACH_STATE_UNKNOWN = -1,	/* the state files cannot be read (not root) */
	TF_ATTACH_STATE_NONE = 0,
	TF_ATTACH_STATE_LIVE,		/* a running tapflow traces it */
	TF_ATTACH_STATE_ORPHANED,	/* clsact filters of a tapflow that was killed */
};

/*
 * What tapflow has attached to ifindex in this netns (for `list`);
 * *orphan_pid (may be NULL): the pid the killed process had.
 */
enum tf_attach_state tf_attach_state_of(int ifindex, int *orphan_pid);

#endif /* TF_ATTACH_H */
