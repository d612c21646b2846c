// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "pcapng.h"

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_ISB 0x00000005u
#define BT_EPB 0x00000006u

#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_DESCRIPTION 3
#define IF_TSRESOL 9
#define EPB_FLAGS 2
#define ISB_STARTTIME 2
#define ISB_ENDTIME 3
#define ISB_IFRECV 4
#define ISB_IFDROP 5

#define LINKTYPE_ETHERNET 1

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* The block under construction: w->buf[0..len). */
struct blk {
	struct tf_pcapng *w;
	size_t len;
	bool oom;
};

static void put(struct blk *b, const void *p, size_t n)
{
	struct tf_pcapng *w = b->w;

	if (b->oom)
		return;
	if (b->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *nb;

		while (cap < b->len + n)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (!nb) {
			b->oom = true;
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + b->len, p, n);
	b->len += n;
}

static void put32(struct blk *b, uint32_t v)
{
	put(b, &v, 4);
}

static void put_pad(struct blk *b, size_t n)
{
	static const uint8_t zero[4];

	put(b, zero, pad4(n) - n);
}

static void begin(struct blk *b, struct tf_pcapng *w, uint32_t type)
{
	b->w = w;
	b->len = 0;
	b->oom = false;
	put32(b, type);
	put32(b, 0);	/* total length, set by end() */
}

static void opt(struct blk *b, uint16_t code, const void *v, size_t n)
{
	uint16_t h[2] = { code, (uint16_t)n };

	put(b, h, 4);
	put(b, v, n);
	put_pad(b, n);
}

static void opt_str(struct blk *b, uint16_t code, const char *s)
{
	if (s && *s)
		opt(b, code, s, strlen(s) < 0xffff ? strlen(s) : 0xffff);
}

static void opt_u64(struct blk *b, uint16_t code, uint64_t v)
{
	opt(b, code, &v, 8);
}

static void opt_ts(struct blk *b, uint16_t code, uint64_t ts)
{
	uint32_t v[2] = { (uint32_t)(ts >> 32), (uint32_t)ts };

	opt(b, code, v, 8);
}

/* Close the block (end of options, lengths) and write it whole. */
static int end(struct blk *b, bool options)
{
	struct tf_pcapng *w = b->w;
	uint32_t total;
	size_t off = 0;

	if (options)
		put32(b, OPT_END);
	put32(b, 0);
	if (b->oom)
		return -ENOMEM;
	total = (uint32_t)b->len;
	memcpy(w->buf + 4, &total, 4);
	memcpy(w->buf + b->len - 4, &total, 4);
	if (w->err)
		return -w->err;
	while (off < b->len) {
		ssize_t n = write(w->fd, w->buf + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->err = n < 0 ? errno : ENOSPC;
			/* Cut the partial block off: the file ends at a block boundary. */
			if (w->seekable && off && ftruncate(w->fd, w->good))
				w->err = errno;
			return -w->err;
		}
		off += (size_t)n;
	}
	w->good += (off_t)b->len;
	return 0;
}

int tf_pcapng_open(struct tf_pcapng *w, int fd, const char *app, const char *comment)
{
	struct stat st;
	struct blk b;
	uint32_t magic = 0x1A2B3C4D;
	uint16_t ver[2] = { 1, 0 };
	int64_t section_len = -1;	/* unknown: we stream */

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->seekable = !fstat(fd, &st) && S_ISREG(st.st_mode);
	if (w->seekable)
		w->good = lseek(fd, 0, SEEK_CUR) > 0 ? lseek(fd, 0, SEEK_CUR) : 0;
	begin(&b, w, BT_SHB);
	put32(&b, magic);
	put(&b, ver, 4);
	put(&b, &section_len, 8);
	opt_str(&b, SHB_USERAPPL, app);
	opt_str(&b, OPT_COMMENT, comment);
	return end(&b, true);
}

int tf_pcapng_iface(struct tf_pcapng *w, const char *name, const char *desc,
		    uint32_t snaplen, const char *comment)
{
	uint16_t lt[2] = { LINKTYPE_ETHERNET, 0 };
	uint8_t tsresol = 9;	/* nanoseconds */
	struct blk b;
	int err;

	begin(&b, w, BT_IDB);
	put(&b, lt, 4);
	put32(&b, snaplen);
	opt_str(&b, IF_NAME, name);
	opt_str(&b, IF_DESCRIPTION, desc);
	opt(&b, IF_TSRESOL, &tsresol, 1);
	opt_str(&b, OPT_COMMENT, comment);
	err = end(&b, true);
	return err ? err : (int)w->n_ifaces++;
}

int tf_pcapng_packet(struct tf_pcapng *w, uint32_t ifid, uint64_t ts_ns, const void *data,
		     uint32_t cap_len, uint32_t orig_len, uint32_t flags)
{
	struct blk b;
	int err;

	begin(&b, w, BT_EPB);
	put32(&b, ifid);
	put32(&b, (uint32_t)(ts_ns >> 32));
	put32(&b, (uint32_t)ts_ns);
	put32(&b, cap_len);
	put32(&b, orig_len);
	put(&b, data, cap_len);
	put_pad(&b, cap_len);
	if (flags)
		opt(&b, EPB_FLAGS, &flags, 4);
	err = end(&b, flags != 0);
	if (!err)
		w->packets++;
	return err;
}

int tf_pcapng_stats(struct tf_pcapng *w, uint32_t ifid, uint64_t start_ns, uint64_t end_ns,
		    uint64_t ifrecv, uint64_t ifdrop)
{
	struct blk b;

	begin(&b, w, BT_ISB);
	put32(&b, ifid);
	put32(&b, (uint32_t)(end_ns >> 32));
	put32(&b, (uint32_t)end_ns);
	opt_ts(&b, ISB_STARTTIME, start_ns);
	opt_ts(&b, ISB_ENDTIME, end_ns);
	opt_u64(&b, ISB_IFRECV, ifrecv);
	opt_u64(&b, ISB_IFDROP, ifdrop);
	return end(&b, true);
}

void tf_pcapng_free(struct tf_pcapng *w)
{
	free(w->buf);
	w->buf = NULL;
	w->cap = 0;
}
