/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fake kernel flow map behind struct tf_flow_map_ops, for the unit tests
 * that fill a struct tf_flows table (test_nat.c, test_drops.c). Define
 * FAKE_MAX (entries) and optionally FAKE_BATCH (the most entries one batch
 * returns) before including it.
 */
#ifndef TF_TEST_FAKE_FLOW_MAP_H
#define TF_TEST_FAKE_FLOW_MAP_H

#ifndef FAKE_BATCH
#define FAKE_BATCH FAKE_MAX
#endif


struct fake_map {
	bool used[FAKE_MAX];
	struct tf_flow_key keys[FAKE_MAX];
	struct tf_flow_value vals[FAKE_MAX];
};

static int fake_find(struct fake_map *m, const void *key)
{
	for (int i = 0; i < FAKE_MAX; i++)
		if (m->used[i] && !memcmp(&m->keys[i], key, sizeof(m->keys[i])))
			return i;
	return -1;
}

static int fake_batch(void *ctx, void *in, void *out, void *keys, void *values, uint32_t *count)
{
	struct fake_map *m = ctx;
	uint32_t pos = in ? *(uint32_t *)in : 0, n = 0;

	/* FAKE_BATCH < count: the table must follow the position across calls. */
	for (; pos < FAKE_MAX && n < *count && n < FAKE_BATCH; pos++) {
		if (!m->used[pos])
			continue;
		((struct tf_flow_key *)keys)[n] = m->keys[pos];
		((struct tf_flow_value *)values)[n] = m->vals[pos];
		n++;
	}
	*count = n;
	*(uint32_t *)out = pos;
	return pos >= FAKE_MAX ? -ENOENT : 0;
}

static int fake_next_key(void *ctx, const void *key, void *next)
{
	struct fake_map *m = ctx;

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
	memcpy(value, &m->vals[i], sizeof(m->vals[i]));
	return 0;
}

static int fake_delete(void *ctx, const void *key)
{
	struct fake_map *m = ctx;
	int i = fake_find(m, key);

	if (i < 0)
		return -ENOENT;
	m->used[i] = false;
	return 0;
}

static int fake_lad(void *ctx, const void *key, void *value)
{
	int err = fake_lookup(ctx, key, value);

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
