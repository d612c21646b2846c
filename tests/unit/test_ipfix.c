// SPDX-License-Identifier: GPL-2.0
/*
 * The IPFIX exporter, read back by the tools made to read IPFIX: every
 * file, datagram stream and TCP byte stream it produces is decoded by
 * libfixbuf's ipfixDump (Debian libfixbuf-tools), and UDP also by nfdump's
 * collector nfcapd; the tests assert on what those tools print, never on
 * bytes decoded here. Collectors are sockets of this process (UDP, TCP)
 * that keep what they receive for ipfixDump. Times passed to flush are
 * made up: the rotation and refresh periods pass without waiting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fixbuf/public.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipfix.h"

static char dir[] = "/tmp/tf-test-ipfix.XXXXXX";
static bool have_dump;

#define NEED_DUMP()							\
	do {								\
		if (!have_dump) {					\
			printf("# SKIP ipfixDump not found "		\
			       "(Debian libfixbuf-tools)\n");		\
			skip();						\
		}							\
	} while (0)

static char *path_in(const char *name)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static char *read_all(int fd)
{
	size_t len = 0, cap = 4096;
	char *s = malloc(cap);
	ssize_t n;

	assert_non_null(s);
	while ((n = read(fd, s + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			s = realloc(s, cap);
			assert_non_null(s);
		}
	}
	s[len] = '\0';
	return s;
}

static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *p;
	char *s;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	s = read_all(fileno(p));
	pclose(p);
	return s;
}

/* ipfixDump's reading of an IPFIX file: element names and values. */
static char *dump(const char *file)
{
	return run("ipfixDump --rfc5610 --hexdump=16 -i '%s' 2>&1", file);
}

/* "N Template Records" of ipfixDump's file statistics. */
static int dump_templates(const char *file)
{
	char *s = run("ipfixDump -s -i '%s' 2>&1", file);
	const char *p = strstr(s, "*** File Stats:");
	int msgs = -1, data = -1, tmpl = -1;

	assert_non_null(p);
	assert_int_equal(sscanf(p, "*** File Stats: %d Messages, %d Data Records, %d Template Records",
				&msgs, &data, &tmpl), 3);
	free(s);
	return tmpl;
}

/*
 * The value that ipfixDump printed for element name in the data record
 * block that starts at rec (up to the next block): a copy, or NULL.
 */
