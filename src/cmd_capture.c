// SPDX-License-Identifier: GPL-2.0
/*
 * tapflow capture: sampled frames of the VMs' interfaces to pcapng, one
 * interface block per tap/bridge/uplink, named so that Wireshark shows
 * the VM, with the direction seen from the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "collector.h"
#include "flows.h"
#include "log.h"
#include "output.h"
#include "capfilter.h"
#include "pcapng.h"
#include "report.h"
#include "session.h"
#include "signals.h"

#define TAPFLOW_APP "tapflow capture"

struct capture_run {
	const struct tf_cli *cli;
	struct tf_collector *c;
	struct tf_pcapng w;
	int *ifid;			/* per target: its interface id, -1 if not captured */
	int *ifid_ifindex;		/* per target: the ifindex its interface block is for */
	size_t n_ifid;			/* targets that have an interface block (or none) */
	uint32_t snaplen;
	char comment[512];		/* each interface block's: the sampling */
	int64_t offset;			/* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	double offset_t;		/* when it was taken */
	uint64_t start_ns, unknown;	/* capture start (wall); samples of no target */
	bool stop;			/* the file cannot take more (error, closed pipe) */
};

/* The direction in the VM's view on a tap, the interface's own elsewhere. */
static uint32_t epb_direction(const struct tf_target *t, int hook)
{
	bool in = hook == TF_HOOK_INGRESS;

	if (t->role == TF_ROLE_TAP)
		in = !in;	/* TC ingress on a tap: the VM sent it (outbound) */
	return in ? TF_PCAPNG_INBOUND : TF_PCAPNG_OUTBOUND;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct capture_run *r = ctx;
	const struct tf_cap_hdr *h = data;
	const struct tf_target *t;
	size_t i;

	if (r->stop || size < sizeof(*h) || size < sizeof(*h) + h->cap_len)
		return 0;
	for (i = 0; i < r->n_ifid && (uint32_t)r->ifid_ifindex[i] != h->ifindex; i++)
		;
	if (i >= r->n_ifid || r->ifid[i] < 0) {
		r->unknown++;
		return 0;
	}
	t = &r->c->targets[i];
	if (tf_pcapng_packet(&r->w, (uint32_t)r->ifid[i], h->ts_ns + (uint64_t)r->offset,
			     (const uint8_t *)data + sizeof(*h), h->cap_len, h->orig_len,
			     epb_direction(t, h->hook)))
		r->stop = true;
	return 0;
}

/* "VM alpha (52:54:00:7f:00:10)", "bridge virbr0", "uplink", ... */
static void iface_desc(const struct tf_target *t, char *out, size_t len)
{
	if (t->has_vif)
		snprintf(out, len, "VM %s (%s)", t->vif.vm, t->vif.mac);
	else if (t->role == TF_ROLE_BRIDGE)
		snprintf(out, len, "bridge %s of the VMs", t->ifname);
	else if (t->role == TF_ROLE_UPLINK)
		snprintf(out, len, "uplink %s (NAT/routed traffic of the VMs)", t->ifname);
	else
		snprintf(out, len, "interface %s", t->ifname);
}

/* Interface block number id for target i, as it is now. -1 if it cannot be written. */
static int write_iface(struct capture_run *r, size_t i)
{
	const struct tf_target *t = &r->c->targets[i];
	char desc[TF_NAME_MAX + 64];
	int id;

	r->ifid[i] = -1;
	r->ifid_ifindex[i] = t->ifindex;
	if (!t->captured)
		return 0;
	iface_desc(t, desc, sizeof(desc));
	/* Sampling is per interface: said in each interface's block too. */
	id = tf_pcapng_iface(&r->w, t->ifname, desc, r->snaplen, r->comment);
	if (id < 0)
		return -1;
	r->ifid[i] = id;
	return 0;
}

/*
 * An interface block for every target added since the last call (all of
 * them at the start; a VM that started during the run later), and a new
 * one for a target that came back on a new tap (a VM started again): the
 * pcapng format allows them anywhere after the section header. 0, or -1.
 */
