// SPDX-License-Identifier: GPL-2.0
/* tapflow list: VMs, their taps, MAC, network, bridge, mode, attach state. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "inventory.h"
#include "log.h"
#include "output.h"
#include "report.h"

bool tf_cli_vm_selected(const struct tf_cli *cli, const char *vm_name, const char *uuid)
{
	if (!cli->n_vms)
		return true;
	for (size_t i = 0; i < cli->n_vms; i++)
		if (!strcmp(cli->vms[i], vm_name) || (uuid && !strcasecmp(cli->vms[i], uuid)))
			return true;
	return false;
}

/* Load the inventory and apply --vm; shared by every libvirt command. */
int tf_load_selected_inventory(const struct tf_cli *cli, struct tf_inventory *inv,
			       bool wait_stopped)
{
	char err[512];
	size_t kept = 0;

	if (tf_inventory_load(cli->uri, cli->verbose, inv, err, sizeof(err))) {
		tf_err("%s", err);
		return -1;
	}
	for (size_t i = 0; i < cli->n_vms; i++) {
		bool found = false;

		for (size_t k = 0; k < inv->n_vifs && !found; k++) {
			struct tf_cli one = { .vms = &cli->vms[i], .n_vms = 1 };

			found = tf_cli_vm_selected(&one, inv->vifs[k].vm, inv->vifs[k].uuid);
		}
		if (!found && wait_stopped &&
		    tf_inventory_vm_defined(cli->uri, cli->verbose, cli->vms[i]) == 1) {
			tf_note("VM %s is not running: traced when it starts", cli->vms[i]);
			continue;
		}
		if (!found) {
			tf_err("no running VM named '%s' at %s (see tapflow list)", cli->vms[i],
			       cli->uri ? cli->uri : "qemu:///system");
			tf_inventory_free(inv);
			return -1;
		}
	}
	for (size_t k = 0; k < inv->n_vifs; k++)
		if (tf_cli_vm_selected(cli, inv->vifs[k].vm, inv->vifs[k].uuid))
			inv->vifs[kept++] = inv->vifs[k];
	inv->n_vifs = kept;
	return 0;
}

int tf_cmd_list(const struct tf_cli *cli)
{
	struct tf_inventory inv = {};
	struct tf_json j = {};
	struct timespec now;
	enum tf_attach_state *attached;

	if (tf_load_selected_inventory(cli, &inv, false))
		return TF_EXIT_RUNTIME;
	attached = calloc(inv.n_vifs + 1, sizeof(*attached));
	if (!attached) {
		tf_inventory_free(&inv);
		return TF_EXIT_RUNTIME;
	}
	for (size_t i = 0; i < inv.n_vifs; i++) {
		int pid = 0;

		if (inv.vifs[i].ifindex <= 0)
			continue;
		attached[i] = tf_attach_state_of(inv.vifs[i].ifindex, &pid);
		if (attached[i] == TF_ATTACH_STATE_ORPHANED)
			tf_warn("%s (VM %s) still has the clsact filters of tapflow pid %d, which "
				"was killed; the next tapflow run here removes them",
				inv.vifs[i].ifname, inv.vifs[i].vm, pid);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (cli->json) {
		for (size_t i = 0; i < inv.n_vifs; i++)
			tf_report_vm_json(&j, &inv.vifs[i], attached[i], &now, stdout);
	} else {
		tf_report_vm_table(&inv, attached, stdout);
		tf_report_vm_warnings(&inv, stdout);
	}
	tf_json_free(&j);
	free(attached);
	tf_inventory_free(&inv);
	return tf_out_finish(stdout, "the list to stdout") ? TF_EXIT_RUNTIME : TF_EXIT_OK;
}
