// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "log.h"
#include "pin.h"

#define META_MAGIC "tapflow-pins 1"
/* Room for every target a host has seen: VM NICs come and go over months. */
#define TARGETS_MAX 65536
/* Two per traced interface, and TF_MAX_IFACES of those at most. */
#define HOOKS_MAX 8192
/* A BPF_LINK_TYPE_TCX link (uapi 6.6+; Debian 12's headers predate it). */
#define LINK_TYPE_TCX 11

/* What made the set: an agent of another layout or namespace does not take it over. */
struct meta {
	char magic[16];
	char version[32];		/* TAPFLOW_VERSION */
	__u64 layout;			/* tf_pin_layout() */
	__u64 netns;			/* tf_netns_inode() */
};

struct hook_key {
	__u32 ifindex;
	__u32 dir;			/* 0 ingress, 1 egress */
};

struct hook_val {
	__u32 handle, priority, prog_id, pad;
	char ifname[16];
};

/* struct bpf_link_info as far as a TCX link fills it (uapi 6.6+). */
struct tcx_link_info {
	__u32 type, id, prog_id, pad;
	__u32 ifindex, attach_type;
	__u8 rest[48];
};

static const char *const dir_name[2] = { "ingress", "egress" };

/* ---- the layout -------------------------------------------------------------- */

static void h_bytes(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 0x100000001b3ULL;
	}
}

static void h_u64(uint64_t *h, uint64_t v)
{
	h_bytes(h, &v, sizeof(v));
}

static void h_str(uint64_t *h, const char *s)
{
	h_bytes(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* How a type lays out its bytes: sizes, offsets, field names, element counts. */
static void h_type(uint64_t *h, const struct btf *btf, __u32 id, int depth)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_mod(t) || btf_is_typedef(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || depth > 16) {
		h_u64(h, 0);
		return;
	}
	h_u64(h, btf_kind(t));
	switch (btf_kind(t)) {
	case BTF_KIND_INT:
		h_u64(h, t->size);
		h_u64(h, btf_int_encoding(t));
		h_u64(h, btf_int_bits(t));
		break;
	case BTF_KIND_ARRAY:
		h_u64(h, btf_array(t)->nelems);
		h_type(h, btf, btf_array(t)->type, depth + 1);
		break;
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		h_u64(h, t->size);
		for (__u16 i = 0; i < btf_vlen(t); i++) {
			const struct btf_member *m = btf_members(t) + i;

			h_str(h, btf__name_by_offset(btf, m->name_off));
			h_u64(h, btf_member_bit_offset(t, i));
			h_u64(h, btf_member_bitfield_size(t, i));
			h_type(h, btf, m->type, depth + 1);
		}
		break;
	case BTF_KIND_DATASEC:
		for (__u16 i = 0; i < btf_vlen(t); i++) {
			const struct btf_var_secinfo *v = btf_var_secinfos(t) + i;
			const struct btf_type *var = btf__type_by_id(btf, v->type);

			h_u64(h, v->offset);
			h_u64(h, v->size);
			h_str(h, var ? btf__name_by_offset(btf, var->name_off) : NULL);
			if (var)
				h_type(h, btf, var->type, depth + 1);
		}
		break;
	case BTF_KIND_VAR:
		h_type(h, btf, t->type, depth + 1);
		break;
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		h_u64(h, t->size);
		break;
	default:
		break;
	}
}

/* Read-only maps hold each load's constants, not counts: never pinned. */
static bool pinned_kind(const struct bpf_map *m)
{
	return !(bpf_map__map_flags(m) & BPF_F_RDONLY_PROG);
}

uint64_t tf_pin_layout(struct bpf_object *obj)
{
	const struct btf *btf = bpf_object__btf(obj);
	uint64_t h = 0xcbf29ce484222325ULL;
	struct bpf_map *m;

	h_str(&h, META_MAGIC);
	/* The pin set's own maps. */
	h_u64(&h, sizeof(struct tf_pin_key));
	h_u64(&h, sizeof(struct tf_pin_record));
	h_u64(&h, sizeof(struct hook_val));
	bpf_object__for_each_map(m, obj) {
		if (!pinned_kind(m))
			continue;
		h_str(&h, bpf_map__name(m));
		h_u64(&h, bpf_map__type(m));
		h_u64(&h, bpf_map__key_size(m));
		h_u64(&h, bpf_map__value_size(m));
		h_u64(&h, bpf_map__max_entries(m));
		h_u64(&h, bpf_map__map_flags(m));
		if (btf && bpf_map__btf_key_type_id(m))
			h_type(&h, btf, bpf_map__btf_key_type_id(m), 0);
		if (btf && bpf_map__btf_value_type_id(m))
			h_type(&h, btf, bpf_map__btf_value_type_id(m), 0);
	}
	return h;
}

/* ---- names ------------------------------------------------------------------- */

/*
 * A map's pin name: bpffs takes no '.', so an internal map is named by its
 * section, .bss (tapflow_.bss) as "bss", .data.x as "data_x".
 */
static const char *pin_name(const struct bpf_map *m, char *out, size_t len)
{
	const char *dot = strchr(bpf_map__name(m), '.');

	snprintf(out, len, "%s", dot ? dot + 1 : bpf_map__name(m));
	for (char *c = out; (c = strchr(c, '.')); c++)
		*c = '_';
	return out;
}

/* An interface name as a bpffs name: '.' and '%' as %2e and %25. */
static void esc_ifname(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 4 < len; in++) {
		if (*in == '.' || *in == '%')
			o += (size_t)snprintf(out + o, len - o, "%%%02x", (unsigned char)*in);
		else
			out[o++] = *in;
	}
	out[o] = '\0';
}

