// SPDX-License-Identifier: GPL-2.0
/*
 * Inventory: running libvirt domains -> one struct tf_vif per NIC, resolved
 * against the network namespace tapflow runs in (tap ifindex, the bridge
 * the tap really is a port of) and checked against the bridge FDB.
 *
 * A read-only libvirt connection is enough (list domains, dump domain and
 * network XML) and works for any user allowed to run "virsh -r".
 *
 * Nothing about a single NIC or domain fails the load: what cannot be
 * resolved is reported in vif->note, with mode "unknown" where the mode
 * itself is unknown. Only "cannot talk to libvirt at all" is an error.
 *
 * A running domain without any <interface> still gets one vif (no ifname,
 * mode unknown, note "no network interface") so that "--vm NAME" can tell
 * "no such VM" from "VM without NIC".
 */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "fdb.h"
#include "inventory.h"

#define DEFAULT_URI "qemu:///system"

struct net_entry {
	char name[TF_NAME_MAX];
	bool ok;
	struct tf_network_xml net;
	char err[96];
};

struct load_ctx {
	virConnectPtr conn;
	struct net_entry *nets;
	size_t n_nets;
	struct tf_inventory *inv;
	size_t cap;
};

struct dom_item {
	bool ok;
	struct tf_domain_xml xml;
	char name[TF_NAME_MAX];		/* for a domain whose XML failed */
	char uuid[TF_UUID_STR];
	bool name_truncated;
	char err[160];
};

/* Copy, truncating; true if src did not fit. */
static bool copy_trunc(char *dst, size_t dstsz, const char *src)
{
	size_t len = strlen(src);
	bool trunc = len >= dstsz;

	if (trunc)
		len = dstsz - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return trunc;
}

/* Notes are for humans: several are joined with "; ", the tail may be cut. */
static void __attribute__((format(printf, 2, 3)))
note_add(struct tf_vif *v, const char *fmt, ...)
{
	size_t len = strlen(v->note);
	va_list ap;

	if (len && len + 3 < sizeof(v->note)) {
		memcpy(v->note + len, "; ", 3);
		len += 2;
	}
	if (len + 1 >= sizeof(v->note))
		return;
	va_start(ap, fmt);
	vsnprintf(v->note + len, sizeof(v->note) - len, fmt, ap);
	va_end(ap);
}

static void quiet_error(void *opaque, virErrorPtr error)
{
	(void)opaque;
	(void)error;
}

/* ---- libvirt networks (cached per load) ------------------------------- */

static void net_fetch(virConnectPtr conn, struct net_entry *ne)
{
	virNetworkPtr net;
	char *xml = NULL;

	net = virNetworkLookupByName(conn, ne->name);
	if (!net) {
		if (virGetLastErrorCode() == VIR_ERR_NO_NETWORK)
			snprintf(ne->err, sizeof(ne->err), "no such libvirt network");
		else
			snprintf(ne->err, sizeof(ne->err), "%s",
				 virGetLastErrorMessage());
		return;
	}
	xml = virNetworkGetXMLDesc(net, 0);
	if (!xml)
		snprintf(ne->err, sizeof(ne->err), "%s",
			 virGetLastErrorMessage());
	else
		ne->ok = !tf_netxml_parse(xml, &ne->net, ne->err,
					  sizeof(ne->err));
	free(xml);
	virNetworkFree(net);
}

static const struct net_entry *net_lookup(struct load_ctx *c, const char *name)
{
	struct net_entry *ne;
	size_t i;

	for (i = 0; i < c->n_nets; i++)
		if (!strcmp(c->nets[i].name, name))
			return &c->nets[i];
	ne = realloc(c->nets, (c->n_nets + 1) * sizeof(*ne));
	if (!ne)
		return NULL;
	c->nets = ne;
	ne = &c->nets[c->n_nets++];
	memset(ne, 0, sizeof(*ne));
	copy_trunc(ne->name, sizeof(ne->name), name);
	net_fetch(c->conn, ne);
	return ne;
}

/* ---- one NIC ---------------------------------------------------------- */

static void vif_network(struct load_ctx *c, const struct tf_dom_iface *ifc,
			struct tf_vif *v)
{
	const struct net_entry *ne;

