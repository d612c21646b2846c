// SPDX-License-Identifier: GPL-2.0
/*
 * tapflow: per-VM traffic of a KVM/libvirt host, counted in the kernel.
 * Command line parsing and dispatch; each command lives in cmd_<name>.c.
 *
 * Every option is one row of `options`: its names, which commands take
 * it, whether it may be repeated, how its value is parsed and its help.
 * getopt's table, the usage text and the checks all come from it, so they
 * cannot drift apart.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/types.h>

#include "cli.h"
#include "http.h"
#include "log.h"
#include "output.h"
#include "preflight.h"
#include "tapflow.h"

/* Commands, as bits: which of them take an option. */
enum {
	CMD_LIST = 1 << 0,
	CMD_STATS = 1 << 1,
	CMD_FLOWS = 1 << 2,
	CMD_DROPS = 1 << 3,
	CMD_CAPTURE = 1 << 4,
	CMD_TOP = 1 << 5,
	CMD_AGENT = 1 << 6,
};
#define CMD_TRACING (CMD_STATS | CMD_FLOWS | CMD_DROPS | CMD_CAPTURE | CMD_TOP | CMD_AGENT)
#define CMD_ALL (CMD_LIST | CMD_TRACING)
#define CMD_REPORTING (CMD_STATS | CMD_FLOWS | CMD_DROPS | CMD_TOP | CMD_AGENT)
#define CMD_FLOW_TABLE (CMD_FLOWS | CMD_DROPS | CMD_TOP | CMD_AGENT)

struct command {
	const char *name;
	unsigned int bit;
	int (*run)(const struct tf_cli *cli);
	unsigned int privs;	/* TF_PRIV_*: what it asks of the kernel */
	const char *args;	/* its synopsis in the usage */
	const char *help;
};

/* The flow programs: CAP_PERFMON too, and the drop tracer comes with them. */
#define PRIVS_FLOWS (TF_PRIV_LOAD | TF_PRIV_TRUSTED | TF_PRIV_DROPS)