static void link_name(const char *ifname, int ifindex, int dir, char *out, size_t len)
{
	char esc[3 * IFNAMSIZ + 1];

	esc_ifname(ifname, esc, sizeof(esc));
	snprintf(out, len, "%s-%d-%s", esc, ifindex, dir_name[dir]);
}

/* "<esc ifname>-<ifindex>-<dir>" -> its parts; false if it is not one. */
static bool parse_link_name(const char *name, char *esc, size_t esclen, int *ifindex, int *dir)
{
	const char *d = strrchr(name, '-'), *i;
	char *end;
	long v;

	if (!d || d == name)
		return false;
	if (!strcmp(d + 1, "ingress"))
		*dir = 0;
	else if (!strcmp(d + 1, "egress"))
		*dir = 1;
	else
		return false;
	for (i = d - 1; i > name && *i != '-'; i--)
		;
	if (*i != '-' || i == name || (size_t)(i - name) >= esclen)
		return false;
	v = strtol(i + 1, &end, 10);
	if (end != d || v <= 0 || v > INT32_MAX)
		return false;
	*ifindex = (int)v;
	memcpy(esc, name, (size_t)(i - name));
	esc[i - name] = '\0';
	return true;
}

/* Does ifindex name the interface esc (an escaped name) now? */
static bool names(int ifindex, const char *esc)
{
	char name[IF_NAMESIZE], e[3 * IFNAMSIZ + 1];

	if (ifindex <= 0 || !if_indextoname((unsigned int)ifindex, name))
		return false;
	esc_ifname(name, e, sizeof(e));
	return !strcmp(e, esc);
}

/* ---- the directory ------------------------------------------------------------- */

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && (unsigned long)st.f_type == (unsigned long)BPF_FS_MAGIC;
}

