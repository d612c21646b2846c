// SPDX-License-Identifier: GPL-2.0
/*
 * The pin set of agent --pin (src/pin.c) against a real bpffs: the
 * tapflow object loaded twice over the same directory, as two agents one
 * after the other. The second load must reuse every pinned map as it is:
 * libbpf must not initialize a reused .bss again (the slot owners and the
 * loss counters live there), and the skeleton's mmapped .bss must be the
 * reused map, not a copy. A set of another layout (another --max-flows)
 * is replaced, not reused; --unpin leaves the directory empty.
 *
 * Needs root (CAP_BPF, a mounted /sys/fs/bpf); skipped with the reason
 * otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf/need_env.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pin.h"
#include "tapflow.h"
#include "tapflow.skel.h"

#define SLOT 7

static char dir[128];
static char skip_reason[256];
static int ncpus;

/* One agent's load: the object opened with max_flows entries, over the pin set in dir. */
struct load {
	struct tf_pin pin;
	struct tapflow_bpf *skel;
};

static void load_set(struct load *l, uint32_t max_flows)
{
	char err[512];

	assert_int_equal(tf_pin_open(&l->pin, dir, err, sizeof(err)), 0);
	l->skel = tapflow_bpf__open();
	assert_non_null(l->skel);
	assert_int_equal(bpf_map__set_max_entries(l->skel->maps.flows, max_flows), 0);
	assert_int_equal(tf_pin_maps(&l->pin, l->skel->obj, err, sizeof(err)), 0);
	assert_int_equal(tapflow_bpf__load(l->skel), 0);
	assert_int_equal(tf_pin_loaded(&l->pin, err, sizeof(err)), 0);
}

static void unload(struct load *l)
{
	tapflow_bpf__destroy(l->skel);
	tf_pin_close(&l->pin);
}

