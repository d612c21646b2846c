// SPDX-License-Identifier: GPL-2.0
/*
 * rtnetlink without libmnl/libnl: one request/reply helper and the three
 * queries tapflow needs (a link, a bridge FDB, the default route).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "fdb.h"

/* Large enough for any rtnetlink dump skb, so MSG_TRUNC never happens. */
#define NL_BUFSZ 65536
/* A kernel that does not answer in this time will not answer. */
#define NL_TIMEOUT_S 5

static void parse_attrs(struct rtattr **tb, int max, struct rtattr *rta,
			int len)
{
	memset(tb, 0, sizeof(*tb) * (max + 1));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		unsigned short type = rta->rta_type & ~NLA_F_NESTED;

		if (type <= max && !tb[type])
			tb[type] = rta;
	}
}

static uint32_t attr_u32(const struct rtattr *rta)
{
	uint32_t v = 0;

	if (RTA_PAYLOAD(rta) >= sizeof(v))
		memcpy(&v, RTA_DATA(rta), sizeof(v));
	return v;
}

static uint16_t attr_u16(const struct rtattr *rta)
{
	uint16_t v = 0;

	if (RTA_PAYLOAD(rta) >= sizeof(v))
		memcpy(&v, RTA_DATA(rta), sizeof(v));
	return v;
}

/* A string attribute into dst[dstsz], stopping at its NUL or the buffer. */
static void attr_str(const struct rtattr *rta, char *dst, size_t dstsz)
{
	size_t len = RTA_PAYLOAD(rta);

	if (len >= dstsz)
		len = dstsz - 1;
	memcpy(dst, RTA_DATA(rta), len);
	dst[len] = '\0';
}

int tf_netlink_add_attr(struct nlmsghdr *req, size_t cap, unsigned short type,
			const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(req->nlmsg_len);
	struct rtattr *rta;

	if (off + RTA_SPACE(len) > cap)
		return -ENOBUFS;
	rta = (struct rtattr *)((char *)req + off);
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	req->nlmsg_len = off + RTA_SPACE(len);
	return 0;
}

/* 0 to go on, 1 when the exchange is over, < 0 on error. */
static int handle_msg(const struct nlmsghdr *nlh, bool dump, tf_nl_cb cb,
		      void *ctx)
{
	const struct nlmsgerr *e;
	int32_t derr = 0;
	int r = 0;

	if (nlh->nlmsg_type == NLMSG_DONE) {
		/* Newer kernels put the dump's error after the header. */
		if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(derr)))
			memcpy(&derr, NLMSG_DATA(nlh), sizeof(derr));
		return derr < 0 ? derr : 1;
	}
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return -EPROTO;
		e = NLMSG_DATA(nlh);
		return e->error < 0 ? e->error : 1;	/* 0 is an ack */
	}
	if (nlh->nlmsg_type == NLMSG_NOOP || nlh->nlmsg_type == NLMSG_OVERRUN)
		return 0;
	if (cb)
		r = cb(nlh, ctx);
	if (r < 0)
		return r;
	return r > 0 || !dump ? 1 : 0;
}

static int recv_replies(int fd, uint32_t seq, uint32_t portid, bool dump,
			tf_nl_cb cb, void *ctx)
{
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct nlmsghdr *nlh;
	char *buf;
	ssize_t n;
	size_t off;
	int ret = 0;

	buf = malloc(NL_BUFSZ);
	if (!buf)
		return -ENOMEM;
	while (!ret) {
		iov.iov_base = buf;
		iov.iov_len = NL_BUFSZ;
		n = recvmsg(fd, &msg, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		if (n == 0 || (msg.msg_flags & MSG_TRUNC)) {
			ret = n ? -EMSGSIZE : -ECONNRESET;
			break;
		}
		/* NLMSG_OK/NEXT, without their signed/unsigned mix */
		for (off = 0; !ret && off < (size_t)n;
		     off += NLMSG_ALIGN(nlh->nlmsg_len)) {
			nlh = (struct nlmsghdr *)(buf + off);
			if ((size_t)n - off < sizeof(*nlh) ||
			    nlh->nlmsg_len < sizeof(*nlh) ||
			    nlh->nlmsg_len > (size_t)n - off) {
				ret = -EPROTO;
				break;
			}
			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != portid)
				continue;
			ret = handle_msg(nlh, dump, cb, ctx);
		}
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

int tf_netlink_talk(struct nlmsghdr *req, tf_nl_cb cb, void *ctx)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
	socklen_t salen = sizeof(sa);
	bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	int fd, ret;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen)) {
		ret = -errno;
		goto cleanup;
	}
	req->nlmsg_flags |= NLM_F_REQUEST;
	req->nlmsg_seq = (uint32_t)time(NULL);
	req->nlmsg_pid = 0;
	if (sendto(fd, req, req->nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0) {
		ret = -errno;
		goto cleanup;
	}
	ret = recv_replies(fd, req->nlmsg_seq, sa.nl_pid, dump, cb, ctx);
cleanup:
	close(fd);
	return ret;
}

