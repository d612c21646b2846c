/* SPDX-License-Identifier: GPL-2.0 */
/*
 * agent --pin DIR: the agent's kernel side pinned on bpffs, so that its
 * programs go on counting while no agent runs (an upgrade, a crash, a
 * SIGKILL), and the next agent with the same DIR takes it over: no packet
 * missed, none counted twice, every series going on. DIR holds (bpffs
 * takes no '.' in a name):
 *
 *   meta          array map: magic, the version and layout of the tapflow
 *                 that made the set, its network namespace; written last,
 *                 so a set without it is incomplete
 *   maps/<name>   every map of the tapflow object its programs write to,
 *                 .bss (slot owners, loss counters) as maps/bss; the
 *                 read-only ones (.rodata, .kconfig) are constants of each
 *                 load and are made afresh
 *   links/<ifname>-<ifindex>-<ingress|egress>
 *                 the TCX links ('.' and '%' of a name as %2e, %25)
 *   hooks         hash map: the clsact filters (they outlive their process
 *                 by themselves) by ifindex and direction
 *   targets       hash map: what a target carries that the kernel maps do
 *                 not: restarts, base totals, earlier ifindexes, the name
 *                 its series carry (struct tf_pin_record)
 *
 * A set is taken over whole, by an agent of the same layout (the maps'
 * names, types, sizes and the BTF layout of their keys and values, so
 * --max-flows too) in the same network namespace. Any other set in DIR is
 * replaced, with one line saying so, never mixed with.
 */
#ifndef TF_PIN_H
#define TF_PIN_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "attach.h"

struct bpf_object;

/* Earlier ifindexes a record keeps (the collector's TF_OLD_IFINDEXES). */
#define TF_PIN_OLD 4

/* A target's identity across agents: the same VM NIC, or the same name in a role. */
struct tf_pin_key {
	__u8 role;		/* enum tf_role */
	__u8 vif;		/* 1: a VM NIC, id "<uuid> <mac>"; 0: id is the interface name */
	__u8 pad[2];
	char id[64];
};

/* Totals as struct tf_totals holds them: rx packets, bytes, segs, tx the same. */
#define TF_PIN_TOTALS 6

struct tf_pin_record {
	__u32 ifindex;		/* where it was traced last */
	__u32 live;		/* 1: its counts are in the maps at ifindex, on top of base */
	__u32 restarts;
	__s32 old_ifindex[TF_PIN_OLD];
	char ifname[16];	/* its name at ifindex */
	char label[16];		/* the name its series carry: the first it was traced under */
	__u64 gone_at;		/* CLOCK_REALTIME (s) when it went; 0 while live */
	/* base, base_overflow, base_unparsed; not live: its final totals */
	__u64 base[3][TF_PIN_TOTALS];
};

/* A hook an earlier agent left for this one to take over. */
struct tf_pin_hook {
	int ifindex;
	char ifname[IFNAMSIZ];
	struct tf_hook_adopt from;
	uint32_t prog_id[2];	/* clsact: the program each filter runs */
	bool taken;		/* a target took it: its fds are the target's hook's */
};

struct tf_pin {
	char dir[PATH_MAX - 64];
	int dir_fd;		/* held with flock: one agent per DIR */
	bool adopted;		/* a set of this layout was there: its maps were reused */
	uint64_t layout;
	int meta_fd, targets_fd, hooks_fd;
	struct tf_pin_hook *hooks;
	size_t n_hooks;
	struct tf_pin_key *keys;	/* the targets map, as read and written */
	struct tf_pin_record *recs;
	size_t n_recs;
};

/*
 * DIR must be on bpffs; it is created (0700) if missing, and locked
 * against a second agent. 0, or -1 with a one-line reason in err.
 */
int tf_pin_open(struct tf_pin *p, const char *dir, char *err, size_t errlen);
/*
 * The layout of obj as opened (its maps sized): what a set must match to
 * be taken over.
 */
uint64_t tf_pin_layout(struct bpf_object *obj);
/*
 * Before obj is loaded: take the set in DIR over if its layout is obj's
 * (libbpf then reuses every pinned map as it is: contents, .bss included,
 * untouched), else replace it (one line); obj's maps pinned at load. 0, or
 * -1 with a reason in err.
 */
int tf_pin_maps(struct tf_pin *p, struct bpf_object *obj, char *err, size_t errlen);
/*
 * After obj is loaded: the meta and state maps, the records, and the hooks
 * to take over (those whose interface is gone or renamed are removed).
 * 0, or -1 with a reason in err.
 */
int tf_pin_loaded(struct tf_pin *p, char *err, size_t errlen);
/* The hooks left on ifindex, if no target took them yet; NULL if none. */
struct tf_pin_hook *tf_pin_hook_find(struct tf_pin *p, int ifindex);
/* Remove hooks that no target took: detached, unpinned. */
void tf_pin_hook_remove(struct tf_pin *p, struct tf_pin_hook *ph);
/* Pin h (its TCX links, or its clsact filters' record) and mark it pinned. 0, or -errno. */
int tf_pin_hook_keep(struct tf_pin *p, struct tf_hook *h);
/* h was detached (its interface went): its pins go too. */
void tf_pin_hook_forget(struct tf_pin *p, const struct tf_hook *h);

/* The record of k, or NULL. */
const struct tf_pin_record *tf_pin_record_find(const struct tf_pin *p, const struct tf_pin_key *k);
/* The index of the live record at ifindex, or -1 (*k: its key). */
long tf_pin_record_live_at(const struct tf_pin *p, int ifindex, const struct tf_pin_key **k);
/* Write k's record (the oldest gone record makes room if the map is full). 0, or -errno. */
int tf_pin_record_put(struct tf_pin *p, const struct tf_pin_key *k, const struct tf_pin_record *r);

/* Let go of DIR (the pins stay). */
void tf_pin_close(struct tf_pin *p);
/*
 * agent --unpin DIR: detach and unpin everything tapflow pinned in DIR.
 * 0 with what was removed in msg, or -1 with a reason in msg.
 */
int tf_pin_unpin(const char *dir, char *msg, size_t msglen);

#endif /* TF_PIN_H */
