// SPDX-License-Identifier: GPL-2.0
/*
 * tapflow: per-VM traffic of a KVM/libvirt host, counted in the kernel.
 * Command line parsing and dispatch; each command lives in cmd_<name>.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "cli.h"
#include "log.h"
#include "output.h"
#include "preflight.h"
#include "tapflow.h"

#define TAPFLOW_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: tapflow [-c URI] [--json] [--netns NAME] [-v] COMMAND [OPTIONS]\n"
"\n"
"Commands:\n"
"  list                         VMs, their taps, MAC, network, bridge, mode, attach state\n"
"  stats [-d SEC] [-i SEC] [--vm NAME]...\n"
"                               per-VM/per-interface counters and rates\n"
"  flows [-d SEC] [-i SEC] [--vm NAME]... [--top N]\n"
"                               per-VM flows: addresses, ports, packets, bytes, rates\n"
"  drops [-d SEC] [-i SEC] [--vm NAME]... [--events[=N]]\n"
"                               dropped packets of the VMs: reason, location, flow\n"
"  capture -w FILE [--sample N] [--snaplen B] [--vm NAME]... [--flow SPEC] [-d SEC]\n"
"                               sampled frames to pcapng (-w - for stdout)\n"
"  top   [--vm NAME]...         live full-screen view of VMs and their top flows\n"
"\n"
"Options:\n"
"  -c, --connect URI    libvirt URI (default qemu:///system)\n"
"      --json           one JSON object per line\n"
"      --netns NAME     run inside network namespace NAME (/run/netns/NAME)\n"
"  -d, --duration SEC   run for SEC seconds (default: until SIGINT/SIGTERM)\n"
"  -i, --interval SEC   report every SEC seconds (default 1)\n"
"      --vm NAME        only this VM (name or UUID); repeatable\n"
"      --iface NAME     also trace interface NAME (no VM needed); repeatable\n"
"      --bridge NAME    NAME is a bridge the --iface ports sit on: counters\n"
"                       only, as a libvirt network's bridge; repeatable\n"
"      --no-libvirt     trace only the --iface/--bridge/--uplink interfaces\n"
"      --no-uplink      do not attach to the uplink of NAT/routed networks\n"
"      --uplink NAME    NAME is an uplink (default: the default route's\n"
"                       interface when a VM is on a NAT/routed network); repeatable\n"
"      --attach MODE    auto (default), tcx or clsact\n"
"      --no-drops       do not trace dropped packets (drops column: null)\n"
"Options for flows, top and drops:\n"
"      --top N          flows: at most N flows per interface (default: all with\n"
"                       --json, 20 in the table; 0: all); the rest are summed\n"
"      --max-flows N    flow map entries (default 65536)\n"
"      --idle-timeout SEC    a flow idle this long has ended (default 30)\n"
"      --active-timeout SEC  harvest a busy flow's kernel entry this often\n"
"                       (default 0: never)\n"
"      --no-nat         no NAT join: count the uplink, but do not follow VM\n"
"                       flows through it (no nat, uplink or fwd_lost fields)\n"
"Options for drops:\n"
"      --events[=N]     also print each drop as it happens, at most N a second\n"
"                       (default 100); the table then comes at the end\n"
"Options for capture:\n"
"  -w FILE              write pcapng to FILE, or to stdout with -w -\n"
"      --sample N       capture 1 frame in N at random, per interface (default 1: all)\n"
"      --snaplen B      bytes per frame (default and most: 9216)\n"
"      --flow SPEC      only one flow, either way: \"PROTO [ENDPOINT [ENDPOINT]]\",\n"
"                       e.g. \"udp 192.168.122.10:40000 10.99.0.2:7\", \"tcp *:80\"\n"
"      --buffer KIB     ring buffer size (default 4096, rounded up to a power of 2)\n"
"  -v, --verbose        show libbpf and libvirt diagnostics\n"
"  -h, --help           this help\n"
"      --version        print the version\n");
}

enum {
	OPT_JSON = 256, OPT_NETNS, OPT_VM, OPT_IFACE, OPT_NO_LIBVIRT, OPT_ATTACH,
	OPT_NO_UPLINK, OPT_VERSION, OPT_TOP, OPT_MAX_FLOWS, OPT_IDLE, OPT_ACTIVE,
	OPT_UPLINK, OPT_NO_NAT, OPT_NO_DROPS, OPT_EVENTS, OPT_SAMPLE, OPT_SNAPLEN, OPT_FLOW,
	OPT_BUFFER, OPT_BRIDGE,
};

static const struct option long_opts[] = {
	{ "connect", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "duration", required_argument, NULL, 'd' },
	{ "interval", required_argument, NULL, 'i' },
	{ "vm", required_argument, NULL, OPT_VM },
	{ "iface", required_argument, NULL, OPT_IFACE },
	{ "bridge", required_argument, NULL, OPT_BRIDGE },
	{ "no-libvirt", no_argument, NULL, OPT_NO_LIBVIRT },
	{ "no-uplink", no_argument, NULL, OPT_NO_UPLINK },
	{ "uplink", required_argument, NULL, OPT_UPLINK },
	{ "no-nat", no_argument, NULL, OPT_NO_NAT },
	{ "no-drops", no_argument, NULL, OPT_NO_DROPS },
	{ "events", optional_argument, NULL, OPT_EVENTS },
	{ "write", required_argument, NULL, 'w' },
	{ "sample", required_argument, NULL, OPT_SAMPLE },
	{ "snaplen", required_argument, NULL, OPT_SNAPLEN },
	{ "flow", required_argument, NULL, OPT_FLOW },
	{ "buffer", required_argument, NULL, OPT_BUFFER },
	{ "attach", required_argument, NULL, OPT_ATTACH },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "active-timeout", required_argument, NULL, OPT_ACTIVE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

struct command {
	const char *name;
	int (*run)(const struct tf_cli *cli);
	bool timed;		/* accepts -d/-i */
	bool traces;		/* accepts --vm/--iface/--attach */
	bool flows;		/* accepts --max-flows/--idle-timeout/--active-timeout */
	bool top_n;		/* accepts --top */
};

