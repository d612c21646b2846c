// SPDX-License-Identifier: GPL-2.0
/*
 * flowgen: many distinct UDP flows at full speed, for the flow map figures
 * of tools/bench (throughput.sh's flow scale part).
 *
 *   flowgen send IFNAME DST_MAC SRC_IP DST_IP DST_PORT FLOWS PASSES
 *               [--cpu C] [--batch B] [--seconds S] [--pps P] [--trace FILE]
 *       Sends PASSES rounds of one 60-byte frame (18 bytes of UDP payload:
 *       the 64-byte minimum Ethernet frame with its FCS) of each of FLOWS
 *       distinct flows through an AF_PACKET socket on IFNAME (qdisc bypassed,
 *       sendmmsg in batches). Flow i: source port 1024 + i % 64512, source
 *       address SRC_IP + i / 64512, to DST_IP:DST_PORT. Frames are built
 *       once, before the clock starts. With --seconds, it stops after S
 *       seconds (checked after every batch) or PASSES rounds, whichever
 *       comes first; PASSES 0 is then no limit (a flood: drops.sh). With
 *       --pps, at most P frames per second: each batch waits until the
 *       frames before it are due (a steady rate in batches of B; ipfix.sh's
 *       short flows, one frame each, exported as they end). Prints
 *       one JSON line: frames sent (accepted by the device), seconds,
 *       frames/s. With --trace FILE, also writes "<CLOCK_MONOTONIC ns>
 *       <frames sent so far>" to FILE every 10 ms or so (after the first
 *       batch past each 10 ms; drops.sh's tracer switching part).
 *   flowgen recv IP PORT [--cpu C]
 *       Counts the UDP datagrams that reach IP:PORT until SIGINT/SIGTERM,
 *       then prints one JSON line: {"received": N}.
 *
 * Traffic goes only where it is told: the bench gives it addresses inside
 * its own namespaces (198.18.0.0/15, RFC 2544).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 60		/* 14 + 20 + 8 + 18 */
#define PORTS 64512		/* source ports 1024..65535 */