static char *field(const char *rec, const char *name, char *out, size_t len)
{
	const char *end = strstr(rec + 1, "--- data record");
	const char *line = rec;

	while (line && *line && (!end || line < end)) {
		const char *nl = strchr(line, '\n');
		const char *sep = strstr(line, " : ");
		size_t nlen = strlen(name);

		if (sep && (!nl || sep < nl) && sep - line > (ptrdiff_t)nlen &&
		    !strncmp(sep - nlen, name, nlen) && sep[-(ptrdiff_t)nlen - 1] == ' ') {
			size_t vl = nl ? (size_t)(nl - sep - 3) : strlen(sep + 3);

			snprintf(out, len, "%.*s", (int)vl, sep + 3);
			return out;
		}
		line = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* The data record whose element name is value, or NULL; n: how many there are. */
static const char *find(const char *d, const char *name, const char *value, int *n)
{
	const char *found = NULL;
	char v[512];
	int count = 0;

	for (const char *r = strstr(d, "--- data record"); r; r = strstr(r + 1, "--- data record")) {
		if (field(r, name, v, sizeof(v)) && !strcmp(v, value)) {
			found = found ? found : r;
			count++;
		}
	}
	if (n)
		*n = count;
	return found;
}

static int count_recs(const char *d, const char *name)
{
	char v[512];
	int n = 0;

	for (const char *r = strstr(d, "--- data record"); r; r = strstr(r + 1, "--- data record"))
		n += field(r, name, v, sizeof(v)) != NULL;
	return n;
}

#define assert_field(rec, name, want)						\
	do {									\
		char v_[512];							\
		const char *got_ = field((rec), (name), v_, sizeof(v_));	\
		if (!got_ || strcmp(got_, (want))) {				\
			print_error("%s: want \"%s\", ipfixDump says \"%s\"\n",	\
				    (name), (want), got_ ? got_ : "(absent)");	\
			fail();							\
		}								\
	} while (0)

#define assert_no_field(rec, name)						\
	do {									\
		char v_[512];							\
		if (field((rec), (name), v_, sizeof(v_))) {			\
			print_error("%s: present (%s), should not be\n", (name), v_); \
			fail();							\
		}								\
	} while (0)

/* A record of the given kind; packets tells records apart. */
static struct tf_ipfix_rec rec(int family, bool nat, uint64_t packets)
{
	static const uint8_t uuid[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
					  0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
	struct tf_ipfix_rec r;

	memset(&r, 0, sizeof(r));
	r.family = (uint8_t)family;
	r.nat = nat;
	r.packets = packets;
	r.octets = 1000 + packets;
	r.l2_octets = 2000 + packets;
	r.start_ms = 1700000000000ULL;
	r.end_ms = 1700000001250ULL;
	r.direction = TF_IPFIX_DIR_EGRESS;
	r.end_reason = TF_IPFIX_END_IDLE;
	r.forwarding = TF_IPFIX_FWD_FORWARDED;
	r.vlan = 100;
	memcpy(r.src_mac, "\x52\x54\x00\x12\x34\x56", 6);
	r.ingress_if = 7;
	r.egress_if = 3;
	snprintf(r.vm_name, sizeof(r.vm_name), "alpha");
	memcpy(r.vm_uuid, uuid, sizeof(uuid));
	snprintf(r.ifname, sizeof(r.ifname), "vnet0");
	if (family == 4) {
		r.proto = 6;
		r.tcp_flags = 0x1b;
		inet_pton(AF_INET, "10.0.0.2", r.src_ip);
		inet_pton(AF_INET, "93.184.216.34", r.dst_ip);
		r.src_port = 40000;
		r.dst_port = 443;
		inet_pton(AF_INET, "198.51.100.7", r.post_src_ip);
		inet_pton(AF_INET, "93.184.216.34", r.post_dst_ip);
		r.post_src_port = 61000;
		r.post_dst_port = 443;
	} else if (family == 6) {
		r.proto = 17;
		inet_pton(AF_INET6, "2001:db8:1:2:3:4:5:6", r.src_ip);
		inet_pton(AF_INET6, "2001:db8:a:b:c:d:e:f", r.dst_ip);
		r.src_port = 5353;
		r.dst_port = 53;
		inet_pton(AF_INET6, "2001:db8:ffff:1:2:3:4:5", r.post_src_ip);
		inet_pton(AF_INET6, "2001:db8:a:b:c:d:e:f", r.post_dst_ip);
		r.post_src_port = 61001;
		r.post_dst_port = 53;
	} else {
		r.ethertype = 0x0806;
		r.vlan = 0;
		r.direction = TF_IPFIX_DIR_INGRESS;
		r.forwarding = TF_IPFIX_FWD_DROPPED;
		r.dropped_packets = 2;
		r.dropped_octets = 84;
		memset(r.src_mac, 0, 6);
		memcpy(r.dst_mac, "\x52\x54\x00\xab\xcd\xef", 6);
		snprintf(r.vm_name, sizeof(r.vm_name), "beta");
		snprintf(r.ifname, sizeof(r.ifname), "vnet1");
	}
	return r;
}

static const struct tf_ipfix_iface ifaces[] = {
	{ 7, "vnet0", "VM alpha (52:54:00:12:34:56)" },
	{ 9, "vnet1", "VM beta (52:54:00:ab:cd:ef)" },
};

static const struct tf_ipfix_reason reasons[] = {
	{ 2, "NOT_SPECIFIED" },
	{ 5, "NETFILTER_DROP" },
};

static struct tf_ipfix *open_ok(const char *url, struct tf_ipfix_opts *o)
{
	struct tf_ipfix *x;
	char err[512];

	o->url = url;
	if (!o->domain_name)
		o->domain_name = "hv1.example";
	x = tf_ipfix_open(o, err, sizeof(err));
	if (!x)
		print_error("tf_ipfix_open(%s): %s\n", url, err);
	assert_non_null(x);
	assert_int_equal(tf_ipfix_set_ifaces(x, ifaces, 2), 0);
	assert_int_equal(tf_ipfix_set_reasons(x, reasons, 2), 0);
	return x;
}

static struct tf_ipfix_stats stats(const struct tf_ipfix *x)
{
	struct tf_ipfix_stats st;

	tf_ipfix_get_stats(x, &st);
	return st;
}

/* ---- the elements -------------------------------------------------------------- */

/* Every IANA element the templates use, known to libfixbuf under its number. */
static void test_info_model(void **state)
{
	static const struct {
		const char *name;
		uint16_t id;
	} ies[] = {
		{ "sourceIPv4Address", 8 }, { "destinationIPv4Address", 12 },
		{ "sourceIPv6Address", 27 }, { "destinationIPv6Address", 28 },
		{ "sourceTransportPort", 7 }, { "destinationTransportPort", 11 },
		{ "protocolIdentifier", 4 }, { "icmpTypeCodeIPv4", 32 },
		{ "icmpTypeCodeIPv6", 139 }, { "vlanId", 58 }, { "octetDeltaCount", 1 },
		{ "layer2OctetDeltaCount", 352 }, { "packetDeltaCount", 2 },
		{ "flowStartMilliseconds", 152 }, { "flowEndMilliseconds", 153 },
		{ "tcpControlBits", 6 }, { "flowDirection", 61 }, { "flowEndReason", 136 },
		{ "forwardingStatus", 89 }, { "droppedPacketDeltaCount", 133 },
		{ "droppedOctetDeltaCount", 132 }, { "sourceMacAddress", 56 },
		{ "destinationMacAddress", 80 }, { "ingressInterface", 10 },
		{ "egressInterface", 14 }, { "virtualStationName", 350 },
		{ "virtualStationUUID", 349 }, { "virtualStationInterfaceName", 348 },
		{ "postNATSourceIPv4Address", 225 }, { "postNATDestinationIPv4Address", 226 },
		{ "postNATSourceIPv6Address", 281 }, { "postNATDestinationIPv6Address", 282 },
		{ "postNAPTSourceTransportPort", 227 }, { "postNAPTDestinationTransportPort", 228 },
		{ "ethernetType", 256 }, { "interfaceName", 82 }, { "interfaceDescription", 83 },
		{ "observationDomainId", 149 }, { "observationDomainName", 300 },
		{ "exportingProcessId", 144 }, { "samplingPacketInterval", 305 },
		{ "samplingPacketSpace", 306 },
	};
	fbInfoModel_t *m = fbInfoModelAlloc();
	int missing = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(ies) / sizeof(ies[0]); i++) {
		const fbInfoElement_t *ie = fbInfoModelGetElementByName(m, ies[i].name);

		if (!ie || ie->num != ies[i].id || ie->ent) {
			print_error("libfixbuf's information model lacks %s (IANA %u)\n",
				    ies[i].name, ies[i].id);
			missing++;
		}
	}
	fbInfoModelFree(m);
	assert_int_equal(missing, 0);
}

/* ---- urls ------------------------------------------------------------------------ */

static void test_bad_urls(void **state)
{
	static const char *const bad[] = {
		"udpx://a", "udp://", "udp://host", "udp://host:", "udp://host:0",
		"udp://host:65536", "udp://host:47x", "tcp://:4739", "tcp://::1:4739",
		"tcp://[::1:4739", "tcp://[]:4739", "file:", "", "4739", "sctp://h:4739",
	};
	struct tf_ipfix_opts o = { 0 };
	char err[512], want[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.url = bad[i];
		snprintf(err, sizeof(err), "(unset)");
		assert_null(tf_ipfix_open(&o, err, sizeof(err)));
		snprintf(want, sizeof(want),
			 "--ipfix: \"%s\" is not udp://HOST:PORT, tcp://HOST:PORT or file:PATH",
			 bad[i]);
		assert_string_equal(err, want);
	}
	o.url = "file:/nonexistent-tf-dir/flows.ipfix";
	assert_null(tf_ipfix_open(&o, err, sizeof(err)));
	assert_string_equal(err, "--ipfix: cannot open /nonexistent-tf-dir/flows.ipfix: "
				 "No such file or directory");
	snprintf(want, sizeof(want), "file:%s", path_in("x"));
	o.url = want;
	o.rotate_s = 0.5;
	assert_null(tf_ipfix_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "less than 1 s"));
	assert_null(strchr(err, '\n'));
}

/* What tf_ipfix_open takes: IPv6 in brackets, names resolved. */
static void test_good_urls(void **state)
{
	static const char *const good[] = {
		"udp://127.0.0.1:4739", "udp://[::1]:4739", "udp://localhost:4739",
		"tcp://127.0.0.1:1", "tcp://[::1]:4739",
	};
	struct tf_ipfix_opts o = { 0 };
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct tf_ipfix *x;

		o.url = good[i];
		x = tf_ipfix_open(&o, err, sizeof(err));
		if (!x)
			print_error("%s: %s\n", good[i], err);
		assert_non_null(x);
		assert_string_equal(tf_ipfix_url(x), good[i]);
		tf_ipfix_close(x, 0, NULL);
	}
}

