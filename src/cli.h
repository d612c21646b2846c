/* SPDX-License-Identifier: GPL-2.0 */
/* Parsed command line, shared by every command. */
#ifndef TF_CLI_H
#define TF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attach.h"

struct tf_inventory;

#define TAPFLOW_VERSION "0.1.0"

/* Exit codes: the contract in the design notes. */
#define TF_EXIT_OK 0
#define TF_EXIT_RUNTIME 1
#define TF_EXIT_USAGE 2

struct tf_cli {
	const char *uri;		/* -c; NULL = qemu:///system */
	bool json;
	bool verbose;
	const char *netns;		/* --netns */
	bool no_libvirt;
	const char **ifaces;		/* --iface, repeatable */
	size_t n_ifaces;
	const char **bridges;		/* --bridge, repeatable: bridges named by hand */
	size_t n_bridges;
	const char **vms;		/* --vm, repeatable */
	size_t n_vms;
	enum tf_attach_mode attach_mode;/* --attach (tests, old kernels) */
	double duration;		/* -d; < 0: until SIGINT/SIGTERM */
	double interval;		/* -i */
	bool no_uplink;			/* --no-uplink */
	const char **uplinks;		/* --uplink, repeatable: uplinks named by hand */
	size_t n_uplinks;
	bool no_nat;			/* --no-nat: no NAT join (uplink counters only) */
	bool no_drops;			/* --no-drops, or no capability for the drop tracer */
	bool tcp;			/* --tcp: TCP health (RTT, retransmissions, ...) */
	uint32_t drop_events;		/* drops --events[=N]: events per second, 0: none */
	const char *cap_file;		/* capture -w FILE ("-": stdout) */
	uint32_t cap_sample;		/* --sample N */
	uint32_t cap_snaplen;		/* --snaplen B */
	uint32_t cap_buffer;		/* --buffer KiB, in bytes (a power of 2) */
	const char *cap_flow;		/* --flow SPEC */
	uint32_t max_flows;		/* --max-flows; 0: TF_FLOWS_DEFAULT */
	double idle_timeout;		/* --idle-timeout (s) */
	double active_timeout;		/* --active-timeout (s); 0: never */
	long top_n;			/* --top; < 0: the default of the output */
	bool interval_given;		/* -i was on the command line */
	const char *prometheus;		/* agent --prometheus ADDR:PORT; NULL: default */
	const char *config;		/* agent --config FILE */
	long flow_metrics;		/* agent --flow-metrics; < 0: default */
	const char *pin;		/* agent --pin DIR: pinned, taken over by the next agent */
	const char *unpin;		/* agent --unpin DIR: remove what --pin DIR pinned */
	const char **ipfix;		/* agent --ipfix URL, repeatable */
	size_t n_ipfix;
	double ipfix_rotate;		/* agent --ipfix-rotate (s); 0: never */
	double ipfix_template_refresh;	/* agent --ipfix-template-refresh (s) */
	long ipfix_queue;		/* agent --ipfix-queue (records) */
	bool active_timeout_given;	/* --active-timeout was on the command line */
	/* A run with nothing to trace yet waits for it (the agent on an empty host). */
	bool keep_waiting;
	const char *command;
};

/*
 * Bounds of every option in seconds (-d, -i, timeouts): below 10 ms a
 * report or a poll would cost more than what it reports, and the upper
 * bound keeps the run's time arithmetic far from overflow.
 */
#define TF_SECONDS_MIN 0.01
#define TF_SECONDS_MAX 1e9

/* Flow expiry, as IPFIX exporters do it (see README). */
#define TF_IDLE_TIMEOUT_DEFAULT 30.0
#define TF_ACTIVE_TIMEOUT_DEFAULT 0.0	/* off: see README */
#define TF_AGENT_ACTIVE_TIMEOUT_DEFAULT 60.0	/* the agent's: IPFIX records of long flows */
/* drops --events without a number: events per second at most. */
#define TF_DROP_EVENTS_DEFAULT 100
/* Flows per interface in the human table without --top (JSON: all). */
#define TF_TABLE_TOP_DEFAULT 20

int tf_cmd_list(const struct tf_cli *cli);
int tf_cmd_stats(const struct tf_cli *cli);
int tf_cmd_flows(const struct tf_cli *cli);
int tf_cmd_top(const struct tf_cli *cli);
int tf_cmd_drops(const struct tf_cli *cli);
int tf_cmd_capture(const struct tf_cli *cli);
int tf_cmd_agent(const struct tf_cli *cli);

/* agent: where /metrics is served, and the flow series per interface. */
#define TF_PROMETHEUS_DEFAULT "127.0.0.1:9560"
#define TF_FLOW_METRICS_DEFAULT 10

/* capture: the ring buffer without --buffer (KiB). */
#define TF_CAP_BUFFER_DEFAULT_KIB 4096

/* Kernel BTF, checked before any BPF work (privileges: main.c); prints the reason. */
int tf_preflight(void);

struct tf_collector;
/* One note per target gone since the last call (its totals stay in the report). */
void tf_warn_vanished(struct tf_collector *c);

/*
 * Load the inventory, check and apply --vm (unknown VM: error; a VM that is
 * defined but not running too, unless wait_stopped: then a note). 0 or -1.
 */
int tf_load_selected_inventory(const struct tf_cli *cli, struct tf_inventory *inv,
			       bool wait_stopped);

/* True if vm_name was selected with --vm (or no --vm was given). */
bool tf_cli_vm_selected(const struct tf_cli *cli, const char *vm_name, const char *uuid);

#endif /* TF_CLI_H */