int tf_pin_open(struct tf_pin *p, const char *dir, char *err, size_t errlen)
{
	char parent[sizeof(p->dir)], *slash;
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->dir_fd = p->meta_fd = p->targets_fd = p->hooks_fd = -1;
	if (strlen(dir) >= sizeof(p->dir)) {
		snprintf(err, errlen, "--pin %s: the path is too long", dir);
		return -1;
	}
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	if (stat(dir, &st)) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "--pin %s: %s", dir, strerror(errno));
			return -1;
		}
		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (slash)
			*(slash == parent ? slash + 1 : slash) = '\0';
		else
			snprintf(parent, sizeof(parent), ".");
		if (!on_bpffs(parent)) {
			snprintf(err, errlen, "--pin %s: %s is not on a BPF filesystem (bpffs, "
				 "e.g. /sys/fs/bpf): pins live there", dir, parent);
			return -1;
		}
		if (mkdir(dir, 0700) && errno != EEXIST) {
			snprintf(err, errlen, "--pin %s: cannot create it: %s", dir, strerror(errno));
			return -1;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "--pin %s: not a directory", dir);
		return -1;
	}
	if (!on_bpffs(dir)) {
		snprintf(err, errlen, "--pin %s: not on a BPF filesystem (bpffs, e.g. /sys/fs/bpf): "
			 "pins live there", dir);
		return -1;
	}
	p->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dir_fd < 0) {
		snprintf(err, errlen, "--pin %s: %s", dir, strerror(errno));
		return -1;
	}
	/* Two agents on one set would each take the other's hooks over. */
	if (flock(p->dir_fd, LOCK_EX | LOCK_NB)) {
		snprintf(err, errlen, "--pin %s: %s", dir, errno == EWOULDBLOCK
			 ? "another tapflow agent uses it" : strerror(errno));
		close(p->dir_fd);
		p->dir_fd = -1;
		return -1;
	}
	return 0;
}

/* dir/sub/name ("" if it does not fit: no call then finds a file there). */
static void path_of(const char *dir, const char *sub, const char *name, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s%s%s", dir, sub, sub[0] ? "/" : "", name);

	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

/* The meta of the set in dir: 0, -ENOENT (none), or -EINVAL (not one of ours). */
static int read_meta(const char *dir, struct meta *m)
{
	char path[PATH_MAX];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), key = 0;
	int fd, ret = 0;

	memset(m, 0, sizeof(*m));
	path_of(dir, "", "meta", path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EINVAL;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_MAP_TYPE_ARRAY ||
	    info.key_size != sizeof(key) || info.value_size != sizeof(*m) ||
	    bpf_map_lookup_elem(fd, &key, m) || strncmp(m->magic, META_MAGIC, sizeof(m->magic)))
		ret = -EINVAL;
	close(fd);
	m->version[sizeof(m->version) - 1] = '\0';
	return ret;
}

/* Entries of dir/sub (0 if it is not there). */
static size_t count_entries(const char *dir, const char *sub)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	path_of(dir, sub, "", path, sizeof(path));
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX];

	path_of(dir, "", name, path, sizeof(path));
	return !access(path, F_OK);
}

/* What remove_set took away. */
struct removed {
	size_t links, hooks, maps;
	int *ifindex;			/* the interfaces whose hooks went */
	size_t ifaces;
};

static void count_iface(struct removed *r, int ifindex)
{
	int *n;

	for (size_t i = 0; i < r->ifaces; i++)
		if (r->ifindex[i] == ifindex)
			return;
	n = realloc(r->ifindex, (r->ifaces + 1) * sizeof(*n));
	if (!n)
		return;
	r->ifindex = n;
	r->ifindex[r->ifaces++] = ifindex;
}

/* Detach and unpin every link in dir/links. */
static void remove_links(const char *dir, struct removed *r)
{
	char path[PATH_MAX], esc[3 * IFNAMSIZ + 1];
	DIR *d;
	struct dirent *e;

	path_of(dir, "links", "", path, sizeof(path));
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd, ifindex, dir_i;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		path_of(dir, "links", e->d_name, path, sizeof(path));
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			/* Detached first: unpinned only, it would count until its last fd goes. */
			bpf_link_detach(fd);
			close(fd);
		}
		if (!unlink(path)) {
			r->links++;
			if (parse_link_name(e->d_name, esc, sizeof(esc), &ifindex, &dir_i))
				count_iface(r, ifindex);
		}
	}
	closedir(d);
}

/* Remove every clsact filter dir/hooks records (if it still runs its program). */
static void remove_hooks(const char *dir, struct removed *r)
{
	char path[PATH_MAX];
	struct hook_key k, next;
	struct hook_val v;
	bool first = true;
	int fd;

	path_of(dir, "", "hooks", path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		while (!bpf_map_get_next_key(fd, first ? NULL : &k, &next)) {
			first = false;
			k = next;
			if (bpf_map_lookup_elem(fd, &k, &v))
				continue;
			if (!tf_clsact_remove((int)k.ifindex, (int)k.dir, v.handle, v.priority,
					      v.prog_id)) {
				r->hooks++;
				count_iface(r, (int)k.ifindex);
			}
		}
		close(fd);
	}
	unlink(path);
}