	copy_trunc(v->network, sizeof(v->network), ifc->source_network);
	copy_trunc(v->ifname, sizeof(v->ifname), ifc->target);
	copy_trunc(v->bridge, sizeof(v->bridge), ifc->source_bridge);
	if (!v->network[0]) {
		note_add(v, "type='network' without a source network");
		return;
	}
	ne = net_lookup(c, v->network);
	if (!ne || !ne->ok) {
		note_add(v, "network '%.40s': %s", v->network,
			 ne ? ne->err : "out of memory");
		return;
	}
	v->mode = ne->net.mode;
	if (v->mode == TF_MODE_DIRECT || v->mode == TF_MODE_OTHER) {
		note_add(v, "%s network '%.40s': no tap to attach to",
			 v->mode == TF_MODE_DIRECT ? "macvtap" : "passthrough",
			 v->network);
		v->ifname[0] = '\0';
		v->bridge[0] = '\0';
		return;
	}
	/* A running domain's XML names its actual bridge; else the network's. */
	if (!v->bridge[0])
		copy_trunc(v->bridge, sizeof(v->bridge), ne->net.bridge);
}

static void vif_from_xml(struct load_ctx *c, const struct tf_dom_iface *ifc,
			 struct tf_vif *v)
{
	const char *t = ifc->type;

	copy_trunc(v->mac, sizeof(v->mac), ifc->mac);
	copy_trunc(v->model, sizeof(v->model), ifc->model);
	if (!strcmp(t, "network")) {
		vif_network(c, ifc, v);
	} else if (!strcmp(t, "bridge")) {
		v->mode = TF_MODE_BRIDGE;
		copy_trunc(v->ifname, sizeof(v->ifname), ifc->target);
		copy_trunc(v->bridge, sizeof(v->bridge), ifc->source_bridge);
	} else if (!strcmp(t, "direct")) {
		v->mode = TF_MODE_DIRECT;
		note_add(v, "macvtap on %s: no tap to attach to",
			 ifc->source_dev[0] ? ifc->source_dev : "?");
	} else if (!strcmp(t, "user")) {
		v->mode = TF_MODE_USER;
		note_add(v, "user-mode networking: no host device to attach to");
	} else if (!strcmp(t, "ethernet")) {
		/* A tap libvirt does not plug anywhere; may still be traced. */
		v->mode = TF_MODE_OTHER;
		copy_trunc(v->ifname, sizeof(v->ifname), ifc->target);
		note_add(v, "type='ethernet': unmanaged tap");
	} else {
		v->mode = TF_MODE_OTHER;
		note_add(v, "type='%s': not traced", t);
	}
}

/* Where the tap really is: ifindex in this netns, and its real master. */
static void vif_resolve_host(struct tf_vif *v)
{
	struct tf_link tap, master;

	if (!v->ifname[0]) {
		if (v->mode != TF_MODE_DIRECT && v->mode != TF_MODE_USER &&
		    v->mode != TF_MODE_OTHER)
			note_add(v, "no target dev: interface not active");
		return;
	}
	v->ifindex = (int)if_nametoindex(v->ifname);
	if (!v->ifindex) {
		note_add(v, "tap %s not found in this network namespace",
			 v->ifname);
		return;
	}
	if (tf_link_get(v->ifindex, &tap))
		return;
	if (!tap.master) {
		if (v->bridge[0])
			note_add(v, "tap is not a port of %s", v->bridge);
		v->bridge[0] = '\0';
		return;
	}
	if (tf_link_get(tap.master, &master))
		return;
	if (!strcmp(master.kind, "openvswitch")) {
		/* The XML names the OVS bridge; the kernel master is ovs-system. */
		note_add(v, "Open vSwitch port: FDB not checked");
		return;
	}
	if (strcmp(master.kind, "bridge")) {
		note_add(v, "tap's master %s is a %s, not a bridge",
			 master.name, master.kind[0] ? master.kind : "device");
		v->bridge[0] = '\0';
		return;
	}
	if (v->bridge[0] && strcmp(v->bridge, master.name))
		note_add(v, "tap is on bridge %s, libvirt says %s", master.name,
			 v->bridge);
	copy_trunc(v->bridge, sizeof(v->bridge), master.name);
	if (v->mode == TF_MODE_OTHER)	/* type='ethernet' plugged by a script */
		v->mode = TF_MODE_BRIDGE;
}

