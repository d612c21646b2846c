// SPDX-License-Identifier: GPL-2.0
/*
 * tfudp: send COUNT UDP datagrams of exactly SIZE payload bytes from a fixed
 * source port to an echo server and count the echoes.
 *
 * Busybox has no UDP client that controls datagram boundaries, and the lab's
 * tests need exact packet and byte counts (and a fixed source port, so that
 * two guests behind the same NAT collide on purpose). Built static into the
 * guests' initramfs by tools/lab/mkinitramfs.sh.
 *
 *   tfudp HOST PORT COUNT SIZE [SPORT]
 * prints "SENT/RECEIVED" and exits 0 if every datagram was echoed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 2 };
	char buf[65536];
	int fd, i, count, size, sent = 0, got = 0, one = 1;

	if (argc < 5 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: tfudp HOST PORT COUNT SIZE [SPORT]\n");
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	count = atoi(argv[3]);
	size = atoi(argv[4]);
	if (size < 0 || size > (int)sizeof(buf))
		return 2;
	src.sin_port = htons(argc > 5 ? atoi(argv[5]) : 0);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		goto fail;
	/* A re-run right after the last one must get the same source port. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)))
		goto fail;

	/* One datagram in flight at a time: the counts stay exact and the
	 * echo server never sees a burst. */
	for (i = 0; i < count; i++) {
		memset(buf, 'a' + i % 26, size);
		if (send(fd, buf, size, 0) != size)
			continue;
		sent++;
		if (recv(fd, buf, sizeof(buf), 0) == size)
			got++;
	}
	printf("%d/%d\n", sent, got);
	close(fd);
	return got == count ? 0 : 1;
fail:
	perror("tfudp");
	printf("%d/%d\n", sent, got);
	return 1;
}
