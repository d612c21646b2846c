// SPDX-License-Identifier: GPL-2.0
/*
 * Capture: the pcapng writer (src/pcapng.c) and the --flow parser
 * (src/capfilter.c).
 *
 * The writer writes into an unlinked temporary file; the test reads the
 * bytes back and checks them against the pcapng layout byte for byte (block
 * lengths at both ends, 32-bit alignment, zero padding, options and their
 * end marker), then walks whole files with a parser of its own. A write
 * error in the middle of a block (RLIMIT_FSIZE: the kernel writes up to the
 * limit, then refuses with EFBIG; SIGXFSZ ignored) must leave the file at
 * the last whole block, and the writer must refuse everything after it. A
 * closed pipe (EPIPE) is reported and sticks too.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "capfilter.h"
#include "pcapng.h"

/* ---- helpers -------------------------------------------------------------- */

static int tmp_fd(void)
{
	char path[] = "/tmp/tf-test-capture.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/* The whole file (fd's size), malloc'ed; *len its size. */
static uint8_t *slurp(int fd, size_t *len)
{
	struct stat st;
	uint8_t *buf;

	assert_int_equal(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, *len, 0), (ssize_t)*len);
	return buf;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

struct opt {
	uint16_t code, len;
	const uint8_t *val;
};

/*
 * The options in p[0..n): each 4-aligned with zero padding, the list ended
 * by opt_endofopt exactly at n (or n == 0: no options). Fails the test
 * otherwise. Returns how many (at most max).
 */
static int parse_opts(const uint8_t *p, size_t n, struct opt *o, int max)
{
	size_t off = 0;
	int k = 0;

	if (n == 0)
		return 0;
	for (;;) {
		uint16_t code, len;

		assert_true(off + 4 <= n);
		code = rd16(p + off);
		len = rd16(p + off + 2);
		off += 4;
		if (code == 0) {
			assert_int_equal(len, 0);
			assert_int_equal(off, n);	/* the end marker ends the block body */
			return k;
		}
		assert_true(off + pad4(len) <= n);
		for (size_t i = len; i < pad4(len); i++)
			assert_int_equal(p[off + i], 0);
		assert_true(k < max);
		o[k].code = code;
		o[k].len = len;
		o[k].val = p + off;
		k++;
		off += pad4(len);
	}
}

static const struct opt *find_opt(const struct opt *o, int n, uint16_t code)
{
	const struct opt *found = NULL;

	for (int i = 0; i < n; i++) {
		if (o[i].code == code) {
			assert_null(found);	/* each at most once here */
			found = &o[i];
		}
	}
	return found;
}

static void assert_opt_str(const struct opt *o, int n, uint16_t code, const char *s)
{
	const struct opt *f = find_opt(o, n, code);

	if (!s) {
		assert_null(f);
		return;
	}
	assert_non_null(f);
	assert_int_equal(f->len, strlen(s));
	assert_memory_equal(f->val, s, f->len);
}

struct block {
	uint32_t type, len;
	const uint8_t *p;	/* the whole block */
};

/*
 * Walk buf as a sequence of whole blocks: lengths >= 12, multiples of 4,
 * repeated at the end; they add up to the size exactly. Returns the count.
 */
static int walk(const uint8_t *buf, size_t size, struct block *b, int max)
{
	size_t off = 0;
	int n = 0;

	while (off < size) {
		uint32_t len;

		assert_true(off + 12 <= size);
		len = rd32(buf + off + 4);
		assert_true(len >= 12);
		assert_int_equal(len % 4, 0);
		assert_true(off + len <= size);
		assert_int_equal(rd32(buf + off + len - 4), len);
		if (b && n < max) {
			b[n].type = rd32(buf + off);
			b[n].len = len;
			b[n].p = buf + off;
		}
		n++;
		off += len;
	}
	assert_int_equal(off, size);
	return n;
}

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 1u
#define BT_ISB 5u
#define BT_EPB 6u

/* ---- pcapng: block layouts ------------------------------------------------ */

static void test_shb_layout(void **state)
{
	static const char *app = "tapflow capture";	/* 15 B: 1 B of padding */
	static const char *comment = "1-in-10, snaplen 64";	/* 19 B */
	struct tf_pcapng w;
	struct opt o[8];
	struct block b[2];
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd(), n;

	(void)state;
	assert_int_equal(tf_pcapng_open(&w, fd, app, comment), 0);
	buf = slurp(fd, &len);
	/* 8 header + 16 fixed + (4 + 16) + (4 + 20) + 4 end + 4 trailer */
	assert_int_equal(len, 8 + 16 + 20 + 24 + 4 + 4);
	assert_int_equal(walk(buf, len, b, 2), 1);
	assert_int_equal(b[0].type, BT_SHB);
	assert_int_equal(rd32(buf + 8), 0x1A2B3C4D);	/* byte-order magic */
	assert_int_equal(rd16(buf + 12), 1);		/* version 1.0 */
	assert_int_equal(rd16(buf + 14), 0);
	assert_int_equal((int64_t)rd64(buf + 16), -1);	/* section length unknown */
	n = parse_opts(buf + 24, len - 24 - 4, o, 8);
	assert_int_equal(n, 2);
	assert_opt_str(o, n, 4, app);			/* shb_userappl */
	assert_opt_str(o, n, 1, comment);		/* opt_comment */
	assert_int_equal(w.good, (off_t)len);
	assert_int_equal(w.err, 0);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

/* Without application and comment: no options, and then no end marker. */
static void test_shb_no_options(void **state)
{
	struct tf_pcapng w;
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd();

	(void)state;
	assert_int_equal(tf_pcapng_open(&w, fd, NULL, ""), 0);
	buf = slurp(fd, &len);
	assert_int_equal(walk(buf, len, NULL, 0), 1);
	assert_true(len == 28 || len == 32);	/* an empty option list is optional */
	assert_int_equal(parse_opts(buf + 24, len - 28, NULL, 0), 0);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

static void test_idb_layout(void **state)
{
	/* Names of every length mod 4, descriptions present or not. */
	static const struct {
		const char *name, *desc, *comment;
		uint32_t snaplen;
	} ifs[] = {
		{ "vnet0", "VM alpha (52:54:00:7f:00:10)", "1-in-1", 9216 },
		{ "br0", "bridge br0 of the VMs", NULL, 64 },
		{ "up00", NULL, "x", 1 },
		{ "enp0s31f6", "uplink enp0s31f6 (NAT/routed traffic of the VMs)", "abc", 65535 },
	};
	struct tf_pcapng w;
	struct block b[8];
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd();

	(void)state;
	assert_int_equal(tf_pcapng_open(&w, fd, "tapflow capture", NULL), 0);
	for (size_t i = 0; i < sizeof(ifs) / sizeof(ifs[0]); i++)
		assert_int_equal(tf_pcapng_iface(&w, ifs[i].name, ifs[i].desc, ifs[i].snaplen,
						 ifs[i].comment), (int)i);
	assert_int_equal(w.n_ifaces, 4);
	buf = slurp(fd, &len);
	assert_int_equal(walk(buf, len, b, 8), 5);
	for (size_t i = 0; i < 4; i++) {
		const uint8_t *p = b[i + 1].p;
		size_t want = 8 + 8 + 4 + pad4(strlen(ifs[i].name)) + 4 + 4 + 4 + 4;
		const struct opt *tsr;
		struct opt o[8];
		int n;

		if (ifs[i].desc)
			want += 4 + pad4(strlen(ifs[i].desc));
		if (ifs[i].comment)
			want += 4 + pad4(strlen(ifs[i].comment));
		assert_int_equal(b[i + 1].type, BT_IDB);
		assert_int_equal(b[i + 1].len, want);
		assert_int_equal(rd16(p + 8), 1);	/* LINKTYPE_ETHERNET */
		assert_int_equal(rd16(p + 10), 0);	/* reserved */
		assert_int_equal(rd32(p + 12), ifs[i].snaplen);
		n = parse_opts(p + 16, b[i + 1].len - 16 - 4, o, 8);
		assert_opt_str(o, n, 2, ifs[i].name);	/* if_name */
		assert_opt_str(o, n, 3, ifs[i].desc);	/* if_description */
		assert_opt_str(o, n, 1, ifs[i].comment);
		tsr = find_opt(o, n, 9);		/* if_tsresol: 10^-9 */
		assert_non_null(tsr);
		assert_int_equal(tsr->len, 1);
		assert_int_equal(tsr->val[0], 9);
	}
	assert_int_equal(w.good, (off_t)len);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

static void test_epb_layout(void **state)
{
	const uint64_t ts = 0x0123456789abcdefULL;
	uint8_t frame[300];
	struct tf_pcapng w;
	struct block b[32];
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd(), nb;

	(void)state;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(tf_pcapng_open(&w, fd, "t", NULL), 0);
	assert_int_equal(tf_pcapng_iface(&w, "a", NULL, 9216, NULL), 0);
	assert_int_equal(tf_pcapng_iface(&w, "b", NULL, 9216, NULL), 1);
	/* Every padding (cap 0..7, 299), every direction, orig > cap. */
	for (uint32_t cap = 0; cap < 8; cap++)
		assert_int_equal(tf_pcapng_packet(&w, cap % 2, ts + cap, frame, cap, cap + 1000,
						  cap % 3), 0);
	assert_int_equal(tf_pcapng_packet(&w, 1, ts, frame, 299, 299, TF_PCAPNG_OUTBOUND), 0);
	assert_int_equal(w.packets, 9);
	buf = slurp(fd, &len);
	nb = walk(buf, len, b, 32);
	assert_int_equal(nb, 3 + 9);
	for (int i = 0; i < 9; i++) {
		const struct block *e = &b[3 + i];
		uint32_t cap = i < 8 ? (uint32_t)i : 299;
		uint32_t orig = i < 8 ? cap + 1000 : 299;
		uint32_t flags = i < 8 ? cap % 3 : TF_PCAPNG_OUTBOUND;
		uint64_t t = i < 8 ? ts + cap : ts;
		size_t opts_len = flags ? 4 + 4 + 4 : 0;	/* epb_flags + end */
		struct opt o[4];
		int n;

		assert_int_equal(e->type, BT_EPB);
		assert_int_equal(e->len, 8 + 20 + pad4(cap) + opts_len + 4);
		assert_int_equal(rd32(e->p + 8), i < 8 ? cap % 2 : 1);	/* interface id */
		assert_int_equal(rd32(e->p + 12), (uint32_t)(t >> 32));	/* ts high */
		assert_int_equal(rd32(e->p + 16), (uint32_t)t);		/* ts low */
		assert_int_equal(rd32(e->p + 20), cap);
		assert_int_equal(rd32(e->p + 24), orig);
		if (cap)
			assert_memory_equal(e->p + 28, frame, cap);
		for (size_t k = cap; k < pad4(cap); k++)
			assert_int_equal(e->p[28 + k], 0);
		n = parse_opts(e->p + 28 + pad4(cap), opts_len, o, 4);
		if (flags) {
			const struct opt *f = find_opt(o, n, 2);	/* epb_flags */

			assert_non_null(f);
			assert_int_equal(f->len, 4);
			assert_int_equal(rd32(f->val), flags);
		} else {
			assert_int_equal(n, 0);
		}
	}
	assert_int_equal(w.good, (off_t)len);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

/* A frame bigger than the writer's buffer so far: it grows, the bytes stay right. */
static void test_epb_big(void **state)
{
	static uint8_t frame[9216];
	struct tf_pcapng w;
	struct block b[4];
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd();

	(void)state;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	assert_int_equal(tf_pcapng_open(&w, fd, "t", NULL), 0);
	assert_int_equal(tf_pcapng_iface(&w, "a", NULL, 9216, NULL), 0);
	assert_int_equal(tf_pcapng_packet(&w, 0, 1, frame, 9216, 64000, TF_PCAPNG_INBOUND), 0);
	buf = slurp(fd, &len);
	assert_int_equal(walk(buf, len, b, 4), 3);
	assert_int_equal(b[2].len, 8 + 20 + 9216 + 12 + 4);
	assert_int_equal(rd32(b[2].p + 24), 64000);
	assert_memory_equal(b[2].p + 28, frame, sizeof(frame));
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

static void test_isb_layout(void **state)
{
	const uint64_t start = 1795838326843418851ULL, end = 1795838330000000007ULL;
	struct tf_pcapng w;
	struct block b[8];
	struct opt o[8];
	const struct opt *f;
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd(), n;

	(void)state;
	assert_int_equal(tf_pcapng_open(&w, fd, "t", NULL), 0);
	assert_int_equal(tf_pcapng_iface(&w, "a", NULL, 9216, NULL), 0);
	assert_int_equal(tf_pcapng_iface(&w, "b", NULL, 9216, NULL), 1);
	assert_int_equal(tf_pcapng_stats(&w, 1, start, end, 123456789012ULL, 42), 0);
	buf = slurp(fd, &len);
	assert_int_equal(walk(buf, len, b, 8), 4);
	assert_int_equal(b[3].type, BT_ISB);
	/* 8 + ifid + ts (8) + 4 options of 8 bytes + end + trailer */
	assert_int_equal(b[3].len, 8 + 12 + 4 * 12 + 4 + 4);
	assert_int_equal(rd32(b[3].p + 8), 1);
	assert_int_equal(rd32(b[3].p + 12), (uint32_t)(end >> 32));
	assert_int_equal(rd32(b[3].p + 16), (uint32_t)end);
	n = parse_opts(b[3].p + 20, b[3].len - 20 - 4, o, 8);
	assert_int_equal(n, 4);
	/* Timestamps as in the EPB: high 32 bits first, in the interface's units. */
	f = find_opt(o, n, 2);	/* isb_starttime */
	assert_non_null(f);
	assert_int_equal(f->len, 8);
	assert_int_equal(((uint64_t)rd32(f->val) << 32) | rd32(f->val + 4), start);
	f = find_opt(o, n, 3);	/* isb_endtime */
	assert_non_null(f);
	assert_int_equal(((uint64_t)rd32(f->val) << 32) | rd32(f->val + 4), end);
	f = find_opt(o, n, 4);	/* isb_ifrecv */
	assert_non_null(f);
	assert_int_equal(f->len, 8);
	assert_int_equal(rd64(f->val), 123456789012ULL);
	f = find_opt(o, n, 5);	/* isb_ifdrop */
	assert_non_null(f);
	assert_int_equal(rd64(f->val), 42);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

/* A whole capture as tapflow writes it, walked block by block. */
static void test_whole_file(void **state)
{
	uint8_t frame[1514];
	struct tf_pcapng w;
	struct block b[64];
	uint8_t *buf;
	size_t len;
	int fd = tmp_fd(), nb, epbs = 0, isbs = 0;

	(void)state;
	memset(frame, 0x5a, sizeof(frame));
	assert_int_equal(tf_pcapng_open(&w, fd, "tapflow capture", "c"), 0);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "if%d", i);
		assert_int_equal(tf_pcapng_iface(&w, name, "d", 9216, "c"), i);
	}
	for (uint32_t i = 0; i < 50; i++)
		assert_int_equal(tf_pcapng_packet(&w, i % 3, 1000 + i, frame, 60 + i * 29,
						  60 + i * 29, 1 + i % 2), 0);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(tf_pcapng_stats(&w, i, 1, 2, 17, 0), 0);
	buf = slurp(fd, &len);
	nb = walk(buf, len, b, 64);
	assert_int_equal(nb, 1 + 3 + 50 + 3);
	assert_int_equal(b[0].type, BT_SHB);
	for (int i = 0; i < nb; i++) {
		if (b[i].type == BT_EPB) {
			assert_true(i >= 4);	/* after every IDB */
			epbs++;
		} else if (b[i].type == BT_ISB) {
			isbs++;
		}
	}
	assert_int_equal(epbs, 50);
	assert_int_equal(isbs, 3);
	assert_int_equal(w.packets, 50);
	assert_int_equal(w.good, (off_t)len);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

/* ---- pcapng: write errors ------------------------------------------------- */

/*
 * Fill the file through a writer whose process may write at most `limit`
 * bytes per file (RLIMIT_FSIZE): the write that crosses the limit is cut
 * short by the kernel, the next one fails with EFBIG. `prefix` bytes are
 * already in the file (the writer starts where the fd is). Frames of `cap`
 * bytes. Nothing is asserted while the limit is set (a failure message
 * would hit it too).
 */
static void fill_until_error(rlim_t limit, size_t prefix, uint32_t cap)
{
	struct rlimit old, lim;
	uint8_t frame[9216];
	struct tf_pcapng w;
	uint8_t *buf;
	size_t len;
	off_t good_before;
	int fd = tmp_fd(), ret = 0, r_open, r_iface, r_again, r_stats, i;
	uint64_t written;

	if (prefix) {
		memset(frame, 'P', prefix);
		assert_int_equal(write(fd, frame, prefix), (ssize_t)prefix);
	}
	memset(frame, 0x77, sizeof(frame));
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = limit;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	r_open = tf_pcapng_open(&w, fd, "tapflow capture", NULL);
	r_iface = tf_pcapng_iface(&w, "a", NULL, 9216, NULL);
	for (i = 0; i < 1000 && !ret; i++)
		ret = tf_pcapng_packet(&w, 0, (uint64_t)i, frame, cap, cap, TF_PCAPNG_INBOUND);
	good_before = w.good;
	written = w.packets;
	/* The error sticks: nothing more is written, stats neither. */
	r_again = tf_pcapng_packet(&w, 0, 1, frame, 60, 60, 1);
	r_stats = tf_pcapng_stats(&w, 0, 1, 2, 3, 4);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);

	assert_int_equal(r_open, 0);
	assert_int_equal(r_iface, 0);
	assert_int_equal(ret, -EFBIG);
	assert_int_equal(w.err, EFBIG);
	assert_int_equal(r_again, -EFBIG);
	assert_int_equal(r_stats, -EFBIG);
	assert_int_equal(w.packets, written);
	assert_int_equal(w.good, good_before);
	assert_true(written > 0);
	buf = slurp(fd, &len);
	/* The file ends at the last whole block: the partial one was cut off. */
	assert_int_equal(len, (size_t)w.good);
	assert_true(len <= limit);
	assert_true(len + (8 + 20 + pad4(cap) + 12 + 4) > limit);	/* the next did not fit */
	for (size_t k = 0; k < prefix; k++)
		assert_int_equal(buf[k], 'P');
	assert_int_equal(walk(buf + prefix, len - prefix, NULL, 0), 2 + (int)written);
	free(buf);
	tf_pcapng_free(&w);
	close(fd);
}

static void test_write_error_mid_block(void **state)
{
	const size_t epb = 8 + 20 + 100 + 12 + 4;	/* 144 B */
	struct tf_pcapng w0;
	size_t hdr;
	int fd = tmp_fd();

	(void)state;
	/* The size of SHB + IDB, as the writer makes them. */
	assert_int_equal(tf_pcapng_open(&w0, fd, "tapflow capture", NULL), 0);
	assert_int_equal(tf_pcapng_iface(&w0, "a", NULL, 9216, NULL), 0);
	hdr = (size_t)w0.good;
	tf_pcapng_free(&w0);
	close(fd);

	/* The 11th EPB crosses the limit in its middle. */
	fill_until_error(hdr + 10 * epb + 50, 0, 100);
	/* The limit falls exactly on a block boundary: the 11th fails whole. */
	fill_until_error(hdr + 10 * epb, 0, 100);
	/* One byte into the 11th. */
	fill_until_error(hdr + 10 * epb + 1, 0, 100);
	/* Bytes before the section (the fd not at 0): only the blocks are cut. */
	fill_until_error(hdr + 10 * epb + 77, 123, 100);
	/* Jumbo frames, the limit inside one. */
	fill_until_error(hdr + 3 * (8 + 20 + 9016 + 16) + 4000, 0, 9014);
}

/* A closed pipe: EPIPE, reported once and kept; not seekable, nothing cut. */
static void test_write_error_pipe(void **state)
{
	struct tf_pcapng w;
	uint8_t frame[64] = { 0 };
	int p[2];
	void (*old)(int);

	(void)state;
	old = signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(tf_pcapng_open(&w, p[1], "t", NULL), 0);
	assert_false(w.seekable);
	assert_int_equal(tf_pcapng_iface(&w, "a", NULL, 9216, NULL), 0);
	close(p[0]);
	assert_int_equal(tf_pcapng_packet(&w, 0, 1, frame, 64, 64, 1), -EPIPE);
	assert_int_equal(w.err, EPIPE);
	assert_int_equal(w.packets, 0);
	assert_int_equal(tf_pcapng_packet(&w, 0, 1, frame, 64, 64, 1), -EPIPE);
	assert_int_equal(tf_pcapng_stats(&w, 0, 1, 2, 3, 4), -EPIPE);
	close(p[1]);
	tf_pcapng_free(&w);
	signal(SIGPIPE, old);
}

/* ---- --flow: tf_cap_filter_parse ------------------------------------------ */

static void ep4(const struct tf_cap_endpoint *e, const char *ip, uint16_t port)
{
	uint8_t want[16] = { 0 };

	assert_int_equal(inet_pton(AF_INET, ip, want), 1);
	assert_int_equal(e->ip_set, 1);
	assert_memory_equal(e->ip, want, 16);	/* IPv4 in the first 4 bytes, zeros after */
	assert_int_equal(e->port, port);
}

static void ep6(const struct tf_cap_endpoint *e, const char *ip, uint16_t port)
{
	uint8_t want[16];

	assert_int_equal(inet_pton(AF_INET6, ip, want), 1);
	assert_int_equal(e->ip_set, 1);
	assert_memory_equal(e->ip, want, 16);
	assert_int_equal(e->port, port);
}

static void ep_any(const struct tf_cap_endpoint *e, uint16_t port)
{
	static const uint8_t zero[16];

	assert_int_equal(e->ip_set, 0);
	assert_memory_equal(e->ip, zero, 16);
	assert_int_equal(e->port, port);
}

static struct tf_cap_filter parse_ok(const char *spec)
{
	struct tf_cap_filter f;
	char err[256] = "";

	/* Junk first: the parser must set every field. */
	memset(&f, 0xa5, sizeof(f));
	if (tf_cap_filter_parse(spec, &f, err, sizeof(err)))
		fail_msg("'%s' rejected: %s", spec, err);
	assert_int_equal(f.on, 1);
	return f;
}

static void test_filter_good(void **state)
{
	struct tf_cap_filter f;

	(void)state;
	f = parse_ok("udp 192.168.122.10:40000 10.99.0.2:7");
	assert_int_equal(f.proto, 17);
	assert_int_equal(f.family, 4);
	ep4(&f.a, "192.168.122.10", 40000);
	ep4(&f.b, "10.99.0.2", 7);

	f = parse_ok("tcp *:80");
	assert_int_equal(f.proto, 6);
	assert_int_equal(f.family, 0);		/* no address: either family */
	ep_any(&f.a, 80);
	ep_any(&f.b, 0);

	f = parse_ok("icmp");
	assert_int_equal(f.proto, 1);
	assert_int_equal(f.family, 4);		/* ICMP is IPv4's */
	ep_any(&f.a, 0);
	ep_any(&f.b, 0);

	f = parse_ok("icmpv6");
	assert_int_equal(f.proto, 58);
	assert_int_equal(f.family, 6);

	f = parse_ok("any");
	assert_int_equal(f.proto, 0);
	assert_int_equal(f.family, 0);

	f = parse_ok("47");			/* a protocol number (GRE) */
	assert_int_equal(f.proto, 47);
	f = parse_ok("0");
	assert_int_equal(f.proto, 0);
	f = parse_ok("255");
	assert_int_equal(f.proto, 255);

	f = parse_ok("UDP 10.0.0.1");		/* case, an address without a port */
	assert_int_equal(f.proto, 17);
	ep4(&f.a, "10.0.0.1", 0);

	f = parse_ok("udp [fd00::1]:53 fd00::2");
	assert_int_equal(f.family, 6);
	ep6(&f.a, "fd00::1", 53);
	ep6(&f.b, "fd00::2", 0);

	f = parse_ok("tcp [::ffff:10.0.0.1]:443");
	assert_int_equal(f.family, 6);
	ep6(&f.a, "::ffff:10.0.0.1", 443);

	/* Without brackets, an IPv6 address is all address: no port. */
	f = parse_ok("udp fd00::1:53");
	ep6(&f.a, "fd00::1:53", 0);

	f = parse_ok("udp [fd00::1]");
	ep6(&f.a, "fd00::1", 0);

	f = parse_ok("icmpv6 fe80::1 ff02::1");
	assert_int_equal(f.family, 6);
	ep6(&f.b, "ff02::1", 0);

	f = parse_ok("icmp 10.0.0.1 *");
	assert_int_equal(f.family, 4);
	ep4(&f.a, "10.0.0.1", 0);
	ep_any(&f.b, 0);

	/* The address family comes from the address, whichever endpoint has it. */
	f = parse_ok("tcp *:22 10.1.2.3");
	assert_int_equal(f.family, 4);
	ep_any(&f.a, 22);
	ep4(&f.b, "10.1.2.3", 0);
	f = parse_ok("tcp * [2001:db8::7]:22");
	assert_int_equal(f.family, 6);

	/* Ports at both ends of the range; commas and runs of blanks separate. */
	f = parse_ok("udp 10.0.0.1:1,10.0.0.2:65535");
	ep4(&f.a, "10.0.0.1", 1);
	ep4(&f.b, "10.0.0.2", 65535);
	f = parse_ok("  udp   *:53  ");
	ep_any(&f.a, 53);
}

static void test_filter_bad(void **state)
{
	static const char *bad[] = {
		"", " ", "foo", "-1", "256", "1x", "udpx",
		"udp 10.0.0.1:0", "udp 10.0.0.1:65536", "udp 10.0.0.1:", "udp 10.0.0.1:53x",
		"udp 10.0.0.1:-5", "udp *:x", "udp *:", "udp 10.0.0.300", "udp 10.0.0",
		"udp host.example", "udp [fd00::1", "udp [fd00::1]x", "udp [fd00::1]:",
		"udp [fd00::1]:70000", "udp [zz::1]:5", "udp 1.1.1.1 2.2.2.2 3.3.3.3",
		/* IPv4 and IPv6 mixed, or against ICMP's family */
		"udp 10.0.0.1 fd00::1", "tcp [fd00::1]:80 10.0.0.1:80", "icmp fd00::1",
		"icmpv6 10.0.0.1", "icmp * fd00::2",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tf_cap_filter f;
		char err[256];

		memset(err, 'x', sizeof(err));
		if (!tf_cap_filter_parse(bad[i], &f, err, sizeof(err)))
			fail_msg("'%s' accepted", bad[i]);
		/* One line that names the spec. */
		assert_non_null(memchr(err, '\0', sizeof(err)));
		assert_null(strchr(err, '\n'));
		if (!strstr(err, "invalid --flow") || !strstr(err, bad[i]))
			fail_msg("'%s': message '%s'", bad[i], err);
	}
}

/* A short error buffer is cut, never overrun. */
static void test_filter_err_truncated(void **state)
{
	struct tf_cap_filter f;
	char err[16];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(tf_cap_filter_parse("udp 1.1.1.1 fd00::1", &f, err, 12), -1);
	assert_int_equal(strlen(err), 11);
	assert_int_equal(err[12], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shb_layout),
		cmocka_unit_test(test_shb_no_options),
		cmocka_unit_test(test_idb_layout),
		cmocka_unit_test(test_epb_layout),
		cmocka_unit_test(test_epb_big),
		cmocka_unit_test(test_isb_layout),
		cmocka_unit_test(test_whole_file),
		cmocka_unit_test(test_write_error_mid_block),
		cmocka_unit_test(test_write_error_pipe),
		cmocka_unit_test(test_filter_good),
		cmocka_unit_test(test_filter_bad),
		cmocka_unit_test(test_filter_err_truncated),
	};

	/* A write beyond RLIMIT_FSIZE would kill the test with SIGXFSZ. */
	signal(SIGXFSZ, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
