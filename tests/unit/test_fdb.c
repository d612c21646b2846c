// SPDX-License-Identifier: GPL-2.0
/*
 * rtnetlink helpers and the inventory FDB check against the real kernel,
 * in a private network namespace of this test process:
 *
 *   br0: vnet0 (tap, fe:54:00:aa:bb:cc)  vnet1 (tap, fe:54:00:00:00:02)
 *        u0 (veth, peer u0p)             own MAC 52:54:00:00:00:0b
 *   br1: vnet2 (tap)
 *   r0 <-> r1 (veth) for default routes
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare) and ip(8);
 * skipped with a reason otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_packet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "fdb.h"
#include "inventory.h"

static char skip_reason[128];

#define REQUIRE_NETNS()							\
	do {								\
		if (skip_reason[0]) {					\
			printf("# SKIP %s\n", skip_reason);		\
			skip();						\
		}							\
	} while (0)

static int sh(const char *cmd)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "set -e; %s", cmd);
	return system(buf);
}

static const char topology[] =
	"ip link set lo up\n"
	"ip link add br0 type bridge\n"
	"ip link set br0 address 52:54:00:00:00:0b\n"
	"ip link add br1 type bridge\n"
	"ip tuntap add mode tap vnet0\n"
	"ip tuntap add mode tap vnet1\n"
	"ip tuntap add mode tap vnet2\n"
	"ip link set vnet0 address fe:54:00:aa:bb:cc\n"
	"ip link set vnet1 address fe:54:00:00:00:02\n"
	"ip link add u0 type veth peer name u0p\n"
	"ip link add r0 type veth peer name r1\n"
	"ip link set vnet0 master br0\n"
	"ip link set vnet1 master br0\n"
	"ip link set u0 master br0\n"
	"ip link set vnet2 master br1\n"
	"for i in br0 br1 vnet0 vnet1 vnet2 u0 u0p r0 r1; do\n"
	"  ip link set $i up\n"
	"done\n";

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "needs root to create a network namespace");
		return 0;
	}
	if (unshare(CLONE_NEWNET)) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "unshare(CLONE_NEWNET): %s", strerror(errno));
		return 0;
	}
	if (sh(topology))
		snprintf(skip_reason, sizeof(skip_reason),
			 "cannot build bridge/tap/veth topology with ip(8)");
	return 0;
}

static int ifidx(const char *name)
{
	int i = (int)if_nametoindex(name);

	assert_true(i > 0);
	return i;
}

static void mac_of(const char *s, uint8_t mac[6])
{
	assert_int_equal(tf_mac_parse(s, mac), 0);
}

/* A static entry in the bridge's own FDB (what "master static" adds). */
static int fdb_add(const char *port, const char *mac_str)
{
	struct {
		struct nlmsghdr nh;
		struct ndmsg ndm;
		char attrs[32];
	} req = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
		.nh.nlmsg_type = RTM_NEWNEIGH,
		.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
		.ndm.ndm_family = AF_BRIDGE,
		.ndm.ndm_ifindex = ifidx(port),
		.ndm.ndm_state = NUD_NOARP,
		.ndm.ndm_flags = NTF_MASTER,
	};
	uint8_t mac[6];

	mac_of(mac_str, mac);
	assert_int_equal(tf_netlink_add_attr(&req.nh, sizeof(req), NDA_LLADDR,
					     mac, 6), 0);
	return tf_netlink_talk(&req.nh, NULL, NULL);
}

/* Make the bridge learn src on the port whose veth peer is dev. */
static void send_frame(const char *dev, const char *src)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = ifidx(dev),
		.sll_halen = 6,
	};
	uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	int fd;

	mac_of(src, frame + 6);
	frame[12] = 0x88;	/* IEEE local experimental ethertype */
	frame[13] = 0xb5;
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	assert_true(fd >= 0);
	assert_int_equal(sendto(fd, frame, sizeof(frame), 0,
				(struct sockaddr *)&sll, sizeof(sll)),
			 sizeof(frame));
	close(fd);
}

static void test_link_get(void **state)
{
	struct tf_link l;
	uint8_t mac[6];

	(void)state;
	REQUIRE_NETNS();
	assert_int_equal(tf_link_get_by_name("vnet0", &l), 0);
	assert_int_equal(l.ifindex, ifidx("vnet0"));
	assert_string_equal(l.name, "vnet0");
	assert_string_equal(l.kind, "tun");
	assert_true(l.has_mac);
	mac_of("fe:54:00:aa:bb:cc", mac);
	assert_memory_equal(l.mac, mac, 6);
	assert_int_equal(l.master, ifidx("br0"));

	assert_int_equal(tf_link_get(ifidx("br0"), &l), 0);
	assert_string_equal(l.name, "br0");
	assert_string_equal(l.kind, "bridge");
	assert_int_equal(l.master, 0);

	assert_int_equal(tf_link_get(ifidx("u0p"), &l), 0);
	assert_string_equal(l.kind, "veth");
	assert_int_equal(l.master, 0);

	assert_int_equal(tf_link_get(1, &l), 0);
	assert_string_equal(l.name, "lo");
	assert_string_equal(l.kind, "");

	assert_int_equal(tf_link_get(999999, &l), -ENODEV);
	assert_int_equal(tf_link_get(0, &l), -ENODEV);
	assert_int_equal(tf_link_get_by_name("nosuchdev0", &l), -ENODEV);
	assert_int_equal(tf_link_get_by_name("0123456789abcdef", &l), -ENODEV);
	assert_int_equal(tf_link_get_by_name("", &l), -ENODEV);
}