static const struct command commands[] = {
	{ "list", tf_cmd_list, false, false, false, false },
	{ "stats", tf_cmd_stats, true, true, false, false },
	{ "flows", tf_cmd_flows, true, true, true, true },
	{ "top", tf_cmd_top, true, true, true, false },
	{ "drops", tf_cmd_drops, true, true, true, false },
	{ "capture", tf_cmd_capture, true, true, false, false },
};

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

/* Seconds >= 0 (0 only if zero_ok). */
static int parse_timeout(const char *arg, const char *what, bool zero_ok, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || v < 0 || (v == 0 && !zero_ok) || v > 1e7) {
		tf_err("invalid %s '%s': expected a %s number of seconds", what, arg,
		       zero_ok ? "non-negative" : "positive");
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *arg, const char *what, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || v <= 0 || v > 1e7) {
		tf_err("invalid %s '%s': expected a positive number of seconds", what, arg);
		return -1;
	}
	*out = v;
	return 0;
}

/* KiB -> bytes, rounded up to a power of 2 (what a BPF ring buffer takes). */
static uint32_t pow2_kib(long kib)
{
	uint32_t b = 4096;

	while ((long)b < kib * 1024)
		b *= 2;
	return b;
}

static int push(const char ***arr, size_t *n, const char *val)
{
	const char **a = realloc(*arr, (*n + 1) * sizeof(*a));

	if (!a)
		return -1;
	a[(*n)++] = val;
	*arr = a;
	return 0;
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

/* Options given that this command does not take: a usage error, not ignored. */
static int check_applicable(const struct command *cmd, const struct tf_cli *cli,
			    bool timed_given, bool flows_given)
{
	if (flows_given && !cmd->flows) {
		tf_err("'%s' takes no --max-flows/--idle-timeout/--active-timeout/--no-nat",
		       cmd->name);
		return -1;
	}
	if (cli->top_n >= 0 && !cmd->top_n) {
		tf_err("'%s' takes no --top", cmd->name);
		return -1;
	}
	if (timed_given && !cmd->timed) {
		tf_err("'%s' takes no -d/-i", cmd->name);
		return -1;
	}
	if (!cmd->traces && (cli->n_ifaces || cli->n_bridges || cli->no_libvirt ||
			     cli->n_uplinks || cli->attach_mode != TF_ATTACH_AUTO ||
			     cli->no_uplink || cli->no_drops)) {
		tf_err("'%s' takes no --iface/--bridge/--no-libvirt/--attach/--uplink/"
		       "--no-uplink/--no-drops", cmd->name);
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
	if (cli->no_libvirt && !cli->n_ifaces && !cli->n_bridges && !cli->n_uplinks) {
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

int main(int argc, char **argv)
{
	struct tf_cli cli = {
		.duration = -1, .interval = 1, .top_n = -1,
		.cap_sample = 1, .cap_snaplen = TF_CAP_SNAPLEN_DEFAULT,
		.cap_buffer = TF_CAP_BUFFER_DEFAULT_KIB * 1024,
		.idle_timeout = TF_IDLE_TIMEOUT_DEFAULT,
		.active_timeout = TF_ACTIVE_TIMEOUT_DEFAULT,
	};
	const struct command *cmd = NULL;
	bool timed_given = false, flows_given = false, events_given = false, cap_given = false;
	long n;
	char err[512];
	int opt, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	tf_term_setup();
	opterr = 0;	/* our own one-line messages */
	while ((opt = getopt_long(argc, argv, ":c:d:i:w:vh", long_opts, NULL)) != -1) {
		ret = TF_EXIT_USAGE;
		switch (opt) {
		case 'c': cli.uri = optarg; break;
		case OPT_JSON: cli.json = true; break;
		case OPT_NETNS: cli.netns = optarg; break;
		case 'd':
			if (parse_seconds(optarg, "duration", &cli.duration))
				goto out;
			timed_given = true;
			break;
		case 'i':
			if (parse_seconds(optarg, "interval", &cli.interval))
				goto out;
			timed_given = true;
			break;
		case OPT_VM:
			if (push(&cli.vms, &cli.n_vms, optarg)) {
				ret = TF_EXIT_RUNTIME;
				goto out;
			}
			break;
		case OPT_IFACE:
			if (push(&cli.ifaces, &cli.n_ifaces, optarg)) {
				ret = TF_EXIT_RUNTIME;
				goto out;
			}
			break;
		case OPT_BRIDGE:
			if (push(&cli.bridges, &cli.n_bridges, optarg)) {
				ret = TF_EXIT_RUNTIME;
				goto out;
			}
			break;
		case OPT_NO_LIBVIRT: cli.no_libvirt = true; break;
		case OPT_NO_UPLINK: cli.no_uplink = true; break;
		case OPT_UPLINK:
			if (push(&cli.uplinks, &cli.n_uplinks, optarg)) {
				ret = TF_EXIT_RUNTIME;
				goto out;
			}
			break;
		case OPT_NO_NAT:
			cli.no_nat = true;
			flows_given = true;
			break;
		case OPT_NO_DROPS: cli.no_drops = true; break;
		case 'w': cli.cap_file = optarg; cap_given = true; break;
		case OPT_SAMPLE:
			if (parse_count(optarg, "--sample", 1, 1L << 30, &n))
				goto out;
			cli.cap_sample = (uint32_t)n;
			cap_given = true;
			break;
		case OPT_SNAPLEN:
			if (parse_count(optarg, "--snaplen", 1, TF_CAP_SNAPLEN_MAX, &n))
				goto out;
			cli.cap_snaplen = (uint32_t)n;
			cap_given = true;
			break;
		case OPT_FLOW: cli.cap_flow = optarg; cap_given = true; break;
		case OPT_BUFFER:
			if (parse_count(optarg, "--buffer", 4, 1L << 20, &n))
				goto out;
			cli.cap_buffer = pow2_kib(n);
			cap_given = true;
			break;
		case OPT_EVENTS:
			if (!optarg) {
				cli.drop_events = TF_DROP_EVENTS_DEFAULT;
			} else {
				if (parse_count(optarg, "--events", 1, 1000000, &n))
					goto out;
				cli.drop_events = (uint32_t)n;
			}
			events_given = true;
			break;
		case OPT_ATTACH:
			ret = tf_attach_mode_parse(optarg);
			if (ret < 0) {
				tf_err("invalid --attach '%s': expected auto, tcx or clsact", optarg);
				ret = TF_EXIT_USAGE;
				goto out;
			}
			cli.attach_mode = (enum tf_attach_mode)ret;
			break;
		case OPT_TOP:
			if (parse_count(optarg, "--top", 0, 1000000000L, &cli.top_n))
				goto out;
			break;
		case OPT_MAX_FLOWS:
			/* The kernel caps a hash map far below this; it says so at load. */
			if (parse_count(optarg, "--max-flows", 1, 1L << 30, &n))
				goto out;
			cli.max_flows = (uint32_t)n;
			flows_given = true;
			break;
		case OPT_IDLE:
			if (parse_timeout(optarg, "--idle-timeout", false, &cli.idle_timeout))
				goto out;
			flows_given = true;
			break;
		case OPT_ACTIVE:
			if (parse_timeout(optarg, "--active-timeout", true, &cli.active_timeout))
				goto out;
			flows_given = true;
			break;
		case 'v': cli.verbose = true; break;
		case 'h': usage(stdout); ret = TF_EXIT_OK; goto out;
		case OPT_VERSION:
			printf("tapflow %s\n", TAPFLOW_VERSION);
			ret = TF_EXIT_OK;
			goto out;
		case ':':
			tf_err("option '%s' needs an argument (see tapflow --help)", argv[optind - 1]);
			goto out;
		default:
			if (optopt)
				tf_err("unknown option '-%c' (see tapflow --help)", optopt);
			else
				tf_err("unknown option '%s' (see tapflow --help)", argv[optind - 1]);
			goto out;
		}
	}
	tf_log_init(cli.verbose);
	if (optind >= argc) {
		usage(stderr);
		ret = TF_EXIT_USAGE;
		goto out;
	}
	cli.command = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, cli.command))
			cmd = &commands[i];
	if (!cmd) {
		tf_err("unknown command '%s' (see tapflow --help)", cli.command);
		ret = TF_EXIT_USAGE;
		goto out;
	}
	if (optind + 1 < argc) {
		tf_err("unexpected argument '%s' (see tapflow --help)", argv[optind + 1]);
		ret = TF_EXIT_USAGE;
		goto out;
	}
	if (cap_given && strcmp(cmd->name, "capture")) {
		tf_err("'%s' takes no -w/--sample/--snaplen/--flow/--buffer", cmd->name);
		ret = TF_EXIT_USAGE;
		goto out;
	}
	if (!strcmp(cmd->name, "capture") && !cli.cap_file) {
		tf_err("'capture' needs -w FILE (or -w - for stdout)");
		ret = TF_EXIT_USAGE;
		goto out;
	}
	if (events_given && strcmp(cmd->name, "drops")) {
		tf_err("'%s' takes no --events", cmd->name);
		ret = TF_EXIT_USAGE;
		goto out;
	}
	if (cli.no_drops && !strcmp(cmd->name, "drops")) {
		tf_err("'drops' cannot run with --no-drops");
		ret = TF_EXIT_USAGE;
		goto out;
	}
	if (check_applicable(cmd, &cli, timed_given, flows_given)) {
		ret = TF_EXIT_USAGE;
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
	return ret;
}