static void remove_maps(const char *dir, struct removed *r)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;

	path_of(dir, "maps", "", path, sizeof(path));
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		path_of(dir, "maps", e->d_name, path, sizeof(path));
		r->maps += !unlink(path);
	}
	closedir(d);
}

/*
 * Everything of a set: the meta first, so that a set half removed reads
 * as incomplete and is removed again; then the hooks, which would count on
 * into maps nobody reads; then the maps.
 */
static void remove_set(const char *dir, struct removed *r)
{
	char path[PATH_MAX];

	memset(r, 0, sizeof(*r));
	path_of(dir, "", "meta", path, sizeof(path));
	r->maps += !unlink(path);
	remove_links(dir, r);
	remove_hooks(dir, r);
	path_of(dir, "", "targets", path, sizeof(path));
	r->maps += !unlink(path);
	remove_maps(dir, r);
	path_of(dir, "links", "", path, sizeof(path));
	rmdir(path);
	path_of(dir, "maps", "", path, sizeof(path));
	rmdir(path);
}

/* Every map obj will pin is pinned in dir: the set can be reused whole. */
static bool maps_all_there(const char *dir, struct bpf_object *obj)
{
	char path[PATH_MAX], name[64];
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		if (!pinned_kind(m))
			continue;
		path_of(dir, "maps", pin_name(m, name, sizeof(name)), path, sizeof(path));
		if (access(path, F_OK))
			return false;
	}
	return exists(dir, "targets");
}

int tf_pin_maps(struct tf_pin *p, struct bpf_object *obj, char *err, size_t errlen)
{
	char path[PATH_MAX], name[64];
	struct bpf_map *m;
	struct meta meta;
	struct removed r;
	int ret;

	p->layout = tf_pin_layout(obj);
	ret = read_meta(p->dir, &meta);
	if (!ret && meta.netns != tf_netns_inode()) {
		snprintf(err, errlen, "the pins in %s were made in another network namespace: "
			 "use another directory, or remove them there (tapflow --netns NAME agent "
			 "--unpin %s)", p->dir, p->dir);
		return -1;
	}
	p->adopted = !ret && meta.layout == p->layout && maps_all_there(p->dir, obj);
	if (!p->adopted) {
		bool any = ret != -ENOENT || count_entries(p->dir, "maps") ||
			   count_entries(p->dir, "links") || exists(p->dir, "targets") ||
			   exists(p->dir, "hooks");

		remove_set(p->dir, &r);
		free(r.ifindex);
		if (!ret && meta.layout == p->layout)
			tf_note("pins in %s are incomplete (a map is missing): replaced; counts "
				"start again", p->dir);
		else if (!ret)
			tf_note("pins in %s are from tapflow %s (another layout): replaced; counts "
				"start again", p->dir, meta.version[0] ? meta.version : "?");
		else if (ret == -EINVAL)
			tf_note("pins in %s are not tapflow's or unreadable: replaced; counts start "
				"again", p->dir);
		else if (any)
			tf_note("pins in %s are incomplete (an agent stopped while making them): "
				"replaced; counts start again", p->dir);
	}
	for (const char *sub = "maps"; sub; sub = strcmp(sub, "maps") ? NULL : "links") {
		path_of(p->dir, sub, "", path, sizeof(path));
		if (mkdir(path, 0700) && errno != EEXIST) {
			snprintf(err, errlen, "--pin %s: cannot create %s: %s", p->dir, path,
				 strerror(errno));
			return -1;
		}
	}
	bpf_object__for_each_map(m, obj) {
		if (!pinned_kind(m))
			continue;
		path_of(p->dir, "maps", pin_name(m, name, sizeof(name)), path, sizeof(path));
		ret = bpf_map__set_pin_path(m, path);
		if (ret) {
			snprintf(err, errlen, "--pin %s: %s", p->dir, strerror(-ret));
			return -1;
		}
	}
	return 0;
}

