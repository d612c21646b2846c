/* SPDX-License-Identifier: GPL-2.0 */
/*
 * IPFIX export (RFC 7011) to one destination, encoded with libfixbuf:
 *   udp://HOST:PORT   one message per datagram (at most TF_IPFIX_UDP_MTU
 *                     bytes); templates and options records re-sent every
 *                     template_refresh seconds (RFC 7011 10.3.6);
 *   tcp://HOST:PORT   a non-blocking connection, re-made with a backoff
 *                     (1 s doubling to 30 s) while the collector is away;
 *                     records wait in a bounded queue meanwhile;
 *   file:PATH         an IPFIX file (RFC 5655) appended to; with rotate_s,
 *                     a new file every rotate_s seconds (PATH with strftime
 *                     escapes, or PATH.YYYYmmddHHMMSS), each one complete
 *                     in itself: templates and options records first.
 *
 * The caller hands records over with tf_ipfix_add and calls tf_ipfix_flush
 * on its own schedule (every poll): nothing here blocks the run for longer
 * than a write that the socket buffer takes. Every record is either sent
 * or counted lost, with why: a full queue, a message that a broken
 * connection or a send error took with it.
 */
#ifndef TF_IPFIX_H
#define TF_IPFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#define TF_IPFIX_UDP_MTU 1400		/* a datagram that is not fragmented */
#define TF_IPFIX_QUEUE_DEFAULT 65536	/* records kept while a collector is away */
#define TF_IPFIX_TEMPLATE_REFRESH_DEFAULT 60.0	/* s, UDP */
/*
 * tapflow's enterprise-specific elements (drop reason code and name) are
 * numbered under RFC 5612's documentation PEN, so that they shadow no
 * registered enterprise's elements.
 */
#define TF_IPFIX_PEN 32473

/* flowEndReason (IANA IE 136). */
enum tf_ipfix_end {
	TF_IPFIX_END_IDLE = 1,
	TF_IPFIX_END_ACTIVE = 2,
	TF_IPFIX_END_FORCED = 4,	/* end of run */
};

/* flowDirection (IANA IE 61), from the VM's view. */
enum tf_ipfix_dir {
	TF_IPFIX_DIR_INGRESS = 0,	/* to the VM */
	TF_IPFIX_DIR_EGRESS = 1,	/* from the VM */
};

/* forwardingStatus (IANA IE 89, RFC 7270). */
#define TF_IPFIX_FWD_FORWARDED 64
#define TF_IPFIX_FWD_DROPPED 128

/*
 * One flow record: one flow, one direction (uniflow), the deltas since the
 * flow's previous record. Self-contained (no pointers), so that it can wait
 * in a queue after the VM is gone.
 */
struct tf_ipfix_rec {
	uint8_t family;			/* 4, 6; 0: not IP (the layer-2 template) */
	uint8_t proto;			/* protocolIdentifier (4) */
	uint8_t direction;		/* enum tf_ipfix_dir */
	uint8_t end_reason;		/* enum tf_ipfix_end */
	uint8_t forwarding;		/* TF_IPFIX_FWD_* */
	uint8_t tcp_flags;		/* tcpControlBits (6) */
	uint16_t ethertype;		/* ethernetType (256), layer-2 template */
	uint8_t src_ip[16], dst_ip[16];	/* 8/12 (first 4 bytes) or 27/28 */
	uint16_t src_port, dst_port;	/* 7/11; 0 when the protocol has none */
	uint16_t icmp_type_code;	/* 32 (v4) / 139 (v6): (type << 8) | code */
	uint16_t vlan;			/* vlanId (58), 0: none */
	uint8_t src_mac[6], dst_mac[6];	/* 56/80: the VM's MAC on its side, zero on the other */
	uint32_t ingress_if, egress_if;	/* 10/14: ifindex, 0: not known */
	uint64_t octets;		/* octetDeltaCount (1): IP bytes */
	uint64_t l2_octets;		/* layer2OctetDeltaCount (352): frame bytes */
	uint64_t packets;		/* packetDeltaCount (2) */
	uint64_t dropped_packets;	/* droppedPacketDeltaCount (133) */
	uint64_t dropped_octets;	/* droppedOctetDeltaCount (132) */
	uint64_t start_ms, end_ms;	/* flowStart/EndMilliseconds (152/153), Unix epoch */
	/*
	 * NAT (forwarded flows the join translated), in the uplink's terms:
	 * postNATSource/DestinationIPv4Address 225/226 (IPv6 281/282),
	 * postNAPTSource/DestinationTransportPort 227/228. Other flows go out
	 * in a template without these fields.
	 */
	bool nat;
	uint8_t post_src_ip[16], post_dst_ip[16];
	uint16_t post_src_port, post_dst_port;
	/* The VM: virtualStationName (350), ...UUID (349), ...InterfaceName (348). */
	char vm_name[256];		/* "" for an interface that is no VM's */
	uint8_t vm_uuid[16];		/* zero: none */
	char ifname[IFNAMSIZ];
};

