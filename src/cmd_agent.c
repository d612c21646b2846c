// SPDX-License-Identifier: GPL-2.0
/*
 * tapflow agent: the live session as a service. It traces until stopped,
 * says what changes on stderr, one line each, and serves the Prometheus
 * metrics of src/agent_metrics.h. SIGHUP reloads --config. With --pin DIR
 * its maps and hooks outlive it (src/pin.h): it ends without detaching,
 * and the next agent with DIR takes them over.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "agent_conf.h"
#include "agent_metrics.h"
#include "caps.h"
#include "cli.h"
#include "http.h"
#include "log.h"
#include "pin.h"
#include "session.h"
#include "signals.h"

struct agent {
	const struct tf_cli *cmdline;	/* as given: it wins over the file */
	struct tf_cli cli;		/* what the run uses: command line over --config */
	struct tf_agent_conf conf;
	const char **vms, **ifaces;	/* cli's lists, when they come from conf */
	struct tf_session s;
	struct tf_http *http;		/* its own place: its thread keeps a pointer to it */
	uint64_t scrapes_before[3];	/* served by listeners replaced by a reload */
	struct tf_agent_metrics m;
	struct tf_agent_health health;
	struct tf_prom prom;
	struct tf_ksyms ksyms;
	struct tf_drop_reasons reasons;
	bool names;			/* ksyms and reasons loaded */
	struct tf_pin pin;		/* --pin */
	bool pinned;			/* pin is open */
};

/* cli = the command line over conf. 0, or -1: out of memory. */
static int merge(struct agent *a, const struct tf_agent_conf *conf)
{
	const struct tf_cli *cl = a->cmdline;
	struct tf_cli *cli = &a->cli;
	const char **vms = NULL, **ifaces = NULL;

	if (!cl->n_vms && conf->n_vms) {
		vms = calloc(conf->n_vms, sizeof(*vms));
		if (!vms)
			return -1;
		for (size_t i = 0; i < conf->n_vms; i++)
			vms[i] = conf->vms[i];
	}
	if (!cl->n_ifaces && conf->n_ifaces) {
		ifaces = calloc(conf->n_ifaces, sizeof(*ifaces));
		if (!ifaces) {
			free(vms);
			return -1;
		}
		for (size_t i = 0; i < conf->n_ifaces; i++)
			ifaces[i] = conf->ifaces[i];
	}
	free(a->vms);
	free(a->ifaces);
	a->vms = vms;
	a->ifaces = ifaces;
	cli->vms = cl->n_vms ? cl->vms : vms;
	cli->n_vms = cl->n_vms ? cl->n_vms : conf->n_vms;
	cli->ifaces = cl->n_ifaces ? cl->ifaces : ifaces;
	cli->n_ifaces = cl->n_ifaces ? cl->n_ifaces : conf->n_ifaces;
	cli->flow_metrics = cl->flow_metrics >= 0 ? cl->flow_metrics
			    : conf->flow_metrics >= 0 ? conf->flow_metrics
						      : TF_FLOW_METRICS_DEFAULT;
	cli->prometheus = cl->prometheus ? cl->prometheus
			  : conf->prometheus ? conf->prometheus
					     : TF_PROMETHEUS_DEFAULT;
	if (!cl->max_flows && conf->max_flows)
		cli->max_flows = (uint32_t)conf->max_flows;
	if (!cl->interval_given && conf->interval > 0)
		cli->interval = conf->interval;
	if (!cl->no_nat && conf->no_nat >= 0)
		cli->no_nat = conf->no_nat;
	if (!cl->no_drops && conf->no_drops >= 0)
		cli->no_drops = conf->no_drops;
	return 0;
}

/* Drop reasons from BTF and locations from kallsyms, for the drops' labels. */
static void load_drop_names(struct agent *a)
{
	if (!a->s.c.drops_on)
		return;
	if (tf_drop_names_load(&a->reasons, &a->ksyms))
		return;	/* said why: the agent goes on without drop series */
	a->names = true;
	a->m.reasons = &a->reasons;
	a->m.ksyms = &a->ksyms;
}

static bool same_list(const char **x, size_t nx, const char **y, size_t ny)
{
	if (nx != ny)
		return false;
	for (size_t i = 0; i < nx; i++)
		if (strcmp(x[i], y[i]))
			return false;
	return true;
}

/* The settings that only a start can change: said, not applied. */
static void note_restart_only(const struct tf_cli *was, const struct tf_cli *now)
{
	if (was->max_flows != now->max_flows)
		tf_note("config: max-flows changes at the next start (the flow map is sized at load)");
	if (was->no_nat != now->no_nat)
		tf_note("config: no-nat changes at the next start");
	if (was->no_drops != now->no_drops)
		tf_note("config: no-drops changes at the next start");
}