/* ---- after the load ------------------------------------------------------------ */

/* The map pinned at dir/name, or a new one pinned there. fd, or -errno. */
static int map_at(const char *dir, const char *name, enum bpf_map_type type, __u32 key,
		  __u32 value, __u32 max, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	char path[PATH_MAX];
	int fd;

	path_of(dir, "", name, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0)
		return fd;
	fd = bpf_map_create(type, name, key, value, max, &opts);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int load_records(struct tf_pin *p)
{
	struct tf_pin_key k, next;
	bool first = true;

	while (!bpf_map_get_next_key(p->targets_fd, first ? NULL : &k, &next)) {
		struct tf_pin_record r;
		void *nk, *nr;

		first = false;
		k = next;
		if (bpf_map_lookup_elem(p->targets_fd, &k, &r))
			continue;
		nk = realloc(p->keys, (p->n_recs + 1) * sizeof(*p->keys));
		if (!nk)
			return -ENOMEM;
		p->keys = nk;
		nr = realloc(p->recs, (p->n_recs + 1) * sizeof(*p->recs));
		if (!nr)
			return -ENOMEM;
		p->recs = nr;
		p->keys[p->n_recs] = k;
		p->recs[p->n_recs++] = r;
	}
	return 0;
}

/* The entry of ifindex among the hooks to take over, made if need be. */
static struct tf_pin_hook *hook_slot(struct tf_pin *p, int ifindex, const char *ifname)
{
	struct tf_pin_hook *ph;

	for (size_t i = 0; i < p->n_hooks; i++)
		if (p->hooks[i].ifindex == ifindex)
			return &p->hooks[i];
	ph = realloc(p->hooks, (p->n_hooks + 1) * sizeof(*ph));
	if (!ph)
		return NULL;
	p->hooks = ph;
	ph = &p->hooks[p->n_hooks++];
	memset(ph, 0, sizeof(*ph));
	ph->ifindex = ifindex;
	ph->from.link_fd[0] = ph->from.link_fd[1] = -1;
	if (!if_indextoname((unsigned int)ifindex, ph->ifname))
		snprintf(ph->ifname, sizeof(ph->ifname), "%s", ifname);
	return ph;
}

/*
 * The TCX links to take over: those still on the interface they were
 * pinned for, under the same name. The others (the interface went, or was
 * renamed: tapflow follows names) are detached and unpinned.
 */
static void find_links(struct tf_pin *p)
{
	char path[PATH_MAX], esc[3 * IFNAMSIZ + 1];
	DIR *d;
	struct dirent *e;

	path_of(p->dir, "links", "", path, sizeof(path));
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		struct tcx_link_info info = {};
		__u32 len = sizeof(info);
		struct tf_pin_hook *ph = NULL;
		int fd, ifindex = 0, dir = 0;
		bool ok;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		path_of(p->dir, "links", e->d_name, path, sizeof(path));
		fd = bpf_obj_get(path);
		ok = fd >= 0 && parse_link_name(e->d_name, esc, sizeof(esc), &ifindex, &dir) &&
		     !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == LINK_TYPE_TCX &&
		     (int)info.ifindex == ifindex && names(ifindex, esc);
		if (ok)
			ph = hook_slot(p, ifindex, esc);
		if (ph && !ph->from.clsact && ph->from.link_fd[dir] < 0) {
			ph->from.link_fd[dir] = fd;
			continue;
		}
		tf_debug("pins in %s: link %s is not on its interface any more: removed", p->dir,
			 e->d_name);
		if (fd >= 0) {
			bpf_link_detach(fd);
			close(fd);
		}
		unlink(path);
	}
	closedir(d);
}