/* Options data: one interface (scope ingressInterface 10; 82, 83). */
struct tf_ipfix_iface {
	uint32_t ifindex;
	char name[IFNAMSIZ];		/* interfaceName */
	char descr[320];		/* interfaceDescription: "VM alpha (52:54:00:…)" */
};

/* Options data: one kernel drop reason (scope: the enterprise IE reason code). */
struct tf_ipfix_reason {
	uint32_t code;			/* enum skb_drop_reason */
	char name[64];			/* "NETFILTER_DROP" */
};

struct tf_ipfix_opts {
	const char *url;		/* udp://HOST:PORT, tcp://HOST:PORT, file:PATH */
	uint32_t domain;		/* observationDomainId */
	const char *domain_name;	/* observationDomainName (300): the host name */
	double template_refresh_s;	/* UDP; 0: TF_IPFIX_TEMPLATE_REFRESH_DEFAULT */
	double rotate_s;		/* file: 0 = never */
	size_t queue_max;		/* records; 0: TF_IPFIX_QUEUE_DEFAULT */
	double backoff_min_s;		/* TCP: first retry after; 0: 1 s (tests shorten it) */
};

struct tf_ipfix_stats {
	uint64_t records;		/* sent (handed to the socket or written) */
	uint64_t records_lost;		/* counted lost, for any reason */
	uint64_t messages, bytes;
	uint64_t connects;		/* TCP connections made (the first included) */
	uint64_t send_errors;		/* failed sends and writes */
	uint64_t files;			/* files opened (file:, rotation included) */
	bool up;			/* UDP/file: last send worked; TCP: connected */
};

struct tf_ipfix;	/* one destination */

/* Parse url, resolve it, set up the encoder. NULL with a one-line reason in err. */
struct tf_ipfix *tf_ipfix_open(const struct tf_ipfix_opts *o, char *err, size_t errlen);
/*
 * The interfaces and drop reasons that options records describe; each call
 * replaces the previous set, and a changed set is sent at the next flush
 * (with the templates on UDP refresh, at each TCP connection, at the start
 * of each file). Copied. 0 or -ENOMEM.
 */
int tf_ipfix_set_ifaces(struct tf_ipfix *x, const struct tf_ipfix_iface *v, size_t n);
int tf_ipfix_set_reasons(struct tf_ipfix *x, const struct tf_ipfix_reason *v, size_t n);
/* Queue one record (copied). A full queue counts it lost. */
void tf_ipfix_add(struct tf_ipfix *x, const struct tf_ipfix_rec *r);
/*
 * Send what is queued, as far as the destination takes it now; (re)connect
 * (TCP, after its backoff), rotate (file), refresh templates (UDP). now is
 * CLOCK_MONOTONIC (s). Messages of at most one line each on what changed
 * (connection lost, made again, records lost) go to stderr through log.h.
 */
void tf_ipfix_flush(struct tf_ipfix *x, double now);
/*
 * The end: flush, waiting at most wait_s for a TCP collector to take the
 * rest; what is still queued then is counted lost. Closes and frees x;
 * final (may be NULL) gets its last stats.
 */
void tf_ipfix_close(struct tf_ipfix *x, double wait_s, struct tf_ipfix_stats *final);
void tf_ipfix_get_stats(const struct tf_ipfix *x, struct tf_ipfix_stats *out);
/* The destination as given (for messages and metric labels). */
const char *tf_ipfix_url(const struct tf_ipfix *x);

#endif /* TF_IPFIX_H */
