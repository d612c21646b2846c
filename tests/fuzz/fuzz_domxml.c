// SPDX-License-Identifier: GPL-2.0
/*
 * Any bytes as a domain XML through tf_domxml_parse (what virsh dumpxml
 * would give, or a broken or hostile config): it returns 0 with a result
 * that keeps every promise of inventory.h, or -1 with a reason and nothing
 * to free; never a crash, a leak, a hang or undefined behaviour. The names
 * it yields then go through the JSON writer (a valid line) and the
 * terminal helper.
 */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "inventory.h"
#include "output.h"

/* A fixed buffer holds a C string: NUL-terminated within it. */
#define CHECK_STR(a) CHECK(memchr((a), 0, sizeof(a)))

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_uuid(const char *u)
{
	CHECK(strlen(u) == TF_UUID_STR - 1);
	for (int i = 0; i < TF_UUID_STR - 1; i++)
		CHECK(i == 8 || i == 13 || i == 18 || i == 23 ? u[i] == '-' : is_lower_hex(u[i]));
}

/* "" or the canonical lower-case form tf_mac_format writes. */
static void check_mac(const char m[TF_MAC_STR])
{
	char again[TF_MAC_STR];
	uint8_t mac[6];

	CHECK(memchr(m, 0, TF_MAC_STR));
	if (!m[0])
		return;
	CHECK(!tf_mac_parse(m, mac));
	tf_mac_format(mac, again);
	CHECK(!strcmp(m, again));
}

static void check_iface(const struct tf_dom_iface *i)
{
	CHECK_STR(i->type);
	CHECK_STR(i->target);
	CHECK_STR(i->model);
	CHECK_STR(i->source_network);
	CHECK_STR(i->source_bridge);
	CHECK_STR(i->source_dev);
	CHECK(i->type[0]);
	check_mac(i->mac);
	/* Only the <source> attributes that name host devices for the type. */
	if (strcmp(i->type, "network"))
		CHECK(!i->source_network[0]);
	if (strcmp(i->type, "network") && strcmp(i->type, "bridge"))
		CHECK(!i->source_bridge[0]);
	if (strcmp(i->type, "direct"))
		CHECK(!i->source_dev[0]);
}

/* Each line of buf[0..len) is valid JSON whose "vm" reads back as vm. */
static void check_lines(const char *buf, size_t len, const char *vm)
{
	size_t vlen = strlen(vm), n;
	char *got = malloc(len + 1);
	const char *end;
	long got_len;

	CHECK(got);
	for (; len; buf += n, len -= n) {
		end = memchr(buf, '\n', len);
		CHECK(end);
		n = (size_t)(end - buf) + 1;
		CHECK(json_line_valid(buf, n, "vm", got, &got_len));
		CHECK(got_len > 0);
		/* Exactly, if it was UTF-8; else with U+FFFD where it was not. */
		if (utf8_valid(vm, vlen))
			CHECK((size_t)got_len == vlen && !memcmp(got, vm, vlen));
	}
	free(got);
}

/* The names as list prints them: JSON lines, and table cells. */
static void check_output(const struct tf_domain_xml *d)
{
	const struct timespec ts = { 0 };
	char cell[TF_TERM_SIZE(TF_NAME_MAX)], *buf = NULL;
	struct tf_json j = {};
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f);
	for (size_t k = 0; k < d->n_ifaces; k++) {
		const struct tf_dom_iface *i = &d->ifaces[k];

		tf_json_begin(&j, "vm", &ts);
		tf_json_str(&j, "vm", d->name);
		tf_json_str(&j, "uuid", d->uuid);
		tf_json_str(&j, "ifname", i->target);
		tf_json_str(&j, "mac", i->mac);
		tf_json_str(&j, "network", i->source_network);
		tf_json_str(&j, "bridge", i->source_bridge);
		tf_json_str(&j, "model", i->model);
		tf_json_str(&j, "type", i->type);
		CHECK(tf_json_end(&j, f) == 0);
		tf_term_str(i->source_network, 12, 0, cell, sizeof(cell));
		CHECK(strlen(cell) < sizeof(cell));
	}
	tf_json_begin(&j, "vm", &ts);
	tf_json_str(&j, "vm", d->name);
	CHECK(tf_json_end(&j, f) == 0);
	CHECK(fclose(f) == 0);
	tf_json_free(&j);
	check_lines(buf, len, d->name);
	free(buf);
	tf_term_str(d->name, 16, 0, cell, sizeof(cell));
	CHECK(strlen(cell) < sizeof(cell));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *xml = fuzz_cstr(data, size), err[256];
	struct tf_domain_xml d;

	memset(err, 0, sizeof(err));
	if (tf_domxml_parse(xml, &d, err, sizeof(err))) {
		/* -1: a reason, and nothing left to free */
		CHECK(err[0]);
		CHECK(!d.ifaces && !d.n_ifaces);
		free(xml);
		return 0;
	}
	CHECK_STR(d.name);
	CHECK(d.name[0]);
	check_uuid(d.uuid);
	CHECK(!d.n_ifaces == !d.ifaces);
	for (size_t k = 0; k < d.n_ifaces; k++)
		check_iface(&d.ifaces[k]);
	check_output(&d);
	tf_domxml_free(&d);
	CHECK(!d.ifaces && !d.n_ifaces);
	free(xml);
	return 0;
}