static const struct command commands[] = {
	{ "list", CMD_LIST, tf_cmd_list, 0, "",
	  "VMs, their taps, MAC, network, bridge, mode, attach state" },
	{ "stats", CMD_STATS, tf_cmd_stats, TF_PRIV_LOAD | TF_PRIV_DROPS,
	  "[-d SEC] [-i SEC] [--vm NAME]...",
	  "per-VM/per-interface counters and rates" },
	{ "flows", CMD_FLOWS, tf_cmd_flows, PRIVS_FLOWS,
	  "[-d SEC] [-i SEC] [--vm NAME]... [--top N]",
	  "per-VM flows: addresses, ports, packets, bytes, rates" },
	{ "drops", CMD_DROPS, tf_cmd_drops, PRIVS_FLOWS,
	  "[-d SEC] [-i SEC] [--vm NAME]... [--events[=N]]",
	  "dropped packets of the VMs: reason, location, flow" },
	{ "capture", CMD_CAPTURE, tf_cmd_capture, TF_PRIV_LOAD | TF_PRIV_TRUSTED,
	  "-w FILE [--sample N] [--snaplen B] [--vm NAME]... [--flow SPEC] [-d SEC]",
	  "sampled frames to pcapng (-w - for stdout)" },
	{ "top", CMD_TOP, tf_cmd_top, PRIVS_FLOWS, "[--vm NAME]...",
	  "live full-screen view of VMs and their top flows" },
	{ "agent", CMD_AGENT, tf_cmd_agent, PRIVS_FLOWS,
	  "[--prometheus ADDR:PORT] [--config FILE] [--flow-metrics N] [--pin DIR] | --unpin DIR",
	  "run as a service: follow the host, serve Prometheus metrics" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* What parsing gathers beyond struct tf_cli. */
struct parse_state {
	struct tf_cli *cli;
	bool help, version;
};

struct option_spec {
	const char *name;	/* long name */
	int short_name;		/* 0: none */
	int has_arg;		/* no_argument, required_argument, optional_argument */
	const char *arg;	/* the value's name in the help */
	unsigned int cmds;	/* the commands that take it */
	bool repeatable;	/* each use adds a value; else once at most */
	/* 0, or -1 after printing why (a usage error); NULL: a flag */
	int (*parse)(struct parse_state *ps, const char *arg);
	size_t flag;		/* a flag: the offset of its bool in struct tf_cli */
	const char *help;	/* lines separated by '\n' */
};

/* ---- value parsers --------------------------------------------------------- */

/* A whole number in [min, max]. */
static int parse_count(const char *arg, const char *what, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max) {
		tf_err("invalid %s '%s': expected a whole number from %ld to %ld", what, arg,
		       min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * Seconds in [min, max], finite: strtod also takes "nan", "inf" and hex
 * floats, and a NaN compares false with every bound, so it is refused by
 * name. zero_ok lets 0 through below min (a timeout that means "never").
 */
static int parse_secs(const char *arg, const char *what, double min, double max, bool zero_ok,
		      double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v > max ||
	    (v < min && !(zero_ok && v == 0))) {
		if (zero_ok)
			tf_err("invalid %s '%s': expected 0 or a number of seconds from %g to %g",
			       what, arg, min, max);
		else
			tf_err("invalid %s '%s': expected a number of seconds from %g to %g", what,
			       arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* A name that must not be empty (an empty one is never what was meant). */
static int parse_name(const char *arg, const char *what, const char **out)
{
	if (!*arg) {
		tf_err("invalid %s '': expected a name", what);
		return -1;
	}
	*out = arg;
	return 0;
}

static int push(const char ***arr, size_t *n, const char *val)
{
	const char **a = realloc(*arr, (*n + 1) * sizeof(*a));

	if (!a) {
		tf_err("out of memory");
		return -1;
	}
	a[(*n)++] = val;
	*arr = a;
	return 0;
}

static int push_name(const char ***arr, size_t *n, const char *val, const char *what)
{
	const char *name;

	return parse_name(val, what, &name) ? -1 : push(arr, n, name);
}

/* KiB -> bytes, rounded up to a power of 2 (what a BPF ring buffer takes). */
static uint32_t pow2_kib(long kib)
{
	uint32_t b = 4096;

	while ((long)b < kib * 1024)
		b *= 2;
	return b;
}

/* ---- one parser per option ------------------------------------------------- */

static int opt_connect(struct parse_state *ps, const char *a)
{
	return parse_name(a, "libvirt URI", &ps->cli->uri);
}

static int opt_netns(struct parse_state *ps, const char *a)
{
	if (!*a || strchr(a, '/') || !strcmp(a, ".") || !strcmp(a, "..")) {
		tf_err("invalid --netns '%s': expected a namespace name of ip netns list", a);
		return -1;
	}
	ps->cli->netns = a;
	return 0;
}

static int opt_help(struct parse_state *ps, const char *a)
{
	(void)a;
	ps->help = true;
	return 0;
}

static int opt_version(struct parse_state *ps, const char *a)
{
	(void)a;
	ps->version = true;
	return 0;
}

static int opt_duration(struct parse_state *ps, const char *a)
{
	return parse_secs(a, "duration", TF_SECONDS_MIN, TF_SECONDS_MAX, false,
			  &ps->cli->duration);
}

static int opt_interval(struct parse_state *ps, const char *a)
{
	ps->cli->interval_given = true;
	return parse_secs(a, "interval", TF_SECONDS_MIN, TF_SECONDS_MAX, false,
			  &ps->cli->interval);
}

static int opt_vm(struct parse_state *ps, const char *a)
{
	return push_name(&ps->cli->vms, &ps->cli->n_vms, a, "--vm");
}

static int opt_iface(struct parse_state *ps, const char *a)
{
	return push_name(&ps->cli->ifaces, &ps->cli->n_ifaces, a, "--iface");
}

static int opt_bridge(struct parse_state *ps, const char *a)
{
	return push_name(&ps->cli->bridges, &ps->cli->n_bridges, a, "--bridge");
}

static int opt_uplink(struct parse_state *ps, const char *a)
{
	return push_name(&ps->cli->uplinks, &ps->cli->n_uplinks, a, "--uplink");
}

static int opt_attach(struct parse_state *ps, const char *a)
{
	int mode = tf_attach_mode_parse(a);

	if (mode < 0) {
		tf_err("invalid --attach '%s': expected auto, tcx or clsact", a);
		return -1;
	}
	ps->cli->attach_mode = (enum tf_attach_mode)mode;
	return 0;
}

static int opt_top(struct parse_state *ps, const char *a)
{
	return parse_count(a, "--top", 0, 1000000000L, &ps->cli->top_n);
}

static int opt_max_flows(struct parse_state *ps, const char *a)
{
	long n;

	/* The kernel caps a hash map far below this; it says so at load. */
	if (parse_count(a, "--max-flows", 1, 1L << 30, &n))
		return -1;
	ps->cli->max_flows = (uint32_t)n;
	return 0;
}

static int opt_idle_timeout(struct parse_state *ps, const char *a)
{
	return parse_secs(a, "--idle-timeout", TF_SECONDS_MIN, TF_SECONDS_MAX, false,
			  &ps->cli->idle_timeout);
}

static int opt_active_timeout(struct parse_state *ps, const char *a)
{
	ps->cli->active_timeout_given = true;
	return parse_secs(a, "--active-timeout", TF_SECONDS_MIN, TF_SECONDS_MAX, true,
			  &ps->cli->active_timeout);
}

static int opt_events(struct parse_state *ps, const char *a)
{
	long n;

	if (!a) {
		ps->cli->drop_events = TF_DROP_EVENTS_DEFAULT;
		return 0;
	}
	if (parse_count(a, "--events", 1, 1000000, &n))
		return -1;
	ps->cli->drop_events = (uint32_t)n;
	return 0;
}

static int opt_write(struct parse_state *ps, const char *a)
{
	return parse_name(a, "-w", &ps->cli->cap_file);
}

static int opt_sample(struct parse_state *ps, const char *a)
{
	long n;

	if (parse_count(a, "--sample", 1, 1L << 30, &n))
		return -1;
	ps->cli->cap_sample = (uint32_t)n;
	return 0;
}

static int opt_snaplen(struct parse_state *ps, const char *a)
{
	long n;

	if (parse_count(a, "--snaplen", 1, TF_CAP_SNAPLEN_MAX, &n))
		return -1;
	ps->cli->cap_snaplen = (uint32_t)n;
	return 0;
}

static int opt_flow(struct parse_state *ps, const char *a)
{
	return parse_name(a, "--flow", &ps->cli->cap_flow);
}

static int opt_buffer(struct parse_state *ps, const char *a)
{
	long n;

	if (parse_count(a, "--buffer", 4, 1L << 20, &n))
		return -1;
	ps->cli->cap_buffer = pow2_kib(n);
	return 0;
}

static int opt_prometheus(struct parse_state *ps, const char *a)
{
	struct sockaddr_in6 sa;
	unsigned int len;
	char err[256];

	if (tf_http_parse_addr(a, &sa, &len, err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	ps->cli->prometheus = a;
	return 0;
}

static int opt_config(struct parse_state *ps, const char *a)
{
	return parse_name(a, "--config", &ps->cli->config);
}

static int opt_flow_metrics(struct parse_state *ps, const char *a)
{
	return parse_count(a, "--flow-metrics", 0, 100000, &ps->cli->flow_metrics);
}

static int opt_pin(struct parse_state *ps, const char *a)
{
	return parse_name(a, "--pin", &ps->cli->pin);
}

static int opt_unpin(struct parse_state *ps, const char *a)
{
	return parse_name(a, "--unpin", &ps->cli->unpin);
}

static int opt_ipfix(struct parse_state *ps, const char *a)
{
	if (strncmp(a, "udp://", 6) && strncmp(a, "tcp://", 6) && strncmp(a, "file:", 5)) {
		tf_err("invalid --ipfix '%s': expected udp://HOST:PORT, tcp://HOST:PORT or file:PATH",
		       a);
		return -1;
	}
	return push(&ps->cli->ipfix, &ps->cli->n_ipfix, a);
}

static int opt_ipfix_rotate(struct parse_state *ps, const char *a)
{
	return parse_secs(a, "--ipfix-rotate", 1, TF_SECONDS_MAX, true, &ps->cli->ipfix_rotate);
}

static int opt_ipfix_template_refresh(struct parse_state *ps, const char *a)
{
	return parse_secs(a, "--ipfix-template-refresh", 1, TF_SECONDS_MAX, false,
			  &ps->cli->ipfix_template_refresh);
}

static int opt_ipfix_queue(struct parse_state *ps, const char *a)
{
	return parse_count(a, "--ipfix-queue", 1, 1L << 24, &ps->cli->ipfix_queue);
}

/* A row's parser: a function, or a flag of struct tf_cli set to true. */
#define PARSE(fn) fn, 0
#define FLAG(field) NULL, offsetof(struct tf_cli, field)

/*
 * The options, grouped by the commands that take them: the usage prints a
 * heading wherever that set changes, so keep each group together.
 */
static const struct option_spec options[] = {
	{ "connect", 'c', required_argument, "URI", CMD_ALL, false, PARSE(opt_connect),
	  "libvirt URI (default qemu:///system)" },
	{ "json", 0, no_argument, NULL, CMD_ALL, false, FLAG(json),
	  "one JSON object per line" },
	{ "netns", 0, required_argument, "NAME", CMD_ALL, false, PARSE(opt_netns),
	  "run inside network namespace NAME (/run/netns/NAME)" },
	{ "vm", 0, required_argument, "NAME", CMD_ALL, true, PARSE(opt_vm),
	  "only this VM (name or UUID); repeatable" },
	{ "verbose", 'v', no_argument, NULL, CMD_ALL, false, FLAG(verbose),
	  "show libbpf and libvirt diagnostics" },
	{ "help", 'h', no_argument, NULL, CMD_ALL, false, PARSE(opt_help), "this help" },
	{ "version", 0, no_argument, NULL, CMD_ALL, false, PARSE(opt_version), "print the version" },

	{ "duration", 'd', required_argument, "SEC", CMD_TRACING, false, PARSE(opt_duration),
	  "run for SEC seconds (default: until a terminating signal)" },
	{ "iface", 0, required_argument, "NAME", CMD_TRACING, true, PARSE(opt_iface),
	  "also trace interface NAME (no VM needed); a shell pattern\n"
	  "('veth*') traces every interface it names, as they come; repeatable" },
	{ "bridge", 0, required_argument, "NAME", CMD_TRACING, true, PARSE(opt_bridge),
	  "NAME is a bridge the --iface ports sit on: counters\n"
	  "only, as a libvirt network's bridge; repeatable" },
	{ "no-libvirt", 0, no_argument, NULL, CMD_TRACING, false, FLAG(no_libvirt),
	  "trace only the --iface/--bridge/--uplink interfaces" },
	{ "no-uplink", 0, no_argument, NULL, CMD_TRACING, false, FLAG(no_uplink),
	  "do not attach to the uplink of NAT/routed networks" },
	{ "uplink", 0, required_argument, "NAME", CMD_TRACING, true, PARSE(opt_uplink),
	  "NAME is an uplink (default: the default route's\n"
	  "interface when a VM is on a NAT/routed network); repeatable" },
	{ "attach", 0, required_argument, "MODE", CMD_TRACING, false, PARSE(opt_attach),
	  "auto (default), tcx or clsact" },

	{ "interval", 'i', required_argument, "SEC", CMD_REPORTING, false, PARSE(opt_interval),
	  "report every SEC seconds (default 1, at least 0.01)" },
	{ "no-drops", 0, no_argument, NULL, CMD_REPORTING, false, FLAG(no_drops),
	  "do not trace dropped packets (drops column: null)" },

	{ "max-flows", 0, required_argument, "N", CMD_FLOW_TABLE, false, PARSE(opt_max_flows),
	  "flow map entries (default 65536)" },
	{ "idle-timeout", 0, required_argument, "SEC", CMD_FLOW_TABLE, false, PARSE(opt_idle_timeout),
	  "a flow idle this long has ended (default 30)" },
	{ "active-timeout", 0, required_argument, "SEC", CMD_FLOW_TABLE, false,
	  PARSE(opt_active_timeout),
	  "harvest a busy flow's kernel entry this often (default 0:\n"
	  "never); agent: send a busy flow's IPFIX records this often\n"
	  "(default 60)" },
	{ "tcp", 0, no_argument, NULL, CMD_FLOWS | CMD_TOP | CMD_AGENT, false, FLAG(tcp),
	  "analyse TCP on the taps: RTT outside and inside the VM,\n"
	  "retransmissions, zero windows, failed connections" },
	{ "no-nat", 0, no_argument, NULL, CMD_FLOW_TABLE, false, FLAG(no_nat),
	  "no NAT join: count the uplink, but do not follow VM\n"
	  "flows through it (no nat, uplink or fwd_lost fields)" },

	{ "top", 0, required_argument, "N", CMD_FLOWS, false, PARSE(opt_top),
	  "at most N flows per interface (default: all with\n"
	  "--json, 20 in the table; 0: all); the rest are summed" },

	{ "events", 0, optional_argument, "N", CMD_DROPS, false, PARSE(opt_events),
	  "also print each drop as it happens, at most N a second\n"
	  "(default 100); the table then comes at the end" },

	{ "write", 'w', required_argument, "FILE", CMD_CAPTURE, false, PARSE(opt_write),
	  "write pcapng to FILE, or to stdout with -w -" },
	{ "sample", 0, required_argument, "N", CMD_CAPTURE, false, PARSE(opt_sample),
	  "capture 1 frame in N at random, per interface (default 1: all)" },
	{ "snaplen", 0, required_argument, "B", CMD_CAPTURE, false, PARSE(opt_snaplen),
	  "bytes per frame (default and most: 9216)" },
	{ "flow", 0, required_argument, "SPEC", CMD_CAPTURE, false, PARSE(opt_flow),
	  "only one flow, either way: \"PROTO [ENDPOINT [ENDPOINT]]\",\n"
	  "e.g. \"udp 192.168.122.10:40000 10.99.0.2:7\", \"tcp *:80\"" },
	{ "buffer", 0, required_argument, "KIB", CMD_CAPTURE, false, PARSE(opt_buffer),
	  "ring buffer size (default 4096, rounded up to a power of 2)" },

	{ "prometheus", 0, required_argument, "ADDR:PORT", CMD_AGENT, false, PARSE(opt_prometheus),
	  "serve /metrics there (default 127.0.0.1:9560;\n"
	  ":PORT listens on every address)" },
	{ "config", 0, required_argument, "FILE", CMD_AGENT, false, PARSE(opt_config),
	  "settings file, read again on SIGHUP (README, Agent)" },
	{ "flow-metrics", 0, required_argument, "N", CMD_AGENT, false, PARSE(opt_flow_metrics),
	  "flow series per interface: the top N by bytes since\n"
	  "the previous scrape, the rest as one (default 10; 0: none)" },
	{ "pin", 0, required_argument, "DIR", CMD_AGENT, false, PARSE(opt_pin),
	  "pin maps and hooks in DIR (on bpffs): they count on while\n"
	  "no agent runs, and the next agent with DIR takes them over" },
	{ "unpin", 0, required_argument, "DIR", CMD_AGENT, false, PARSE(opt_unpin),
	  "detach and remove what --pin DIR pinned, and exit" },
	{ "ipfix", 0, required_argument, "URL", CMD_AGENT, true, PARSE(opt_ipfix),
	  "export flow records: udp://HOST:PORT, tcp://HOST:PORT or\n"
	  "file:PATH (repeatable; README, IPFIX)" },
	{ "ipfix-rotate", 0, required_argument, "SEC", CMD_AGENT, false, PARSE(opt_ipfix_rotate),
	  "file: start a new file this often (default 0: never)" },
	{ "ipfix-template-refresh", 0, required_argument, "SEC", CMD_AGENT, false,
	  PARSE(opt_ipfix_template_refresh),
	  "udp: send the templates again this often (default 60)" },
	{ "ipfix-queue", 0, required_argument, "N", CMD_AGENT, false, PARSE(opt_ipfix_queue),
	  "records kept while a collector is away (default 65536)" },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Short options get their getopt value; long-only ones 256 + their index. */
static int opt_val(size_t i)
{
	return options[i].short_name ? options[i].short_name : 256 + (int)i;
}

/* "-d/--duration" or "--json", as messages name an option. */
static void opt_label(const struct option_spec *o, char *out, size_t len)
{
	if (o->short_name)
		snprintf(out, len, "-%c/--%s", o->short_name, o->name);
	else
		snprintf(out, len, "--%s", o->name);
}

/* "flows, drops and top": the commands a set names, for headings. */
static void cmd_list(unsigned int cmds, char *out, size_t len)
{
	size_t n = 0, k = 0, o = 0;

	for (size_t i = 0; i < N_COMMANDS; i++)
		n += !!(cmds & commands[i].bit);
	out[0] = '\0';
	for (size_t i = 0; i < N_COMMANDS && o < len; i++) {
		if (!(cmds & commands[i].bit))
			continue;
		k++;
		o += (size_t)snprintf(out + o, len - o, "%s%s", k == 1 ? "" : k == n ? " and " : ", ",
				      commands[i].name);
	}
}

/* What each command asks of the kernel, from the same table the checks use. */
static void usage_privileges(FILE *f)
{
	char caps[160];

	fprintf(f, "\nPrivileges (root, or these capabilities; README, Privileges):\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		tf_priv_describe(commands[i].privs, caps, sizeof(caps));
		fprintf(f, "  %-21s%s\n", commands[i].name,
			caps[0] ? caps : "none (a libvirt socket this user may open)");
	}
	fprintf(f, "  %-21s%s\n", "drops (locations)", "CAP_SYSLOG, else they are addresses");
	fprintf(f, "  %-21s%s\n", "--netns", "CAP_SYS_ADMIN");
}

static void usage(FILE *f)
{
	unsigned int group = 0;
	char label[64], names[128];

	fprintf(f, "Usage: tapflow [-c URI] [--json] [--netns NAME] [-v] COMMAND [OPTIONS]\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *c = &commands[i];

		char synopsis[160];

		snprintf(synopsis, sizeof(synopsis), "%s%s%s", c->name, c->args[0] ? " " : "",
			 c->args);
		if (strlen(synopsis) < 29)
			fprintf(f, "  %-29s%s\n", synopsis, c->help);
		else
			fprintf(f, "  %s\n  %-29s%s\n", synopsis, "", c->help);
	}
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_spec *o = &options[i];
		const char *h = o->help;

		if (o->cmds != group) {
			group = o->cmds;
			cmd_list(group, names, sizeof(names));
			fprintf(f, "\n%s%s:\n", group == CMD_ALL ? "Options" : "Options for ",
				group == CMD_ALL ? "" : names);
		}
		if (o->short_name)
			snprintf(label, sizeof(label), "-%c, --%s", o->short_name, o->name);
		else
			snprintf(label, sizeof(label), "    --%s", o->name);
		if (o->arg)
			snprintf(label + strlen(label), sizeof(label) - strlen(label),
				 o->has_arg == optional_argument ? "[=%s]" : " %s", o->arg);
		/* The help's lines, the first beside the option when it fits. */
		if (strlen(label) + 2 >= 23)
			fprintf(f, "  %s\n  %-21s", label, "");
		else
			fprintf(f, "  %-21s", label);
		for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1)
			fprintf(f, "%.*s\n  %-21s", (int)(nl - h), h, "");
		fprintf(f, "%s\n", h);
	}
	usage_privileges(f);
}

/* Build getopt's tables from `options`. */
static void getopt_tables(struct option *longs, char *shorts)
{
	size_t s = 0;

	shorts[s++] = ':';	/* a missing value is reported as ':' */
	for (size_t i = 0; i < N_OPTIONS; i++) {
		longs[i] = (struct option){ options[i].name, options[i].has_arg, NULL, opt_val(i) };
		if (options[i].short_name) {
			shorts[s++] = (char)options[i].short_name;
			if (options[i].has_arg == required_argument)
				shorts[s++] = ':';
		}
	}
	longs[N_OPTIONS] = (struct option){ NULL, 0, NULL, 0 };
	shorts[s] = '\0';
}

static const struct option_spec *spec_of(int val, size_t *index)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (opt_val(i) == val) {
			*index = i;
			return &options[i];
		}
	}
	return NULL;
}

static bool listed(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/*
 * An interface named by two of --iface, --bridge and --uplink, or NULL: it
 * can have one role only, and which one the user meant is not for us to guess.
 */
static const char *named_twice(const struct tf_cli *cli)
{
	for (size_t i = 0; i < cli->n_bridges; i++)
		if (listed(cli->ifaces, cli->n_ifaces, cli->bridges[i]) ||
		    listed(cli->uplinks, cli->n_uplinks, cli->bridges[i]))
			return cli->bridges[i];
	for (size_t i = 0; i < cli->n_uplinks; i++)
		if (listed(cli->ifaces, cli->n_ifaces, cli->uplinks[i]))
			return cli->uplinks[i];
	return NULL;
}

/*
 * What the table cannot say: options given that this command does not
 * take, once-only options given twice, and combinations that contradict
 * each other. A usage error, never silently ignored.
 */
static int check_options(const struct command *cmd, const struct tf_cli *cli,
			 const unsigned int *given)
{
	char label[64];

	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (!given[i])
			continue;
		opt_label(&options[i], label, sizeof(label));
		if (!(options[i].cmds & cmd->bit)) {
			tf_err("'%s' takes no %s", cmd->name, label);
			return -1;
		}
		if (given[i] > 1 && !options[i].repeatable && options[i].has_arg != no_argument) {
			tf_err("%s given %u times: it takes one value", label, given[i]);
			return -1;
		}
	}
	if (cli->pin && cli->unpin) {
		tf_err("--pin and --unpin contradict each other");
		return -1;
	}
	for (size_t i = 0; cli->unpin && i < N_OPTIONS; i++) {
		if (!given[i] || !strcmp(options[i].name, "unpin") ||
		    !strcmp(options[i].name, "verbose") || !strcmp(options[i].name, "netns"))
			continue;
		opt_label(&options[i], label, sizeof(label));
		tf_err("--unpin only removes pins: it takes no %s", label);
		return -1;
	}
	if (cmd->bit == CMD_CAPTURE && !cli->cap_file) {
		tf_err("'capture' needs -w FILE (or -w - for stdout)");
		return -1;
	}
	if (cmd->bit == CMD_DROPS && cli->no_drops) {
		tf_err("'drops' cannot run with --no-drops");
		return -1;
	}
	if (cli->no_uplink && cli->n_uplinks) {
		tf_err("--uplink and --no-uplink contradict each other");
		return -1;
	}
	if (cli->no_libvirt && cli->n_vms) {
		tf_err("--vm needs libvirt; it cannot be used with --no-libvirt");
		return -1;
	}
	/* The agent's --config may name them: it checks after reading it. */
	if (cli->no_libvirt && !cli->n_ifaces && !cli->n_bridges && !cli->n_uplinks &&
	    !(cmd->bit == CMD_AGENT && cli->config)) {
		tf_err("--no-libvirt needs at least one --iface, --bridge or --uplink");
		return -1;
	}
	if (named_twice(cli)) {
		tf_err("interface %s is given two roles: --iface, --bridge and --uplink "
		       "each name different interfaces", named_twice(cli));
		return -1;
	}
	return 0;
}

/* parse(): --help or --version was served, exit 0. */
#define PARSE_DONE (-1)

/* Parse argv into cli and *cmd: TF_EXIT_OK to go on, PARSE_DONE, or an exit code. */
static int parse(int argc, char **argv, struct tf_cli *cli, const struct command **cmd)
{
	struct option longs[N_OPTIONS + 1];
	char shorts[2 * N_OPTIONS + 2];
	unsigned int given[N_OPTIONS] = {};
	struct parse_state ps = { .cli = cli };
	int opt;

	getopt_tables(longs, shorts);
	opterr = 0;	/* our own one-line messages */
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct option_spec *o;
		size_t i;

		if (opt == ':') {
			tf_err("option '%s' needs a value (see tapflow --help)", argv[optind - 1]);
			return TF_EXIT_USAGE;
		}
		o = spec_of(opt, &i);
		if (!o) {
			if (optopt && optopt < 256)
				tf_err("unknown option '-%c' (see tapflow --help)", optopt);
			else
				tf_err("unknown option '%s' (see tapflow --help)", argv[optind - 1]);
			return TF_EXIT_USAGE;
		}
		given[i]++;
		if (!o->parse)
			*(bool *)((char *)cli + o->flag) = true;
		else if (o->parse(&ps, optarg))
			return TF_EXIT_USAGE;
	}
	if (ps.help) {
		usage(stdout);
		return tf_out_finish(stdout, "to stdout") ? TF_EXIT_RUNTIME : PARSE_DONE;
	}
	if (ps.version) {
		printf("tapflow %s\n", TAPFLOW_VERSION);
		return tf_out_finish(stdout, "to stdout") ? TF_EXIT_RUNTIME : PARSE_DONE;
	}
	if (optind >= argc) {
		usage(stderr);
		return TF_EXIT_USAGE;
	}
	cli->command = argv[optind];
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, cli->command))
			*cmd = &commands[i];
	if (!*cmd) {
		tf_err("unknown command '%s' (see tapflow --help)", cli->command);
		return TF_EXIT_USAGE;
	}
	if (optind + 1 < argc) {
		tf_err("unexpected argument '%s' (see tapflow --help)", argv[optind + 1]);
		return TF_EXIT_USAGE;
	}
	return check_options(*cmd, cli, given) ? TF_EXIT_USAGE : TF_EXIT_OK;
}

/*
 * Give a closed stdin or stderr /dev/null, so that no file tapflow opens
 * (a BPF map, a netlink socket) takes its number and gets written to.
 * -1 if stdout is closed: the report has nowhere to go.
 */
static int std_fds_open(void)
{
	bool stdout_closed = false;

	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		stdout_closed |= fd == STDOUT_FILENO;
		/* The lowest free number: this very fd. */
		if (open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
			return -1;
	}
	return stdout_closed ? -1 : 0;
}

/*
 * Every interface traced with TCX holds two link descriptors, so a few
 * hundred of them pass the soft limit of 1024 descriptors that a shell or
 * a service usually starts with, and the attach fails. Nothing in tapflow
 * watches descriptors with select(), which is what that limit protects,
 * so it takes the hard limit.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		tf_debug("cannot raise the open files limit: %s", strerror(errno));
}

/*
 * Before --netns and any BPF work: what is missing, in one line. What only
 * degrades (the drop tracer of stats) is a warning, and is not tried.
 */
static int check_privileges(const struct command *cmd, struct tf_cli *cli)
{
	struct tf_priv_need need = {
		.command = cmd->name, .netns = cli->netns != NULL,
		.privs = cmd->privs & ~(cli->no_drops ? TF_PRIV_DROPS : 0u),
	};
	bool drops_ok;

	if (tf_check_privileges(&need, &drops_ok))
		return -1;
	if ((need.privs & TF_PRIV_DROPS) && !drops_ok)
		cli->no_drops = true;
	return 0;
}

int main(int argc, char **argv)
{
	struct tf_cli cli = {
		.duration = -1, .interval = 1, .top_n = -1,
		.cap_sample = 1, .cap_snaplen = TF_CAP_SNAPLEN_DEFAULT,
		.cap_buffer = TF_CAP_BUFFER_DEFAULT_KIB * 1024,
		.idle_timeout = TF_IDLE_TIMEOUT_DEFAULT,
		.active_timeout = TF_ACTIVE_TIMEOUT_DEFAULT,
		.flow_metrics = -1,
	};
	const struct command *cmd = NULL;
	char err[512];
	int ret;

	if (std_fds_open()) {
		tf_err("stdout is closed: there is nowhere to write the report");
		return TF_EXIT_RUNTIME;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	tf_term_setup();
	ret = parse(argc, argv, &cli, &cmd);
	tf_log_init(cli.verbose);
	if (ret == PARSE_DONE) {
		ret = TF_EXIT_OK;
		goto out;
	}
	if (ret != TF_EXIT_OK)
		goto out;
	raise_nofile();
	if (check_privileges(cmd, &cli)) {
		ret = TF_EXIT_RUNTIME;
		goto out;
	}
	if (cli.netns && tf_enter_netns(cli.netns, err, sizeof(err))) {
		tf_err("%s", err);
		ret = TF_EXIT_RUNTIME;
		goto out;
	}
	ret = cmd->run(&cli);
out:
	free(cli.vms);
	free(cli.ifaces);
	free(cli.uplinks);
	free(cli.bridges);
	free(cli.ipfix);
	return ret;
}
