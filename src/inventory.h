/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inventory: which VM NICs exist, which tap each one is, and what network,
 * bridge and forward mode it sits on -- read from libvirt (domain and
 * network XML) and checked against the bridge forwarding database.
 */
#ifndef TF_INVENTORY_H
#define TF_INVENTORY_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TF_NAME_MAX 256
#define TF_UUID_STR 37
#define TF_MAC_STR 18

enum tf_mode {
	TF_MODE_UNKNOWN = 0,
	TF_MODE_NAT,
	TF_MODE_ROUTE,
	TF_MODE_OPEN,
	TF_MODE_ISOLATED,	/* <network> without <forward> */
	TF_MODE_BRIDGE,		/* <interface type='bridge'>, or <forward mode='bridge'> */
	TF_MODE_DIRECT,		/* macvtap: no tap device to attach to */
	TF_MODE_USER,		/* slirp/passt: no host device either */
	TF_MODE_OTHER,		/* hostdev, vhostuser, ...: listed, not traced */
};

const char *tf_mode_name(enum tf_mode mode);

/* Result of the bridge-FDB and tap-MAC checks for one VM NIC. */
enum tf_fdb_state {
	TF_FDB_UNCHECKED = 0,	/* no bridge, or the check could not run */
	TF_FDB_NOT_LEARNED,	/* the VM MAC is not (yet) in the bridge FDB */
	TF_FDB_OK,		/* learned on the VM's own tap */
	TF_FDB_OTHER_PORT,	/* learned on another port: misconfig/spoofing */
};

/* One <interface> of a domain, from the domain XML alone. */
struct tf_dom_iface {
	char type[16];			/* network, bridge, direct, user, ... */
	char mac[TF_MAC_STR];		/* "52:54:00:..", lower case, "" if none */
	char target[IFNAMSIZ];		/* <target dev=>, "" if none */
	char model[32];			/* <model type=>, "" if none */
	char source_network[TF_NAME_MAX];	/* type='network' */
	char source_bridge[IFNAMSIZ];	/* type='bridge' (or network with bridge) */
	char source_dev[IFNAMSIZ];	/* type='direct' */
};

struct tf_domain_xml {
	char name[TF_NAME_MAX];
	char uuid[TF_UUID_STR];
	struct tf_dom_iface *ifaces;
	size_t n_ifaces;
};

struct tf_network_xml {
	char name[TF_NAME_MAX];
	char bridge[IFNAMSIZ];		/* <bridge name=>, "" for macvtap pools */
	enum tf_mode mode;
};

/*
 * Pure parsers (no libvirt, no I/O): unit-tested on odd inputs. Return 0,
 * or -1 with a one-line reason in err.
 */
int tf_domxml_parse(const char *xml, struct tf_domain_xml *out, char *err, size_t errlen);
void tf_domxml_free(struct tf_domain_xml *dom);
int tf_netxml_parse(const char *xml, struct tf_network_xml *out, char *err, size_t errlen);

/* "52:54:00:ab:cd:ef" <-> bytes; parse accepts upper case. 0 or -1. */
int tf_mac_parse(const char *str, uint8_t mac[6]);
void tf_mac_format(const uint8_t mac[6], char out[TF_MAC_STR]);
/*
 * libvirt gives a tap the VM's MAC with the first byte set to 0xfe (0xfa if
 * the VM's MAC itself starts with 0xfe), so that the bridge never takes the
 * tap's MAC as its own. True if tap_mac is that form.
 */
bool tf_tap_mac_matches(const uint8_t vm_mac[6], const uint8_t tap_mac[6]);

/* One VM NIC, resolved against the host (what list/stats report). */
struct tf_vif {
	char vm[TF_NAME_MAX];
	char uuid[TF_UUID_STR];
	char ifname[IFNAMSIZ];		/* the tap, "" for direct/user */
	int ifindex;			/* 0 if no tap or the tap is gone */
	char mac[TF_MAC_STR];		/* the VM's MAC */
	char model[32];
	char network[TF_NAME_MAX];	/* libvirt network name, "" for type='bridge' */
	char bridge[IFNAMSIZ];		/* bridge the tap is a port of, "" if none */
	enum tf_mode mode;
	/* Checks done by tf_inventory_check_fdb(). */
	bool tap_mac_ok;		/* tap MAC is fe:<VM MAC bytes 1-5> */
	enum tf_fdb_state fdb;
	char fdb_port[IFNAMSIZ];	/* port the VM MAC was learned on */
	char note[128];			/* human note: "macvtap: no tap", ... */
};

struct tf_inventory {
	struct tf_vif *vifs;
	size_t n_vifs;
};

/*
 * Connect to uri (NULL: qemu:///system), read every running domain, resolve
 * its NICs to taps/bridges/modes in the current network namespace, run the
 * FDB check. Returns 0, or -1 with a one-line reason in err (libvirt
 * unreachable, ...). libvirt's own error printing is silenced unless verbose.
 */
int tf_inventory_load(const char *uri, bool verbose, struct tf_inventory *inv,
		      char *err, size_t errlen);
void tf_inventory_free(struct tf_inventory *inv);
/* Is vm (a name or a UUID) a domain libvirt knows, running or not? 1, 0, or -1 (unreachable). */
int tf_inventory_vm_defined(const char *uri, bool verbose, const char *vm);

/* Fill vif->fdb/fdb_port/tap_mac_ok from the kernel (netlink AF_BRIDGE). */
int tf_inventory_check_fdb(struct tf_inventory *inv);

#endif /* TF_INVENTORY_H */