static void usage(void)
{
	fprintf(stderr,
		"usage: flowgen send IFNAME DST_MAC SRC_IP DST_IP DST_PORT FLOWS PASSES [--cpu C] [--batch B]\n"
		"                    [--seconds S] [--pps P] [--trace FILE]\n"
		"       flowgen recv IP PORT [--cpu C]\n");
	exit(2);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("flowgen: sched_setaffinity");
		exit(1);
	}
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Sleep for s seconds (a signal cuts it short: the caller checks the time). */
static void pace(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s };

	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static unsigned long num(const char *s, unsigned long max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "flowgen: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static uint16_t csum(const void *p, size_t n)
{
	const uint16_t *w = p;
	uint32_t s = 0;

	for (; n > 1; n -= 2)
		s += *w++;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int do_send(int argc, char **argv)
{
	const char *ifname = argv[0];
	unsigned char dmac[6], smac[6];
	struct in_addr src, dst;
	unsigned long flows, passes, batch = 256, i;
	uint16_t dport;
	int cpu = -1, fd, one = 1, a;
	struct sockaddr_ll sll = {};
	struct ifreq ifr = {};
	unsigned char *frames;
	struct mmsghdr *msgs;
	struct iovec *iov;
	unsigned long long pos = 0, total, errors = 0;
	double t0, t1, c0, secs = 0, stop_at = 0, trace_at = 0, pps = 0;
	FILE *trace = NULL;

	if (argc < 7)
		usage();
	if (sscanf(argv[1], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dmac[0], &dmac[1], &dmac[2],
		   &dmac[3], &dmac[4], &dmac[5]) != 6) {
		fprintf(stderr, "flowgen: bad MAC '%s'\n", argv[1]);
		return 2;
	}
	if (inet_pton(AF_INET, argv[2], &src) != 1 || inet_pton(AF_INET, argv[3], &dst) != 1) {
		fprintf(stderr, "flowgen: bad IPv4 address\n");
		return 2;
	}
	dport = (uint16_t)num(argv[4], 65535, "port");
	flows = num(argv[5], 16UL << 20, "flow count");
	passes = num(argv[6], 1UL << 20, "pass count");
	for (a = 7; a < argc; a++) {
		if (!strcmp(argv[a], "--cpu") && a + 1 < argc)
			cpu = (int)num(argv[++a], 4095, "cpu");
		else if (!strcmp(argv[a], "--batch") && a + 1 < argc)
			batch = num(argv[++a], 1024, "batch");
		else if (!strcmp(argv[a], "--seconds") && a + 1 < argc)
			secs = (double)num(argv[++a], 86400, "seconds");
		else if (!strcmp(argv[a], "--pps") && a + 1 < argc)
			pps = (double)num(argv[++a], 100000000, "packet rate");
		else if (!strcmp(argv[a], "--trace") && a + 1 < argc && !trace) {
			trace = fopen(argv[++a], "w");
			if (!trace) {
				perror("flowgen: --trace");
				return 1;
			}
		} else
			usage();
	}
	if (!flows || !batch)
		usage();
	if (secs > 0 && !passes)
		passes = ~0UL;	/* until the time is up */
	pin(cpu);

	fd = socket(AF_PACKET, SOCK_RAW, 0);	/* protocol 0: sends only */
	if (fd < 0) {
		perror("flowgen: socket(AF_PACKET)");
		return 1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		perror("flowgen: SIOCGIFHWADDR");
		return 1;
	}
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	sll.sll_protocol = htons(ETH_P_IP);
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		perror("flowgen: bind");
		return 1;
	}
	/* Straight to the device, as a VM's frame comes out of its tap. */
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
		perror("flowgen: PACKET_QDISC_BYPASS (going through the qdisc)");

	frames = calloc(flows, FRAME_LEN);
	msgs = calloc(batch, sizeof(*msgs));
	iov = calloc(batch, sizeof(*iov));
	if (!frames || !msgs || !iov) {
		fprintf(stderr, "flowgen: out of memory\n");
		return 1;
	}
	for (i = 0; i < flows; i++) {
		unsigned char *f = frames + i * FRAME_LEN;
		struct ether_header *eth = (void *)f;
		struct iphdr *ip = (void *)(f + 14);
		struct udphdr *udp = (void *)(f + 34);

		memcpy(eth->ether_dhost, dmac, 6);
		memcpy(eth->ether_shost, smac, 6);
		eth->ether_type = htons(ETHERTYPE_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->tot_len = htons(FRAME_LEN - 14);
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->saddr = htonl(ntohl(src.s_addr) + (uint32_t)(i / PORTS));
		ip->daddr = dst.s_addr;
		ip->check = csum(ip, 20);
		udp->source = htons((uint16_t)(1024 + i % PORTS));
		udp->dest = htons(dport);
		udp->len = htons(FRAME_LEN - 34);
		udp->check = 0;		/* none: allowed for UDP over IPv4 */
		memcpy(f + 42, "tapflow-bench-flow", 18);
	}

	/*
	 * One sequence of PASSES x FLOWS frames, frame i % FLOWS at position i,
	 * in batches that may span passes (one flow: a batch of the same frame).
	 */
	total = passes == ~0UL ? ~0ULL : (unsigned long long)flows * passes;
	c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	t0 = now_s();
	if (secs > 0)
		stop_at = t0 + secs;
	while (pos < total) {
		unsigned long n = total - pos < batch ? (unsigned long)(total - pos) : batch, k;
		double t = stop_at || trace || pps ? now_s() : 0;
		int r;

		if (pps && t < t0 + pos / pps) {
			pace(t0 + pos / pps - t);
			t = now_s();
		}
		if (stop_at && t >= stop_at)
			break;
		if (trace && t >= trace_at) {
			fprintf(trace, "%.0f %llu\n", t * 1e9, pos);
			trace_at = t + 0.01;
		}

		for (k = 0; k < n; k++) {
			iov[k].iov_base = frames + ((pos + k) % flows) * FRAME_LEN;
			iov[k].iov_len = FRAME_LEN;
			memset(&msgs[k].msg_hdr, 0, sizeof(msgs[k].msg_hdr));
			msgs[k].msg_hdr.msg_iov = &iov[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(fd, msgs, (unsigned int)n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS || errno == EAGAIN) {
				/* Not sent: try the same frames again. */
				errors++;
				sched_yield();
				continue;
			}
			perror("flowgen: sendmmsg");
			return 1;
		}
		pos += (unsigned long long)r;
	}
	t1 = now_s();
	if (trace) {
		fprintf(trace, "%.0f %llu\n", t1 * 1e9, pos);
		if (fclose(trace)) {
			perror("flowgen: --trace");
			return 1;
		}
	}
	/*
	 * Passes begun (with --seconds, the last one may be partial). cpu_s:
	 * the sending's CPU time, which on a kernel that charges softirq time
	 * to the task it runs in holds the path of every frame through the
	 * veth and the bridge to the receiver's socket (ipfix.sh).
	 */
	printf("{\"flows\":%lu,\"passes\":%llu,\"frame_bytes\":%d,\"sent\":%llu,"
	       "\"retries\":%llu,\"seconds\":%.6f,\"pps\":%.1f,\"cpu_s\":%.6f}\n",
	       flows, (pos + flows - 1) / flows, FRAME_LEN, pos, errors, t1 - t0,
	       pos / (t1 - t0), clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
	close(fd);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int do_recv(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	enum { VLEN = 256 };
	static char bufs[VLEN][64];
	struct mmsghdr msgs[VLEN];
	struct iovec iov[VLEN];
	unsigned long long received = 0;
	int fd, cpu = -1, a, rcvbuf = 8 << 20, k;

	if (argc < 2)
		usage();
	if (inet_pton(AF_INET, argv[0], &sin.sin_addr) != 1) {
		fprintf(stderr, "flowgen: bad IPv4 address '%s'\n", argv[0]);
		return 2;
	}
	sin.sin_port = htons((uint16_t)num(argv[1], 65535, "port"));
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--cpu") && a + 1 < argc)
			cpu = (int)num(argv[++a], 4095, "cpu");
		else
			usage();
	}
	pin(cpu);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("flowgen: socket");
		return 1;
	}
	/* As iperf3 -w: B's scheduling is not the path's loss. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		perror("flowgen: bind");
		return 1;
	}
	for (k = 0; k < VLEN; k++) {
		iov[k].iov_base = bufs[k];
		iov[k].iov_len = sizeof(bufs[k]);
	}
	fprintf(stderr, "flowgen: receiving on %s:%s\n", argv[0], argv[1]);
	while (!stop) {
		int r;

		for (k = 0; k < VLEN; k++) {
			memset(&msgs[k].msg_hdr, 0, sizeof(msgs[k].msg_hdr));
			msgs[k].msg_hdr.msg_iov = &iov[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
		}
		r = recvmmsg(fd, msgs, VLEN, MSG_WAITFORONE, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("flowgen: recvmmsg");
			return 1;
		}
		received += (unsigned long long)r;
	}
	/* What is still queued reached the socket too. */
	for (;;) {
		int r = recvmmsg(fd, msgs, VLEN, MSG_DONTWAIT, NULL);

		if (r <= 0)
			break;
		received += (unsigned long long)r;
	}
	printf("{\"received\":%llu}\n", received);
	fflush(stdout);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "send"))
		return do_send(argc - 2, argv + 2);
	if (!strcmp(argv[1], "recv"))
		return do_recv(argc - 2, argv + 2);
	usage();
	return 2;
}
