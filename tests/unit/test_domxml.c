// SPDX-License-Identifier: GPL-2.0
/*
 * Domain and network XML parsers on realistic libvirt output and on the
 * odd inputs libvirt never sends but a broken setup might.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

/* What "virsh dumpxml" prints for a running two-NIC guest (libvirt 9). */
static const char running_xml[] =
	"<domain type='kvm' id='3'>\n"
	"  <name>web-01</name>\n"
	"  <uuid>0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0</uuid>\n"
	"  <metadata>\n"
	"    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n"
	"      <libosinfo:os id='http://debian.org/debian/12'/>\n"
	"    </libosinfo:libosinfo>\n"
	"  </metadata>\n"
	"  <memory unit='KiB'>1048576</memory>\n"
	"  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='qcow2'/>\n"
	"      <source file='/var/lib/libvirt/images/web-01.qcow2' index='1'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"    </disk>\n"
	"    <interface type='network'>\n"
	"      <mac address='52:54:00:AB:cd:0E'/>\n"
	"      <source network='default' portid='7c1c5f0e-8c3d-4d39-9d52-0d1b3a3c2b11' bridge='virbr0'/>\n"
	"      <target dev='vnet2'/>\n"
	"      <model type='virtio'/>\n"
	"      <alias name='net0'/>\n"
	"      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
	"    </interface>\n"
	"    <interface type='bridge'>\n"
	"      <mac address='52:54:00:11:22:33'/>\n"
	"      <source bridge='br-public'/>\n"
	"      <target dev='vnet3'/>\n"
	"      <model type='e1000e'/>\n"
	"      <alias name='net1'/>\n"
	"    </interface>\n"
	"    <serial type='pty'><target type='isa-serial' port='0'/></serial>\n"
	"  </devices>\n"
	"</domain>\n";

