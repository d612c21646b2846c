// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tapflow.h"
#include "tapflow.skel.h"
#include "collector.h"
#include "log.h"

const char *tf_role_name(enum tf_role role)
{
	switch (role) {
	case TF_ROLE_TAP: return "tap";
	case TF_ROLE_BRIDGE: return "bridge";
	case TF_ROLE_UPLINK: return "uplink";
	case TF_ROLE_IFACE: return "iface";
	}
	return "?";
}

double tf_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tf_collector_open(struct tf_collector *c, const struct tf_collector_opts *opts,
		      char *err, size_t errlen)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		snprintf(err, errlen, "cannot count possible CPUs");
		return -1;
	}
	c->skel = tapflow_bpf__open();
	if (!c->skel) {
		snprintf(err, errlen, "cannot open BPF object: %s", strerror(errno));
		return -1;
	}
	ret = tapflow_bpf__load(c->skel);
	if (ret == -ESRCH || ret == -ENOENT) {
		/* libbpf's answer when it cannot read or use the kernel's BTF. */
		snprintf(err, errlen, "cannot load BPF programs: kernel BTF not usable (%s)%s",
			 strerror(-ret), tf_verbose ? "" : "; run with -v for details");
		tapflow_bpf__destroy(c->skel);
		c->skel = NULL;
		return -1;
	}
	if (ret) {
		snprintf(err, errlen, "cannot load BPF programs: %s%s", strerror(-ret),
			 tf_verbose ? "" : " (run with -v for the verifier log)");
		tapflow_bpf__destroy(c->skel);
		c->skel = NULL;
		return -1;
	}
	tf_attacher_init(&c->attacher, opts ? opts->attach_mode : TF_ATTACH_AUTO,
			 bpf_program__fd(c->skel->progs.tf_ingress),
			 bpf_program__fd(c->skel->progs.tf_egress));
	return 0;
}

int tf_collector_add(struct tf_collector *c, const char *ifname, enum tf_role role,
		     const struct tf_vif *vif, char *err, size_t errlen)
{
	int ifindex = (int)if_nametoindex(ifname);
	struct tf_target *t;

	if (!ifindex) {
		snprintf(err, errlen, "interface %s not found", ifname);
		return -1;
	}
	for (size_t i = 0; i < c->n_targets; i++) {
		t = &c->targets[i];
		if (t->ifindex != ifindex)
			continue;
		/* A tap keeps its VM; a host interface may be promoted to a tap. */
		if (role == TF_ROLE_TAP && t->role != TF_ROLE_TAP) {
			t->role = role;
			t->has_vif = vif != NULL;
			if (vif)
				t->vif = *vif;
		}
		return 0;
	}
	t = realloc(c->targets, (c->n_targets + 1) * sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->targets = t;
	t = &c->targets[c->n_targets++];
	memset(t, 0, sizeof(*t));
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	t->ifindex = ifindex;
	t->role = role;
	if (vif) {
		t->has_vif = true;
		t->vif = *vif;
	}
	return 0;
}

int tf_collector_attach(struct tf_collector *c, char *err, size_t errlen)
{
	int map_fd = bpf_map__fd(c->skel->maps.if_counters);
	size_t vsz = sizeof(struct tf_if_counters);
	void *zero = calloc((size_t)c->ncpus, vsz);

	if (!zero) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];
		__u32 key = (__u32)t->ifindex;

		/* Entry first, so the first packet after attach is counted. */
		if (bpf_map_update_elem(map_fd, &key, zero, BPF_ANY)) {
			snprintf(err, errlen, "cannot add %s to the counters map: %s",
				 t->ifname, strerror(errno));
			goto fail;
		}
		if (tf_hook_attach(&c->attacher, &t->hook, t->ifindex, t->ifname, err, errlen))
			goto fail;
	}
	free(zero);
	c->attach_t = tf_now_mono();
	for (size_t i = 0; i < c->n_targets; i++)
		c->targets[i].now_t = c->targets[i].prev_t = c->attach_t;
	return 0;
fail:
	free(zero);
	for (size_t i = 0; i < c->n_targets; i++)
		tf_hook_detach(&c->attacher, &c->targets[i].hook);
	return -1;
}

/* Sum the per-CPU values of one interface into VM-view totals. */
static int read_target(struct tf_collector *c, struct tf_target *t, void *buf)
{
	int map_fd = bpf_map__fd(c->skel->maps.if_counters);
	struct tf_if_counters sum = {};
	__u32 key = (__u32)t->ifindex;
	int rx, tx;

	if (bpf_map_lookup_elem(map_fd, &key, buf))
		return -errno;
	for (int cpu = 0; cpu < c->ncpus; cpu++) {
		const struct tf_if_counters *v = (const struct tf_if_counters *)buf + cpu;

		for (int d = 0; d < TF_HOOK_DIRS; d++) {
			sum.dir[d].packets += v->dir[d].packets;
			sum.dir[d].bytes += v->dir[d].bytes;
			sum.dir[d].segs += v->dir[d].segs;
		}
	}
	/* On a tap, TC ingress is what the VM sent: its tx. */
	rx = t->role == TF_ROLE_TAP ? TF_HOOK_EGRESS : TF_HOOK_INGRESS;
	tx = !rx;
	t->now.rx_packets = sum.dir[rx].packets;
	t->now.rx_bytes = sum.dir[rx].bytes;
	t->now.rx_segs = sum.dir[rx].segs;
	t->now.tx_packets = sum.dir[tx].packets;
	t->now.tx_bytes = sum.dir[tx].bytes;
	t->now.tx_segs = sum.dir[tx].segs;
	return 0;
}

/* Gone, or its ifindex now names another interface. */
static bool vanished(const struct tf_target *t)
{
	char name[IF_NAMESIZE];

	if (!if_indextoname((unsigned int)t->ifindex, name))
		return errno == ENXIO || errno == ENODEV;
	return strcmp(name, t->ifname) != 0;
}

int tf_collector_poll(struct tf_collector *c)
{
	void *buf = calloc((size_t)c->ncpus, sizeof(struct tf_if_counters));
	double now = tf_now_mono();
	int n_gone = 0;

	if (!buf)
		return 0;
	for (size_t i = 0; i < c->n_targets; i++) {
		struct tf_target *t = &c->targets[i];

		t->prev = t->now;
		t->prev_t = t->now_t;
		t->now_t = now;
		/* The map entry outlives the device: its last counters stay readable. */
		read_target(c, t, buf);
		if (!t->gone && vanished(t)) {
			t->gone = true;
			n_gone++;
		}
	}
	free(buf);
	return n_gone;
}

void tf_collector_losses(const struct tf_collector *c, struct tf_losses *out)
{
	memset(out, 0, sizeof(*out));
	if (c->skel && c->skel->bss)
		out->map_full = c->skel->bss->map_full;
}

void tf_collector_close(struct tf_collector *c)
{
	for (size_t i = 0; i < c->n_targets; i++)
		tf_hook_detach(&c->attacher, &c->targets[i].hook);
	if (c->skel) {
		tf_attacher_fini(&c->attacher);
		tapflow_bpf__destroy(c->skel);
	}
	free(c->targets);
	memset(c, 0, sizeof(*c));
}
