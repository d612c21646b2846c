/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small rtnetlink helpers: links (name, MAC, master, kind), the bridge
 * forwarding database and the default route, over a plain NETLINK_ROUTE
 * socket.
 *
 * Every call opens its own socket, so it answers for the network namespace
 * the thread is in *now* (after a setns()); nothing here reads /sys, which
 * may still show the namespace it was mounted in.
 *
 * All functions return 0 (or the documented positive value) on success and
 * a negative errno on failure.
 */
#ifndef TF_FDB_H
#define TF_FDB_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nlmsghdr;

/*
 * Called for each reply message that is not NLMSG_DONE/NLMSG_ERROR.
 * Return 0 to go on, > 0 to stop early (success), < 0 to abort with it.
 */
typedef int (*tf_nl_cb)(const struct nlmsghdr *nlh, void *ctx);

/*
 * Send req (nlmsg_len, type and flags set by the caller; seq and pid are
 * filled in) on a fresh NETLINK_ROUTE socket and feed the replies to cb
 * (may be NULL). Dumps (NLM_F_DUMP) run to NLMSG_DONE; other requests end
 * at their first reply or at the ack (set NLM_F_ACK for requests that
 * have no reply). Returns 0, the callback's negative value, or -errno
 * (from the kernel's NLMSG_ERROR or from the socket).
 */
int tf_netlink_talk(struct nlmsghdr *req, tf_nl_cb cb, void *ctx);

/* Append attribute type with len bytes of data to req (buffer of cap). */
int tf_netlink_add_attr(struct nlmsghdr *req, size_t cap, unsigned short type,
			const void *data, size_t len);

struct tf_link {
	int ifindex;
	char name[IFNAMSIZ];
	uint8_t mac[6];
	bool has_mac;		/* an Ethernet (6-byte) IFLA_ADDRESS */
	int master;		/* IFLA_MASTER ifindex, 0 if none */
	char kind[16];		/* IFLA_INFO_KIND: "bridge", "tun", "veth",
				 * "openvswitch", ...; "" if none */
};

/* One link by ifindex or by name; -ENODEV if there is no such link. */
int tf_link_get(int ifindex, struct tf_link *out);
int tf_link_get_by_name(const char *name, struct tf_link *out);

struct tf_fdb_entry {
	uint8_t mac[6];
	int port;		/* ndm_ifindex: the bridge port, or the
				 * bridge itself for its own addresses */
	int master;		/* NDA_MASTER: the bridge */
	uint16_t vlan;		/* NDA_VLAN, 0 if none */
	uint16_t state;		/* NUD_PERMANENT (local), NUD_NOARP (static),
				 * NUD_REACHABLE/NUD_STALE (learned) */
	uint8_t flags;		/* NTF_* */
};

struct tf_fdb {
	struct tf_fdb_entry *entries;
	size_t n;
};

/*
 * Read the forwarding database of bridge br_ifindex (AF_BRIDGE
 * RTM_GETNEIGH dump). Only the bridge's own entries are kept, not the
 * ports' "self" address lists. On error fdb is left empty.
 */
int tf_fdb_read(int br_ifindex, struct tf_fdb *fdb);
void tf_fdb_free(struct tf_fdb *fdb);

/*
 * The port ifindex mac is in the FDB on, 0 if absent. With several entries
 * (one per VLAN) prefer_port wins if it is one of them.
 */
int tf_fdb_find_port(const struct tf_fdb *fdb, const uint8_t mac[6],
		     int prefer_port);

/*
 * Output interface of the default route (family AF_INET or AF_INET6) in
 * the main routing table; with several, the lowest metric; for a
 * multipath route, its first hop. Returns the ifindex (> 0), -ENOENT if
 * there is no default route, or another -errno.
 */
int tf_netlink_default_route_ifindex(int family);

#endif /* TF_FDB_H */