static void test_running_domain(void **state)
{
	struct tf_domain_xml d;
	char err[256] = "";

	(void)state;
	assert_int_equal(tf_domxml_parse(running_xml, &d, err, sizeof(err)), 0);
	assert_string_equal(d.name, "web-01");
	assert_string_equal(d.uuid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	assert_int_equal(d.n_ifaces, 2);

	assert_string_equal(d.ifaces[0].type, "network");
	assert_string_equal(d.ifaces[0].mac, "52:54:00:ab:cd:0e");
	assert_string_equal(d.ifaces[0].target, "vnet2");
	assert_string_equal(d.ifaces[0].model, "virtio");
	assert_string_equal(d.ifaces[0].source_network, "default");
	assert_string_equal(d.ifaces[0].source_bridge, "virbr0");
	assert_string_equal(d.ifaces[0].source_dev, "");

	assert_string_equal(d.ifaces[1].type, "bridge");
	assert_string_equal(d.ifaces[1].mac, "52:54:00:11:22:33");
	assert_string_equal(d.ifaces[1].target, "vnet3");
	assert_string_equal(d.ifaces[1].model, "e1000e");
	assert_string_equal(d.ifaces[1].source_network, "");
	assert_string_equal(d.ifaces[1].source_bridge, "br-public");
	tf_domxml_free(&d);
	assert_null(d.ifaces);
	assert_int_equal(d.n_ifaces, 0);
}

/* Inactive (or not yet started) NIC: no <target>, no model, no mac. */
static void test_no_target_no_mac(void **state)
{
	static const char xml[] =
		"<domain type='qemu'><name>t1</name>"
		"<uuid>00000000-0000-0000-0000-000000000001</uuid>"
		"<devices><interface type='network'>"
		"<source network='lab-nat'/></interface></devices></domain>";
	struct tf_domain_xml d;
	char err[256] = "";

	(void)state;
	assert_int_equal(tf_domxml_parse(xml, &d, err, sizeof(err)), 0);
	assert_int_equal(d.n_ifaces, 1);
	assert_string_equal(d.ifaces[0].type, "network");
	assert_string_equal(d.ifaces[0].target, "");
	assert_string_equal(d.ifaces[0].mac, "");
	assert_string_equal(d.ifaces[0].model, "");
	assert_string_equal(d.ifaces[0].source_network, "lab-nat");
	assert_string_equal(d.ifaces[0].source_bridge, "");
	tf_domxml_free(&d);
}

static void test_direct_user_and_more(void **state)
{
	static const char xml[] =
		"<domain type='kvm'><name>mixed</name>"
		"<uuid>0123456789abcdef0123456789ABCDEF</uuid><devices>"
		"<interface type='direct'><mac address='52:54:00:00:00:01'/>"
		"<source dev='eno1' mode='vepa'/><target dev='macvtap0'/>"
		"<model type='virtio'/></interface>"
		"<interface type='user'><mac address='52:54:00:00:00:02'/>"
		"<model type='virtio'/></interface>"
		/* vdpa's <source dev> is a path: must not fail the parse */
		"<interface type='vdpa'><mac address='52:54:00:00:00:03'/>"
		"<source dev='/dev/vhost-vdpa-0-with-a-long-path'/></interface>"
		"<interface type='network'><mac address='52:54:00:00:00:04'/>"
		"<target dev='vnet9'/></interface>"
		"</devices></domain>";
	struct tf_domain_xml d;
	char err[256] = "";

	(void)state;
	assert_int_equal(tf_domxml_parse(xml, &d, err, sizeof(err)), 0);
	/* 32 bare hex digits are canonicalised like libvirt does */
	assert_string_equal(d.uuid, "01234567-89ab-cdef-0123-456789abcdef");
	assert_int_equal(d.n_ifaces, 4);
	assert_string_equal(d.ifaces[0].type, "direct");
	assert_string_equal(d.ifaces[0].source_dev, "eno1");
	assert_string_equal(d.ifaces[0].target, "macvtap0");
	assert_string_equal(d.ifaces[1].type, "user");
	assert_string_equal(d.ifaces[1].mac, "52:54:00:00:00:02");
	assert_string_equal(d.ifaces[1].target, "");
	assert_string_equal(d.ifaces[2].type, "vdpa");
	assert_string_equal(d.ifaces[2].source_dev, "");
	/* type='network' without <source network=> */
	assert_string_equal(d.ifaces[3].type, "network");
	assert_string_equal(d.ifaces[3].source_network, "");
	assert_string_equal(d.ifaces[3].target, "vnet9");
	tf_domxml_free(&d);
}

static void test_no_devices(void **state)
{
	static const char xml[] =
		"<domain><name>bare</name>"
		"<uuid>11111111-2222-3333-4444-555555555555</uuid></domain>";
	struct tf_domain_xml d;
	char err[256] = "";

	(void)state;
	assert_int_equal(tf_domxml_parse(xml, &d, err, sizeof(err)), 0);
	assert_string_equal(d.name, "bare");
	assert_int_equal(d.n_ifaces, 0);
	assert_null(d.ifaces);
	tf_domxml_free(&d);
}

/* Expect failure, a one-line err containing want, and a clean out. */
static void expect_dom_fail(const char *xml, const char *want)
{
	struct tf_domain_xml d;
	char err[256] = "";

	assert_int_equal(tf_domxml_parse(xml, &d, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("err '%s' does not contain '%s'", err, want);
	assert_null(strchr(err, '\n'));
	assert_null(d.ifaces);
	assert_int_equal(d.n_ifaces, 0);
	tf_domxml_free(&d);
}

static void test_bad_domains(void **state)
{
	(void)state;
	expect_dom_fail("", "empty domain XML");
	expect_dom_fail(NULL, "empty domain XML");
	expect_dom_fail("<domain><name>x</name>", "malformed domain XML");
	expect_dom_fail("not xml at all", "malformed domain XML (line 1)");
	expect_dom_fail("<network><name>x</name></network>",
			"not a domain XML (root <network>)");
	expect_dom_fail("<domain><uuid>11111111-2222-3333-4444-555555555555"
			"</uuid></domain>", "domain XML without <name>");
	expect_dom_fail("<domain><name></name></domain>",
			"domain XML without <name>");
	expect_dom_fail("<domain><name>n</name></domain>",
			"domain 'n' without <uuid>");
	expect_dom_fail("<domain><name>n</name><uuid>1234</uuid></domain>",
			"domain 'n': bad uuid '1234'");
	expect_dom_fail("<domain><name>n</name>"
			"<uuid>11111111-2222-3333-4444-55555555555g</uuid>"
			"</domain>", "bad uuid");
	expect_dom_fail("<domain><name>n</name>"
			"<uuid> 11111111-2222-3333-4444-555555555555 x</uuid>"
			"</domain>", "bad uuid");
	expect_dom_fail("<domain><name>n</name>"
			"<uuid>11111111-2222-3333-4444-5555555555551</uuid>"
			"</domain>", "bad uuid");
	expect_dom_fail("<domain><name>n</name>"
			"<uuid>11111111-2222-3333-4444-555555555555</uuid>"
			"<devices><interface type='network'>"
			"<mac address='52:54:00:zz:00:01'/></interface>"
			"</devices></domain>",
			"domain 'n' interface 0: bad MAC address "
			"'52:54:00:zz:00:01'");
	expect_dom_fail("<domain><name>n</name>"
			"<uuid>11111111-2222-3333-4444-555555555555</uuid>"
			"<devices><interface><target dev='vnet0'/></interface>"
			"</devices></domain>",
			"domain 'n' interface 0: no type");
	/* External entities must not be fetched or expanded. */
	expect_dom_fail("<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
			"<domain><name>&e;</name></domain>",
			"domain XML with a DOCTYPE");
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static char *dom_with(const char *name, const char *target, const char *model,
		      const char *network)
{
	char *xml;

	assert_true(asprintf(&xml,
		"<domain><name>%s</name>"
		"<uuid>11111111-2222-3333-4444-555555555555</uuid><devices>"
		"<interface type='network'><mac address='52:54:00:00:00:01'/>"
		"<source network='%s'/><target dev='%s'/><model type='%s'/>"
		"</interface></devices></domain>",
		name, network, target, model) > 0);
	return xml;
}

/* Values that fit exactly are kept whole; one more byte is an error. */
static void test_limits(void **state)
{
	char *n255 = repeat('n', TF_NAME_MAX - 1), *n256 = repeat('n', TF_NAME_MAX);
	char *t15 = repeat('t', IFNAMSIZ - 1), *t16 = repeat('t', IFNAMSIZ);
	char *m31 = repeat('m', 31), *m32 = repeat('m', 32);
	struct tf_domain_xml d;
	char err[256] = "";
	char *xml;

	(void)state;
	xml = dom_with(n255, t15, m31, n255);
	assert_int_equal(tf_domxml_parse(xml, &d, err, sizeof(err)), 0);
	assert_string_equal(d.name, n255);
	assert_string_equal(d.ifaces[0].target, t15);
	assert_string_equal(d.ifaces[0].model, m31);
	assert_string_equal(d.ifaces[0].source_network, n255);
	tf_domxml_free(&d);
	free(xml);

	xml = dom_with(n256, "vnet0", "virtio", "default");
	expect_dom_fail(xml, "domain name too long (256 bytes, max 255)");
	free(xml);
	xml = dom_with("vm", t16, "virtio", "default");
	expect_dom_fail(xml, "interface 0 target dev too long (16 bytes, max 15)");
	free(xml);
	xml = dom_with("vm", "vnet0", m32, "default");
	expect_dom_fail(xml, "interface 0 model type too long (32 bytes, max 31)");
	free(xml);
	xml = dom_with("vm", "vnet0", "virtio", n256);
	expect_dom_fail(xml, "interface 0 source network too long");
	free(xml);

	free(n255);
	free(n256);
	free(t15);
	free(t16);
	free(m31);
	free(m32);
}

/* A tiny err buffer is filled, terminated, never overrun. */
static void test_small_err_buffer(void **state)
{
	struct tf_domain_xml d;
	char err[8];

	(void)state;
	memset(err, 'X', sizeof(err));
	assert_int_equal(tf_domxml_parse("<x", &d, err, 6), -1);
	assert_string_equal(err, "malfo");
	assert_int_equal(err[6], 'X');
	assert_int_equal(tf_domxml_parse("<x", &d, NULL, 0), -1);
}

/* ---- networks --------------------------------------------------------- */

static void expect_net(const char *xml, const char *name, const char *bridge,
		       enum tf_mode mode)
{
	struct tf_network_xml n;
	char err[256] = "";

	if (tf_netxml_parse(xml, &n, err, sizeof(err)))
		fail_msg("parse failed: %s", err);
	assert_string_equal(n.name, name);
	assert_string_equal(n.bridge, bridge);
	assert_int_equal(n.mode, mode);
}

static void test_net_nat(void **state)
{
	(void)state;
	/* libvirt's default network as "virsh net-dumpxml default" prints it */
	expect_net("<network connections='2'>\n"
		   "  <name>default</name>\n"
		   "  <uuid>3e6c4d1e-0f5b-4b5a-8a2f-6c1d3e2b1a09</uuid>\n"
		   "  <forward mode='nat'>\n"
		   "    <nat><port start='1024' end='65535'/></nat>\n"
		   "  </forward>\n"
		   "  <bridge name='virbr0' stp='on' delay='0'/>\n"
		   "  <mac address='52:54:00:4f:3a:2b'/>\n"
		   "  <ip address='192.168.122.1' netmask='255.255.255.0'>\n"
		   "    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>\n"
		   "  </ip>\n"
		   "</network>\n", "default", "virbr0", TF_MODE_NAT);
	/* <forward/> without mode is NAT, as libvirt defines it */
	expect_net("<network><name>n2</name><forward/>"
		   "<bridge name='virbr5'/></network>", "n2", "virbr5",
		   TF_MODE_NAT);
	expect_net("<network><name>n3</name><forward dev='eth0'/>"
		   "<bridge name='virbr6'/></network>", "n3", "virbr6",
		   TF_MODE_NAT);
}

static void test_net_modes(void **state)
{
	(void)state;
	expect_net("<network><name>r</name><forward mode='route' dev='eth1'/>"
		   "<bridge name='virbr1'/></network>", "r", "virbr1",
		   TF_MODE_ROUTE);
	expect_net("<network><name>o</name><forward mode='open'/>"
		   "<bridge name='virbr2'/></network>", "o", "virbr2",
		   TF_MODE_OPEN);
	expect_net("<network><name>iso</name><bridge name='virbr3'/>"
		   "<ip address='10.9.9.1' prefix='24'/></network>", "iso",
		   "virbr3", TF_MODE_ISOLATED);
	expect_net("<network><name>host-br</name><forward mode='bridge'/>"
		   "<bridge name='br0'/></network>", "host-br", "br0",
		   TF_MODE_BRIDGE);
	/* bridge mode without a bridge: a macvtap pool */
	expect_net("<network><name>mv</name><forward mode='bridge'>"
		   "<interface dev='eth0'/></forward></network>", "mv", "",
		   TF_MODE_DIRECT);
	expect_net("<network><name>vepa</name><forward mode='vepa'>"
		   "<interface dev='eth0'/></forward></network>", "vepa", "",
		   TF_MODE_DIRECT);
	expect_net("<network><name>pr</name><forward mode='private'/>"
		   "</network>", "pr", "", TF_MODE_DIRECT);
	expect_net("<network><name>pt</name><forward mode='passthrough'/>"
		   "</network>", "pt", "", TF_MODE_DIRECT);
	expect_net("<network><name>hd</name><forward mode='hostdev' "
		   "managed='yes'><pf dev='eth3'/></forward></network>", "hd",
		   "", TF_MODE_OTHER);
	expect_net("<network><name>fut</name><forward mode='future'/>"
		   "<bridge name='virbr9'/></network>", "fut", "virbr9",
		   TF_MODE_OTHER);
	/* no <bridge name=>: parsed, bridge "" (the inventory notes it) */
	expect_net("<network><name>nobr</name><forward mode='nat'/></network>",
		   "nobr", "", TF_MODE_NAT);
	expect_net("<network><name>nobr2</name><bridge stp='on'/></network>",
		   "nobr2", "", TF_MODE_ISOLATED);
}

static void expect_net_fail(const char *xml, const char *want)
{
	struct tf_network_xml n;
	char err[256] = "";

	assert_int_equal(tf_netxml_parse(xml, &n, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("err '%s' does not contain '%s'", err, want);
	assert_string_equal(n.name, "");
	assert_string_equal(n.bridge, "");
	assert_int_equal(n.mode, TF_MODE_UNKNOWN);
}

static void test_net_bad(void **state)
{
	char *n255 = repeat('n', TF_NAME_MAX - 1), *n256 = repeat('n', TF_NAME_MAX);
	char *xml;

	(void)state;
	expect_net_fail("", "empty network XML");
	expect_net_fail("<network><name>x</name>", "malformed network XML");
	expect_net_fail("<domain><name>x</name></domain>",
			"not a network XML (root <domain>)");
	expect_net_fail("<network><bridge name='virbr0'/></network>",
			"network XML without <name>");
	expect_net_fail("<network><name>x</name>"
			"<bridge name='a-very-long-bridge'/></network>",
			"network bridge name too long (18 bytes, max 15)");

	assert_true(asprintf(&xml, "<network><name>%s</name></network>",
			     n255) > 0);
	expect_net(xml, n255, "", TF_MODE_ISOLATED);
	free(xml);
	assert_true(asprintf(&xml, "<network><name>%s</name></network>",
			     n256) > 0);
	expect_net_fail(xml, "network name too long (256 bytes, max 255)");
	free(xml);
	free(n255);
	free(n256);
}

/*
 * libvirt never writes a DOCTYPE; entities declared in one would be
 * expanded on every read of a name, with no bound: here 5000 references
 * to a 20000-byte entity.
 */
static void test_doctype_rejected(void **state)
{
	char *big = repeat('x', 20000), *refs = malloc(5000 * 3 + 1), *xml;

	(void)state;
	assert_non_null(refs);
	for (int i = 0; i < 5000; i++)
		memcpy(refs + 3 * i, "&a;", 3);
	refs[5000 * 3] = '\0';
	assert_true(asprintf(&xml, "<!DOCTYPE domain [<!ENTITY a '%s'>]><domain>"
			     "<name>%s</name><uuid>11111111-2222-3333-4444-555555555555"
			     "</uuid></domain>", big, refs) > 0);
	expect_dom_fail(xml, "domain XML with a DOCTYPE (libvirt never writes one)");
	free(xml);
	/* Harmless ones too: none comes from libvirt. */
	expect_dom_fail("<!DOCTYPE domain [<!ENTITY n 'web'>]><domain><name>&n;</name>"
			"<uuid>11111111-2222-3333-4444-555555555555</uuid></domain>",
			"domain XML with a DOCTYPE");
	expect_dom_fail("<!DOCTYPE domain><domain><name>n</name>"
			"<uuid>11111111-2222-3333-4444-555555555555</uuid></domain>",
			"domain XML with a DOCTYPE");
	expect_net_fail("<!DOCTYPE network [<!ENTITY a 'x'>]><network><name>&a;</name>"
			"</network>", "network XML with a DOCTYPE");
	free(big);
	free(refs);
}

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(tf_mode_name(TF_MODE_NAT), "nat");
	assert_string_equal(tf_mode_name(TF_MODE_ROUTE), "route");
	assert_string_equal(tf_mode_name(TF_MODE_OPEN), "open");
	assert_string_equal(tf_mode_name(TF_MODE_ISOLATED), "isolated");
	assert_string_equal(tf_mode_name(TF_MODE_BRIDGE), "bridge");
	assert_string_equal(tf_mode_name(TF_MODE_DIRECT), "direct");
	assert_string_equal(tf_mode_name(TF_MODE_USER), "user");
	assert_string_equal(tf_mode_name(TF_MODE_OTHER), "other");
	assert_string_equal(tf_mode_name(TF_MODE_UNKNOWN), "unknown");
	assert_string_equal(tf_mode_name((enum tf_mode)42), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_running_domain),
		cmocka_unit_test(test_no_target_no_mac),
		cmocka_unit_test(test_direct_user_and_more),
		cmocka_unit_test(test_no_devices),
		cmocka_unit_test(test_bad_domains),
		cmocka_unit_test(test_doctype_rejected),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_net_nat),
		cmocka_unit_test(test_net_modes),
		cmocka_unit_test(test_net_bad),
		cmocka_unit_test(test_mode_names),
	};

	return cmocka_run_group_tests_name("domxml", tests, NULL, NULL);
}
