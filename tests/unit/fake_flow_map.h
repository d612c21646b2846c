/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fake kernel flow map behind struct tf_flow_map_ops, for the unit tests
 * that fill a struct tf_flows table (test_flows.c, test_nat.c,
 * test_drops.c): a VM flow map (values in vals), or with `uplink` set an
 * uplink flow map (values in up_vals, struct tf_uplink_value). Define
 * FAKE_MAX (entries) and optionally FAKE_BATCH (the most entries one batch
 * returns) and FAKE_CPUS (values per entry, for the per-CPU variant; set
 * nvalues to use them) before including it.
 */
#ifndef TF_TEST_FAKE_FLOW_MAP_H
#define TF_TEST_FAKE_FLOW_MAP_H

#ifndef FAKE_BATCH
#define FAKE_BATCH FAKE_MAX
#endif
#ifndef FAKE_CPUS
#define FAKE_CPUS 1
#endif

struct fake_map {
	bool used[FAKE_MAX];
	struct tf_flow_key keys[FAKE_MAX];
	struct tf_flow_value vals[FAKE_MAX][FAKE_CPUS];
	struct tf_uplink_value up_vals[FAKE_MAX][FAKE_CPUS];
	bool uplink;			/* an uplink flow map: up_vals */
	int nvalues;			/* values per entry the table reads; 0: 1 */
	bool no_batch, no_lad;		/* an old kernel: these commands fail */
	int batch_calls, lad_calls, next_key_calls;
	/* Packets that arrive between a plain lookup and its delete. */
	struct tf_flow_value in_flight;
};

static size_t fake_vsz(const struct fake_map *m)
{
	size_t one = m->uplink ? sizeof(struct tf_uplink_value) : sizeof(struct tf_flow_value);

	return one * (size_t)(m->nvalues > 0 ? m->nvalues : 1);
}

/* The values of entry i, as the kernel hands them out. */
static void *fake_row(struct fake_map *m, int i)
{
	return m->uplink ? (void *)m->up_vals[i] : (void *)m->vals[i];
}

static int fake_find(struct fake_map *m, const void *key)
{
	for (int i = 0; i < FAKE_MAX; i++)
		if (m->used[i] && !memcmp(&m->keys[i], key, sizeof(m->keys[i])))
			return i;
	return -1;
}

/* The entry of key: the existing one, or a new one with zero values. */
static int fake_slot(struct fake_map *m, const struct tf_flow_key *key)
{
	int i = fake_find(m, key);

	if (i >= 0)
		return i;
	for (i = 0; i < FAKE_MAX && m->used[i]; i++)
		;
	assert_true(i < FAKE_MAX);
	m->used[i] = true;
	m->keys[i] = *key;
	memset(m->vals[i], 0, sizeof(m->vals[i]));
	memset(m->up_vals[i], 0, sizeof(m->up_vals[i]));
	return i;
}

static int fake_batch(void *ctx, void *in, void *out, void *keys, void *values, uint32_t *count)
{
	struct fake_map *m = ctx;
	uint32_t pos = in ? *(uint32_t *)in : 0, n = 0;
	size_t vsz = fake_vsz(m);

	m->batch_calls++;
	if (m->no_batch) {
		*count = 0;
		return -EINVAL;
	}
	/* FAKE_BATCH < count: the table must follow the position across calls. */
	for (; pos < FAKE_MAX && n < *count && n < FAKE_BATCH; pos++) {
		if (!m->used[pos])
			continue;
		((struct tf_flow_key *)keys)[n] = m->keys[pos];
		memcpy((char *)values + n * vsz, fake_row(m, (int)pos), vsz);
		n++;
	}
	*count = n;
	*(uint32_t *)out = pos;
	return pos >= FAKE_MAX ? -ENOENT : 0;
}

static int fake_next_key(void *ctx, const void *key, void *next)
{
	struct fake_map *m = ctx;

	m->next_key_calls++;
	for (int i = key ? fake_find(m, key) + 1 : 0; i < FAKE_MAX; i++) {
		if (m->used[i]) {
			memcpy(next, &m->keys[i], sizeof(m->keys[i]));
			return 0;
		}
	}
	return -ENOENT;
}

static int fake_lookup(void *ctx, const void *key, void *value)
{
	struct fake_map *m = ctx;
	int i = fake_find(m, key);

	if (i < 0)
		return -ENOENT;
	memcpy(value, fake_row(m, i), fake_vsz(m));
	return 0;
}

static int fake_delete(void *ctx, const void *key)
{
	struct fake_map *m = ctx;
	int i = fake_find(m, key);

	if (i < 0)
		return -ENOENT;
	/* The race of the fallback: a packet landed after the lookup's copy. */
	if (m->in_flight.rx.packets || m->in_flight.tx.packets) {
		tf_flow_value_add(m->uplink ? &m->up_vals[i][0].flow : &m->vals[i][0],
				  &m->in_flight);
		memset(&m->in_flight, 0, sizeof(m->in_flight));
	}
	m->used[i] = false;
	return 0;
}

static int fake_lad(void *ctx, const void *key, void *value)
{
	struct fake_map *m = ctx;
	int err;

	m->lad_calls++;
	if (m->no_lad)
		return -EINVAL;
	err = fake_lookup(ctx, key, value);
	return err ? err : fake_delete(ctx, key);
}

static const struct tf_flow_map_ops fake_ops = {
	.lookup_batch = fake_batch,
	.get_next_key = fake_next_key,
	.lookup = fake_lookup,
	.lookup_and_delete = fake_lad,
	.delete_elem = fake_delete,
};

#endif /* TF_TEST_FAKE_FLOW_MAP_H */