/* ---- links ------------------------------------------------------------ */

struct link_req {
	struct nlmsghdr nh;
	struct ifinfomsg ifi;
	char attrs[64];
};

static void link_kind(const struct rtattr *linkinfo, char *kind, size_t sz)
{
	struct rtattr *tb[IFLA_INFO_MAX + 1];

	parse_attrs(tb, IFLA_INFO_MAX, RTA_DATA(linkinfo),
		    (int)RTA_PAYLOAD(linkinfo));
	if (tb[IFLA_INFO_KIND])
		attr_str(tb[IFLA_INFO_KIND], kind, sz);
}

static int link_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct tf_link *out = ctx;
	struct ifinfomsg *ifi = NLMSG_DATA(nlh);
	int len = (int)nlh->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	struct rtattr *tb[IFLA_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWLINK || len < 0)
		return -EPROTO;
	parse_attrs(tb, IFLA_MAX, IFLA_RTA(ifi), len);
	memset(out, 0, sizeof(*out));
	out->ifindex = ifi->ifi_index;
	if (tb[IFLA_IFNAME])
		attr_str(tb[IFLA_IFNAME], out->name, sizeof(out->name));
	if (tb[IFLA_ADDRESS] && RTA_PAYLOAD(tb[IFLA_ADDRESS]) == 6) {
		memcpy(out->mac, RTA_DATA(tb[IFLA_ADDRESS]), 6);
		out->has_mac = true;
	}
	if (tb[IFLA_MASTER])
		out->master = (int)attr_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_LINKINFO])
		link_kind(tb[IFLA_LINKINFO], out->kind, sizeof(out->kind));
	return 1;
}

static int link_query(struct link_req *req, struct tf_link *out)
{
	int ret;

	req->nh.nlmsg_type = RTM_GETLINK;
	/* Skip the per-link stats blocks: we only want identity. */
	ret = tf_netlink_add_attr(&req->nh, sizeof(*req), IFLA_EXT_MASK,
				  &(uint32_t){ RTEXT_FILTER_SKIP_STATS },
				  sizeof(uint32_t));
	if (ret)
		return ret;
	memset(out, 0, sizeof(*out));
	ret = tf_netlink_talk(&req->nh, link_cb, out);
	if (!ret && !out->ifindex)
		ret = -ENODEV;
	return ret;
}

int tf_link_get(int ifindex, struct tf_link *out)
{
	struct link_req req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		.ifi.ifi_family = AF_UNSPEC,
		.ifi.ifi_index = ifindex,
	};

	if (ifindex <= 0)
		return -ENODEV;
	return link_query(&req, out);
}

int tf_link_get_by_name(const char *name, struct tf_link *out)
{
	struct link_req req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		.ifi.ifi_family = AF_UNSPEC,
	};
	size_t len = name ? strlen(name) : 0;
	int ret;

	if (!len || len >= IFNAMSIZ)
		return -ENODEV;
	ret = tf_netlink_add_attr(&req.nh, sizeof(req), IFLA_IFNAME, name,
				  len + 1);
	if (ret)
		return ret;
	return link_query(&req, out);
}

/* ---- bridge FDB ------------------------------------------------------- */

struct fdb_ctx {
	struct tf_fdb *fdb;
	size_t cap;
	int bridge;
};

static int fdb_append(struct fdb_ctx *c, const struct tf_fdb_entry *e)
{
	struct tf_fdb_entry *n;
	size_t cap;

	if (c->fdb->n == c->cap) {
		cap = c->cap ? 2 * c->cap : 64;
		n = realloc(c->fdb->entries, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->fdb->entries = n;
		c->cap = cap;
	}
	c->fdb->entries[c->fdb->n++] = *e;
	return 0;
}

static int fdb_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct fdb_ctx *c = ctx;
	struct ndmsg *ndm = NLMSG_DATA(nlh);
	int len = (int)nlh->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ndm));
	struct rtattr *tb[NDA_MAX + 1];
	struct tf_fdb_entry e = { 0 };

	if (nlh->nlmsg_type != RTM_NEWNEIGH || len < 0 ||
	    ndm->ndm_family != AF_BRIDGE)
		return 0;
	parse_attrs(tb, NDA_MAX, (struct rtattr *)((char *)ndm +
		    NLMSG_ALIGN(sizeof(*ndm))), len);
	/*
	 * Entries without NDA_MASTER are a port's own "self" address list
	 * (multicast, secondary unicast), not what the bridge learned.
	 */
	if (!tb[NDA_LLADDR] || RTA_PAYLOAD(tb[NDA_LLADDR]) != 6 ||
	    !tb[NDA_MASTER] || (int)attr_u32(tb[NDA_MASTER]) != c->bridge)
		return 0;
	memcpy(e.mac, RTA_DATA(tb[NDA_LLADDR]), 6);
	e.port = ndm->ndm_ifindex;
	e.master = c->bridge;
	e.vlan = tb[NDA_VLAN] ? attr_u16(tb[NDA_VLAN]) : 0;
	e.state = ndm->ndm_state;
	e.flags = ndm->ndm_flags;
	return fdb_append(c, &e);
}