static struct tf_vif *vif_new(struct load_ctx *c)
{
	struct tf_inventory *inv = c->inv;
	struct tf_vif *v;
	size_t cap;

	if (inv->n_vifs == c->cap) {
		cap = c->cap ? 2 * c->cap : 16;
		v = realloc(inv->vifs, cap * sizeof(*v));
		if (!v)
			return NULL;
		inv->vifs = v;
		c->cap = cap;
	}
	v = &inv->vifs[inv->n_vifs++];
	memset(v, 0, sizeof(*v));
	return v;
}

/* ---- domains ---------------------------------------------------------- */

/* Returns false if the domain went away since it was listed. */
static bool dom_read(virDomainPtr dom, struct dom_item *it)
{
	char *xml;

	xml = virDomainGetXMLDesc(dom, 0);
	if (!xml && virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
		return false;
	if (xml)
		it->ok = !tf_domxml_parse(xml, &it->xml, it->err,
					  sizeof(it->err));
	else
		snprintf(it->err, sizeof(it->err), "%s",
			 virGetLastErrorMessage());
	free(xml);
	if (!it->ok) {
		it->name_truncated = copy_trunc(it->name, sizeof(it->name),
						virDomainGetName(dom) ?: "?");
		if (virDomainGetUUIDString(dom, it->uuid) < 0)
			it->uuid[0] = '\0';
	}
	return true;
}

static const char *item_name(const struct dom_item *it)
{
	return it->ok ? it->xml.name : it->name;
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(item_name(a), item_name(b));
}

/* A vif that stands for a whole domain (no NIC, or unreadable XML). */
static int add_placeholder(struct load_ctx *c, const struct dom_item *it)
{
	struct tf_vif *v = vif_new(c);

	if (!v)
		return -1;
	copy_trunc(v->vm, sizeof(v->vm), item_name(it));
	copy_trunc(v->uuid, sizeof(v->uuid), it->ok ? it->xml.uuid : it->uuid);
	v->mode = TF_MODE_UNKNOWN;
	if (it->ok)
		note_add(v, "no network interface");
	else
		note_add(v, "%sdomain XML: %s",
			 it->name_truncated ? "name truncated; " : "", it->err);
	return 0;
}

static int add_domain(struct load_ctx *c, const struct dom_item *it)
{
	struct tf_vif *v;
	size_t i;

	if (!it->ok || !it->xml.n_ifaces)
		return add_placeholder(c, it);
	for (i = 0; i < it->xml.n_ifaces; i++) {
		v = vif_new(c);
		if (!v)
			return -1;
		copy_trunc(v->vm, sizeof(v->vm), it->xml.name);
		copy_trunc(v->uuid, sizeof(v->uuid), it->xml.uuid);
		vif_from_xml(c, &it->xml.ifaces[i], v);
		vif_resolve_host(v);
	}
	return 0;
}

static int load_domains(struct load_ctx *c, const char *uri, char *err,
			size_t errlen)
{
	virDomainPtr *doms = NULL;
	struct dom_item *items = NULL;
	int i, ndoms, nitems = 0, ret = -1;

	ndoms = virConnectListAllDomains(c->conn, &doms,
					 VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (ndoms < 0) {
		snprintf(err, errlen, "cannot list domains at %s: %s", uri,
			 virGetLastErrorMessage());
		return -1;
	}
	items = calloc(ndoms ? ndoms : 1, sizeof(*items));
	if (!items) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < ndoms; i++)
		nitems += dom_read(doms[i], &items[nitems]);
	qsort(items, nitems, sizeof(*items), item_cmp);
	for (i = 0; i < nitems; i++) {
		if (add_domain(c, &items[i])) {
			snprintf(err, errlen, "out of memory");
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	for (i = 0; items && i < ndoms; i++)
		tf_domxml_free(&items[i].xml);
	free(items);
	for (i = 0; i < ndoms; i++)
		virDomainFree(doms[i]);
	free(doms);
	return ret;
}

/*
 * The socket of a failed connect, from libvirt's "Failed to connect socket
 * to 'PATH': ..." (the only place it names it), or false.
 */
static bool socket_of(const virError *e, char *buf, size_t len)
{
	static const char prefix[] = "Failed to connect socket to '";
	const char *p, *end;

	if (e->code != VIR_ERR_SYSTEM_ERROR || !e->message ||
	    !(p = strstr(e->message, prefix)))
		return false;
	p += sizeof(prefix) - 1;
	end = strchr(p, '\'');
	if (!end)
		return false;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
	return true;
}

/* The daemon's check of who may connect (polkit, by default) said no. */
static bool refused_by_daemon(const virError *e)
{
	return e->code == VIR_ERR_AUTH_FAILED || e->code == VIR_ERR_AUTH_CANCELLED ||
	       e->code == VIR_ERR_AUTH_UNAVAILABLE || e->domain == VIR_FROM_POLKIT ||
	       e->domain == VIR_FROM_DBUS;
}

/*
 * Why the connection failed, as what is missing and how to get it: libvirt's
 * own message says where it failed (a socket's errno, the daemon's polkit
 * check over D-Bus), not what the user lacks; -v shows it as well.
 */
static void connect_error(const char *uri, char *err, size_t errlen)
{
	const virError *e = virGetLastError();
	char sock[200];

	if (!e) {
		snprintf(err, errlen, "cannot connect to libvirt at %s", uri);
	} else if (socket_of(e, sock, sizeof(sock)) && (e->int1 == EACCES || e->int1 == EPERM)) {
		snprintf(err, errlen, "cannot connect to libvirt at %s: permission denied on its "
			 "socket %s; run as root, join the group that may open it (often "
			 "libvirt), or use a URI with a read-only socket this user may open",
			 uri, sock);
	} else if (socket_of(e, sock, sizeof(sock)) &&
		   (e->int1 == ENOENT || e->int1 == ECONNREFUSED)) {
		snprintf(err, errlen, "cannot connect to libvirt at %s: no daemon listens on %s "
			 "(is libvirtd or virtqemud running?)", uri, sock);
	} else if (refused_by_daemon(e) && e->domain == VIR_FROM_DBUS) {
		snprintf(err, errlen, "libvirt at %s refused this user: the daemon asks polkit who "
			 "may connect, and has no system D-Bus to ask it over; run as root, or "
			 "let the daemon admit read-only clients without polkit (auth_unix_ro = "
			 "\"none\" in its configuration)", uri);
	} else if (refused_by_daemon(e)) {
		snprintf(err, errlen, "libvirt at %s refused this user: its polkit or "
			 "authentication check failed; run as root, or allow this user "
			 "org.libvirt.unix.monitor in polkit (or auth_unix_ro = \"none\" in the "
			 "daemon's configuration)", uri);
	} else {
		snprintf(err, errlen, "cannot connect to libvirt at %s: %s", uri,
			 virGetLastErrorMessage());
	}
}

int tf_inventory_load(const char *uri, bool verbose, struct tf_inventory *inv,
		      char *err, size_t errlen)
{
	struct load_ctx c = { .inv = inv };
	char dummy[1];
	int ret = -1;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	memset(inv, 0, sizeof(*inv));
	if (!uri)
		uri = DEFAULT_URI;
	/* NULL restores libvirt's default handler, which prints to stderr. */
	virSetErrorFunc(NULL, verbose ? NULL : quiet_error);
	c.conn = virConnectOpenReadOnly(uri);
	if (!c.conn) {
		connect_error(uri, err, errlen);
		return -1;
	}
	if (load_domains(&c, uri, err, errlen))
		goto cleanup;
	tf_inventory_check_fdb(inv);
	ret = 0;
cleanup:
	free(c.nets);
	virConnectClose(c.conn);
	if (ret)
		tf_inventory_free(inv);
	return ret;
}

int tf_inventory_vm_defined(const char *uri, bool verbose, const char *vm)
{
	virConnectPtr conn;
	virDomainPtr dom;

	virSetErrorFunc(NULL, verbose ? NULL : quiet_error);
	conn = virConnectOpenReadOnly(uri ? uri : DEFAULT_URI);
	if (!conn)
		return -1;
	dom = virDomainLookupByName(conn, vm);
	if (!dom)
		dom = virDomainLookupByUUIDString(conn, vm);
	if (dom)
		virDomainFree(dom);
	virConnectClose(conn);
	return dom != NULL;
}

void tf_inventory_free(struct tf_inventory *inv)
{
	if (!inv)
		return;
	free(inv->vifs);
	inv->vifs = NULL;
	inv->n_vifs = 0;
}

/* ---- FDB check -------------------------------------------------------- */

struct fdb_cache_entry {
	int bridge;
	int err;
	struct tf_fdb fdb;
};

struct fdb_cache {
	struct fdb_cache_entry *v;
	size_t n;
};

/* Each bridge's FDB is dumped once per check, however many taps it has. */
static const struct fdb_cache_entry *fdb_cached(struct fdb_cache *fc,
						int bridge)
{
	struct fdb_cache_entry *e;
	size_t i;

	for (i = 0; i < fc->n; i++)
		if (fc->v[i].bridge == bridge)
			return &fc->v[i];
	e = realloc(fc->v, (fc->n + 1) * sizeof(*e));
	if (!e)
		return NULL;
	fc->v = e;
	e = &fc->v[fc->n++];
	e->bridge = bridge;
	e->err = tf_fdb_read(bridge, &e->fdb);
	return e;
}

static void fdb_cache_free(struct fdb_cache *fc)
{
	size_t i;

	for (i = 0; i < fc->n; i++)
		tf_fdb_free(&fc->v[i].fdb);
	free(fc->v);
}

static void port_name(int port, int bridge, const char *brname,
		      char out[IFNAMSIZ])
{
	char buf[IF_NAMESIZE];

	if (port == bridge)	/* a local address of the bridge itself */
		copy_trunc(out, IFNAMSIZ, brname);
	else if (if_indextoname((unsigned int)port, buf))
		copy_trunc(out, IFNAMSIZ, buf);
	else
		snprintf(out, IFNAMSIZ, "#%d", port);
}

/* 0, or a negative errno if the kernel could not be asked at all. */
static int check_vif(struct tf_vif *v, struct fdb_cache *fc)
{
	const struct fdb_cache_entry *fe;
	struct tf_link tap, br;
	uint8_t mac[6];
	int port, ret;

	if (!v->ifindex || !v->bridge[0] || tf_mac_parse(v->mac, mac))
		return 0;
	ret = tf_link_get(v->ifindex, &tap);
	if (ret)
		return ret == -ENODEV ? 0 : ret;
	v->tap_mac_ok = tap.has_mac && tf_tap_mac_matches(mac, tap.mac);
	/* Only a Linux bridge has an AF_BRIDGE FDB (not OVS). */
	ret = tf_link_get_by_name(v->bridge, &br);
	if (ret || strcmp(br.kind, "bridge"))
		return ret == -ENODEV ? 0 : ret;
	fe = fdb_cached(fc, br.ifindex);
	if (!fe)
		return -ENOMEM;
	if (fe->err)
		return fe->err;
	port = tf_fdb_find_port(&fe->fdb, mac, v->ifindex);
	if (!port) {
		v->fdb = TF_FDB_NOT_LEARNED;
	} else if (port == v->ifindex) {
		v->fdb = TF_FDB_OK;
	} else {
		v->fdb = TF_FDB_OTHER_PORT;
		port_name(port, br.ifindex, br.name, v->fdb_port);
	}
	return 0;
}

int tf_inventory_check_fdb(struct tf_inventory *inv)
{
	struct fdb_cache fc = { 0 };
	int r, ret = 0;
	size_t i;

	if (!inv)
		return -EINVAL;
	for (i = 0; i < inv->n_vifs; i++) {
		struct tf_vif *v = &inv->vifs[i];

		v->tap_mac_ok = false;
		v->fdb = TF_FDB_UNCHECKED;
		v->fdb_port[0] = '\0';
		r = check_vif(v, &fc);
		if (r && !ret)
			ret = r;
	}
	fdb_cache_free(&fc);
	return ret;
}
