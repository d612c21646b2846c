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

/*
 * Escape s as a JSON string, quotes included, into out (always terminated).
 * Any bytes give valid JSON in UTF-8: what is not UTF-8 becomes U+FFFD;
 * controls, DEL, C1, U+2028/U+2029 are \u-escaped; cut to fit out between
 * characters, never inside one or inside an escape.
 */
void tf_json_escape(const char *s, char *out, size_t outlen);

/*
 * One character of s: its length in bytes and its code point; where s is
 * not well-formed UTF-8, minus the length of the bytes one U+FFFD replaces
 * (the maximal ill-formed subpart, as browsers and Python decode).
 */
int tf_utf8_next(const unsigned char *s, uint32_t *cp);

/*
 * Names from libvirt and the kernel (VM, network, interface, notes) in human
 * output. A name can hold anything: control characters, ESC sequences that
 * recolor or retitle the terminal, newlines, bidi overrides, bytes that are
 * not UTF-8. tf_term_str shows those as \xNN, \uNNNN or \UNNNNNNNN, so the
 * name stays on its line and in its column, cuts at max columns (0: no
 * limit) between characters and pads with blanks to min columns, counting
 * columns as the terminal does (wide CJK 2, combining marks 0). Returns out.
 * Printing goes through it, never "%-16s" on a raw name.
 *
 * Until tf_term_setup() finds a UTF-8 locale (LC_ALL, LC_CTYPE, LANG), all
 * bytes beyond ASCII are escaped, as ls does: a terminal in another
 * character set could take them for C1 controls. tf_term_set_utf8 is for
 * tests, with a UTF-8 LC_CTYPE already set.
 */
void tf_term_setup(void);
void tf_term_set_utf8(bool utf8);
const char *tf_term_str(const char *s, int min, int max, char *out, size_t outlen);
/*
 * s made safe as tf_term_str does, in at most cols columns: a longer s is
 * cut between characters and the cut marked ("\u2026" on a UTF-8 terminal,
 * "~" otherwise), at the end (names) or, with middle, in the middle
 * (addresses: both the network and the port tell flows apart). No padding.
 */
const char *tf_term_fit(const char *s, int cols, bool middle, char *out, size_t outlen);
/* Columns tf_term_str(s) takes, unpadded and uncut. */
size_t tf_term_width(const char *s);
/* Room for a name of n bytes made safe (4 per byte at most) and 63 columns of padding. */
#define TF_TERM_SIZE(n) (4 * (n) + 64)

/* RFC 3339 UTC with milliseconds: 2026-11-28T01:02:03.456Z */
void tf_format_ts(const struct timespec *ts, char *out, size_t outlen);
/* 1536 -> "1.5 KiB"; below 1 KiB plain "B". */
void tf_format_bytes(uint64_t bytes, char *out, size_t outlen);
/* bits per second -> "0 bit/s", "12.3 kbit/s", "1.23 Mbit/s", "9.4 Gbit/s" */
void tf_format_rate(double bps, char *out, size_t outlen);
/* 1234567 -> "1.23M"; exact below one million. */
void tf_format_count(uint64_t n, char *out, size_t outlen);

#endif /* TF_OUTPUT_H */