/* A listener for /metrics on addr, or NULL with why in err. */
static struct tf_http *listen_on(const char *addr, char *err, size_t errlen)
{
	struct tf_http *h = calloc(1, sizeof(*h));

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (tf_http_start(h, addr, err, errlen)) {
		tf_http_stop(h);
		free(h);
		return NULL;
	}
	return h;
}

static void stop_listening(struct tf_http *h)
{
	if (!h)
		return;
	tf_http_stop(h);
	free(h);
}

/* SIGHUP: read --config again and apply it, all or nothing. */
static void reload(struct agent *a)
{
	struct tf_agent_conf conf;
	struct tf_cli was = a->cli;
	const char **was_vms = NULL, **was_ifaces = NULL;
	bool selection;
	char err[512];

	if (!a->cmdline->config) {
		tf_note("SIGHUP: no --config to reload; nothing changes");
		return;
	}
	sd_notify(0, "RELOADING=1");
	if (tf_agent_conf_load(a->cmdline->config, &conf, err, sizeof(err)))
		goto refused;
	/* was's lists are a->vms and a->ifaces, which merge frees: compare copies. */
	was_vms = calloc(was.n_vms + 1, sizeof(*was_vms));
	was_ifaces = calloc(was.n_ifaces + 1, sizeof(*was_ifaces));
	for (size_t i = 0; was_vms && i < was.n_vms; i++)
		was_vms[i] = was.vms[i];
	for (size_t i = 0; was_ifaces && i < was.n_ifaces; i++)
		was_ifaces[i] = was.ifaces[i];
	if (!was_vms || !was_ifaces || merge(a, &conf)) {
		snprintf(err, sizeof(err), "out of memory");
		tf_agent_conf_free(&conf);
		goto refused;
	}
	if (strcmp(was.prometheus, a->cli.prometheus)) {
		struct tf_http *h = listen_on(a->cli.prometheus, err, sizeof(err));

		if (!h) {
			tf_warn("config: %s; metrics stay on %s", err, a->http->where);
			/* Not was.prometheus: it may be the old file's, freed below. */
			a->cli.prometheus = a->http->where;
		} else {
			a->scrapes_before[0] += a->http->scrapes;
			a->scrapes_before[1] += a->http->gzipped;
			a->scrapes_before[2] += a->http->stale;
			stop_listening(a->http);
			a->http = h;
			a->s.wake_fd = h->wake_fd;
			tf_note("metrics now on http://%s/metrics", h->where);
		}
	}
	note_restart_only(&was, &a->cli);
	a->cli.max_flows = was.max_flows;
	a->cli.no_nat = was.no_nat;
	a->cli.no_drops = was.no_drops;
	a->m.flow_top = (size_t)a->cli.flow_metrics;
	/* Compared before the old names go with the old conf. */
	selection = !same_list(was_vms, was.n_vms, a->cli.vms, a->cli.n_vms) ||
		    !same_list(was_ifaces, was.n_ifaces, a->cli.ifaces, a->cli.n_ifaces);
	free(was_vms);
	free(was_ifaces);
	if (selection)
		tf_session_reselect(&a->s);
	tf_agent_conf_free(&a->conf);
	a->conf = conf;
	a->health.reloads++;
	tf_note("config reloaded from %s", a->cmdline->config);
	sd_notify(0, "READY=1");
	return;
refused:
	free(was_vms);
	free(was_ifaces);
	a->health.reload_errors++;
	tf_warn("config not reloaded: %s; the running config stays", err);
	sd_notify(0, "READY=1");
}

/* A scrape waits: poll, render, hand over. */
static void serve(struct agent *a, uint64_t gen)
{
	struct tf_prom out = {};

	tf_session_poll(&a->s);
	a->health.scrapes = a->scrapes_before[0] + a->http->scrapes;
	a->health.scrapes_gzip = a->scrapes_before[1] + a->http->gzipped;
	a->health.scrapes_stale = a->scrapes_before[2] + a->http->stale;
	if (tf_agent_metrics_render(&a->m, &a->s, &a->health, &a->prom))
		tf_debug("metrics: out of memory; some series wait for the next scrape");
	/* The buffer goes to the HTTP side; the next render starts a new one. */
	out = a->prom;
	memset(&a->prom, 0, sizeof(a->prom));
	if (out.buf)
		tf_http_publish(a->http, out.buf, out.len, gen);
}

static void run(struct agent *a)
{
	double start = tf_now_mono(), next = start + a->cli.interval;
	double end = a->cli.duration > 0 ? start + a->cli.duration : 1e300;

	while (!tf_exiting) {
		double now = tf_now_mono(), wake = next < end ? next : end;
		uint64_t gen;

		if (now >= end)
			break;
		tf_session_wait(&a->s, wake - now);
		if (tf_reload) {
			tf_reload = 0;
			reload(a);
		}
		if (tf_exiting)
			break;
		if (tf_http_wanted(a->http, &gen)) {
			serve(a, gen);
		} else if (tf_now_mono() >= next) {
			/* Between scrapes: flows expire and drops are attributed on time. */
			tf_session_poll(&a->s);
		}
		while (next <= tf_now_mono())
			next += a->cli.interval;
	}
}

