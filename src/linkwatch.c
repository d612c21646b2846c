// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "linkwatch.h"

int tf_linkwatch_open(struct tf_linkwatch *w)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int rcvbuf = 1 << 20;

	w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (w->fd < 0)
		return -errno;
	/* Hundreds of taps created at once must not overflow it (that costs a resync). */
	setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(w->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(w->fd);
		w->fd = -1;
		return err;
	}
	return 0;
}

int tf_linkwatch_drain(struct tf_linkwatch *w)
{
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	int changes = 0;

	if (w->fd < 0)
		return -EBADF;
	for (;;) {
		ssize_t n = recv(w->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return changes;
			if (errno == ENOBUFS) {
				changes++;	/* messages lost: look again at everything */
				continue;
			}
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK)
				changes++;
	}
}

void tf_linkwatch_close(struct tf_linkwatch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}