/* The id of a map: of a loaded one's fd, or of the one pinned at path. */
static uint32_t map_id(int fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static uint32_t pinned_id(const char *name)
{
	char path[256];
	uint32_t id;
	int fd;

	snprintf(path, sizeof(path), "%s/maps/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	id = map_id(fd);
	close(fd);
	return id;
}

static uint64_t slot_packets(const struct load *l)
{
	struct tf_if_counters *v = calloc((size_t)ncpus, sizeof(*v));
	uint32_t key = SLOT;
	uint64_t n = 0;

	assert_non_null(v);
	assert_int_equal(bpf_map__lookup_elem(l->skel->maps.if_counters, &key, sizeof(key), v,
					      (size_t)ncpus * sizeof(*v), 0), 0);
	for (int c = 0; c < ncpus; c++)
		n += v[c].dir[TF_HOOK_INGRESS].packets;
	free(v);
	return n;
}

static size_t entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* The first agent: a fresh set, counts and slot owners written as the programs and the collector would. */
static void first_agent(void)
{
	struct tf_if_counters *v = calloc((size_t)ncpus, sizeof(*v));
	struct tf_flow_key fk = { .ifindex = SLOT, .family = 4, .proto = 17 };
	struct tf_flow_value fv = { .rx = { .packets = 3, .bytes = 300, .segs = 3 } };
	struct load l;
	uint32_t key = SLOT;

	assert_non_null(v);
	load_set(&l, 4096);
	assert_false(l.pin.adopted);
	l.skel->bss->tf_if_owner[SLOT] = SLOT;
	l.skel->bss->map_full = 42;
	v[0].dir[TF_HOOK_INGRESS].packets = 5;
	assert_int_equal(bpf_map__update_elem(l.skel->maps.if_counters, &key, sizeof(key), v,
					      (size_t)ncpus * sizeof(*v), BPF_ANY), 0);
	assert_int_equal(bpf_map__update_elem(l.skel->maps.flows, &fk, sizeof(fk), &fv,
					      sizeof(fv), BPF_NOEXIST), 0);
	free(v);
	unload(&l);
}

static void test_reused_maps_keep_their_contents(void **state)
{
	struct tf_flow_key fk = { .ifindex = SLOT, .family = 4, .proto = 17 };
	struct tf_flow_value fv;
	struct load l;
	size_t bss_size;
	void *bss;

	(void)state;
	NEED_ENV();
	first_agent();
	load_set(&l, 4096);
	assert_true(l.pin.adopted);
	/* Every written map is the pinned one; the constants are this load's own. */
	assert_int_equal(map_id(bpf_map__fd(l.skel->maps.bss)), pinned_id("bss"));
	assert_int_equal(map_id(bpf_map__fd(l.skel->maps.flows)), pinned_id("flows"));
	assert_int_equal(pinned_id("rodata"), 0);
	/* .bss as the first agent left it: not initialized again. */
	assert_int_equal(l.skel->bss->tf_if_owner[SLOT], SLOT);
	assert_int_equal(l.skel->bss->map_full, 42);
	assert_int_equal(slot_packets(&l), 5);
	assert_int_equal(bpf_map__lookup_elem(l.skel->maps.flows, &fk, sizeof(fk), &fv,
					      sizeof(fv), 0), 0);
	assert_int_equal(fv.rx.bytes, 300);
	/* The skeleton's .bss is the reused map's memory: a write shows in the map. */
	l.skel->bss->parse_errors = 9;
	bss_size = bpf_map__value_size(l.skel->maps.bss);
	bss = calloc(1, bss_size);
	assert_non_null(bss);
	assert_int_equal(bpf_map__lookup_elem(l.skel->maps.bss, &(uint32_t){ 0 }, sizeof(uint32_t),
					      bss, bss_size, 0), 0);
	assert_memory_equal(bss, l.skel->bss, bss_size);
	free(bss);
	unload(&l);
}

static void test_other_layout_replaced(void **state)
{
	struct load l;

	(void)state;
	NEED_ENV();
	first_agent();
	/* Another --max-flows: another layout. The set is replaced, nothing of it mixed in. */
	load_set(&l, 1024);
	assert_false(l.pin.adopted);
	assert_int_equal(l.skel->bss->tf_if_owner[SLOT], 0);
	assert_int_equal(l.skel->bss->map_full, 0);
	assert_int_equal(slot_packets(&l), 0);
	unload(&l);
	/* And that one is taken over by the next agent of its layout. */
	load_set(&l, 1024);
	assert_true(l.pin.adopted);
	unload(&l);
}

static void test_layout(void **state)
{
	struct tapflow_bpf *a, *b;

	(void)state;
	a = tapflow_bpf__open();
	b = tapflow_bpf__open();
	assert_non_null(a);
	assert_non_null(b);
	assert_true(tf_pin_layout(a->obj) == tf_pin_layout(b->obj));
	bpf_map__set_max_entries(b->maps.flows, 1024);
	assert_true(tf_pin_layout(a->obj) != tf_pin_layout(b->obj));
	tapflow_bpf__destroy(a);
	tapflow_bpf__destroy(b);
}

static void test_unpin_leaves_nothing(void **state)
{
	char msg[512];
	struct load l;

	(void)state;
	NEED_ENV();
	first_agent();
	load_set(&l, 4096);
	unload(&l);
	assert_int_equal(tf_pin_unpin(dir, msg, sizeof(msg)), 0);
	print_message("# %s\n", msg);
	assert_int_equal(entries(dir), 0);
	/* Nothing there: said, not an error. */
	assert_int_equal(tf_pin_unpin(dir, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "nothing"));
}

static int setup(void **state)
{
	char msg[512];

	(void)state;
	/* Each test starts from no set at all. */
	if (!skip_reason[0])
		tf_pin_unpin(dir, msg, sizeof(msg));
	return 0;
}

static int group_setup(void **state)
{
	struct tapflow_bpf *s;

	(void)state;
	ncpus = libbpf_num_possible_cpus();
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/tft%d-pin", (int)getpid());
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "needs root");
		return 0;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(skip_reason, sizeof(skip_reason), "cannot create %s: %s", dir,
			 strerror(errno));
		return 0;
	}
	s = tapflow_bpf__open_and_load();
	if (!s)
		snprintf(skip_reason, sizeof(skip_reason), "cannot load the BPF object: %s",
			 strerror(errno));
	tapflow_bpf__destroy(s);
	return 0;
}

static int group_teardown(void **state)
{
	char msg[512];

	(void)state;
	if (!skip_reason[0])
		tf_pin_unpin(dir, msg, sizeof(msg));
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test_setup(test_reused_maps_keep_their_contents, setup),
		cmocka_unit_test_setup(test_other_layout_replaced, setup),
		cmocka_unit_test_setup(test_unpin_leaves_nothing, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