static int write_ifaces(struct capture_run *r)
{
	size_t n = r->c->n_targets;
	int *ifid, *ifx;

	for (size_t i = 0; i < r->n_ifid; i++)
		if (r->ifid_ifindex[i] != r->c->targets[i].ifindex && !r->c->targets[i].gone &&
		    write_iface(r, i))
			return -1;
	if (r->n_ifid == n)
		return 0;
	ifid = realloc(r->ifid, n * sizeof(*ifid));
	if (ifid)
		r->ifid = ifid;
	ifx = realloc(r->ifid_ifindex, n * sizeof(*ifx));
	if (ifx)
		r->ifid_ifindex = ifx;
	if (!ifid || !ifx)
		return -1;
	for (; r->n_ifid < n; r->n_ifid++)
		if (write_iface(r, r->n_ifid))
			return -1;
	return 0;
}

static int write_headers(struct capture_run *r, uint32_t snaplen)
{
	const struct tf_cli *cli = r->cli;

	r->snaplen = snaplen;
	snprintf(r->comment, sizeof(r->comment), "tapflow: 1-in-%u random sampling per "
		 "interface, snaplen %u%s%s", cli->cap_sample, snaplen,
		 cli->cap_flow ? ", flow " : "", cli->cap_flow ? cli->cap_flow : "");
	if (tf_pcapng_open(&r->w, r->w.fd, TAPFLOW_APP, r->comment))
		return -1;
	return write_ifaces(r);
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Interface statistics, one block each: what it carried, what was lost. */
static void write_stats(struct capture_run *r)
{
	uint64_t end = wall_ns();

	for (size_t i = 0; i < r->c->n_targets; i++) {
		const struct tf_target *t = &r->c->targets[i];

		if (i >= r->n_ifid || r->ifid[i] < 0)
			continue;
		tf_pcapng_stats(&r->w, (uint32_t)r->ifid[i], r->start_ns, end,
				t->now.rx_packets + t->now.tx_packets,
				t->cap_lost[0] + t->cap_lost[1]);
	}
}

static void report(struct capture_run *r, FILE *f)
{
	uint64_t samples = 0, lost = 0;
	struct tf_summary sum;
	struct timespec now;
	struct tf_json j = {};

	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < r->c->n_targets; i++) {
		const struct tf_target *t = &r->c->targets[i];
		char vm[TF_TERM_SIZE(TF_NAME_MAX)], ifn[TF_TERM_SIZE(IFNAMSIZ)];
		uint64_t s = t->cap_samples[0] + t->cap_samples[1];
		uint64_t l = t->cap_lost[0] + t->cap_lost[1];

		if (!t->captured || i >= r->n_ifid)
			continue;
		samples += s;
		lost += l;
		if (r->cli->json) {
			tf_json_begin(&j, "capture", &now);
			tf_json_str(&j, "vm", t->has_vif ? t->vif.vm : NULL);
			tf_json_str(&j, "ifname", t->ifname);
			tf_json_str(&j, "role", tf_role_name(t->role));
			tf_json_i64(&j, "ifid", r->ifid[i]);
			tf_json_u64(&j, "packets", t->now.rx_packets + t->now.tx_packets);
			tf_json_u64(&j, "samples", s);
			tf_json_u64(&j, "lost", l);
			tf_json_end(&j, f);
		} else {
			fprintf(f, "%s %s %-7s %9llu packets, %9llu sampled, %llu lost\n",
				tf_term_str(t->has_vif ? t->vif.vm : "-", 16, 0, vm, sizeof(vm)),
				tf_term_str(t->ifname, 10, 0, ifn, sizeof(ifn)), tf_role_name(t->role),
				(unsigned long long)(t->now.rx_packets + t->now.tx_packets),
				(unsigned long long)s, (unsigned long long)l);
		}
	}
	tf_summary_fill(&sum, r->c);
	sum.losses.ringbuf_lost = lost;
	if (r->cli->json) {
		tf_report_summary_json(&j, r->c, &sum, &now, f);
	} else {
		fprintf(f, "capture: %llu frames written, %llu sampled, %llu lost (ring buffer full)"
			"%s%s\n", (unsigned long long)r->w.packets, (unsigned long long)samples,
			(unsigned long long)lost, r->w.err ? "; stopped: " : "",
			r->w.err ? strerror(r->w.err) : "");
	}
	tf_json_free(&j);
}

