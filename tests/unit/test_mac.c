// SPDX-License-Identifier: GPL-2.0
/* MAC address parsing, formatting and libvirt's tap-MAC convention. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "inventory.h"

static void test_parse(void **state)
{
	const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	uint8_t mac[6];

	(void)state;
	assert_int_equal(tf_mac_parse("52:54:00:ab:cd:ef", mac), 0);
	assert_memory_equal(mac, want, 6);
	memset(mac, 0, sizeof(mac));
	assert_int_equal(tf_mac_parse("52:54:00:AB:Cd:eF", mac), 0);
	assert_memory_equal(mac, want, 6);
	assert_int_equal(tf_mac_parse("ff:ff:ff:ff:ff:ff", mac), 0);
	assert_memory_equal(mac, "\xff\xff\xff\xff\xff\xff", 6);
	assert_int_equal(tf_mac_parse("00:00:00:00:00:00", mac), 0);
	assert_memory_equal(mac, "\0\0\0\0\0\0", 6);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"52:54:00:ab:cd",		/* short */
		"52:54:00:ab:cd:e",		/* one digit short */
		"52:54:00:ab:cd:ef:",		/* trailing separator */
		"52:54:00:ab:cd:ef:01",		/* long */
		"52:54:00:ab:cd:eg",		/* bad hex */
		"52:54:00:ab:cd:-1",
		"5:54:00:ab:cd:ef0",		/* digits shifted */
		"52-54-00-ab-cd-ef",		/* wrong separators */
		"52.54.00.ab.cd.ef",
		"52:54:00-ab:cd:ef",
		"52:54:00:ab:cd-ef",		/* last separator */
		"52:54:00:ab:cdxef",
		"5254.00ab.cdef.",
		" 52:54:00:ab:cd:e",
		"52:54:00:ab:cd:ef ",
	};
	const uint8_t untouched[6] = { 1, 2, 3, 4, 5, 6 };
	uint8_t mac[6];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(mac, untouched, 6);
		if (tf_mac_parse(bad[i], mac) != -1)
			fail_msg("'%s' was accepted", bad[i]);
		/* a rejected string leaves the output alone */
		assert_memory_equal(mac, untouched, 6);
	}
	assert_int_equal(tf_mac_parse(NULL, mac), -1);
}

static void test_format(void **state)
{
	const uint8_t mac[6] = { 0xfe, 0x54, 0x00, 0x0a, 0xb0, 0x01 };
	char out[TF_MAC_STR];

	(void)state;
	memset(out, 'X', sizeof(out));
	tf_mac_format(mac, out);
	assert_string_equal(out, "fe:54:00:0a:b0:01");
	assert_int_equal(strlen(out), TF_MAC_STR - 1);
}

static void test_round_trip(void **state)
{
	static const char *const in[] = {
		"52:54:00:12:34:56", "FE:54:00:AA:BB:CC", "00:16:3e:00:00:01",
	};
	static const char *const want[] = {
		"52:54:00:12:34:56", "fe:54:00:aa:bb:cc", "00:16:3e:00:00:01",
	};
	char out[TF_MAC_STR];
	uint8_t mac[6], back[6];
	size_t i;
	int b;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(tf_mac_parse(in[i], mac), 0);
		tf_mac_format(mac, out);
		assert_string_equal(out, want[i]);
	}
	/* every byte value survives format -> parse */
	for (b = 0; b < 256; b++) {
		memset(mac, b, 6);
		mac[5] = (uint8_t)(255 - b);
		tf_mac_format(mac, out);
		assert_int_equal(tf_mac_parse(out, back), 0);
		assert_memory_equal(back, mac, 6);
	}
}

static void test_tap_mac(void **state)
{
	uint8_t vm[6], tap[6];

	(void)state;
	assert_int_equal(tf_mac_parse("52:54:00:ab:cd:ef", vm), 0);

	assert_int_equal(tf_mac_parse("fe:54:00:ab:cd:ef", tap), 0);
	assert_true(tf_tap_mac_matches(vm, tap));
	/* the tap never carries the VM's own address */
	assert_false(tf_tap_mac_matches(vm, vm));
	assert_int_equal(tf_mac_parse("fa:54:00:ab:cd:ef", tap), 0);
	assert_false(tf_tap_mac_matches(vm, tap));
	assert_int_equal(tf_mac_parse("fe:54:00:ab:cd:ee", tap), 0);
	assert_false(tf_tap_mac_matches(vm, tap));
	assert_int_equal(tf_mac_parse("fe:55:00:ab:cd:ef", tap), 0);
	assert_false(tf_tap_mac_matches(vm, tap));
	assert_int_equal(tf_mac_parse("ff:54:00:ab:cd:ef", tap), 0);
	assert_false(tf_tap_mac_matches(vm, tap));
}

/* libvirt uses 0xfa when the VM MAC itself starts with 0xfe. */
static void test_tap_mac_fe_guest(void **state)
{
	uint8_t vm[6], tap[6];

	(void)state;
	assert_int_equal(tf_mac_parse("fe:54:00:01:02:03", vm), 0);
	assert_int_equal(tf_mac_parse("fa:54:00:01:02:03", tap), 0);
	assert_true(tf_tap_mac_matches(vm, tap));
	assert_false(tf_tap_mac_matches(vm, vm));
	assert_int_equal(tf_mac_parse("fa:54:00:01:02:04", tap), 0);
	assert_false(tf_tap_mac_matches(vm, tap));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tap_mac),
		cmocka_unit_test(test_tap_mac_fe_guest),
	};

	return cmocka_run_group_tests_name("mac", tests, NULL, NULL);
}
