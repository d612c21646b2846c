/* SPDX-License-Identifier: GPL-2.0 */
/* Parsed command line, shared by every command. */
#ifndef TF_CLI_H
#define TF_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "attach.h"

struct tf_inventory;

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
	const char **vms;		/* --vm, repeatable */
	size_t n_vms;
	enum tf_attach_mode attach_mode;/* --attach (tests, old kernels) */
	double duration;		/* -d; < 0: until SIGINT/SIGTERM */
	double interval;		/* -i */
	bool no_uplink;			/* --no-uplink */
	const char *command;
};

int tf_cmd_list(const struct tf_cli *cli);
int tf_cmd_stats(const struct tf_cli *cli);

/* Privileges and BTF, checked before any BPF work; prints the reason. */
int tf_preflight(void);

struct tf_collector;
/*
 * Add what a tracing command traces: the selected VMs' taps, their bridges,
 * the uplink of NAT/routed networks, --iface. 0, or -1 (message printed).
 */
int tf_collector_add_targets(struct tf_collector *c, const struct tf_cli *cli,
			     const struct tf_inventory *inv);
/* Load the inventory, check and apply --vm (unknown VM: error). 0 or -1. */
int tf_load_selected_inventory(const struct tf_cli *cli, struct tf_inventory *inv);

/* True if vm_name was selected with --vm (or no --vm was given). */
bool tf_cli_vm_selected(const struct tf_cli *cli, const char *vm_name, const char *uuid);

#endif /* TF_CLI_H */