int tf_cmd_capture(const struct tf_cli *cli)
{
	struct tf_capture_opts co = {
		.sample = cli->cap_sample, .snaplen = cli->cap_snaplen,
		.ringbuf_bytes = cli->cap_buffer, .taps_only = cli->n_vms > 0,
	};
	struct tf_collector_opts opts = { .attach_mode = cli->attach_mode, .capture = &co };
	struct capture_run r = { .cli = cli };
	struct tf_session s;
	struct tf_collector *c = &s.c;
	struct ring_buffer *rb = NULL;
	bool to_stdout = !strcmp(cli->cap_file, "-");
	FILE *out = to_stdout ? stderr : stdout;
	int ret = TF_EXIT_RUNTIME, fd = -1;
	char err[512];
	double end;

	memset(&s, 0, sizeof(s));
	r.c = c;
	r.w.fd = -1;
	if (cli->cap_flow && tf_cap_filter_parse(cli->cap_flow, &co.filter, err, sizeof(err))) {
		tf_err("%s", err);
		return TF_EXIT_USAGE;
	}
	/* A closed pipe (tshark gone) is an error of write(), not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Interfaces first, as tcpdump does: a run that cannot start (no such
	 * VM or interface, no privileges) leaves an existing file alone.
	 */
	/* Before attaching: every frame's time is within the statistics' range. */
	r.start_ns = wall_ns();
	if (tf_session_begin(&s, cli, &opts))
		goto out;
	fd = to_stdout ? STDOUT_FILENO
		       : open(cli->cap_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		tf_err("cannot write %s: %s", cli->cap_file, strerror(errno));
		goto out;
	}
	r.w.fd = fd;
	r.offset = tf_mono_to_real_offset();
	r.offset_t = tf_now_mono();
	if (write_headers(&r, co.snaplen)) {
		tf_err("cannot write %s: %s", to_stdout ? "to stdout" : cli->cap_file,
		       strerror(r.w.err ? r.w.err : ENOMEM));
		goto out;
	}
	rb = ring_buffer__new(c->cap_rb_fd, on_sample, &r, NULL);
	if (!rb) {
		tf_err("cannot open the capture ring buffer: %s", strerror(errno));
		goto out;
	}
	end = cli->duration > 0 ? tf_now_mono() + cli->duration : 1e300;
	/* -w -: a reader gone (tshark -c N) ends it, even while nothing is sampled. */
	while (!tf_exiting && !r.stop && tf_now_mono() < end &&
	       !(to_stdout && tf_out_reader_gone(stdout))) {
		int n = ring_buffer__poll(rb, 100);

		if (n < 0 && n != -EINTR) {
			tf_err("cannot read the capture ring buffer: %s", strerror(-n));
			break;
		}
		/* A VM that started: its interface block before its first frame. */
		if (tf_session_wait(&s, 0) && write_ifaces(&r)) {
			tf_err("cannot write %s: %s", to_stdout ? "to stdout" : cli->cap_file,
			       strerror(r.w.err ? r.w.err : ENOMEM));
			break;
		}
		/* The wall clock may be stepped: follow it every second. */
		if (tf_now_mono() - r.offset_t >= 1.0) {
			r.offset = tf_mono_to_real_offset();
			r.offset_t = tf_now_mono();
		}
	}
	tf_collector_detach(c);
	ring_buffer__consume(rb);
	tf_collector_poll(c);
	write_stats(&r);
	if (r.w.err && r.w.err != EPIPE)
		tf_err("cannot write %s: %s; the file is valid up to the last whole frame",
		       to_stdout ? "to stdout" : cli->cap_file, strerror(r.w.err));
	report(&r, out);
	/* A reader that went away (tshark -c N) ends the capture; that is fine. */
	ret = r.w.err && r.w.err != EPIPE ? TF_EXIT_RUNTIME : TF_EXIT_OK;
	if (!to_stdout && close(fd)) {
		tf_err("cannot write %s: %s", cli->cap_file, strerror(errno));
		ret = TF_EXIT_RUNTIME;
	}
	fd = -1;
	if (tf_out_finish(out, out == stdout ? "the report to stdout" : "the report to stderr"))
		ret = TF_EXIT_RUNTIME;
out:
	ring_buffer__free(rb);
	if (fd >= 0 && !to_stdout)
		close(fd);
	tf_pcapng_free(&r.w);
	free(r.ifid);
	free(r.ifid_ifindex);
	tf_session_end(&s);
	return ret;
}
