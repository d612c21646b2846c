// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "drops.skel.h"
#include "drops.h"
#include "flows.h"
#include "log.h"
#include "oncpu.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* ---- the tracer ------------------------------------------------------------ */

/* The cookie of the network namespace we run in, 0 if the kernel cannot say (< 5.14). */
static uint64_t netns_cookie(void)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	close(fd);
	return cookie;
}

static int on_ringbuf(void *ctx, void *data, size_t size)
{
	struct tf_drop_tracer *t = ctx;

	if (size >= sizeof(struct tf_drop_event) && t->on_event)
		t->on_event(data, t->event_ctx);
	return 0;
}

/*
 * What the running kernel's BTF says of the kfree_skb tracepoint: does it
 * name drop reasons (enum skb_drop_reason, 5.17+), and does it pass rx_sk,
 * the receiving socket (6.12+; btf_trace_kfree_skb(void *, skb, location,
 * reason, rx_sk))? One read of the BTF for both.
 */
static void kfree_skb_btf(bool *reasons, bool *rx_sk)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t = NULL;
	int id;

	*reasons = *rx_sk = false;
	if (!btf)
		return;
	*reasons = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM) > 0;
	id = btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
	if (id > 0)
		t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type);
	if (t && btf_is_ptr(t))
		t = btf__type_by_id(btf, t->type);
	*rx_sk = t && btf_is_func_proto(t) && btf_vlen(t) >= 5;
	btf__free(btf);
}

/*
 * Load with one of the two entry points, with or without the raw
 * delivery marks; 0 or -errno.
 */
static int load_hook(struct tf_drop_tracer *t, bool btf_typed, uint32_t events_per_sec)
{
	int err;

	t->skel = drops_bpf__open();
	if (!t->skel)
		return -errno;
	bpf_program__set_autoload(t->skel->progs.tf_kfree_skb, btf_typed);
	bpf_program__set_autoload(t->skel->progs.tf_kfree_skb_raw, !btf_typed);
	t->skel->rodata->tf_events_per_sec = events_per_sec;
	t->skel->rodata->tf_has_rx_sk = t->rx_sk;
	if (!events_per_sec)
		bpf_map__set_max_entries(t->skel->maps.drop_events, 4096);	/* unused */
	err = drops_bpf__load(t->skel);
	if (err) {
		drops_bpf__destroy(t->skel);
		t->skel = NULL;
	}
	return err;
}

/* Move the drops waiting in a CPU's cache slots into the map (cpu -1: the calling CPU). */
static int flush_cpu(struct tf_drop_tracer *t, int cpu)
{
	return tf_run_on_cpu(bpf_program__fd(t->skel->progs.tf_drop_flush), cpu);
}

static int slot_pending(const void *slot)
{
	return tf_drop_slot_pending(slot);
}

void tf_drop_tracer_cache(const struct tf_drop_tracer *t, struct tf_percpu_cache *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->map_fd = bpf_map__fd(t->skel->maps.drop_cache);
	pc->flush_fd = bpf_program__fd(t->skel->progs.tf_drop_flush);
	pc->ncpus = t->nr_cpus;
	pc->nslots = TF_DROP_CACHE_SLOTS;
	pc->slot_size = sizeof(struct tf_drop_slot);
	pc->pending = slot_pending;
}

/*
 * Empty the cache slots of every CPU that has drops in them, so that the
 * map holds every drop counted before the slots were read (oncpu.h).
 */
static int flush_cache(struct tf_drop_tracer *t)
{
	struct tf_percpu_cache pc;
	int ret;

	if (!t->skel->bss->tf_drop_cache_on)
		return 0;
	tf_drop_tracer_cache(t, &pc);
	ret = tf_cache_flush(&pc);
	return ret < 0 ? ret : 0;
}

void tf_drop_tracer_watch(struct tf_drop_tracer *t, int ifindex, bool on)
{
	uint32_t key = (uint32_t)ifindex;
	uint64_t bit = 1ULL << (key % 64);
	uint8_t one = 1;

	if (!t->skel || ifindex <= 0)
		return;
	if (key < TF_DROP_IF_BITS) {
		if (on)
			__atomic_fetch_or(&t->skel->bss->tf_drop_if_bits[key / 64], bit, __ATOMIC_RELAXED);
		else
			__atomic_fetch_and(&t->skel->bss->tf_drop_if_bits[key / 64], ~bit,
					   __ATOMIC_RELAXED);
	} else if (on) {
		if (bpf_map__update_elem(t->skel->maps.drop_ifaces_big, &key, sizeof(key), &one,
					 sizeof(one), BPF_ANY))
			tf_warn("drops: cannot trace ifindex %u: %s", key, strerror(errno));
	} else {
		bpf_map__delete_elem(t->skel->maps.drop_ifaces_big, &key, sizeof(key), 0);
	}
}