/* ---- file ------------------------------------------------------------------------- */

static void check_options(const char *d)
{
	const char *r;
	char pid[32];

	r = find(d, "interfaceName", "(len: 5) vnet0", NULL);
	assert_non_null(r);
	assert_field(r, "ingressInterface", "7");
	assert_field(r, "interfaceDescription", "(len: 28) VM alpha (52:54:00:12:34:56)");
	r = find(d, "interfaceName", "(len: 5) vnet1", NULL);
	assert_non_null(r);
	assert_field(r, "ingressInterface", "9");
	assert_field(r, "interfaceDescription", "(len: 27) VM beta (52:54:00:ab:cd:ef)");

	r = find(d, "observationDomainName", "(len: 11) hv1.example", NULL);
	assert_non_null(r);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	assert_field(r, "observationDomainId", "7");
	assert_field(r, "exportingProcessId", pid);
	assert_field(r, "samplingPacketInterval", "1");
	assert_field(r, "samplingPacketSpace", "0");

	/* The enterprise elements, named by the RFC 5610 records sent with them. */
	r = find(d, "tapflowDropReasonName", "(len: 14) NETFILTER_DROP", NULL);
	assert_non_null(r);
	assert_field(r, "tapflowDropReasonCode", "5");
	r = find(d, "tapflowDropReasonName", "(len: 13) NOT_SPECIFIED", NULL);
	assert_non_null(r);
	assert_field(r, "tapflowDropReasonCode", "2");
	assert_non_null(strstr(d, "ent: 32473  id:     1  type: uint32    len:     4 (S) "
				  "tapflowDropReasonCode"));
}

/* The fields every flow template has. */
static void check_common(const char *r, const char *pkts, const char *vm, const char *ifname)
{
	char v[64];

	assert_field(r, "packetDeltaCount", pkts);
	snprintf(v, sizeof(v), "%llu", 1000ULL + strtoull(pkts, NULL, 10));
	assert_field(r, "octetDeltaCount", v);
	snprintf(v, sizeof(v), "%llu", 2000ULL + strtoull(pkts, NULL, 10));
	assert_field(r, "layer2OctetDeltaCount", v);
	assert_field(r, "flowStartMilliseconds", "2023-11-14 22:13:20.000");
	assert_field(r, "flowEndMilliseconds", "2023-11-14 22:13:21.250");
	assert_field(r, "flowEndReason", "1");
	assert_field(r, "ingressInterface", "7");
	assert_field(r, "egressInterface", "3");
	assert_field(r, "virtualStationName", vm);
	assert_field(r, "virtualStationUUID", "(len: 16) 0x123456789abcdef01122334455667788");
	assert_field(r, "virtualStationInterfaceName", ifname);
}

