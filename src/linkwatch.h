/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The link watcher: an rtnetlink socket on RTNLGRP_LINK, so that a run
 * learns at once when an interface appears, goes, is renamed or changes
 * master (a tap created for a VM, a bridge re-created with another
 * ifindex). It only says that something changed: the session then looks
 * at the host as it is, so a missed or overflowed message can cost a
 * resynchronisation, never a wrong target.
 */
#ifndef TF_LINKWATCH_H
#define TF_LINKWATCH_H

struct tf_linkwatch {
	int fd;		/* -1: not open */
};

/* Open it in the current network namespace. 0, or -errno. */
int tf_linkwatch_open(struct tf_linkwatch *w);
/*
 * Read what is queued without blocking. Returns how many link messages
 * came (an overflow of the socket counts as one: resynchronise), 0 if
 * none, or -errno.
 */
int tf_linkwatch_drain(struct tf_linkwatch *w);
void tf_linkwatch_close(struct tf_linkwatch *w);

#endif /* TF_LINKWATCH_H */
