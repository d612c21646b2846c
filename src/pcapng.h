/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A pcapng writer (the IETF pcapng draft; what Wireshark and tshark read):
 * one Section Header Block, an Interface Description Block per interface
 * (name, description, nanosecond timestamps), Enhanced Packet Blocks with
 * the direction in epb_flags, Interface Statistics Blocks at the end.
 *
 * Every block is built in memory and written whole, so a file cut short
 * (tapflow killed) ends at a block boundary and stays readable; when a
 * write fails (disk full) on a regular file, the partial block is cut off
 * again (ftruncate) and the error is kept: nothing more is written.
 */
#ifndef TF_PCAPNG_H
#define TF_PCAPNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* epb_flags direction (bits 0-1). */
#define TF_PCAPNG_INBOUND 1
#define TF_PCAPNG_OUTBOUND 2

struct tf_pcapng {
	int fd;
	bool seekable;		/* a regular file: a failed block can be cut off */
	off_t good;		/* bytes of whole blocks written */
	uint32_t n_ifaces;
	int err;		/* the first write error (errno), then nothing more */
	uint64_t packets;	/* Enhanced Packet Blocks written */
	uint8_t *buf;		/* one block */
	size_t cap;
};

/* Start a section on fd (not closed by the writer). 0 or -errno. */
int tf_pcapng_open(struct tf_pcapng *w, int fd, const char *app, const char *comment);
/*
 * Describe an interface (Ethernet): its id (0, 1, ...) for the packets,
 * or -errno. desc and comment may be NULL.
 */
int tf_pcapng_iface(struct tf_pcapng *w, const char *name, const char *desc,
		    uint32_t snaplen, const char *comment);
/* One packet: ts_ns since the epoch (UTC), flags = direction (0: unknown). */
int tf_pcapng_packet(struct tf_pcapng *w, uint32_t ifid, uint64_t ts_ns, const void *data,
		     uint32_t cap_len, uint32_t orig_len, uint32_t flags);
/*
 * Statistics of an interface: frames it received (ifrecv), frames lost
 * before they reached the file (ifdrop), over [start_ns, end_ns].
 */
int tf_pcapng_stats(struct tf_pcapng *w, uint32_t ifid, uint64_t start_ns, uint64_t end_ns,
		    uint64_t ifrecv, uint64_t ifdrop);
void tf_pcapng_free(struct tf_pcapng *w);

#endif /* TF_PCAPNG_H */