int tf_fdb_read(int br_ifindex, struct tf_fdb *fdb)
{
	/*
	 * The ifinfomsg + IFLA_MASTER request form is the one every kernel
	 * since 3.x filters by bridge without NETLINK_GET_STRICT_CHK (it is
	 * what iproute2's "bridge fdb show br X" sends).
	 */
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[16];
	} req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		.nh.nlmsg_type = RTM_GETNEIGH,
		.nh.nlmsg_flags = NLM_F_DUMP,
		.ifi.ifi_family = AF_BRIDGE,
	};
	struct fdb_ctx c = { .fdb = fdb, .bridge = br_ifindex };
	uint32_t br = (uint32_t)br_ifindex;
	int ret;

	memset(fdb, 0, sizeof(*fdb));
	if (br_ifindex <= 0)
		return -ENODEV;
	ret = tf_netlink_add_attr(&req.nh, sizeof(req), IFLA_MASTER, &br,
				  sizeof(br));
	if (!ret)
		ret = tf_netlink_talk(&req.nh, fdb_cb, &c);
	if (ret)
		tf_fdb_free(fdb);
	return ret;
}

void tf_fdb_free(struct tf_fdb *fdb)
{
	if (!fdb)
		return;
	free(fdb->entries);
	fdb->entries = NULL;
	fdb->n = 0;
}

int tf_fdb_find_port(const struct tf_fdb *fdb, const uint8_t mac[6],
		     int prefer_port)
{
	int port = 0;
	size_t i;

	for (i = 0; i < fdb->n; i++) {
		if (memcmp(fdb->entries[i].mac, mac, 6))
			continue;
		if (fdb->entries[i].port == prefer_port)
			return prefer_port;
		if (!port)
			port = fdb->entries[i].port;
	}
	return port;
}

/* ---- default route ---------------------------------------------------- */

struct route_ctx {
	int family;
	int oif;
	uint32_t metric;
};

static int route_oif(struct rtattr **tb)
{
	const struct rtnexthop *nh;

	if (tb[RTA_OIF])
		return (int)attr_u32(tb[RTA_OIF]);
	if (!tb[RTA_MULTIPATH] || RTA_PAYLOAD(tb[RTA_MULTIPATH]) < sizeof(*nh))
		return 0;
	nh = RTA_DATA(tb[RTA_MULTIPATH]);
	return nh->rtnh_len >= sizeof(*nh) ? nh->rtnh_ifindex : 0;
}

static int route_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct route_ctx *c = ctx;
	struct rtmsg *rtm = NLMSG_DATA(nlh);
	int len = (int)nlh->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*rtm));
	struct rtattr *tb[RTA_MAX + 1];
	uint32_t table, metric;
	int oif;

	if (nlh->nlmsg_type != RTM_NEWROUTE || len < 0 ||
	    rtm->rtm_family != c->family || rtm->rtm_dst_len != 0 ||
	    rtm->rtm_type != RTN_UNICAST)
		return 0;
	parse_attrs(tb, RTA_MAX, RTM_RTA(rtm), len);
	/* rtm_table is 8 bits; RTA_TABLE carries the real (32-bit) id. */
	table = tb[RTA_TABLE] ? attr_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table != RT_TABLE_MAIN)
		return 0;
	oif = route_oif(tb);
	metric = tb[RTA_PRIORITY] ? attr_u32(tb[RTA_PRIORITY]) : 0;
	if (oif > 0 && (!c->oif || metric < c->metric)) {
		c->oif = oif;
		c->metric = metric;
	}
	return 0;
}

int tf_netlink_default_route_ifindex(int family)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rtm;
	} req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
		.nh.nlmsg_type = RTM_GETROUTE,
		.nh.nlmsg_flags = NLM_F_DUMP,
		.rtm.rtm_family = (unsigned char)family,
	};
	struct route_ctx c = { .family = family };
	int ret;

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	ret = tf_netlink_talk(&req.nh, route_cb, &c);
	if (ret)
		return ret;
	return c.oif ? c.oif : -ENOENT;
}