static void check_flows(const char *d)
{
	const char *r;

	/* IPv4 */
	r = find(d, "packetDeltaCount", "1", NULL);
	assert_non_null(r);
	check_common(r, "1", "(len: 5) alpha", "(len: 5) vnet0");
	assert_field(r, "sourceIPv4Address", "10.0.0.2");
	assert_field(r, "destinationIPv4Address", "93.184.216.34");
	assert_field(r, "sourceTransportPort", "40000");
	assert_field(r, "destinationTransportPort", "443");
	assert_field(r, "protocolIdentifier", "6");
	assert_field(r, "tcpControlBits", "27");
	assert_field(r, "icmpTypeCodeIPv4", "0");
	assert_field(r, "vlanId", "100");
	assert_field(r, "flowDirection", "1");
	assert_field(r, "forwardingStatus", "64");
	assert_field(r, "droppedPacketDeltaCount", "0");
	assert_field(r, "sourceMacAddress", "52:54:00:12:34:56");
	assert_field(r, "destinationMacAddress", "00:00:00:00:00:00");
	assert_no_field(r, "postNATSourceIPv4Address");
	assert_no_field(r, "sourceIPv6Address");
	assert_no_field(r, "ethernetType");

	/* IPv4 ICMP echo request: type 8 code 0 */
	r = find(d, "packetDeltaCount", "2", NULL);
	assert_non_null(r);
	assert_field(r, "protocolIdentifier", "1");
	assert_field(r, "icmpTypeCodeIPv4", "2048");
	assert_field(r, "sourceTransportPort", "0");

	/* IPv4 with NAT */
	r = find(d, "packetDeltaCount", "3", NULL);
	assert_non_null(r);
	check_common(r, "3", "(len: 5) alpha", "(len: 5) vnet0");
	assert_field(r, "sourceIPv4Address", "10.0.0.2");
	assert_field(r, "postNATSourceIPv4Address", "198.51.100.7");
	assert_field(r, "postNATDestinationIPv4Address", "93.184.216.34");
	assert_field(r, "postNAPTSourceTransportPort", "61000");
	assert_field(r, "postNAPTDestinationTransportPort", "443");

	/* IPv6 */
	r = find(d, "packetDeltaCount", "4", NULL);
	assert_non_null(r);
	check_common(r, "4", "(len: 5) alpha", "(len: 5) vnet0");
	assert_field(r, "sourceIPv6Address", "2001:0db8:0001:0002:0003:0004:0005:0006");
	assert_field(r, "destinationIPv6Address", "2001:0db8:000a:000b:000c:000d:000e:000f");
	assert_field(r, "sourceTransportPort", "5353");
	assert_field(r, "destinationTransportPort", "53");
	assert_field(r, "protocolIdentifier", "17");
	assert_field(r, "icmpTypeCodeIPv6", "0");
	assert_no_field(r, "sourceIPv4Address");
	assert_no_field(r, "icmpTypeCodeIPv4");
	assert_no_field(r, "postNATSourceIPv6Address");

	/* IPv6 with NAT */
	r = find(d, "packetDeltaCount", "5", NULL);
	assert_non_null(r);
	check_common(r, "5", "(len: 5) alpha", "(len: 5) vnet0");
	assert_field(r, "postNATSourceIPv6Address", "2001:0db8:ffff:0001:0002:0003:0004:0005");
	assert_field(r, "postNATDestinationIPv6Address", "2001:0db8:000a:000b:000c:000d:000e:000f");
	assert_field(r, "postNAPTSourceTransportPort", "61001");
	assert_field(r, "postNAPTDestinationTransportPort", "53");

	/* IPv6 ICMP echo request: type 128 code 0 */
	r = find(d, "packetDeltaCount", "6", NULL);
	assert_non_null(r);
	assert_field(r, "protocolIdentifier", "58");
	assert_field(r, "icmpTypeCodeIPv6", "32768");

	/* Not IP: ARP, dropped */
	r = find(d, "packetDeltaCount", "7", NULL);
	assert_non_null(r);
	check_common(r, "7", "(len: 4) beta", "(len: 5) vnet1");
	assert_field(r, "ethernetType", "2054");
	assert_field(r, "vlanId", "0");
	assert_field(r, "flowDirection", "0");
	assert_field(r, "forwardingStatus", "128");
	assert_field(r, "droppedPacketDeltaCount", "2");
	assert_field(r, "droppedOctetDeltaCount", "84");
	assert_field(r, "sourceMacAddress", "00:00:00:00:00:00");
	assert_field(r, "destinationMacAddress", "52:54:00:ab:cd:ef");
	assert_no_field(r, "sourceIPv4Address");
	assert_no_field(r, "sourceIPv6Address");
	assert_no_field(r, "protocolIdentifier");
	assert_no_field(r, "sourceTransportPort");
}

static void add_every_kind(struct tf_ipfix *x)
{
	struct tf_ipfix_rec r;

	r = rec(4, false, 1);
	tf_ipfix_add(x, &r);
	r = rec(4, false, 2);
	r.proto = 1;
	r.src_port = r.dst_port = 0;
	r.tcp_flags = 0;
	r.icmp_type_code = 8 << 8;
	tf_ipfix_add(x, &r);
	r = rec(4, true, 3);
	tf_ipfix_add(x, &r);
	r = rec(6, false, 4);
	tf_ipfix_add(x, &r);
	r = rec(6, true, 5);
	tf_ipfix_add(x, &r);
	r = rec(6, false, 6);
	r.proto = 58;
	r.src_port = r.dst_port = 0;
	r.icmp_type_code = 128 << 8;
	tf_ipfix_add(x, &r);
	r = rec(0, false, 7);
	tf_ipfix_add(x, &r);
}

static void test_file_every_kind(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7 };
	struct tf_ipfix *x;
	struct tf_ipfix_stats st;
	char url[600], *d;

	(void)state;
	NEED_DUMP();
	snprintf(url, sizeof(url), "file:%s", path_in("all.ipfix"));
	x = open_ok(url, &o);
	add_every_kind(x);
	tf_ipfix_flush(x, 100);
	st = stats(x);
	assert_int_equal(st.records, 7);
	assert_int_equal(st.records_lost, 0);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.send_errors, 0);
	assert_true(st.up);
	tf_ipfix_close(x, 0, NULL);

	d = dump(path_in("all.ipfix"));
	check_options(d);
	check_flows(d);
	assert_int_equal(count_recs(d, "packetDeltaCount"), 7);
	/* 5 flow templates, 3 options templates, the RFC 5610 one */
	assert_int_equal(dump_templates(path_in("all.ipfix")), 9);
	free(d);
}

