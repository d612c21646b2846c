// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>
#include <stdio.h>

#include "ksyms.h"
#include "log.h"
#include "preflight.h"

static int by_addr(const void *a, const void *b)
{
	const struct tf_ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

void tf_ksyms_free(struct tf_ksyms *k)
{
	free(k->syms);
	free(k->names);
	memset(k, 0, sizeof(*k));
}

int tf_ksyms_load(struct tf_ksyms *k, FILE *f)
{
	size_t cap = 0, ncap = 0, nlen = 0;
	char line[512], name[256], type;
	unsigned long long addr;
	size_t *off = NULL;
	int err = 0;

	memset(k, 0, sizeof(*k));
	while (fgets(line, sizeof(line), f)) {
		size_t len;

		/* "ffffffff81000000 T _stext [module]": the module part is not needed. */
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || !addr)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		len = strlen(name) + 1;
		if (k->n == cap) {
			size_t c = cap ? cap * 2 : 65536;
			struct tf_ksym *s = realloc(k->syms, c * sizeof(*s));
			size_t *o = realloc(off, c * sizeof(*o));

			if (s)
				k->syms = s;
			if (o)
				off = o;
			if (!s || !o) {
				err = -ENOMEM;
				goto out;
			}
			cap = c;
		}
		if (nlen + len > ncap) {
			size_t c = ncap ? ncap * 2 : 1 << 20;
			char *n;

			while (c < nlen + len)
				c *= 2;
			n = realloc(k->names, c);
			if (!n) {
				err = -ENOMEM;
				goto out;
			}
			k->names = n;
			ncap = c;
		}
		memcpy(k->names + nlen, name, len);
		off[k->n] = nlen;
		k->syms[k->n++].addr = addr;
		nlen += len;
	}
	if (!k->n) {
		err = -ENOENT;
		goto out;
	}
	/* Names last: the buffer moved while it grew. */
	for (size_t i = 0; i < k->n; i++)
		k->syms[i].name = k->names + off[i];
	qsort(k->syms, k->n, sizeof(*k->syms), by_addr);
out:
	free(off);
	if (err)
		tf_ksyms_free(k);
	return err;
}

void tf_ksyms_name(const struct tf_ksyms *k, uint64_t addr, char *out, size_t outlen)
{
	size_t lo = 0, hi = k->n;

	/* The last symbol at or below addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo) {
		snprintf(out, outlen, "0x%" PRIx64, addr);
		return;
	}
	snprintf(out, outlen, "%s+0x%" PRIx64, k->syms[lo - 1].name, addr - k->syms[lo - 1].addr);
}

void tf_drop_reasons_free(struct tf_drop_reasons *r)
{
	for (uint32_t i = 0; r->names && i < r->n; i++)
		free(r->names[i]);
	free(r->names);
	memset(r, 0, sizeof(*r));
}

int tf_drop_reasons_load(struct tf_drop_reasons *r, const struct btf *btf)
{
	static const char prefix[] = "SKB_DROP_REASON_";
	const struct btf_type *t;
	const struct btf_enum *e;
	uint32_t max = 0;
	int id;

	memset(r, 0, sizeof(*r));
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	if (id <= 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *name = btf__name_by_offset(btf, e[i].name_off);

		if (name && !strcmp(name, "SKB_DROP_REASON_SUBSYS_MASK")) {
			r->subsys_mask = (uint32_t)e[i].val;
			continue;
		}
		/* Values beyond the reasons proper (SUBSYS_MASK) do not size the table. */
		if ((uint32_t)e[i].val < 0x10000 && (uint32_t)e[i].val + 1 > max)
			max = (uint32_t)e[i].val + 1;
	}
	r->names = calloc(max ? max : 1, sizeof(*r->names));
	if (!r->names)
		return -ENOMEM;
	r->n = max;
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *name = btf__name_by_offset(btf, e[i].name_off);
		uint32_t v = (uint32_t)e[i].val;

		if (!name || v >= max || r->names[v])
			continue;
		if (!strncmp(name, prefix, sizeof(prefix) - 1))
			name += sizeof(prefix) - 1;
		else if (!strncmp(name, "SKB_", 4))
			name += 4;	/* SKB_CONSUMED, SKB_NOT_DROPPED_YET */
		r->names[v] = strdup(name);
		if (!r->names[v]) {
			tf_drop_reasons_free(r);
			return -ENOMEM;
		}
	}
	return 0;
}

void tf_drop_reason_name(const struct tf_drop_reasons *r, uint32_t reason, char *out,
			 size_t outlen)
{
	uint32_t mask = r->subsys_mask ? r->subsys_mask : 0xffff0000u;

	if (reason < r->n && r->names[reason]) {
		snprintf(out, outlen, "%s", r->names[reason]);
	} else if (reason & mask) {
		/* A subsystem's own reasons: <subsystem id> << 16 | its reason. */
		snprintf(out, outlen, "SUBSYS_%u:%u", (reason & mask) >> 16, reason & ~mask);
	} else {
		snprintf(out, outlen, "%u", reason);
	}
}

int tf_drop_names_load(struct tf_drop_reasons *reasons, struct tf_ksyms *ksyms)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool hidden = false;
	FILE *f;
	int err;

	if (!btf) {
		tf_err("cannot read the kernel's BTF: %s", strerror(errno));
		return -1;
	}
	err = tf_drop_reasons_load(reasons, btf);
	btf__free(btf);
	if (err) {
		tf_err("this kernel does not name drop reasons (no enum skb_drop_reason; "
		       "Linux 5.17+)");
		return -1;
	}
	f = fopen("/proc/kallsyms", "r");
	if (!f) {
		err = -errno;
	} else {
		err = tf_ksyms_load(ksyms, f);
		fclose(f);
		/* Read, but no symbol had an address: the kernel hid them from us. */
		hidden = err == -ENOENT;
	}
	if (err) {
		char why[256];

		if (hidden)
			tf_kallsyms_hidden_why(why, sizeof(why));
		else
			snprintf(why, sizeof(why), "cannot read /proc/kallsyms: %s", strerror(-err));
		tf_warn("drop locations are shown as addresses: %s", why);
	}
	return 0;
}
