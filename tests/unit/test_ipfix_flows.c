// SPDX-License-Identifier: GPL-2.0
/*
 * The IPFIX flow records' pure parts: IP bytes from frame bytes, the VM's
 * MAC and UUID as the records carry them.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ipfix_flows.h"

static void test_ip_octets(void **state)
{
	struct tf_flow_key k = { .family = TF_FAM_IPV4, .proto = 17 };
	struct tf_dir_counters d = { .packets = 20, .bytes = 20 * 142 };

	(void)state;
	/* 100-byte UDP payloads: 128 IP bytes in 142-byte frames. */
	assert_int_equal(tf_ipfix_ip_octets(&k, &d), 20 * 128);
	/* The outer tag is not in the frame at the hooks; an inner one is. */
	k.vlan = 10;
	assert_int_equal(tf_ipfix_ip_octets(&k, &d), 20 * 128);
	k.vlan_inner = 20;
	assert_int_equal(tf_ipfix_ip_octets(&k, &d), 20 * 124);
	/* A GSO frame counts its headers once, as the frame does. */
	k.vlan = k.vlan_inner = 0;
	d = (struct tf_dir_counters){ .packets = 1, .bytes = 14 + 64000, .segs = 45 };
	assert_int_equal(tf_ipfix_ip_octets(&k, &d), 64000);
	/* Never below zero, whatever the counters say. */
	d = (struct tf_dir_counters){ .packets = 3, .bytes = 10 };
	assert_int_equal(tf_ipfix_ip_octets(&k, &d), 0);
	d = (struct tf_dir_counters){};
	assert_int_equal(tf_ipfix_ip_octets(&k, &d), 0);
}

static void test_mac(void **state)
{
	uint8_t m[6];
	static const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

	(void)state;
	assert_true(tf_ipfix_parse_mac("52:54:00:ab:CD:ef", m));
	assert_memory_equal(m, want, 6);
	static const char *const bad[] = { "", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:", "52-54-00-ab-cd-ef",
					   "52:54:00:ab:cd:eg", "5:54:00:ab:cd:ef" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tf_ipfix_parse_mac(bad[i], m))
			fail_msg("'%s' taken as a MAC", bad[i]);
}

static void test_uuid(void **state)
{
	uint8_t u[16];
	static const uint8_t want[16] = { 0x6f, 0x1e, 0x2a, 0x3b, 0x4c, 0x5d, 0x4e, 0x6f,
					  0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7 };

	(void)state;
	assert_true(tf_ipfix_parse_uuid("6f1e2a3b-4c5d-4e6f-8091-a2b3c4d5e6f7", u));
	assert_memory_equal(u, want, 16);
	static const char *const bad[] = { "", "6f1e2a3b-4c5d-4e6f-8091-a2b3c4d5e6f",
					   "6f1e2a3b-4c5d-4e6f-8091-a2b3c4d5e6f7a",
					   "6f1e2a3b-4c5d-4e6f-8091-a2b3c4d5e6fx" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tf_ipfix_parse_uuid(bad[i], u))
			fail_msg("'%s' taken as a UUID", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_octets),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_uuid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
