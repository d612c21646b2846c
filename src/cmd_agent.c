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
#include <unistd.h>
#include <limits.h>

#include "agent_conf.h"
#include "agent_metrics.h"
#include "caps.h"
#include "cli.h"
#include "http.h"
#include "ipfix.h"
#include "ipfix_flows.h"
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
	struct tf_ipfix **ipfix;	/* --ipfix destinations */
	size_t n_ipfix;
	struct tf_ipfix_flows xf;	/* what they are sent */
	double ipfix_active;		/* --active-timeout: a busy flow's records this often (s) */
	bool exporting;			/* xf is set up */
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
	if (!cl->tcp && conf->tcp >= 0)
		cli->tcp = conf->tcp;
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
	if (was->tcp != now->tcp)
		tf_note("config: tcp changes at the next start (the analysis is set at load)");
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
	a->cli.tcp = was.tcp;
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

/* Flow records due after a poll, handed to every destination as far as each takes them. */
static void export(struct agent *a, bool final)
{
	double now = tf_now_mono();

	if (!a->exporting)
		return;
	tf_ipfix_flows_export(&a->xf, &a->s, a->names ? &a->reasons : NULL, final);
	for (size_t i = 0; i < a->n_ipfix; i++)
		tf_ipfix_flush(a->ipfix[i], now);
}

static void poll_and_export(struct agent *a)
{
	tf_session_poll(&a->s);
	export(a, false);
}

/* A scrape waits: poll, render, hand over. */
static void serve(struct agent *a, uint64_t gen)
{
	struct tf_prom out = {};

	poll_and_export(a);
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
			poll_and_export(a);
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

/* The --ipfix destinations, before anything is attached: a bad one is said first. */
static int open_ipfix(struct agent *a, char *err, size_t errlen)
{
	char host[256] = "";
	struct tf_ipfix_opts o = {
		.template_refresh_s = a->cli.ipfix_template_refresh,
		.rotate_s = a->cli.ipfix_rotate,
		.queue_max = a->cli.ipfix_queue > 0 ? (size_t)a->cli.ipfix_queue : 0,
		.domain_name = host,
	};

	if (!a->cli.n_ipfix)
		return 0;
	gethostname(host, sizeof(host) - 1);
	/* One domain per host, the same across restarts: collectors key exporters by it. */
	o.domain = (uint32_t)(tf_fnv1a(host, strlen(host)) & 0x7fffffff);
	a->ipfix = calloc(a->cli.n_ipfix, sizeof(*a->ipfix));
	if (!a->ipfix) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < a->cli.n_ipfix; i++) {
		o.url = a->cli.ipfix[i];
		a->ipfix[i] = tf_ipfix_open(&o, err, errlen);
		if (!a->ipfix[i])
			return -1;
		a->n_ipfix++;
	}
	return 0;
}

/* The end of the export: every destination's last records, and what became of them. */
static void close_ipfix(struct agent *a)
{
	for (size_t i = 0; i < a->n_ipfix; i++) {
		struct tf_ipfix_stats st;
		char url[PATH_MAX + 16];

		snprintf(url, sizeof(url), "%s", tf_ipfix_url(a->ipfix[i]));
		tf_ipfix_close(a->ipfix[i], 2.0, &st);
		/* A start that failed said why already: no word on what was never exported. */
		if (!a->exporting)
			continue;
		if (st.records_lost)
			tf_warn("ipfix %s: %llu records sent, %llu lost", url,
				(unsigned long long)st.records, (unsigned long long)st.records_lost);
		else
			tf_note("ipfix %s: %llu records sent", url, (unsigned long long)st.records);
	}
	free(a->ipfix);
	a->ipfix = NULL;
	a->n_ipfix = 0;
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
	/*
	 * The agent's active timeout paces the IPFIX records of busy flows,
	 * which are deltas of the table's totals: no kernel entry needs taking
	 * out for them, and taking out a busy one can miss a packet.
	 */
	a->ipfix_active = a->cli.active_timeout_given ? a->cli.active_timeout
						      : TF_AGENT_ACTIVE_TIMEOUT_DEFAULT;
	a->cli.active_timeout = 0;
	clock_gettime(CLOCK_REALTIME, &now);
	a->health.start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	a->m.flow_top = (size_t)a->cli.flow_metrics;
	opts = (struct tf_collector_opts){
		.attach_mode = a->cli.attach_mode, .flows = true, .max_flows = a->cli.max_flows,
		.nat = !a->cli.no_nat, .tcp = a->cli.tcp, .drops = !a->cli.no_drops,
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
	if (open_ipfix(a, err, sizeof(err))) {
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
	if (a->n_ipfix) {
		if (tf_ipfix_flows_init(&a->xf, &a->s, a->ipfix_active)) {
			tf_err("out of memory");
			goto out;
		}
		a->xf.dest = a->ipfix;
		a->xf.n_dest = a->n_ipfix;
		a->exporting = true;
		a->health.ipfix = a->ipfix;
		a->health.n_ipfix = a->n_ipfix;
		a->health.ipfix_flows = &a->xf;
	}
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
	/* Pinned, the hooks count on: the records end at this last look. */
	if (a->pinned)
		tf_session_poll(&a->s);
	tf_session_finish(&a->s);
	export(a, true);
	ret = TF_EXIT_OK;
out:
	stop_listening(a->http);
	close_ipfix(a);
	if (a->exporting)
		tf_ipfix_flows_free(&a->xf);
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