static void test_fdb_read(void **state)
{
	struct tf_fdb fdb = { 0 };
	uint8_t mac[6];
	size_t i;

	(void)state;
	REQUIRE_NETNS();
	assert_int_equal(fdb_add("vnet0", "52:54:00:aa:bb:cc"), 0);
	assert_int_equal(fdb_add("vnet0", "52:54:00:aa:bb:cc"), -EEXIST);
	assert_int_equal(fdb_add("u0", "52:54:00:00:00:02"), 0);
	assert_int_equal(fdb_add("vnet2", "52:54:00:00:00:09"), 0);
	/* a port's own address list: not the bridge's FDB */
	assert_int_equal(sh("bridge fdb add 52:54:00:00:00:07 dev u0 self "
			    "permanent"), 0);
	send_frame("u0p", "52:54:00:00:00:05");

	assert_int_equal(tf_fdb_read(ifidx("br0"), &fdb), 0);
	assert_true(fdb.n >= 5);
	for (i = 0; i < fdb.n; i++)
		assert_int_equal(fdb.entries[i].master, ifidx("br0"));

	mac_of("52:54:00:aa:bb:cc", mac);
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), ifidx("vnet0"));
	mac_of("52:54:00:00:00:02", mac);
	assert_int_equal(tf_fdb_find_port(&fdb, mac, ifidx("vnet1")),
			 ifidx("u0"));
	mac_of("52:54:00:00:00:05", mac);
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), ifidx("u0"));
	mac_of("52:54:00:00:00:09", mac);	/* on br1 only */
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), 0);
	mac_of("52:54:00:00:00:07", mac);	/* "self" entry */
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), 0);
	mac_of("52:54:00:00:00:0b", mac);	/* the bridge's own MAC */
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), ifidx("br0"));
	tf_fdb_free(&fdb);
	assert_null(fdb.entries);
	assert_int_equal(fdb.n, 0);

	assert_int_equal(tf_fdb_read(ifidx("br1"), &fdb), 0);
	mac_of("52:54:00:00:00:09", mac);
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), ifidx("vnet2"));
	tf_fdb_free(&fdb);

	assert_true(tf_fdb_read(999999, &fdb) < 0);
	assert_null(fdb.entries);
	assert_true(tf_fdb_read(0, &fdb) < 0);
}

/* A dump larger than one receive buffer arrives in many parts. */
static void test_fdb_many(void **state)
{
	struct tf_fdb fdb = { 0 };
	char mac_str[TF_MAC_STR];
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0 };
	size_t i, on_u0 = 0;
	const int n = 3000;
	int k;

	(void)state;
	REQUIRE_NETNS();
	for (k = 0; k < n; k++) {
		mac[4] = (uint8_t)(k >> 8);
		mac[5] = (uint8_t)k;
		tf_mac_format(mac, mac_str);
		assert_int_equal(fdb_add("u0", mac_str), 0);
	}
	assert_int_equal(tf_fdb_read(ifidx("br0"), &fdb), 0);
	/*
	 * Only the test's 02:00:00:00:xx:xx entries: u0's own (random, locally
	 * administered) MAC is in the FDB too and may start with 02 as well.
	 */
	for (i = 0; i < fdb.n; i++)
		on_u0 += fdb.entries[i].port == ifidx("u0") &&
			 !memcmp(fdb.entries[i].mac, mac, 4);
	assert_int_equal(on_u0, n);
	mac[4] = (uint8_t)((n - 1) >> 8);
	mac[5] = (uint8_t)(n - 1);
	assert_int_equal(tf_fdb_find_port(&fdb, mac, 0), ifidx("u0"));
	tf_fdb_free(&fdb);
	assert_int_equal(sh("bridge fdb flush dev u0 master static"), 0);
}