/* A second file every rotate_s, complete in itself: ipfixDump reads it alone. */
static void test_file_rotation(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7, .rotate_s = 60 };
	struct tf_ipfix_rec r;
	struct tf_ipfix *x;
	char url[600], names[2][256], *d;
	struct dirent *e;
	int n = 0;
	DIR *dd;

	(void)state;
	NEED_DUMP();
	assert_int_equal(mkdir(path_in("rot"), 0755), 0);
	snprintf(url, sizeof(url), "file:%s", path_in("rot/flows"));
	x = open_ok(url, &o);
	r = rec(4, false, 1);
	tf_ipfix_add(x, &r);
	tf_ipfix_flush(x, 1000);
	r = rec(4, false, 2);
	tf_ipfix_add(x, &r);
	tf_ipfix_flush(x, 1059);
	assert_int_equal(stats(x).files, 1);
	r = rec(6, true, 3);
	tf_ipfix_add(x, &r);
	tf_ipfix_flush(x, 1061);
	assert_int_equal(stats(x).files, 2);
	assert_int_equal(stats(x).records, 3);
	tf_ipfix_close(x, 0, NULL);

	dd = opendir(path_in("rot"));
	assert_non_null(dd);
	while ((e = readdir(dd))) {
		if (e->d_name[0] == '.')
			continue;
		assert_true(n < 2);
		snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
	}
	closedir(dd);
	assert_int_equal(n, 2);
	if (strcmp(names[0], names[1]) > 0) {
		char t[256];

		memcpy(t, names[0], sizeof(t));
		memcpy(names[0], names[1], sizeof(t));
		memcpy(names[1], t, sizeof(t));
	}
	/* flows.YYYYmmddHHMMSS, 61 s apart */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(strlen(names[i]), strlen("flows.") + 14);
		assert_memory_equal(names[i], "flows.", 6);
	}
	{
		struct tm a = { 0 }, b = { 0 };

		assert_non_null(strptime(names[0] + 6, "%Y%m%d%H%M%S", &a));
		assert_non_null(strptime(names[1] + 6, "%Y%m%d%H%M%S", &b));
		assert_int_equal((long)(timegm(&b) - timegm(&a)), 61);
	}

	snprintf(url, sizeof(url), "%s/%s", path_in("rot"), names[0]);
	d = dump(url);
	assert_int_equal(count_recs(d, "packetDeltaCount"), 2);
	assert_non_null(find(d, "packetDeltaCount", "1", NULL));
	assert_non_null(find(d, "packetDeltaCount", "2", NULL));
	free(d);
	snprintf(url, sizeof(url), "%s/%s", path_in("rot"), names[1]);
	assert_int_equal(dump_templates(url), 9);
	d = dump(url);
	assert_int_equal(count_recs(d, "packetDeltaCount"), 1);
	assert_non_null(find(d, "postNATSourceIPv6Address", "2001:0db8:ffff:0001:0002:0003:0004:0005",
			     NULL));
	check_options(d);
	free(d);
}

/* PATH with strftime escapes names each file itself. */
static void test_file_strftime(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7 };
	struct tf_ipfix *x;
	char url[600], name[600];
	struct tm tm;
	time_t t = time(NULL);

	(void)state;
	snprintf(url, sizeof(url), "file:%s", path_in("y%Y.ipfix"));
	x = open_ok(url, &o);
	tf_ipfix_close(x, 0, NULL);
	gmtime_r(&t, &tm);
	snprintf(name, sizeof(name), "y%d.ipfix", tm.tm_year + 1900);
	assert_int_equal(access(path_in(name), F_OK), 0);
}

/* ---- sockets ----------------------------------------------------------------------- */

/*
 * A socket bound to 127.0.0.1:*port, a free one if 0 (then in *port).
 * SO_REUSEADDR only once bound: a free port is then nobody else's (with it,
 * two UDP sockets could share one), and a TCP port can be bound again
 * while connections of the first listener linger in TIME_WAIT.
 */
static int bound(int type, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (*port)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(*port);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Every datagram waiting on fd, one after the other into file: how many. */
static int recv_datagrams(int fd, const char *file, size_t *max_len)
{
	int out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	static uint8_t buf[65536];
	int n = 0;

	assert_true(out >= 0);
	*max_len = 0;
	while (poll(&p, 1, 200) > 0) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);

		assert_true(len > 0);
		if ((size_t)len > *max_len)
			*max_len = (size_t)len;
		assert_int_equal(write(out, buf, (size_t)len), len);
		n++;
	}
	close(out);
	return n;
}

/*
 * One message per datagram, each at most TF_IPFIX_UDP_MTU; ipfixDump reads
 * the datagrams one after the other as a stream (messages delimit
 * themselves). Templates at the start and again after template_refresh_s.
 */
static void test_udp(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7, .template_refresh_s = 30 };
	struct tf_ipfix_rec r;
	struct tf_ipfix *x;
	uint16_t port = 0;
	size_t max_len;
	char url[64], v[32], *d;
	int fd = bound(SOCK_DGRAM, &port), n;

	(void)state;
	NEED_DUMP();
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", port);
	x = open_ok(url, &o);
	for (int i = 1; i <= 40; i++) {
		r = rec(i % 2 ? 4 : 6, i % 3 == 0, (uint64_t)i);
		/* long names: records of ~400 bytes, a few per datagram */
		memset(r.vm_name, 'v', 250);
		r.vm_name[250] = '\0';
		tf_ipfix_add(x, &r);
	}
	tf_ipfix_flush(x, 1000);
	assert_int_equal(stats(x).records, 40);
	n = recv_datagrams(fd, path_in("udp1.ipfix"), &max_len);
	assert_int_equal(n, (int)stats(x).messages);
	assert_true(n > 10);
	assert_true(max_len <= TF_IPFIX_UDP_MTU);
	d = dump(path_in("udp1.ipfix"));
	assert_int_equal(count_recs(d, "packetDeltaCount"), 40);
	for (int i = 1; i <= 40; i++) {
		int k;

		snprintf(v, sizeof(v), "%d", i);
		assert_non_null(find(d, "packetDeltaCount", v, &k));
		assert_int_equal(k, 1);
	}
	check_options(d);
	free(d);
	assert_int_equal(dump_templates(path_in("udp1.ipfix")), 9);

	/* Before the refresh: records only. */
	r = rec(4, false, 41);
	tf_ipfix_add(x, &r);
	tf_ipfix_flush(x, 1029);
	assert_int_equal(recv_datagrams(fd, path_in("udp2.ipfix"), &max_len), 1);
	assert_int_equal(dump_templates(path_in("udp2.ipfix")), 0);

	/* After it: templates and options again, then the record. */
	r = rec(4, false, 42);
	tf_ipfix_add(x, &r);
	tf_ipfix_flush(x, 1030.5);
	recv_datagrams(fd, path_in("udp3.ipfix"), &max_len);
	assert_int_equal(dump_templates(path_in("udp3.ipfix")), 9);
	d = dump(path_in("udp3.ipfix"));
	assert_int_equal(count_recs(d, "packetDeltaCount"), 1);
	assert_non_null(find(d, "packetDeltaCount", "42", NULL));
	check_options(d);
	free(d);

	/* A changed set of interfaces goes at the next flush. */
	assert_int_equal(tf_ipfix_set_ifaces(x, ifaces, 1), 0);
	tf_ipfix_flush(x, 1031);
	recv_datagrams(fd, path_in("udp4.ipfix"), &max_len);
	assert_int_equal(dump_templates(path_in("udp4.ipfix")), 0);
	/* The same set again is no change: nothing to send. */
	assert_int_equal(tf_ipfix_set_ifaces(x, ifaces, 1), 0);
	tf_ipfix_flush(x, 1032);
	assert_int_equal(recv_datagrams(fd, path_in("udp5.ipfix"), &max_len), 0);
	assert_int_equal(stats(x).records_lost, 0);
	assert_int_equal(stats(x).send_errors, 0);
	tf_ipfix_close(x, 0, NULL);
	close(fd);
}

