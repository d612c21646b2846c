// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's pure parts: the exposition format, the flow series'
 * bookkeeping (their sum is the interface's, every counter only grows),
 * the config file and the listen address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent_conf.h"
#include "agent_metrics.h"
#include "http.h"
#include "prom.h"

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	tf_prom_escape("vm-1", out, sizeof(out));
	assert_string_equal(out, "vm-1");
	tf_prom_escape("a\"b\\c\nd", out, sizeof(out));
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	/* Not UTF-8: U+FFFD, never a byte the scraper would refuse. */
	tf_prom_escape("x\xff" "y", out, sizeof(out));
	assert_string_equal(out, "x\xef\xbf\xbdy");
	tf_prom_escape("vm-é", out, sizeof(out));
	assert_string_equal(out, "vm-é");
	tf_prom_escape(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_escape_cuts_whole(void **state)
{
	char out[5];

	(void)state;
	tf_prom_escape("abc\"d", out, sizeof(out));
	assert_string_equal(out, "abc");	/* not "abc\" */
	tf_prom_escape("abé", out, sizeof(out));
	assert_string_equal(out, "abé");
	tf_prom_escape("abcé", out, sizeof(out));
	assert_string_equal(out, "abc");	/* not half of é */
}

static void test_exposition(void **state)
{
	struct tf_prom p = {};
	const char *l[] = { "domain", "a\"b", "interface", "vnet0", NULL };

	(void)state;
	tf_prom_family(&p, "x_total", "counter", "Help with \\ and\nnewline.");
	tf_prom_u64(&p, "x_total", l, 18446744073709551615ULL);
	tf_prom_num(&p, "y", NULL, 0.5);
	assert_false(p.oom);
	assert_string_equal(p.buf, "# HELP x_total Help with \\\\ and\\nnewline.\n"
				   "# TYPE x_total counter\n"
				   "x_total{domain=\"a\\\"b\",interface=\"vnet0\"} 18446744073709551615\n"
				   "y 0.5\n");
	tf_prom_reset(&p);
	assert_int_equal(p.len, 0);
	tf_prom_free(&p);
}

/* A gain of one label: rx bytes, rx packets, tx bytes, tx packets. */
static struct tf_flow_series gain(const char *remote, uint64_t rxb, uint64_t txb)
{
	struct tf_flow_series g;

	memset(&g, 0, sizeof(g));
	snprintf(g.l.proto, sizeof(g.l.proto), "tcp");
	snprintf(g.l.remote, sizeof(g.l.remote), "%s", remote);
	g.l.remote_port = 443;
	g.v[TF_FS_RX_BYTES] = rxb;
	g.v[TF_FS_RX_PACKETS] = rxb ? 1 : 0;
	g.v[TF_FS_TX_BYTES] = txb;
	g.v[TF_FS_TX_PACKETS] = txb ? 1 : 0;
	return g;
}

static uint64_t series_sum(const struct tf_flow_series *s, size_t n, int f)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += s[i].v[f];
	return sum;
}

static const struct tf_flow_series *find(const struct tf_flow_series *s, size_t n,
					 const char *remote)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s[i].l.remote, remote))
			return &s[i];
	return NULL;
}