int tf_drop_tracer_open(struct tf_drop_tracer *t, const int *ifindexes, size_t n,
			uint32_t events_per_sec, tf_drop_event_fn on_event, void *event_ctx,
			char *err, size_t errlen)
{
	bool force_raw, reasons;
	int ret;

	memset(t, 0, sizeof(*t));
	kfree_skb_btf(&reasons, &t->rx_sk);
	if (!reasons) {
		snprintf(err, errlen, "this kernel does not give drop reasons "
			 "(no enum skb_drop_reason in its BTF; Linux 5.17+)");
		return -1;
	}
	/* Tests force the fallback: TAPFLOW_DROPS_HOOK=raw_tp. */
	force_raw = getenv("TAPFLOW_DROPS_HOOK") && !strcmp(getenv("TAPFLOW_DROPS_HOOK"), "raw_tp");
	t->hook = "tp_btf/kfree_skb";
	ret = force_raw ? -EOPNOTSUPP : load_hook(t, true, events_per_sec);
	if (ret) {
		tf_debug("tp_btf/kfree_skb: %s; trying the raw tracepoint", strerror(-ret));
		t->hook = "raw_tp/kfree_skb";
		ret = load_hook(t, false, events_per_sec);
	}
	if (ret) {
		snprintf(err, errlen, "cannot load the kfree_skb tracer: %s%s", strerror(-ret),
			 tf_verbose ? "" : " (run with -v for details)");
		return -1;
	}
	t->skel->bss->tf_netns_cookie = netns_cookie();
	t->tick_ns = t->skel->kconfig->CONFIG_HZ ? 1000000000ULL / t->skel->kconfig->CONFIG_HZ : 1;
	t->nr_cpus = libbpf_num_possible_cpus();
	/* The per-CPU cache only where each CPU's slots can be emptied every poll. */
	ret = flush_cpu(t, -1);
	if (ret)
		tf_debug("drops: no per-CPU cache (cannot run tf_drop_flush: %s)", strerror(-ret));
	t->skel->bss->tf_drop_cache_on = !ret && t->nr_cpus > 0;
	for (size_t i = 0; i < n; i++)
		tf_drop_tracer_watch(t, ifindexes[i], true);
	if (events_per_sec) {
		t->on_event = on_event;
		t->event_ctx = event_ctx;
		t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.drop_events), on_ringbuf, t,
					 NULL);
		if (!t->rb) {
			snprintf(err, errlen, "cannot open the drop event ring buffer: %s",
				 strerror(errno));
			goto fail;
		}
	}
	if (tf_drop_tracer_attach(t, err, errlen))
		goto fail;
	return 0;
fail:
	tf_drop_tracer_close(t);
	return -1;
}

static struct tf_drop_seen **seen_slot(struct tf_drop_tracer *t, const struct tf_drop_key *k)
{
	struct tf_drop_seen **pp = &t->seen[tf_fnv1a(k, sizeof(*k)) % TF_DROP_SEEN_BUCKETS];

	for (; *pp; pp = &(*pp)->next)
		if (!memcmp(&(*pp)->k, k, sizeof(*k)))
			break;
	return pp;
}

static uint64_t ticks_ns(const struct tf_drop_value *v, uint64_t ticks, uint64_t tick_ns)
{
	return v->clock_ns + (uint64_t)((int64_t)(ticks - v->clock_ticks) * (int64_t)tick_ns);
}

bool tf_drop_counts_since(const struct tf_drop_value *last, const struct tf_drop_value *v,
			  uint64_t tick_ns, struct tf_drop_counts *out)
{
	if (v->packets <= last->packets)
		return false;
	out->packets = v->packets - last->packets;
	out->bytes = v->bytes - last->bytes;
	out->first_ns = ticks_ns(v, v->first_ticks, tick_ns);
	out->last_ns = ticks_ns(v, v->last_ticks, tick_ns);
	return true;
}

/* Report what an entry gained since it was last read (now: v), if anything. */
static void report_delta(const struct tf_drop_tracer *t, const struct tf_drop_key *k,
			 const struct tf_drop_value *last, const struct tf_drop_value *v,
			 tf_drop_entry_fn fn, void *ctx)
{
	struct tf_drop_counts d;

	if (tf_drop_counts_since(last, v, t->tick_ns, &d))
		fn(k, &d, ctx);
}

/*
 * Read every entry and report what it gained since the last poll. An entry
 * is taken out of the kernel map only once it has been idle for a whole
 * poll: the program adds to an entry through a pointer it looked up, so
 * deleting a busy one would lose the drops counted into it meanwhile.
 */
