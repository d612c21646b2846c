/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Output: JSON lines with stable field names, and human units. One record
 * is built in memory and written with a single fwrite, so a reader never
 * sees half a line, even if tapflow is killed mid-run.
 */
#ifndef TF_OUTPUT_H
#define TF_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct tf_json {
	char *buf;
	size_t len, cap;
	bool oom;
	bool need_comma;
};

/* {"type":TYPE,"ts":now */
void tf_json_begin(struct tf_json *j, const char *type, const struct timespec *now);
void tf_json_str(struct tf_json *j, const char *key, const char *val);	/* NULL -> null */
void tf_json_u64(struct tf_json *j, const char *key, uint64_t val);
void tf_json_i64(struct tf_json *j, const char *key, int64_t val);
void tf_json_num(struct tf_json *j, const char *key, double val);	/* %.0f..%g */
void tf_json_bool(struct tf_json *j, const char *key, bool val);
void tf_json_null(struct tf_json *j, const char *key);
/* v, or null if v < 0 (the fields that "have none"). */
void tf_json_int_or_null(struct tf_json *j, const char *key, int v);
/* v, or null if not set (not measured). */
void tf_json_u64_or_null(struct tf_json *j, const char *key, bool set, uint64_t v);
/* A nested object as the value of k: begin, its fields, end. */
void tf_json_object_begin(struct tf_json *j, const char *k);
void tf_json_object_end(struct tf_json *j);
/* Close the object, write it (with '\n') to f, reset. -1 on write error. */
int tf_json_end(struct tf_json *j, FILE *f);
void tf_json_free(struct tf_json *j);

/*
 * The report stream. A write that fails ends the run: a reader that went
 * away (EPIPE: `tapflow ... | head`) is a normal end, silently; any other
 * error (a full disk) is said once and makes the exit code 1. SIGPIPE is
 * ignored so that both arrive here as errors of write().
 */
/* After writing to f: 0, or -1 if a write failed (the first error is kept). */
int tf_out_check(FILE *f);
/*
 * A pipe or socket whose reader went away, told before anything is
 * written: a command with nothing to report for a while (drops) still
 * ends when its reader does. Recorded as EPIPE. True if so.
 */
bool tf_out_reader_gone(FILE *f);
/* The first write error of the run (an errno), 0 if none. */
int tf_out_error(void);
/* At the end: check f, say what went wrong (not EPIPE). 0, or -1: exit 1. */
int tf_out_finish(FILE *f, const char *what);

/* Escape s as a JSON string, quotes included, into out (always terminated). */
void tf_json_escape(const char *s, char *out, size_t outlen);

/* RFC 3339 UTC with milliseconds: 2026-11-28T01:02:03.456Z */
void tf_format_ts(const struct timespec *ts, char *out, size_t outlen);
/* 1536 -> "1.5 KiB"; below 1 KiB plain "B". */
void tf_format_bytes(uint64_t bytes, char *out, size_t outlen);
/* bits per second -> "0 bit/s", "12.3 kbit/s", "1.23 Mbit/s", "9.4 Gbit/s" */
void tf_format_rate(double bps, char *out, size_t outlen);
/* 1234567 -> "1.23M"; exact below one million. */
void tf_format_count(uint64_t n, char *out, size_t outlen);

#endif /* TF_OUTPUT_H */