static void test_series_top_and_other(void **state)
{
	struct tf_flow_series *series = NULL;
	size_t n = 0;
	uint64_t other[TF_FS_N] = {}, iface[TF_FS_N] = {};
	struct tf_flow_series g[3] = { gain("10.0.0.1", 100, 10), gain("10.0.0.2", 500, 0),
				       gain("10.0.0.3", 50, 0) };

	(void)state;
	/* Interval 1: 3 labels, room for 2; the interface also had 20 rx bytes in no flow. */
	iface[TF_FS_RX_BYTES] = 100 + 500 + 50 + 20;
	iface[TF_FS_TX_BYTES] = 10;
	assert_int_equal(tf_flow_series_merge(g, 3), 3);
	assert_int_equal(tf_flow_series_step(&series, &n, g, 3, 2, iface, other), 0);
	assert_int_equal(n, 2);
	assert_non_null(find(series, n, "10.0.0.1"));
	assert_non_null(find(series, n, "10.0.0.2"));
	assert_null(find(series, n, "10.0.0.3"));
	assert_int_equal(other[TF_FS_RX_BYTES], 50 + 20);
	assert_int_equal(series_sum(series, n, TF_FS_RX_BYTES) + other[TF_FS_RX_BYTES],
			 iface[TF_FS_RX_BYTES]);
	assert_int_equal(series_sum(series, n, TF_FS_TX_BYTES) + other[TF_FS_TX_BYTES], 10);

	/* Interval 2: .3 is now the biggest; .1 idle, .2 a little: .1's series goes to other. */
	struct tf_flow_series g2[3] = { gain("10.0.0.1", 0, 0), gain("10.0.0.2", 5, 0),
					gain("10.0.0.3", 1000, 0) };
	iface[TF_FS_RX_BYTES] += 1005;
	assert_int_equal(tf_flow_series_merge(g2, 3), 3);
	assert_int_equal(tf_flow_series_step(&series, &n, g2, 3, 2, iface, other), 0);
	assert_int_equal(n, 2);
	assert_null(find(series, n, "10.0.0.1"));
	/* A new series starts from its interval's gain, not from the flow's history. */
	assert_int_equal(find(series, n, "10.0.0.3")->v[TF_FS_RX_BYTES], 1000);
	assert_int_equal(find(series, n, "10.0.0.2")->v[TF_FS_RX_BYTES], 505);
	assert_int_equal(other[TF_FS_RX_BYTES], 70 + 100);
	assert_int_equal(series_sum(series, n, TF_FS_RX_BYTES) + other[TF_FS_RX_BYTES],
			 iface[TF_FS_RX_BYTES]);
	/* .1's tx went to other too: the tx sum still holds. */
	assert_int_equal(series_sum(series, n, TF_FS_TX_BYTES) + other[TF_FS_TX_BYTES], 10);
	assert_int_equal(other[TF_FS_TX_BYTES], 10);
	free(series);
}

static void test_series_other_never_goes_down(void **state)
{
	struct tf_flow_series *series = NULL;
	size_t n = 0;
	uint64_t other[TF_FS_N] = {}, iface[TF_FS_N] = {};
	struct tf_flow_series g = gain("10.0.0.9", 100, 0);

	(void)state;
	iface[TF_FS_RX_BYTES] = 150;
	assert_int_equal(tf_flow_series_step(&series, &n, &g, 1, 1, iface, other), 0);
	assert_int_equal(other[TF_FS_RX_BYTES], 50);
	/* The flows were read after the interface: they are ahead of it for a poll. */
	g = gain("10.0.0.9", 80, 0);
	iface[TF_FS_RX_BYTES] = 200;
	assert_int_equal(tf_flow_series_step(&series, &n, &g, 1, 1, iface, other), 0);
	assert_int_equal(series[0].v[TF_FS_RX_BYTES], 180);
	assert_int_equal(other[TF_FS_RX_BYTES], 50);	/* not 20 */
	iface[TF_FS_RX_BYTES] = 240;
	g = gain("10.0.0.9", 0, 0);
	assert_int_equal(tf_flow_series_step(&series, &n, &g, 1, 1, iface, other), 0);
	/* An idle series keeps its place while there is room. */
	assert_int_equal(n, 1);
	assert_int_equal(other[TF_FS_RX_BYTES], 60);
	free(series);
}

static void test_series_exported_wins_tie(void **state)
{
	struct tf_flow_series *series = NULL;
	size_t n = 0;
	uint64_t other[TF_FS_N] = {}, iface[TF_FS_N] = {};
	struct tf_flow_series g = gain("10.0.0.5", 10, 0);

	(void)state;
	iface[TF_FS_RX_BYTES] = 10;
	assert_int_equal(tf_flow_series_step(&series, &n, &g, 1, 1, iface, other), 0);
	/* "10.0.0.1" sorts first, but the same bytes do not take an existing series' place. */
	struct tf_flow_series g2[2] = { gain("10.0.0.1", 7, 0), gain("10.0.0.5", 7, 0) };
	iface[TF_FS_RX_BYTES] = 24;
	assert_int_equal(tf_flow_series_merge(g2, 2), 2);
	assert_int_equal(tf_flow_series_step(&series, &n, g2, 2, 1, iface, other), 0);
	assert_int_equal(n, 1);
	assert_string_equal(series[0].l.remote, "10.0.0.5");
	assert_int_equal(series[0].v[TF_FS_RX_BYTES], 17);
	assert_int_equal(other[TF_FS_RX_BYTES], 7);
	/* top 0: no series, everything is other. */
	assert_int_equal(tf_flow_series_step(&series, &n, g2, 2, 0, iface, other), 0);
	assert_int_equal(n, 0);
	assert_int_equal(other[TF_FS_RX_BYTES], 24);
	free(series);
}