int tf_drop_tracer_harvest(struct tf_drop_tracer *t, tf_drop_entry_fn fn, void *ctx)
{
	struct tf_drop_key *keys, k;
	struct tf_drop_value v, v2;
	size_t n = 0;
	int fd, ret = 0;

	if (!t->skel)
		return 0;
	if (!t->seen) {
		t->seen = calloc(TF_DROP_SEEN_BUCKETS, sizeof(*t->seen));
		if (!t->seen)
			return -ENOMEM;
	}
	ret = flush_cache(t);
	if (ret)
		return ret;
	fd = bpf_map__fd(t->skel->maps.drops);
	/* The keys first: deleting while walking would restart the walk. */
	keys = malloc(TF_DROPS_MAP_DEFAULT * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	while (n < TF_DROPS_MAP_DEFAULT &&
	       !bpf_map_get_next_key(fd, n ? &keys[n - 1] : NULL, &keys[n]))
		n++;
	for (size_t i = 0; i < n; i++) {
		struct tf_drop_seen **pp, *s;

		k = keys[i];
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue;
		pp = seen_slot(t, &k);
		s = *pp;
		if (!s) {
			s = calloc(1, sizeof(*s));
			if (!s) {
				ret = -ENOMEM;
				break;
			}
			s->k = k;
			*pp = s;
		} else if (v.packets == s->v.packets) {
			/* Idle for a whole poll: out, with what came at the last instant. */
			if (!t->no_lookup_and_delete &&
			    bpf_map_lookup_and_delete_elem(fd, &k, &v2)) {
				if (errno == ENOENT) {
					v2 = v;
				} else if (tf_map_cmd_unsupported(-errno)) {
					t->no_lookup_and_delete = true;	/* before 5.14 */
				} else {
					ret = -errno;
					break;
				}
			}
			if (t->no_lookup_and_delete) {
				v2 = v;
				if (bpf_map_delete_elem(fd, &k) && errno != ENOENT) {
					ret = -errno;
					break;
				}
				t->harvest_races++;	/* a drop counted in between is lost */
			}
			report_delta(t, &k, &s->v, &v2, fn, ctx);
			*pp = s->next;
			free(s);
			continue;
		}
		report_delta(t, &k, &s->v, &v, fn, ctx);
		s->v = v;
	}
	free(keys);
	return ret;
}

int tf_drop_tracer_poll_events(struct tf_drop_tracer *t)
{
	return t->rb ? ring_buffer__consume(t->rb) : 0;
}

void tf_drop_tracer_losses(const struct tf_drop_tracer *t, struct tf_drop_losses *out)
{
	memset(out, 0, sizeof(*out));
	if (!t->skel || !t->skel->bss)
		return;
	out->map_full = t->skel->bss->drop_map_full;
	out->events_lost = t->skel->bss->events_lost;
	out->events_suppressed = t->skel->bss->events_suppressed;
	out->harvest_races = t->harvest_races;
}

void tf_drop_tracer_kept(const struct tf_drop_tracer *t, uint64_t out[TF_KEPT_KINDS])
{
	int n = libbpf_num_possible_cpus();
	struct tf_drop_kept *v;
	uint32_t zero = 0;

	memset(out, 0, TF_KEPT_KINDS * sizeof(*out));
	if (!t->skel || n <= 0)
		return;
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return;
	if (!bpf_map__lookup_elem(t->skel->maps.drop_kept, &zero, sizeof(zero), v,
				  (size_t)n * sizeof(*v), 0))
		for (int cpu = 0; cpu < n; cpu++)
			for (int k = 0; k < TF_KEPT_KINDS; k++)
				out[k] += v[cpu].n[k];
	free(v);
}

int tf_drop_tracer_attach(struct tf_drop_tracer *t, char *err, size_t errlen)
{
	struct bpf_program *prog = !strcmp(t->hook, "tp_btf/kfree_skb")
					   ? t->skel->progs.tf_kfree_skb
					   : t->skel->progs.tf_kfree_skb_raw;

	if (t->link)
		return 0;
	t->link = bpf_program__attach(prog);
	if (!t->link) {
		snprintf(err, errlen, "cannot attach to %s: %s", t->hook, strerror(errno));
		goto fail;
	}
	tf_debug("drops: attached to %s; %s", t->hook,
		 t->rx_sk ? "with rx_sk" : "no rx_sk (before 6.12)");
	return 0;
fail:
	tf_drop_tracer_detach(t);
	return -1;
}

void tf_drop_tracer_detach(struct tf_drop_tracer *t)
{
	bpf_link__destroy(t->link);
	t->link = NULL;
}

void tf_drop_tracer_close(struct tf_drop_tracer *t)
{
	for (size_t i = 0; t->seen && i < TF_DROP_SEEN_BUCKETS; i++) {
		for (struct tf_drop_seen *s = t->seen[i], *n; s; s = n) {
			n = s->next;
			free(s);
		}
	}
	free(t->seen);
	tf_drop_tracer_detach(t);
	ring_buffer__free(t->rb);
	drops_bpf__destroy(t->skel);
	memset(t, 0, sizeof(*t));
}