/* Sends that fail count their records lost and the exporter goes on. */
static void test_udp_send_errors(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7 };
	struct tf_ipfix_stats st;
	struct tf_ipfix_rec r;
	struct tf_ipfix *x;
	uint16_t port = 0;
	char url[64];
	int fd = bound(SOCK_DGRAM, &port);

	(void)state;
	close(fd);	/* nobody there: ICMP port unreachable, the next send fails */
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", port);
	x = open_ok(url, &o);
	for (int i = 0; i < 20; i++) {
		r = rec(4, false, (uint64_t)i + 1);
		tf_ipfix_add(x, &r);
		tf_ipfix_flush(x, 1000 + i);
		usleep(10000);
	}
	st = stats(x);
	assert_true(st.send_errors > 0);
	assert_true(st.records_lost > 0);
	assert_int_equal(st.records + st.records_lost, 20);
	tf_ipfix_close(x, 0, NULL);
}

/* nfdump's collector reads the datagrams too. */
static void test_udp_nfcapd(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7 };
	struct tf_ipfix *x;
	uint16_t port = 0;
	char url[64], *out;
	int fd;

	(void)state;
	if (system("command -v nfcapd >/dev/null && command -v nfdump >/dev/null")) {
		printf("# SKIP nfcapd/nfdump not found (Debian nfdump)\n");
		skip();
	}
	fd = bound(SOCK_DGRAM, &port);
	close(fd);
	out = run("mkdir -p %s/nf && (nfcapd -b 127.0.0.1 -p %u -w %s/nf -P %s/nf.pid "
		  ">%s/nfcapd.log 2>&1 &) && "
		  "for i in $(seq 50); do [ -s %s/nf.pid ] && ss -Hlun 'sport = :%u' | grep -q . "
		  "&& break; sleep 0.1; done; ss -Hlun 'sport = :%u' | grep -q . && echo up",
		  dir, port, dir, dir, dir, dir, port, port);
	assert_string_equal(out, "up\n");
	free(out);
	snprintf(url, sizeof(url), "udp://127.0.0.1:%u", port);
	x = open_ok(url, &o);
	add_every_kind(x);
	tf_ipfix_flush(x, 100);
	assert_int_equal(stats(x).records, 7);
	tf_ipfix_close(x, 0, NULL);
	usleep(200000);
	/* nfcapd writes its file when it stops */
	out = run("kill $(cat %s/nf.pid); for i in $(seq 50); do [ -e %s/nf.pid ] || break; "
		  "sleep 0.1; done; nfdump -q -6 -R %s/nf -o 'fmt:%%pr %%sa %%sp %%da %%dp %%pkt %%byt' "
		  "| sed 's/  */ /g; s/^ //' | sort", dir, dir, dir);
	/* the layer-2 record too, without addresses */
	assert_string_equal(out,
			    "0 0.0.0.0 0 0.0.0.0 0 7 1007\n"
			    "ICMP 10.0.0.2 0 93.184.216.34 8.0 2 1002\n"
			    "ICMP6 2001:db8:1:2:3:4:5:6 0 2001:db8:a:b:c:d:e:f 128.0 6 1006\n"
			    "TCP 10.0.0.2 40000 93.184.216.34 443 1 1001\n"
			    "TCP 10.0.0.2 40000 93.184.216.34 443 3 1003\n"
			    "UDP 2001:db8:1:2:3:4:5:6 5353 2001:db8:a:b:c:d:e:f 53 4 1004\n"
			    "UDP 2001:db8:1:2:3:4:5:6 5353 2001:db8:a:b:c:d:e:f 53 5 1005\n");
	free(out);
}

/* ---- TCP ----------------------------------------------------------------------------- */

static int saved_stderr = -1;