static size_t attached(const struct tf_collector *c, bool carried)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_targets; i++)
		n += c->targets[i].hook.attached && (!carried || c->targets[i].carried);
	return n;
}

/* --unpin DIR: everything --pin DIR pinned, detached and removed. */
static int unpin(const char *dir)
{
	char msg[PATH_MAX + 256];

	if (tf_pin_unpin(dir, msg, sizeof(msg))) {
		tf_err("%s", msg);
		return TF_EXIT_RUNTIME;
	}
	tf_note("%s", msg);
	return TF_EXIT_OK;
}

int tf_cmd_agent(const struct tf_cli *cmdline)
{
	struct agent *a;
	struct tf_collector_opts opts;
	char err[512];
	int ret = TF_EXIT_RUNTIME;
	struct timespec now;
	bool begun = false;

	if (cmdline->unpin)
		return unpin(cmdline->unpin);
	a = calloc(1, sizeof(*a));
	if (!a) {
		tf_err("out of memory");
		return TF_EXIT_RUNTIME;
	}
	a->cmdline = cmdline;
	a->cli = *cmdline;
	a->cli.keep_waiting = true;
	if (cmdline->config &&
	    tf_agent_conf_load(cmdline->config, &a->conf, err, sizeof(err))) {
		tf_err("%s", err);
		goto out;
	}
	if (!cmdline->config)
		tf_agent_conf_parse("", "", &a->conf, err, sizeof(err));
	if (merge(a, &a->conf)) {
		tf_err("out of memory");
		goto out;
	}
	if (a->cli.no_libvirt && a->cli.n_vms) {
		tf_err("vm needs libvirt; it cannot be used with --no-libvirt");
		goto out;
	}
	if (a->cli.no_libvirt && !a->cli.n_ifaces && !a->cli.n_bridges && !a->cli.n_uplinks) {
		tf_err("--no-libvirt needs at least one iface (--iface or in %s)",
		       cmdline->config);
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	a->health.start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	a->m.flow_top = (size_t)a->cli.flow_metrics;
	opts = (struct tf_collector_opts){
		.attach_mode = a->cli.attach_mode, .flows = true, .max_flows = a->cli.max_flows,
		.nat = !a->cli.no_nat, .drops = !a->cli.no_drops,
	};
	/* The pin directory, then the port: what is wrong is said before anything is attached. */
	if (a->cli.pin) {
		if (tf_pin_open(&a->pin, a->cli.pin, err, sizeof(err))) {
			tf_err("%s", err);
			goto out;
		}
		a->pinned = true;
		opts.pin = &a->pin;
	}
	a->http = listen_on(a->cli.prometheus, err, sizeof(err));
	if (!a->http) {
		tf_err("%s", err);
		goto out;
	}
	tf_signals_hup_reloads();
	begun = true;
	if (tf_session_begin(&a->s, &a->cli, &opts) || tf_session_follow_flows(&a->s))
		goto out;
	a->s.fr.rep.top_n = 0;	/* every flow: the top ones are picked per scrape */
	a->s.wake_fd = a->http->wake_fd;
	load_drop_names(a);
	/* Set up: from here on, only what following the host takes. */
	if (tf_caps_keep_only(tf_caps_agent_keeps(), err, sizeof(err)))
		tf_warn("%s; the agent keeps the capabilities it was started with", err);
	if (a->pinned && a->pin.adopted)
		tf_note("agent %s: tracing %zu interfaces (%zu carried on from the pins in %s), "
			"metrics on http://%s/metrics", TAPFLOW_VERSION, attached(&a->s.c, false),
			attached(&a->s.c, true), a->pin.dir, a->http->where);
	else
		tf_note("agent %s: tracing %zu interfaces, metrics on http://%s/metrics",
			TAPFLOW_VERSION, attached(&a->s.c, false), a->http->where);
	sd_notify(0, "READY=1");
	run(a);
	sd_notify(0, "STOPPING=1");
	if (a->pinned)
		tf_note("agent stopping: %s; the hooks pinned in %s count on",
			tf_exiting ? "signal" : "duration reached", a->pin.dir);
	else
		tf_note("agent stopping: %s", tf_exiting ? "signal" : "duration reached");
	tf_session_finish(&a->s);
	ret = TF_EXIT_OK;
out:
	stop_listening(a->http);
	if (begun)
		tf_session_end(&a->s);
	if (a->pinned)
		tf_pin_close(&a->pin);
	tf_agent_metrics_free(&a->m);
	tf_prom_free(&a->prom);
	if (a->names) {
		tf_ksyms_free(&a->ksyms);
		tf_drop_reasons_free(&a->reasons);
	}
	tf_agent_conf_free(&a->conf);
	free(a->vms);
	free(a->ifaces);
	free(a);
	return ret;
}