/* Pure lookup logic: several entries for one MAC (one per VLAN). */
static void test_fdb_find_port(void **state)
{
	struct tf_fdb_entry e[3] = {
		{ .mac = { 0x52, 0x54, 0, 0, 0, 1 }, .port = 7, .vlan = 10 },
		{ .mac = { 0x52, 0x54, 0, 0, 0, 1 }, .port = 9, .vlan = 20 },
		{ .mac = { 0x52, 0x54, 0, 0, 0, 2 }, .port = 4 },
	};
	struct tf_fdb fdb = { .entries = e, .n = 3 };
	const uint8_t m1[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	const uint8_t m3[6] = { 0x52, 0x54, 0, 0, 0, 3 };

	(void)state;
	assert_int_equal(tf_fdb_find_port(&fdb, m1, 9), 9);
	assert_int_equal(tf_fdb_find_port(&fdb, m1, 7), 7);
	assert_int_equal(tf_fdb_find_port(&fdb, m1, 4), 7);
	assert_int_equal(tf_fdb_find_port(&fdb, m1, 0), 7);
	assert_int_equal(tf_fdb_find_port(&fdb, m3, 4), 0);
	fdb.n = 0;
	assert_int_equal(tf_fdb_find_port(&fdb, m1, 7), 0);
}

static void vif_set(struct tf_vif *v, const char *ifname, const char *bridge,
		    const char *mac)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->vm, sizeof(v->vm), "vm-%s", mac + 15);
	snprintf(v->ifname, sizeof(v->ifname), "%s", ifname);
	v->ifindex = ifname[0] ? ifidx(ifname) : 0;
	snprintf(v->bridge, sizeof(v->bridge), "%s", bridge);
	snprintf(v->mac, sizeof(v->mac), "%s", mac);
	/* stale values the check must overwrite */
	v->fdb = TF_FDB_OK;
	v->tap_mac_ok = true;
	snprintf(v->fdb_port, sizeof(v->fdb_port), "stale");
}

static void test_inventory_check_fdb(void **state)
{
	struct tf_vif v[6];
	struct tf_inventory inv = { .vifs = v, .n_vifs = 6 };

	(void)state;
	REQUIRE_NETNS();
	/* entries from test_fdb_read, added again if it ran alone */
	fdb_add("vnet0", "52:54:00:aa:bb:cc");
	fdb_add("u0", "52:54:00:00:00:02");

	vif_set(&v[0], "vnet0", "br0", "52:54:00:aa:bb:cc");
	vif_set(&v[1], "vnet1", "br0", "52:54:00:00:00:02");
	vif_set(&v[2], "vnet1", "br0", "52:54:00:00:00:03");
	vif_set(&v[3], "", "br0", "52:54:00:aa:bb:cc");
	vif_set(&v[4], "vnet0", "u0p", "52:54:00:aa:bb:cc");
	vif_set(&v[5], "vnet1", "br0", "52:54:00:00:00:0b");
	assert_int_equal(tf_inventory_check_fdb(&inv), 0);

	assert_true(v[0].tap_mac_ok);
	assert_int_equal(v[0].fdb, TF_FDB_OK);
	assert_string_equal(v[0].fdb_port, "");

	assert_true(v[1].tap_mac_ok);
	assert_int_equal(v[1].fdb, TF_FDB_OTHER_PORT);
	assert_string_equal(v[1].fdb_port, "u0");

	assert_false(v[2].tap_mac_ok);	/* vnet1 is fe:..:02, not fe:..:03 */
	assert_int_equal(v[2].fdb, TF_FDB_NOT_LEARNED);
	assert_string_equal(v[2].fdb_port, "");

	assert_false(v[3].tap_mac_ok);	/* no tap: nothing checked */
	assert_int_equal(v[3].fdb, TF_FDB_UNCHECKED);

	assert_true(v[4].tap_mac_ok);	/* "bridge" is a veth: no FDB */
	assert_int_equal(v[4].fdb, TF_FDB_UNCHECKED);

	assert_int_equal(v[5].fdb, TF_FDB_OTHER_PORT);
	assert_string_equal(v[5].fdb_port, "br0");

	assert_int_equal(tf_inventory_check_fdb(NULL), -EINVAL);
}

static void test_default_route(void **state)
{
	(void)state;
	REQUIRE_NETNS();
	assert_int_equal(tf_netlink_default_route_ifindex(AF_INET), -ENOENT);
	assert_int_equal(tf_netlink_default_route_ifindex(AF_INET6), -ENOENT);
	assert_int_equal(tf_netlink_default_route_ifindex(AF_PACKET),
			 -EAFNOSUPPORT);

	assert_int_equal(sh("ip addr add 10.99.0.1/24 dev r0\n"
			    "ip addr add 10.98.0.1/24 dev r1\n"
			    "ip route add default via 10.99.0.254 metric 200\n"
			    "ip route add default via 10.98.0.254 metric 100\n"
			    /* not the main table: ignored */
			    "ip route add default via 10.99.0.254 table 100 "
			    "metric 1\n"
			    "ip -6 route add default dev r1 metric 10\n"), 0);
	assert_int_equal(tf_netlink_default_route_ifindex(AF_INET), ifidx("r1"));
	assert_int_equal(tf_netlink_default_route_ifindex(AF_INET6),
			 ifidx("r1"));

	/* multipath, lowest metric: its first hop */
	assert_int_equal(sh("ip route add default metric 50 "
			    "nexthop via 10.99.0.254 nexthop via 10.98.0.254"),
			 0);
	assert_int_equal(tf_netlink_default_route_ifindex(AF_INET), ifidx("r0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fdb_find_port),
		cmocka_unit_test(test_link_get),
		cmocka_unit_test(test_fdb_read),
		cmocka_unit_test(test_inventory_check_fdb),
		cmocka_unit_test(test_fdb_many),
		cmocka_unit_test(test_default_route),
	};

	return cmocka_run_group_tests_name("fdb", tests, setup, NULL);
}