static void test_series_merge(void **state)
{
	struct tf_flow_series g[4] = { gain("b", 1, 0), gain("a", 2, 0), gain("b", 4, 8),
				       gain("a", 16, 0) };

	(void)state;
	assert_int_equal(tf_flow_series_merge(g, 4), 2);
	assert_string_equal(g[0].l.remote, "a");
	assert_int_equal(g[0].v[TF_FS_RX_BYTES], 18);
	assert_string_equal(g[1].l.remote, "b");
	assert_int_equal(g[1].v[TF_FS_RX_BYTES], 5);
	assert_int_equal(g[1].v[TF_FS_TX_BYTES], 8);
	assert_int_equal(tf_flow_series_merge(g, 0), 0);
}

static void test_conf(void **state)
{
	struct tf_agent_conf c;
	char err[256];

	(void)state;
	assert_int_equal(tf_agent_conf_parse("# tapflow\n\nvm = web1\nvm=db # the database\n"
					     "iface = veth*\nflow-metrics = 3\n"
					     "prometheus = [::1]:9100\nno-nat = yes\n"
					     "interval = 2.5\nmax-flows = 1000\n",
					     "agent.conf", &c, err, sizeof(err)), 0);
	assert_int_equal(c.n_vms, 2);
	assert_string_equal(c.vms[0], "web1");
	assert_string_equal(c.vms[1], "db");
	assert_int_equal(c.n_ifaces, 1);
	assert_string_equal(c.ifaces[0], "veth*");
	assert_int_equal(c.flow_metrics, 3);
	assert_string_equal(c.prometheus, "[::1]:9100");
	assert_int_equal(c.no_nat, 1);
	assert_int_equal(c.no_drops, -1);
	assert_true(c.interval == 2.5);
	assert_int_equal(c.max_flows, 1000);
	tf_agent_conf_free(&c);
	assert_int_equal(tf_agent_conf_parse("", "x", &c, err, sizeof(err)), 0);
	assert_int_equal(c.flow_metrics, -1);
	assert_null(c.prometheus);
	tf_agent_conf_free(&c);
}

static void test_conf_errors(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{ "vm = a\n\nfoo = 1\n", "f:3: unknown key 'foo'" },
		{ "flow-metrics = -1\n", "f:1: flow-metrics '-1': expected a whole number" },
		{ "flow-metrics = 3x\n", "f:1: flow-metrics '3x'" },
		{ "vm =\n", "f:1: vm has no value" },
		{ "just words\n", "f:1: expected 'key = value'" },
		{ "interval = nan\n", "f:1: interval 'nan'" },
		{ "no-drops = maybe\n", "f:1: no-drops 'maybe': expected true or false" },
		{ "max-flows = 0\n", "f:1: max-flows '0'" },
	};
	struct tf_agent_conf c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tf_agent_conf_parse(bad[i].text, "f", &c, err, sizeof(err)), -1);
		if (strncmp(err, bad[i].err, strlen(bad[i].err)))
			fail_msg("'%s': got '%s', want '%s...'", bad[i].text, err, bad[i].err);
		assert_int_equal(c.n_vms, 0);	/* refused whole */
	}
	assert_int_equal(tf_agent_conf_load("/nonexistent/agent.conf", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot read /nonexistent/agent.conf"));
}

static void test_listen_addr(void **state)
{
	struct sockaddr_in6 sa;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
	unsigned int len;
	char err[256];

	(void)state;
	assert_int_equal(tf_http_parse_addr("127.0.0.1:9560", &sa, &len, err, sizeof(err)), 0);
	assert_int_equal(v4->sin_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 9560);
	assert_int_equal(ntohl(v4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(tf_http_parse_addr(":80", &sa, &len, err, sizeof(err)), 0);
	assert_int_equal(v4->sin_addr.s_addr, 0);	/* every address, when asked */
	assert_int_equal(tf_http_parse_addr("[::1]:9560", &sa, &len, err, sizeof(err)), 0);
	assert_int_equal(sa.sin6_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	static const char *const bad[] = { "9560", "127.0.0.1:", "127.0.0.1:0", "1.2.3.4:65536",
					   "localhost:9560", "::1:9560", "[::1]9560", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!tf_http_parse_addr(bad[i], &sa, &len, err, sizeof(err)))
			fail_msg("'%s' taken", bad[i]);
		assert_non_null(strstr(err, "expected ADDR:PORT"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_cuts_whole),
		cmocka_unit_test(test_exposition),
		cmocka_unit_test(test_series_top_and_other),
		cmocka_unit_test(test_series_other_never_goes_down),
		cmocka_unit_test(test_series_exported_wins_tie),
		cmocka_unit_test(test_series_merge),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_listen_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