/* The clsact filters to take over: on the same interface, still running the program recorded. */
static void find_filters(struct tf_pin *p)
{
	struct hook_key k, next, *gone = NULL;
	size_t n_gone = 0;
	bool first = true;

	while (!bpf_map_get_next_key(p->hooks_fd, first ? NULL : &k, &next)) {
		struct tf_pin_hook *ph = NULL;
		struct hook_val v;
		char esc[3 * IFNAMSIZ + 1];
		void *ng;

		first = false;
		k = next;
		if (bpf_map_lookup_elem(p->hooks_fd, &k, &v) || k.dir > 1)
			continue;
		v.ifname[sizeof(v.ifname) - 1] = '\0';
		esc_ifname(v.ifname, esc, sizeof(esc));
		if (names((int)k.ifindex, esc) &&
		    tf_clsact_prog_id((int)k.ifindex, (int)k.dir, v.handle, v.priority) == v.prog_id)
			ph = hook_slot(p, (int)k.ifindex, v.ifname);
		if (ph && ph->from.link_fd[0] < 0 && ph->from.link_fd[1] < 0) {
			ph->from.clsact = true;
			ph->from.handle[k.dir] = v.handle;
			ph->from.priority[k.dir] = v.priority;
			ph->prog_id[k.dir] = v.prog_id;
			continue;
		}
		/* Gone, renamed, or another's now: taken out after the walk. */
		tf_clsact_remove((int)k.ifindex, (int)k.dir, v.handle, v.priority, v.prog_id);
		ng = realloc(gone, (n_gone + 1) * sizeof(*gone));
		if (ng) {
			gone = ng;
			gone[n_gone++] = k;
		}
	}
	for (size_t i = 0; i < n_gone; i++)
		bpf_map_delete_elem(p->hooks_fd, &gone[i]);
	free(gone);
	/* A filter pair is taken over whole; half of one is put on again as new. */
	for (size_t i = 0; i < p->n_hooks; i++) {
		struct tf_pin_hook *ph = &p->hooks[i];

		if (ph->from.clsact && (!ph->from.handle[0] || !ph->from.handle[1]))
			tf_pin_hook_remove(p, ph);
	}
}

