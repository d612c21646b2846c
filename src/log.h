/* SPDX-License-Identifier: GPL-2.0 */
/* Diagnostics: one clear line by default, libbpf/libvirt detail with -v. */
#ifndef TF_LOG_H
#define TF_LOG_H

#include <stdbool.h>

extern bool tf_verbose;

/* "tapflow: <msg>" on stderr. */
void tf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What changed during a run (a VM traced, one gone): "tapflow: <msg>". */
void tf_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Hand notes to fn instead (top's status line while it owns the terminal); NULL: stderr. */
void tf_log_note_to(void (*fn)(const char *msg, void *ctx), void *ctx);
/* Only with -v. */
void tf_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Route libbpf's messages through tf_verbose. */
void tf_log_init(bool verbose);

#endif /* TF_LOG_H */