/* stderr (the log lines) into a file until log_end. */
static void log_begin(void)
{
	int fd = open(path_in("stderr.log"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *log_end(void)
{
	int fd;
	char *s;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	fd = open(path_in("stderr.log"), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	s = read_all(fd);
	close(fd);
	fprintf(stderr, "%s", s);
	return s;
}

static int count_lines(const char *s, const char *what)
{
	int n = 0;

	for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
		n++;
	return n;
}

/* Nobody listens: records wait, at most queue_max; the rest is lost, exactly. */
static void test_tcp_queue_full(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7, .queue_max = 10 };
	struct tf_ipfix_stats st;
	struct tf_ipfix_rec r;
	struct tf_ipfix *x;
	uint16_t port = 0;
	char url[64], *log;
	int fd = bound(SOCK_STREAM, &port);

	(void)state;
	close(fd);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	log_begin();
	x = open_ok(url, &o);
	for (int i = 0; i < 25; i++) {
		r = rec(4, false, (uint64_t)i + 1);
		tf_ipfix_add(x, &r);
	}
	st = stats(x);
	assert_int_equal(st.records_lost, 15);
	for (int i = 0; i < 5; i++) {
		tf_ipfix_flush(x, 100 + i * 0.01);
		usleep(20000);
	}
	st = stats(x);
	assert_false(st.up);
	assert_int_equal(st.connects, 0);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.records_lost, 15);
	tf_ipfix_close(x, 0, NULL);
	log = log_end();
	assert_int_equal(count_lines(log, "cannot connect: Connection refused; retrying, records wait"), 1);
	/* one line when the loss is seen, one at the end: the ten that waited */
	assert_int_equal(count_lines(log, "15 records lost (15 queue full)"), 1);
	assert_int_equal(count_lines(log, "10 records lost (10 still waiting at the end)"), 1);
	free(log);
}

/* Accept the exporter's connection (within 2 s). */
static int accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 2000), 1);
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Flush (the clock moving on by step) until cond, for at most 2 s. */
#define FLUSH_UNTIL(x, now, step, cond)						\
	do {									\
		for (int i_ = 0; i_ < 200 && !(cond); i_++) {			\
			(now) += (step);					\
			tf_ipfix_flush((x), (now));				\
			if (!(cond))						\
				usleep(10000);					\
		}								\
		assert_true(cond);						\
	} while (0)

/* Exactly len bytes from fd into file. */
static void recv_bytes(int fd, size_t len, const char *file)
{
	int out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	static uint8_t buf[65536];
	size_t got = 0;

	assert_true(out >= 0);
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		size_t want = len - got < sizeof(buf) ? len - got : sizeof(buf);
		ssize_t n;

		assert_int_equal(poll(&p, 1, 2000), 1);
		n = recv(fd, buf, want, 0);
		assert_true(n > 0);
		assert_int_equal(write(out, buf, (size_t)n), n);
		got += (size_t)n;
	}
	close(out);
}

/* What fd receives until the peer closes, appended to file. */
static void recv_to_eof(int fd, const char *file)
{
	int out = open(file, O_WRONLY | O_APPEND | O_CLOEXEC);
	static uint8_t buf[65536];
	ssize_t n;

	assert_true(out >= 0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, 2000), 1);
		n = recv(fd, buf, sizeof(buf), 0);
		assert_true(n >= 0);
		if (!n)
			break;
		assert_int_equal(write(out, buf, (size_t)n), n);
	}
	close(out);
}

/* The first message of an IPFIX file is a template set (2) or options template set (3). */
static void assert_templates_first(const char *file)
{
	char *d = dump(file);
	const char *first_tmpl = strstr(d, "template record ---");
	const char *first_data = strstr(d, "--- data record");

	assert_non_null(first_tmpl);
	assert_true(!first_data || first_tmpl < first_data);
	free(d);
}

/*
 * A collector that goes and comes back: records wait while it is away (a
 * small queue: the excess is lost, exactly), then arrive on the new
 * connection after its templates and options records.
 */
static void test_tcp_collector(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7, .queue_max = 10, .backoff_min_s = 0.2 };
	struct tf_ipfix_stats st;
	struct tf_ipfix_rec r;
	struct tf_ipfix *x;
	uint16_t port = 0;
	double now = 100;
	uint64_t bytes0;
	char url[64], v[32], *d, *log;
	const char *prev = NULL;
	int lfd = bound(SOCK_STREAM, &port), c;

	(void)state;
	NEED_DUMP();
	assert_int_equal(listen(lfd, 4), 0);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	log_begin();
	x = open_ok(url, &o);
	for (int i = 1; i <= 5; i++) {
		r = rec(i == 5 ? 0 : 4, i == 3, (uint64_t)i);
		tf_ipfix_add(x, &r);
	}
	FLUSH_UNTIL(x, now, 0.01, stats(x).records == 5);
	c = accept_one(lfd);
	assert_true(c >= 0);
	st = stats(x);
	assert_true(st.up);
	assert_int_equal(st.connects, 1);
	recv_bytes(c, st.bytes, path_in("tcp1.ipfix"));
	assert_templates_first(path_in("tcp1.ipfix"));
	d = dump(path_in("tcp1.ipfix"));
	assert_int_equal(count_recs(d, "packetDeltaCount"), 5);
	assert_non_null(find(d, "postNATSourceIPv4Address", "198.51.100.7", NULL));
	assert_non_null(find(d, "ethernetType", "2054", NULL));
	check_options(d);
	free(d);

	/* The collector goes: seen at a flush, before anything is written. */
	close(c);
	close(lfd);
	FLUSH_UNTIL(x, now, 0.001, !stats(x).up);
	st = stats(x);
	assert_false(st.up);
	assert_int_equal(st.records, 5);
	for (int i = 101; i <= 113; i++) {
		r = rec(i % 2 ? 4 : 6, false, (uint64_t)i);
		tf_ipfix_add(x, &r);
	}
	assert_int_equal(stats(x).records_lost, 3);
	/*
	 * Tries while nobody listens, refused: the first 0.2 s after the loss,
	 * then 0.2 s later, then 0.4 s later (the second flush of each pair
	 * sees the refusal if connect did not say it at once).
	 */
	tf_ipfix_flush(x, now + 0.25);
	usleep(10000);
	tf_ipfix_flush(x, now + 0.251);
	tf_ipfix_flush(x, now + 0.46);
	usleep(10000);
	tf_ipfix_flush(x, now + 0.461);
	assert_false(stats(x).up);
	assert_int_equal(stats(x).connects, 1);

	/* It comes back on the same port: taken at the next try, not before. */
	lfd = bound(SOCK_STREAM, &port);
	assert_int_equal(listen(lfd, 4), 0);
	tf_ipfix_flush(x, now + 0.85);
	usleep(10000);
	tf_ipfix_flush(x, now + 0.85);
	assert_false(stats(x).up);
	assert_int_equal(stats(x).connects, 1);
	now += 0.87;
	bytes0 = stats(x).bytes;
	FLUSH_UNTIL(x, now, 0.05, stats(x).records == 15);
	st = stats(x);
	assert_true(st.up);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.records_lost, 3);
	c = accept_one(lfd);
	assert_true(c >= 0);
	recv_bytes(c, st.bytes - bytes0, path_in("tcp2.ipfix"));
	assert_templates_first(path_in("tcp2.ipfix"));
	assert_int_equal(dump_templates(path_in("tcp2.ipfix")), 9);
	d = dump(path_in("tcp2.ipfix"));
	/* the first ten that waited, in order; not 111..113 */
	assert_int_equal(count_recs(d, "packetDeltaCount"), 10);
	for (int i = 101; i <= 110; i++) {
		const char *at;

		snprintf(v, sizeof(v), "%d", i);
		at = find(d, "packetDeltaCount", v, NULL);
		assert_non_null(at);
		assert_true(!prev || at > prev);
		prev = at;
	}
	check_options(d);
	free(d);

	/* The end: close waits for the collector to take the rest. */
	for (int i = 201; i <= 203; i++) {
		r = rec(4, false, (uint64_t)i);
		tf_ipfix_add(x, &r);
	}
	tf_ipfix_close(x, 2, NULL);
	recv_to_eof(c, path_in("tcp2.ipfix"));
	d = dump(path_in("tcp2.ipfix"));
	assert_int_equal(count_recs(d, "packetDeltaCount"), 13);
	for (int i = 201; i <= 203; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_non_null(find(d, "packetDeltaCount", v, NULL));
	}
	free(d);
	close(c);
	close(lfd);
	log = log_end();
	assert_int_equal(count_lines(log, "connection lost (closed by the collector); "
				     "records wait for the collector"), 1);
	assert_int_equal(count_lines(log, "connected again; 10 records waited"), 1);
	assert_int_equal(count_lines(log, "3 records lost (3 queue full)"), 1);
	assert_int_equal(count_lines(log, "records lost"), 1);
	free(log);
}

