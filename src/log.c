// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "output.h"

bool tf_verbose;

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	char msg[1024], safe[TF_TERM_SIZE(sizeof(msg))];

	/* Messages quote names from libvirt and the kernel: one safe line. */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "tapflow: %s%s\n", prefix, tf_term_str(msg, 0, 0, safe, sizeof(safe)));
}

void tf_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void tf_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

static void (*note_fn)(const char *msg, void *ctx);
static void *note_ctx;

void tf_log_note_to(void (*fn)(const char *msg, void *ctx), void *ctx)
{
	note_fn = fn;
	note_ctx = ctx;
}

void tf_note(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	if (note_fn) {
		vsnprintf(msg, sizeof(msg), fmt, ap);
		note_fn(msg, note_ctx);
	} else {
		vlog("", fmt, ap);
	}
	va_end(ap);
}

void tf_debug(const char *fmt, ...)
{
	va_list ap;

	if (!tf_verbose)
		return;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

/* libbpf prints multi-line verifier logs and probes: only worth it with -v. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!tf_verbose || level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void tf_log_init(bool verbose)
{
	tf_verbose = verbose;
	libbpf_set_print(libbpf_print);
}
