// SPDX-License-Identifier: GPL-2.0
/*
 * tfsyn: COUNT TCP connection attempts from one fixed source port, each
 * abandoned after WAIT_MS if nothing answered, and an exact count of the
 * SYNs that went out.
 *
 * The lab's drop tests need TCP connection attempts whose every packet they
 * can count: a connect() that nobody answers retransmits its SYN for two
 * minutes, busybox's nc and wget give up by timers that race with those
 * retransmissions. Here each attempt is a non-blocking connect, a poll of
 * WAIT_MS (well below the kernel's initial 1 s SYN timeout) and a close;
 * TCP_INFO says how many retransmissions there were anyway (a guest that
 * was not scheduled in time), so the printed count is what the NIC sent.
 * The socket closes with SO_LINGER 0: an answered attempt ends with a RST
 * and no TIME_WAIT, so the next attempt gets the same source port and all
 * attempts are one flow. Built static into the guests' initramfs by
 * tools/lab/mkinitramfs.sh.
 *
 *   tfsyn HOST PORT COUNT SPORT [WAIT_MS]
 * prints "SYNS/ANSWERED" (answered: SYN-ACK or RST) and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int i, count, wait_ms, one = 1, syns = 0, answered = 0;

	if (argc < 5 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: tfsyn HOST PORT COUNT SPORT [WAIT_MS]\n");
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	count = atoi(argv[3]);
	src.sin_port = htons(atoi(argv[4]));
	wait_ms = argc > 5 ? atoi(argv[5]) : 300;

	for (i = 0; i < count; i++) {
		struct pollfd p = { .events = POLLOUT };
		struct tcp_info ti = {};
		socklen_t len = sizeof(ti);
		int err = 0;
		socklen_t elen = sizeof(err);

		p.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (p.fd < 0)
			break;
		setsockopt(p.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(p.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (bind(p.fd, (struct sockaddr *)&src, sizeof(src)) ||
		    (connect(p.fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS)) {
			perror("tfsyn");
			close(p.fd);
			break;
		}
		if (poll(&p, 1, wait_ms) > 0) {
			getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &elen);
			if (!err || err == ECONNREFUSED)
				answered++;
		}
		/* Read before close: the SYN and its retransmissions. */
		syns += 1;
		if (!getsockopt(p.fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
			syns += ti.tcpi_total_retrans;
		close(p.fd);
	}
	printf("%d/%d\n", syns, answered);
	return 0;
}