int tf_pin_loaded(struct tf_pin *p, char *err, size_t errlen)
{
	struct meta meta = {};
	__u32 key = 0;
	int ret;

	p->targets_fd = map_at(p->dir, "targets", BPF_MAP_TYPE_HASH, sizeof(struct tf_pin_key),
			       sizeof(struct tf_pin_record), TARGETS_MAX, BPF_F_NO_PREALLOC);
	p->hooks_fd = map_at(p->dir, "hooks", BPF_MAP_TYPE_HASH, sizeof(struct hook_key),
			     sizeof(struct hook_val), HOOKS_MAX, BPF_F_NO_PREALLOC);
	ret = p->targets_fd < 0 ? p->targets_fd : p->hooks_fd < 0 ? p->hooks_fd : 0;
	if (!ret && p->adopted) {
		ret = load_records(p);
		find_links(p);
		find_filters(p);
	}
	if (ret) {
		snprintf(err, errlen, "--pin %s: cannot make its state maps: %s", p->dir,
			 strerror(-ret));
		return -1;
	}
	/* Last: a set is whole once its meta is there. */
	p->meta_fd = map_at(p->dir, "meta", BPF_MAP_TYPE_ARRAY, sizeof(key), sizeof(meta), 1, 0);
	if (p->meta_fd < 0) {
		snprintf(err, errlen, "--pin %s: cannot make its meta map: %s", p->dir,
			 strerror(-p->meta_fd));
		return -1;
	}
	snprintf(meta.magic, sizeof(meta.magic), "%s", META_MAGIC);
	snprintf(meta.version, sizeof(meta.version), "%s", TAPFLOW_VERSION);
	meta.layout = p->layout;
	meta.netns = tf_netns_inode();
	/* Taken over by another version: it is that version's set from now on. */
	if (bpf_map_update_elem(p->meta_fd, &key, &meta, BPF_ANY)) {
		snprintf(err, errlen, "--pin %s: cannot write its meta map: %s", p->dir,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- hooks ----------------------------------------------------------------------- */

struct tf_pin_hook *tf_pin_hook_find(struct tf_pin *p, int ifindex)
{
	for (size_t i = 0; i < p->n_hooks; i++)
		if (p->hooks[i].ifindex == ifindex && !p->hooks[i].taken &&
		    (p->hooks[i].from.clsact || p->hooks[i].from.link_fd[0] >= 0 ||
		     p->hooks[i].from.link_fd[1] >= 0))
			return &p->hooks[i];
	return NULL;
}

static void hook_unpin(struct tf_pin *p, int ifindex, const char *ifname, bool clsact)
{
	char name[3 * IFNAMSIZ + 32], path[PATH_MAX];

	for (int d = 0; d < 2; d++) {
		struct hook_key k = { .ifindex = (__u32)ifindex, .dir = (__u32)d };

		if (clsact) {
			bpf_map_delete_elem(p->hooks_fd, &k);
			continue;
		}
		link_name(ifname, ifindex, d, name, sizeof(name));
		path_of(p->dir, "links", name, path, sizeof(path));
		unlink(path);
	}
}

void tf_pin_hook_remove(struct tf_pin *p, struct tf_pin_hook *ph)
{
	for (int d = 0; d < 2; d++) {
		if (ph->from.clsact && ph->from.handle[d])
			tf_clsact_remove(ph->ifindex, d, ph->from.handle[d], ph->from.priority[d],
					 ph->prog_id[d]);
		if (ph->from.link_fd[d] >= 0) {
			bpf_link_detach(ph->from.link_fd[d]);
			close(ph->from.link_fd[d]);
			ph->from.link_fd[d] = -1;
		}
	}
	hook_unpin(p, ph->ifindex, ph->ifname, ph->from.clsact);
	ph->from.clsact = false;
	ph->taken = true;
}

/* Pin a TCX link; one already pinned there is fine if it is this very link. */
static int pin_link(const char *path, int fd)
{
	struct tcx_link_info a = {}, b = {};
	__u32 la = sizeof(a), lb = sizeof(b);
	int old;

	if (!bpf_obj_pin(fd, path))
		return 0;
	if (errno != EEXIST)
		return -errno;
	old = bpf_obj_get(path);
	if (old >= 0 && !bpf_obj_get_info_by_fd(fd, &a, &la) &&
	    !bpf_obj_get_info_by_fd(old, &b, &lb) && a.id == b.id) {
		close(old);
		return 0;
	}
	if (old >= 0)
		close(old);
	unlink(path);
	return bpf_obj_pin(fd, path) ? -errno : 0;
}

int tf_pin_hook_keep(struct tf_pin *p, struct tf_hook *h)
{
	char name[3 * IFNAMSIZ + 32], path[PATH_MAX];

	for (int d = 0; d < 2; d++) {
		int ret;

		if (h->mode == TF_ATTACH_CLSACT) {
			struct hook_key k = { .ifindex = (__u32)h->ifindex, .dir = (__u32)d };
			struct hook_val v = { .handle = h->handle[d], .priority = h->priority[d],
					      .prog_id = h->progs.id[d] };

			snprintf(v.ifname, sizeof(v.ifname), "%s", h->ifname);
			if (bpf_map_update_elem(p->hooks_fd, &k, &v, BPF_ANY))
				return -errno;
			continue;
		}
		link_name(h->ifname, h->ifindex, d, name, sizeof(name));
		path_of(p->dir, "links", name, path, sizeof(path));
		ret = pin_link(path, h->link_fd[d]);
		if (ret)
			return ret;
	}
	tf_hook_set_pinned(h);
	return 0;
}

void tf_pin_hook_forget(struct tf_pin *p, const struct tf_hook *h)
{
	hook_unpin(p, h->ifindex, h->ifname, h->mode == TF_ATTACH_CLSACT);
}

/* ---- records --------------------------------------------------------------------- */

const struct tf_pin_record *tf_pin_record_find(const struct tf_pin *p, const struct tf_pin_key *k)
{
	for (size_t i = 0; i < p->n_recs; i++)
		if (!memcmp(&p->keys[i], k, sizeof(*k)))
			return &p->recs[i];
	return NULL;
}

long tf_pin_record_live_at(const struct tf_pin *p, int ifindex, const struct tf_pin_key **k)
{
	for (size_t i = 0; i < p->n_recs; i++)
		if (p->recs[i].live && (int)p->recs[i].ifindex == ifindex) {
			if (k)
				*k = &p->keys[i];
			return (long)i;
		}
	return -1;
}

/* Make room: the record gone longest goes (a NIC long deleted comes back seldom). */
static bool evict_oldest(struct tf_pin *p)
{
	size_t old = p->n_recs;

	for (size_t i = 0; i < p->n_recs; i++)
		if (!p->recs[i].live && (old == p->n_recs || p->recs[i].gone_at < p->recs[old].gone_at))
			old = i;
	if (old == p->n_recs || bpf_map_delete_elem(p->targets_fd, &p->keys[old]))
		return false;
	p->keys[old] = p->keys[p->n_recs - 1];
	p->recs[old] = p->recs[p->n_recs - 1];
	p->n_recs--;
	return true;
}

int tf_pin_record_put(struct tf_pin *p, const struct tf_pin_key *k, const struct tf_pin_record *r)
{
	struct tf_pin_record *at = (struct tf_pin_record *)tf_pin_record_find(p, k);
	void *nk, *nr;

	while (bpf_map_update_elem(p->targets_fd, k, r, BPF_ANY))
		if (errno != E2BIG || !evict_oldest(p))
			return -errno;
	if (at) {
		*at = *r;
		return 0;
	}
	nk = realloc(p->keys, (p->n_recs + 1) * sizeof(*p->keys));
	if (!nk)
		return -ENOMEM;
	p->keys = nk;
	nr = realloc(p->recs, (p->n_recs + 1) * sizeof(*p->recs));
	if (!nr)
		return -ENOMEM;
	p->recs = nr;
	p->keys[p->n_recs] = *k;
	p->recs[p->n_recs++] = *r;
	return 0;
}

void tf_pin_close(struct tf_pin *p)
{
	for (size_t i = 0; i < p->n_hooks; i++)
		for (int d = 0; d < 2; d++)
			if (!p->hooks[i].taken && p->hooks[i].from.link_fd[d] >= 0)
				close(p->hooks[i].from.link_fd[d]);
	free(p->hooks);
	free(p->keys);
	free(p->recs);
	for (int *fd = &p->meta_fd; fd <= &p->hooks_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	memset(p, 0, sizeof(*p));
	p->dir_fd = p->meta_fd = p->targets_fd = p->hooks_fd = -1;
}

/* ---- --unpin ---------------------------------------------------------------------- */

int tf_pin_unpin(const char *dir, char *msg, size_t msglen)
{
	struct tf_pin p;
	struct meta meta;
	struct removed r;
	struct stat st;
	char err[512];

	if (stat(dir, &st)) {
		snprintf(msg, msglen, "--unpin %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || !on_bpffs(dir)) {
		snprintf(msg, msglen, "--unpin %s: not a directory on a BPF filesystem (bpffs)", dir);
		return -1;
	}
	if (tf_pin_open(&p, dir, err, sizeof(err))) {
		snprintf(msg, msglen, "%s", err);
		return -1;
	}
	/* clsact filters are found by ifindex, which names another device in another namespace. */
	if (!read_meta(dir, &meta) && meta.netns != tf_netns_inode() && exists(dir, "hooks")) {
		snprintf(msg, msglen, "--unpin %s: its pins were made in another network namespace: "
			 "remove them there (tapflow --netns NAME agent --unpin %s)", dir, dir);
		tf_pin_close(&p);
		return -1;
	}
	remove_set(dir, &r);
	free(r.ifindex);
	tf_pin_close(&p);
	if (!r.links && !r.hooks && !r.maps)
		snprintf(msg, msglen, "nothing of tapflow's was pinned in %s", dir);
	else if (!r.links && !r.hooks)
		snprintf(msg, msglen, "unpinned %s: %zu maps removed, no hooks were pinned", dir,
			 r.maps);
	else
		snprintf(msg, msglen, "unpinned %s: the hooks of %zu interface%s detached (%zu TCX "
			 "links, %zu clsact filters), %zu maps removed", dir, r.ifaces,
			 r.ifaces == 1 ? "" : "s", r.links, r.hooks, r.maps);
	return 0;
}