/*
 * A collector that stops reading, then resets the connection: the message
 * half written goes with it (its records lost), what was not written yet
 * waits; every record is either sent or lost, never both.
 */
static void test_tcp_lost_mid_message(void **state)
{
	struct tf_ipfix_opts o = { .domain = 7, .queue_max = 100000, .backoff_min_s = 0.2 };
	struct tf_ipfix_stats st, st2;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct tf_ipfix_rec r;
	struct tf_ipfix *x;
	uint16_t port = 0;
	double now = 100;
	char url[64], line[256], *log;
	int rcv = 4096, lfd = bound(SOCK_STREAM, &port), c, total = 30000;

	(void)state;
	/* a small receive window, and nobody reads: the exporter's socket fills */
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	assert_int_equal(listen(lfd, 4), 0);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	log_begin();
	x = open_ok(url, &o);
	for (int i = 0; i < total; i++) {
		r = rec(4, false, (uint64_t)i + 1);
		memset(r.vm_name, 'v', 250);
		r.vm_name[250] = '\0';
		tf_ipfix_add(x, &r);
	}
	FLUSH_UNTIL(x, now, 0.01, stats(x).up);
	c = accept_one(lfd);
	assert_true(c >= 0);
	for (int i = 0; i < 20; i++) {
		tf_ipfix_flush(x, now += 0.01);
		usleep(5000);
	}
	st = stats(x);
	assert_true(st.records > 0);
	assert_true(st.records < (uint64_t)total);

	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c);	/* RST */
	close(lfd);
	FLUSH_UNTIL(x, now, 0.001, !stats(x).up);
	st2 = stats(x);
	assert_false(st2.up);
	assert_int_equal(st2.records, st.records);
	assert_true(st2.records_lost > 0);
	tf_ipfix_close(x, 0, NULL);
	log = log_end();
	assert_int_equal(count_lines(log, "connection lost (Connection reset by peer)"), 1);
	snprintf(line, sizeof(line), ": %llu records lost (%llu in a message the connection took with it)",
		 (unsigned long long)st2.records_lost, (unsigned long long)st2.records_lost);
	assert_int_equal(count_lines(log, line), 1);
	snprintf(line, sizeof(line), ": %llu records lost (%llu still waiting at the end)",
		 (unsigned long long)(total - st2.records - st2.records_lost),
		 (unsigned long long)(total - st2.records - st2.records_lost));
	assert_int_equal(count_lines(log, line), 1);
	free(log);
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	have_dump = system("command -v ipfixDump >/dev/null 2>&1") == 0;
	return 0;
}

static int teardown(void **state)
{
	char cmd[1024];

	(void)state;
	/* an nfcapd that a failed test left running */
	snprintf(cmd, sizeof(cmd), "[ -s '%s/nf.pid' ] && kill $(cat '%s/nf.pid'); rm -rf '%s'",
		 dir, dir, dir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info_model),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_good_urls),
		cmocka_unit_test(test_file_every_kind),
		cmocka_unit_test(test_file_rotation),
		cmocka_unit_test(test_file_strftime),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_udp_send_errors),
		cmocka_unit_test(test_udp_nfcapd),
		cmocka_unit_test(test_tcp_queue_full),
		cmocka_unit_test(test_tcp_collector),
		cmocka_unit_test(test_tcp_lost_mid_message),
	};

	return cmocka_run_group_tests_name("ipfix", tests, setup, teardown);
}
