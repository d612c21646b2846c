// SPDX-License-Identifier: GPL-2.0
/*
 * Any bytes as a network XML through tf_netxml_parse: 0 with a name, a
 * bridge name that fits a device name and a known forward mode, or -1 with
 * a reason and a zeroed result; never a crash, a leak, a hang or undefined
 * behaviour. The names then go through the JSON writer and the terminal
 * helper.
 */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "inventory.h"
#include "output.h"

static void check_output(const struct tf_network_xml *n)
{
	const struct timespec ts = { 0 };
	char cell[TF_TERM_SIZE(TF_NAME_MAX)], *buf = NULL, *got;
	struct tf_json j = {};
	size_t len = 0;
	long got_len;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f);
	tf_json_begin(&j, "vm", &ts);
	tf_json_str(&j, "network", n->name);
	tf_json_str(&j, "bridge", n->bridge);
	tf_json_str(&j, "mode", tf_mode_name(n->mode));
	CHECK(tf_json_end(&j, f) == 0);
	CHECK(fclose(f) == 0);
	tf_json_free(&j);
	got = malloc(len);
	CHECK(got);
	CHECK(json_line_valid(buf, len, "network", got, &got_len));
	if (utf8_valid(n->name, strlen(n->name)))
		CHECK((size_t)got_len == strlen(n->name) &&
		      !memcmp(got, n->name, (size_t)got_len));
	free(got);
	free(buf);
	tf_term_str(n->name, 12, 0, cell, sizeof(cell));
	CHECK(strlen(cell) < sizeof(cell));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tf_network_xml zero;
	char *xml = fuzz_cstr(data, size), err[96];
	struct tf_network_xml n;

	memset(err, 0, sizeof(err));
	if (tf_netxml_parse(xml, &n, err, sizeof(err))) {
		CHECK(err[0]);
		CHECK(!memcmp(&n, &zero, sizeof(n)));
		free(xml);
		return 0;
	}
	CHECK(memchr(n.name, 0, sizeof(n.name)) && n.name[0]);
	CHECK(memchr(n.bridge, 0, sizeof(n.bridge)));
	CHECK(n.mode >= TF_MODE_NAT && n.mode <= TF_MODE_OTHER && n.mode != TF_MODE_USER);
	/* mode='bridge' is a host bridge only with <bridge name=>, else macvtap */
	CHECK(n.mode != TF_MODE_BRIDGE || n.bridge[0]);
	check_output(&n);
	free(xml);
	return 0;
}
