// SPDX-License-Identifier: GPL-2.0
/*
 * IPFIX export. libfixbuf encodes (templates, records, message headers,
 * sequence numbers) into a buffer of ours, through an exporter made with
 * fbExporterAllocBuffer; the transport is ours, so that a collector that is
 * away never blocks the run and every record is accounted for.
 *
 * What the rest hangs on: a record leaves the queue only once the message
 * that carries it has been handed over whole (sent, written) or counted
 * lost. Messages not yet handed over wait in x->out, in queue order, and
 * data is encoded only while x->out is empty, so the data messages in it
 * always carry the queue's first records.
 *
 * The fBuf is in manual mode: an append that does not fit says so
 * (FB_ERROR_EOM) instead of emitting on its own, and we emit. libfixbuf
 * also answers EOM at the switch between a template message and a data
 * message (it keeps them apart); then nothing of ours is in the message
 * yet, and the append is tried again after the emit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fixbuf/public.h>

#include "ipfix.h"
#include "log.h"

#define STREAM_MSG_MAX 65000	/* TCP and file messages: under the 16-bit length */
#define BACKOFF_MIN_S 1.0
#define BACKOFF_MAX_S 30.0
#define CONNECT_TIMEOUT_S 10.0	/* a SYN that nobody answers */
#define LOSS_REPORT_S 60.0	/* lost records: at most one line a minute */
#define REC_MAX 512		/* the largest internal record; checked per template */
#define QUEUE_FIRST 256		/* records; the queue grows to queue_max as needed */

enum kind { K_UDP, K_TCP, K_FILE };

/* The flow templates, one per kind of record. */
enum flow_kind { FK_V4, FK_V4_NAT, FK_V6, FK_V6_NAT, FK_L2, FK_N };

/* Fixed IDs: a collector sees one ID per kind across connections and files. */
enum {
	TID_FLOW = 256,			/* + enum flow_kind */
	TID_IFACE = TID_FLOW + FK_N,
	TID_EXPORTER,
	TID_REASON,
	TID_IE_TYPE,			/* RFC 5610: our enterprise elements described */
};

#define M_V4 (1u << FK_V4)
#define M_V4N (1u << FK_V4_NAT)
#define M_V6 (1u << FK_V6)
#define M_V6N (1u << FK_V6_NAT)
#define M_L2 (1u << FK_L2)
#define M_IP4 (M_V4 | M_V4N)
#define M_IP6 (M_V6 | M_V6N)
#define M_IP (M_IP4 | M_IP6)
#define M_ALL (M_IP | M_L2)

/* Where a field's value comes from. */
enum src {
	S_SRC4, S_DST4, S_SRC6, S_DST6, S_SPORT, S_DPORT, S_PROTO, S_ICMP,
	S_ETHERTYPE, S_VLAN, S_OCTETS, S_L2_OCTETS, S_PACKETS, S_START, S_END,
	S_TCP_FLAGS, S_DIR, S_END_REASON, S_FWD, S_DROP_PKTS, S_DROP_OCTETS,
	S_SRC_MAC, S_DST_MAC, S_IN_IF, S_OUT_IF, S_VM_NAME, S_VM_UUID, S_IFNAME,
	S_POST_SRC4, S_POST_DST4, S_POST_SRC6, S_POST_DST6, S_POST_SPORT,
	S_POST_DPORT,
	S_IF_INDEX, S_IF_NAME, S_IF_DESCR,
	S_DOMAIN, S_DOMAIN_NAME, S_PID, S_SAMPLING_INTERVAL, S_SAMPLING_SPACE,
	S_REASON_CODE, S_REASON_NAME,
};

struct field {
	const char *ie;
	uint16_t len;		/* on the wire; FB_IE_VARLEN: a string */
	uint8_t src;		/* enum src */
	uint8_t kinds;		/* flow templates that carry it (M_*) */
};

#define VARLEN FB_IE_VARLEN

static const struct field flow_fields[] = {
	{ "sourceIPv4Address", 4, S_SRC4, M_IP4 },
	{ "destinationIPv4Address", 4, S_DST4, M_IP4 },
	{ "sourceIPv6Address", 16, S_SRC6, M_IP6 },
	{ "destinationIPv6Address", 16, S_DST6, M_IP6 },
	{ "sourceTransportPort", 2, S_SPORT, M_IP },
	{ "destinationTransportPort", 2, S_DPORT, M_IP },
	{ "protocolIdentifier", 1, S_PROTO, M_IP },
	{ "icmpTypeCodeIPv4", 2, S_ICMP, M_IP4 },
	{ "icmpTypeCodeIPv6", 2, S_ICMP, M_IP6 },
	{ "ethernetType", 2, S_ETHERTYPE, M_L2 },
	{ "vlanId", 2, S_VLAN, M_ALL },
	{ "octetDeltaCount", 8, S_OCTETS, M_ALL },
	{ "layer2OctetDeltaCount", 8, S_L2_OCTETS, M_ALL },
	{ "packetDeltaCount", 8, S_PACKETS, M_ALL },
	{ "flowStartMilliseconds", 8, S_START, M_ALL },
	{ "flowEndMilliseconds", 8, S_END, M_ALL },
	{ "tcpControlBits", 2, S_TCP_FLAGS, M_IP },
	{ "flowDirection", 1, S_DIR, M_ALL },
	{ "flowEndReason", 1, S_END_REASON, M_ALL },
	{ "forwardingStatus", 1, S_FWD, M_ALL },
	{ "droppedPacketDeltaCount", 8, S_DROP_PKTS, M_ALL },
	{ "droppedOctetDeltaCount", 8, S_DROP_OCTETS, M_ALL },
	{ "sourceMacAddress", 6, S_SRC_MAC, M_ALL },
	{ "destinationMacAddress", 6, S_DST_MAC, M_ALL },
	{ "ingressInterface", 4, S_IN_IF, M_ALL },
	{ "egressInterface", 4, S_OUT_IF, M_ALL },
	{ "virtualStationName", VARLEN, S_VM_NAME, M_ALL },
	{ "virtualStationUUID", 16, S_VM_UUID, M_ALL },
	{ "virtualStationInterfaceName", VARLEN, S_IFNAME, M_ALL },
	{ "postNATSourceIPv4Address", 4, S_POST_SRC4, M_V4N },
	{ "postNATDestinationIPv4Address", 4, S_POST_DST4, M_V4N },
	{ "postNATSourceIPv6Address", 16, S_POST_SRC6, M_V6N },
	{ "postNATDestinationIPv6Address", 16, S_POST_DST6, M_V6N },
	{ "postNAPTSourceTransportPort", 2, S_POST_SPORT, M_V4N | M_V6N },
	{ "postNAPTDestinationTransportPort", 2, S_POST_DPORT, M_V4N | M_V6N },
};

/* Options templates: their first field is the scope. */
static const struct field iface_fields[] = {
	{ "ingressInterface", 4, S_IF_INDEX, 0 },
	{ "interfaceName", VARLEN, S_IF_NAME, 0 },
	{ "interfaceDescription", VARLEN, S_IF_DESCR, 0 },
};

/* Sampling 1 in 1, nothing skipped: every packet is counted. */
static const struct field exporter_fields[] = {
	{ "observationDomainId", 4, S_DOMAIN, 0 },
	{ "observationDomainName", VARLEN, S_DOMAIN_NAME, 0 },
	{ "exportingProcessId", 4, S_PID, 0 },
	{ "samplingPacketInterval", 4, S_SAMPLING_INTERVAL, 0 },
	{ "samplingPacketSpace", 4, S_SAMPLING_SPACE, 0 },
};

static const struct field reason_fields[] = {
	{ "tapflowDropReasonCode", 4, S_REASON_CODE, 0 },
	{ "tapflowDropReasonName", VARLEN, S_REASON_NAME, 0 },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Enterprise elements under the documentation PEN. Also sent as RFC 5610
 * type records, so that a collector can name them.
 */
static fbInfoElement_t tf_elements[] = {
	FB_IE_INIT_FULL("tapflowDropReasonCode", TF_IPFIX_PEN, 1, 4,
			FB_IE_F_ENDIAN | FB_IE_IDENTIFIER, 0, 0, FB_UINT_32,
			"Linux kernel skb drop reason (enum skb_drop_reason)"),
	FB_IE_INIT_FULL("tapflowDropReasonName", TF_IPFIX_PEN, 2, FB_IE_VARLEN,
			FB_IE_DEFAULT, 0, 0, FB_STRING,
			"Name of the skb drop reason, as in the kernel (NETFILTER_DROP)"),
	FB_IE_NULL
};

/* One model for every exporter: built with the first, freed with the last. */
static pthread_mutex_t model_mu = PTHREAD_MUTEX_INITIALIZER;
static fbInfoModel_t *model;
static unsigned int model_users;

struct msg {
	uint8_t *bytes;
	size_t len;
	size_t nrec;		/* queue records it carries; 0: templates, options */
};

/* Lost records not yet reported, by why. */
struct losses {
	uint64_t full, conn, send, encode, end;
};

struct tf_ipfix {
	char *url;
	enum kind kind;
	struct tf_ipfix_opts o;
	char *domain_name;
	double refresh_s, backoff_min_s;

	/* Encoder: a new one (session, sequence numbers) per transport session. */
	fBuf_t *fbuf;
	uint8_t *msgbuf;
	size_t msgcap;
	size_t enc_nrec;	/* queue records in the message being encoded */
	bool need_templates;	/* templates and options go first */
	bool opts_dirty;	/* options changed since last sent */

	struct tf_ipfix_iface *ifaces;
	size_t nifaces;
	struct tf_ipfix_reason *reasons;
	size_t nreasons;

	/* Records waiting: a ring of qcap, at most o.queue_max. */
	struct tf_ipfix_rec *q;
	size_t qcap, qhead, qlen;

	struct msg *out;
	size_t nout, outcap;
	size_t out_off;		/* bytes of out[0] already sent (TCP) */

	/* Sockets. */
	struct addrinfo *ai, *ai_next;
	int fd;
	bool connecting;
	double connect_at, next_try, backoff;
	bool down_told;		/* this time down already said */

	/* file: */
	FILE *fp;
	char *path;		/* the current file */
	double file_t0;		/* caller's clock when it was opened; < 0: not yet known */
	time_t wall0;		/* the wall clock at tf_ipfix_open */
	double mono0;		/* the caller's clock then (first flush); < 0: unknown */
	bool file_told;
	uint64_t pend_recs, pend_msgs, pend_bytes;	/* written, not yet flushed */
	bool write_failed;	/* since the last flush */

	double now;
	bool started;
	double last_control;
	struct losses unrep;
	int send_errno;		/* the last failed send's or write's */
	bool loss_told;
	double loss_told_at;
	struct tf_ipfix_stats st;
};

/* ---- the information model and templates ---------------------------------- */

static void model_get(void)
{
	pthread_mutex_lock(&model_mu);
	if (!model) {
		model = fbInfoModelAlloc();
		for (fbInfoElement_t *ie = tf_elements; ie->ref.name; ie++)
			fbInfoModelAddElement(model, ie);
	}
	model_users++;
	pthread_mutex_unlock(&model_mu);
}

static void model_put(void)
{
	pthread_mutex_lock(&model_mu);
	if (!--model_users) {
		fbInfoModelFree(model);
		model = NULL;
	}
	pthread_mutex_unlock(&model_mu);
}

static size_t mem_len(const struct field *f)
{
	return f->len == VARLEN ? sizeof(fbVarfield_t) : f->len;
}

static bool carries(const struct field *f, unsigned int mask)
{
	return !mask || (f->kinds & mask);
}

/*
 * One template, the same inside (our record layout) and on the wire; mask
 * picks the flow fields of one kind (0: all of an options template).
 */
static fbTemplate_t *template_new(const struct field *f, size_t n, unsigned int mask,
				  uint16_t scope, char *err, size_t errlen)
{
	fbTemplate_t *t = fbTemplateAlloc(model);
	GError *gerr = NULL;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		fbInfoElementSpec_t spec = { (char *)f[i].ie, f[i].len, 0 };

		if (!carries(&f[i], mask))
			continue;
		if (!fbTemplateAppendSpec(t, &spec, 0, &gerr)) {
			snprintf(err, errlen, "libfixbuf has no IPFIX element %s: %s",
				 f[i].ie, gerr->message);
			goto fail;
		}
		len += mem_len(&f[i]);
	}
	if (scope)
		fbTemplateSetOptionsScope(t, scope);
	/* Our records are laid out field after field, without padding. */
	if (len > REC_MAX || fbTemplateGetIELenOfMemBuffer(t) != len) {
		snprintf(err, errlen, "IPFIX template with %s: record of %zu bytes, libfixbuf says %u",
			 f[0].ie, len, fbTemplateGetIELenOfMemBuffer(t));
		goto fail;
	}
	return t;
fail:
	g_clear_error(&gerr);
	fbTemplateFreeUnused(t);
	return NULL;
}

/* The same template as internal and external, under one ID. */
static int session_add(fbSession_t *s, fbTemplate_t *t, uint16_t tid, char *err, size_t errlen)
{
	GError *gerr = NULL;

	if (!fbSessionAddTemplate(s, TRUE, tid, t, &gerr)) {
		fbTemplateFreeUnused(t);
		goto fail;
	}
	if (!fbSessionAddTemplate(s, FALSE, tid, t, &gerr))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "IPFIX template %u: %s", tid, gerr->message);
	g_clear_error(&gerr);
	return -1;
}

static int session_templates(fbSession_t *s, char *err, size_t errlen)
{
	static const struct {
		uint16_t tid;
		const struct field *f;
		size_t n;
	} opts[] = {
		{ TID_IFACE, iface_fields, ARRAY_SIZE(iface_fields) },
		{ TID_EXPORTER, exporter_fields, ARRAY_SIZE(exporter_fields) },
		{ TID_REASON, reason_fields, ARRAY_SIZE(reason_fields) },
	};
	GError *gerr = NULL;
	fbTemplate_t *t;

	for (unsigned int k = 0; k < FK_N; k++) {
		t = template_new(flow_fields, ARRAY_SIZE(flow_fields), 1u << k, 0, err, errlen);
		if (!t || session_add(s, t, (uint16_t)(TID_FLOW + k), err, errlen))
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		t = template_new(opts[i].f, opts[i].n, 0, 1, err, errlen);
		if (!t || session_add(s, t, opts[i].tid, err, errlen))
			return -1;
	}
	t = fbInfoElementAllocTypeTemplate(model, &gerr);
	if (!t) {
		snprintf(err, errlen, "RFC 5610 template: %s", gerr->message);
		g_clear_error(&gerr);
		return -1;
	}
	return session_add(s, t, TID_IE_TYPE, err, errlen);
}

/*
 * A new transport session's encoder: sequence numbers from 0, every
 * template known to it. The templates go in before the fBuf exists, so
 * that adding them exports nothing; they are sent by encode_control.
 */
static int encoder_new(struct tf_ipfix *x, char *err, size_t errlen)
{
	fbSession_t *s = fbSessionAlloc(model);
	fBuf_t *fbuf;

	fbSessionSetDomain(s, x->o.domain);
	if (session_templates(s, err, errlen)) {
		fbSessionFree(s);
		return -EINVAL;
	}
	fbuf = fBufAllocForExport(s, fbExporterAllocBuffer(x->msgbuf, (uint16_t)x->msgcap));
	fBufSetAutomaticMode(fbuf, FALSE);
	if (x->fbuf)
		fBufFree(x->fbuf);
	x->fbuf = fbuf;
	x->enc_nrec = 0;
	x->need_templates = true;
	return 0;
}

/* ---- records --------------------------------------------------------------- */

struct obj {
	const struct tf_ipfix *x;
	const struct tf_ipfix_rec *r;
	const struct tf_ipfix_iface *ifc;
	const struct tf_ipfix_reason *rs;
};

struct val {
	uint64_t u;		/* an unsigned number, host order */
	const void *bytes;	/* or octets as they go on the wire */
	const char *s;		/* or a string (VARLEN) */
	size_t slen;
};

static uint64_t ip4(const uint8_t *a)
{
	uint32_t v;

	memcpy(&v, a, sizeof(v));
	return ntohl(v);
}

static struct val str(const char *s, size_t max)
{
	return (struct val){ .s = s, .slen = strnlen(s, max) };
}

#define STR(a) str((a), sizeof(a))

static struct val rec_val(enum src src, const struct tf_ipfix_rec *r)
{
	switch (src) {
	case S_SRC4: return (struct val){ .u = ip4(r->src_ip) };
	case S_DST4: return (struct val){ .u = ip4(r->dst_ip) };
	case S_SRC6: return (struct val){ .bytes = r->src_ip };
	case S_DST6: return (struct val){ .bytes = r->dst_ip };
	case S_SPORT: return (struct val){ .u = r->src_port };
	case S_DPORT: return (struct val){ .u = r->dst_port };
	case S_PROTO: return (struct val){ .u = r->proto };
	case S_ICMP: return (struct val){ .u = r->icmp_type_code };
	case S_ETHERTYPE: return (struct val){ .u = r->ethertype };
	case S_VLAN: return (struct val){ .u = r->vlan };
	case S_OCTETS: return (struct val){ .u = r->octets };
	case S_L2_OCTETS: return (struct val){ .u = r->l2_octets };
	case S_PACKETS: return (struct val){ .u = r->packets };
	case S_START: return (struct val){ .u = r->start_ms };
	case S_END: return (struct val){ .u = r->end_ms };
	case S_TCP_FLAGS: return (struct val){ .u = r->tcp_flags };
	case S_DIR: return (struct val){ .u = r->direction };
	case S_END_REASON: return (struct val){ .u = r->end_reason };
	case S_FWD: return (struct val){ .u = r->forwarding };
	case S_DROP_PKTS: return (struct val){ .u = r->dropped_packets };
	case S_DROP_OCTETS: return (struct val){ .u = r->dropped_octets };
	case S_SRC_MAC: return (struct val){ .bytes = r->src_mac };
	case S_DST_MAC: return (struct val){ .bytes = r->dst_mac };
	case S_IN_IF: return (struct val){ .u = r->ingress_if };
	case S_OUT_IF: return (struct val){ .u = r->egress_if };
	case S_VM_NAME: return STR(r->vm_name);
	case S_VM_UUID: return (struct val){ .bytes = r->vm_uuid };
	case S_IFNAME: return STR(r->ifname);
	case S_POST_SRC4: return (struct val){ .u = ip4(r->post_src_ip) };
	case S_POST_DST4: return (struct val){ .u = ip4(r->post_dst_ip) };
	case S_POST_SRC6: return (struct val){ .bytes = r->post_src_ip };
	case S_POST_DST6: return (struct val){ .bytes = r->post_dst_ip };
	case S_POST_SPORT: return (struct val){ .u = r->post_src_port };
	case S_POST_DPORT: return (struct val){ .u = r->post_dst_port };
	default: return (struct val){};
	}
}

static struct val value(enum src src, const struct obj *o)
{
	switch (src) {
	case S_IF_INDEX: return (struct val){ .u = o->ifc->ifindex };
	case S_IF_NAME: return STR(o->ifc->name);
	case S_IF_DESCR: return STR(o->ifc->descr);
	case S_DOMAIN: return (struct val){ .u = o->x->o.domain };
	case S_DOMAIN_NAME: return str(o->x->domain_name, strlen(o->x->domain_name));
	case S_PID: return (struct val){ .u = (uint64_t)getpid() };
	case S_SAMPLING_INTERVAL: return (struct val){ .u = 1 };
	case S_SAMPLING_SPACE: return (struct val){ .u = 0 };
	case S_REASON_CODE: return (struct val){ .u = o->rs->code };
	case S_REASON_NAME: return STR(o->rs->name);
	default: return rec_val(src, o->r);
	}
}

static void put_uint(uint8_t *p, uint16_t len, uint64_t u)
{
	uint8_t u8 = (uint8_t)u;
	uint16_t u16 = (uint16_t)u;
	uint32_t u32 = (uint32_t)u;

	switch (len) {
	case 1: memcpy(p, &u8, 1); break;
	case 2: memcpy(p, &u16, 2); break;
	case 4: memcpy(p, &u32, 4); break;
	default: memcpy(p, &u, 8); break;
	}
}

/* o's fields of the template (f, n, mask) into buf as libfixbuf reads them: its length. */
static size_t layout(uint8_t *buf, const struct field *f, size_t n, unsigned int mask,
		     const struct obj *o)
{
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		struct val v;

		if (!carries(&f[i], mask))
			continue;
		v = value(f[i].src, o);
		if (f[i].len == VARLEN) {
			fbVarfield_t vf = { .len = v.slen, .buf = (uint8_t *)v.s };

			memcpy(buf + off, &vf, sizeof(vf));
		} else if (v.bytes) {
			memcpy(buf + off, v.bytes, f[i].len);
		} else {
			put_uint(buf + off, f[i].len, v.u);
		}
		off += mem_len(&f[i]);
	}
	return off;
}

static enum flow_kind kind_of(const struct tf_ipfix_rec *r)
{
	if (r->family == 4)
		return r->nat ? FK_V4_NAT : FK_V4;
	if (r->family == 6)
		return r->nat ? FK_V6_NAT : FK_V6;
	return FK_L2;
}

/* ---- the queue and the messages out ----------------------------------------- */

static struct tf_ipfix_rec *q_at(const struct tf_ipfix *x, size_t i)
{
	return &x->q[(x->qhead + i) % x->qcap];
}

static void q_pop(struct tf_ipfix *x, size_t n)
{
	if (!n)
		return;
	x->qhead = (x->qhead + n) % x->qcap;
	x->qlen -= n;
}

static int q_grow(struct tf_ipfix *x)
{
	size_t cap = x->qcap ? x->qcap * 2 : QUEUE_FIRST;
	struct tf_ipfix_rec *q;

	if (cap > x->o.queue_max)
		cap = x->o.queue_max;
	if (cap > SIZE_MAX / sizeof(*q))
		return -ENOMEM;
	q = malloc(cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < x->qlen; i++)
		q[i] = *q_at(x, i);
	free(x->q);
	x->q = q;
	x->qcap = cap;
	x->qhead = 0;
	return 0;
}

static void lose(struct tf_ipfix *x, uint64_t n, uint64_t *why)
{
	x->st.records_lost += n;
	*why += n;
}

/* The first n records of the queue, lost. */
static void lose_head(struct tf_ipfix *x, size_t n, uint64_t *why)
{
	lose(x, n, why);
	q_pop(x, n);
}

static void out_pop(struct tf_ipfix *x)
{
	free(x->out[0].bytes);
	memmove(x->out, x->out + 1, (x->nout - 1) * sizeof(*x->out));
	x->nout--;
	x->out_off = 0;
}

static void out_clear(struct tf_ipfix *x)
{
	while (x->nout)
		out_pop(x);
}

/* out[0] handed over whole. */
static void out_sent(struct tf_ipfix *x)
{
	const struct msg *m = &x->out[0];

	x->st.messages++;
	x->st.bytes += m->len;
	x->st.records += m->nrec;
	q_pop(x, m->nrec);
	out_pop(x);
}

static int out_push(struct tf_ipfix *x, const uint8_t *b, size_t len, size_t nrec)
{
	struct msg *m;

	if (x->nout == x->outcap) {
		size_t cap = x->outcap ? x->outcap * 2 : 8;

		m = realloc(x->out, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		x->out = m;
		x->outcap = cap;
	}
	m = &x->out[x->nout];
	m->bytes = malloc(len);
	if (!m->bytes)
		return -ENOMEM;
	memcpy(m->bytes, b, len);
	m->len = len;
	m->nrec = nrec;
	x->nout++;
	return 0;
}

/*
 * The message being encoded, into out. fBufEmit writes nothing when no
 * message is open, and then the exporter's length is the previous one's:
 * the version number at the start of our buffer tells a new message.
 */
static int emit(struct tf_ipfix *x)
{
	GError *gerr = NULL;
	size_t nrec = x->enc_nrec;
	int ret = 0;

	x->enc_nrec = 0;
	memset(x->msgbuf, 0, 2);
	if (!fBufEmit(x->fbuf, &gerr)) {
		tf_warn("ipfix %s: cannot end a message: %s", x->url, gerr->message);
		g_clear_error(&gerr);
		ret = -1;
	} else if (x->msgbuf[0] == 0 && x->msgbuf[1] == 10) {
		ret = out_push(x, x->msgbuf, fbExporterGetMsgLen(fBufGetExporter(x->fbuf)), nrec);
	}
	if (ret)
		lose_head(x, nrec, &x->unrep.encode);
	return ret;
}

static gboolean append_rec(struct tf_ipfix *x, uint16_t tid, const struct field *f, size_t n,
			   unsigned int mask, const struct obj *o, GError **gerr)
{
	_Alignas(8) uint8_t rec[REC_MAX];
	size_t len = layout(rec, f, n, mask, o);

	return fBufSetInternalTemplate(x->fbuf, tid, gerr) &&
	       fBufSetExportTemplate(x->fbuf, tid, gerr) &&
	       fBufAppend(x->fbuf, rec, len, gerr);
}

static gboolean append_opt(struct tf_ipfix *x, uint16_t tid, const struct obj *o, GError **gerr)
{
	switch (tid) {
	case TID_IFACE:
		return append_rec(x, tid, iface_fields, ARRAY_SIZE(iface_fields), 0, o, gerr);
	case TID_EXPORTER:
		return append_rec(x, tid, exporter_fields, ARRAY_SIZE(exporter_fields), 0, o, gerr);
	default:
		return append_rec(x, tid, reason_fields, ARRAY_SIZE(reason_fields), 0, o, gerr);
	}
}

static bool is_eom(const GError *gerr)
{
	return g_error_matches(gerr, FB_ERROR_DOMAIN, FB_ERROR_EOM);
}

/* An options record, the message before it emitted if it does not fit. */
static void put_opt(struct tf_ipfix *x, uint16_t tid, const struct obj *o)
{
	GError *gerr = NULL;

	if (append_opt(x, tid, o, &gerr))
		return;
	if (is_eom(gerr)) {
		g_clear_error(&gerr);
		if (emit(x) == 0 && append_opt(x, tid, o, &gerr))
			return;
	}
	if (gerr)
		tf_warn("ipfix %s: options record: %s", x->url, gerr->message);
	g_clear_error(&gerr);
}

static void put_ie_type(struct tf_ipfix *x, const char *name)
{
	const fbInfoElement_t *ie = fbInfoModelGetElementByName(model, name);
	GError *gerr = NULL;

	for (int tries = 0; tries < 2; tries++) {
		if (fbInfoElementWriteOptionsRecord(x->fbuf, ie, TID_IE_TYPE, TID_IE_TYPE, &gerr))
			return;
		if (!is_eom(gerr) || emit(x))
			break;
		g_clear_error(&gerr);
	}
	if (gerr)
		tf_warn("ipfix %s: element type record: %s", x->url, gerr->message);
	g_clear_error(&gerr);
}

static void put_template(struct tf_ipfix *x, uint16_t tid)
{
	fbSession_t *s = fBufGetSession(x->fbuf);
	GError *gerr = NULL;

	for (int tries = 0; tries < 2; tries++) {
		if (fbSessionExportTemplate(s, tid, &gerr))
			return;
		if (!is_eom(gerr) || emit(x))
			break;
		g_clear_error(&gerr);
	}
	if (gerr)
		tf_warn("ipfix %s: template %u: %s", x->url, tid, gerr->message);
	g_clear_error(&gerr);
}

/*
 * Templates (when a collector or a file needs them), then every options
 * record. Our enterprise elements are described (RFC 5610) before the
 * template that uses them: a collector reading in order knows their types
 * by then.
 */
static void encode_control(struct tf_ipfix *x, bool templates)
{
	struct obj o = { .x = x };

	fBufSetExportTime(x->fbuf, (uint32_t)time(NULL));
	if (templates) {
		put_template(x, TID_IE_TYPE);
		for (fbInfoElement_t *ie = tf_elements; ie->ref.name; ie++)
			put_ie_type(x, ie->ref.name);
		for (uint16_t tid = TID_FLOW; tid < TID_IE_TYPE; tid++)
			put_template(x, tid);
	}
	put_opt(x, TID_EXPORTER, &o);
	for (size_t i = 0; i < x->nifaces; i++) {
		o.ifc = &x->ifaces[i];
		put_opt(x, TID_IFACE, &o);
	}
	for (size_t i = 0; i < x->nreasons; i++) {
		o.rs = &x->reasons[i];
		put_opt(x, TID_REASON, &o);
	}
	emit(x);
	if (templates)
		x->need_templates = false;
	x->opts_dirty = false;
}

static gboolean append_flow(struct tf_ipfix *x, const struct tf_ipfix_rec *r, GError **gerr)
{
	enum flow_kind k = kind_of(r);
	struct obj o = { .x = x, .r = r };

	return append_rec(x, (uint16_t)(TID_FLOW + k), flow_fields, ARRAY_SIZE(flow_fields), 1u << k,
			  &o, gerr);
}

/*
 * One data message of the queue's first records (out is empty). A record
 * that no message can take is lost; it can only be the first.
 */
static int encode_data(struct tf_ipfix *x)
{
	fBufSetExportTime(x->fbuf, (uint32_t)time(NULL));
	while (x->enc_nrec < x->qlen) {
		const struct tf_ipfix_rec *r = q_at(x, x->enc_nrec);
		GError *gerr = NULL;

		if (append_flow(x, r, &gerr)) {
			x->enc_nrec++;
			continue;
		}
		if (x->enc_nrec) {
			g_clear_error(&gerr);
			break;
		}
		if (is_eom(gerr)) {
			g_clear_error(&gerr);
			if (emit(x))
				return -1;
			if (append_flow(x, r, &gerr)) {
				x->enc_nrec++;
				continue;
			}
		}
		tf_warn("ipfix %s: a record cannot be encoded: %s", x->url,
			gerr ? gerr->message : "no room in an empty message");
		g_clear_error(&gerr);
		lose_head(x, 1, &x->unrep.encode);
	}
	return emit(x);
}

/* ---- transports ------------------------------------------------------------- */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* out handed to the socket as far as it takes it: 0 all of it, -1 not (yet). */
static int drain_udp(struct tf_ipfix *x)
{
	while (x->nout) {
		const struct msg *m = &x->out[0];

		if (send(x->fd, m->bytes, m->len, MSG_NOSIGNAL) == (ssize_t)m->len) {
			x->st.up = true;
			out_sent(x);
			continue;
		}
		x->send_errno = errno;
		x->st.up = false;
		x->st.send_errors++;
		lose_head(x, m->nrec, &x->unrep.send);
		out_pop(x);
	}
	return 0;
}

/* Written to stdio: counted when the flush gets it to the file. */
static int drain_file(struct tf_ipfix *x)
{
	while (x->nout) {
		const struct msg *m = &x->out[0];

		if (fwrite(m->bytes, 1, m->len, x->fp) == m->len) {
			x->pend_recs += m->nrec;
			x->pend_msgs++;
			x->pend_bytes += m->len;
			q_pop(x, m->nrec);
		} else {
			x->send_errno = errno;
			x->st.up = false;
			x->write_failed = true;
			x->st.send_errors++;
			lose_head(x, m->nrec, &x->unrep.send);
		}
		out_pop(x);
	}
	return 0;
}

static void tcp_close(struct tf_ipfix *x)
{
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	x->connecting = false;
	x->st.up = false;
}

/*
 * The collector is gone: what it had half of is lost, the rest waits
 * (encoded again for the next connection, whose templates go first).
 */
static void tcp_lost(struct tf_ipfix *x, const char *why)
{
	if (x->nout && x->out_off)
		lose_head(x, x->out[0].nrec, &x->unrep.conn);
	out_clear(x);
	tcp_close(x);
	x->next_try = x->now + x->backoff;
	x->down_told = true;
	tf_warn("ipfix %s: connection lost (%s); records wait for the collector", x->url, why);
}

static int drain_tcp(struct tf_ipfix *x)
{
	while (x->nout) {
		const struct msg *m = &x->out[0];
		ssize_t n = send(x->fd, m->bytes + x->out_off, m->len - x->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -1;
			x->st.send_errors++;
			tcp_lost(x, strerror(errno));
			return -1;
		}
		x->out_off += (size_t)n;
		if (x->out_off == m->len)
			out_sent(x);
	}
	return 0;
}

static int drain(struct tf_ipfix *x)
{
	switch (x->kind) {
	case K_UDP: return drain_udp(x);
	case K_TCP: return drain_tcp(x);
	default: return drain_file(x);
	}
}

/* Encode and hand over until the queue is empty or the destination full. */
static void pump(struct tf_ipfix *x)
{
	if (x->need_templates || x->opts_dirty)
		encode_control(x, x->need_templates);
	while (drain(x) == 0 && x->qlen)
		if (encode_data(x))
			break;
}

static void tcp_failed(struct tf_ipfix *x, int err)
{
	const struct addrinfo *cur;

	tcp_close(x);
	if (!x->down_told)
		tf_warn("ipfix %s: cannot connect: %s; retrying, records wait", x->url, strerror(err));
	else
		tf_debug("ipfix %s: cannot connect: %s; next in %.0f s", x->url, strerror(err),
			 x->backoff);
	x->down_told = true;
	x->next_try = x->now + x->backoff;
	x->backoff = x->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : x->backoff * 2;
	/* The next try, the next address. */
	cur = x->ai_next ? x->ai_next : x->ai;
	x->ai_next = cur->ai_next ? cur->ai_next : x->ai;
}

static void tcp_connected(struct tf_ipfix *x)
{
	char err[256];

	x->connecting = false;
	if (encoder_new(x, err, sizeof(err))) {
		tf_warn("ipfix %s: %s", x->url, err);
		tcp_failed(x, EPROTO);
		return;
	}
	x->st.connects++;
	x->st.up = true;
	x->backoff = x->backoff_min_s;
	if (x->st.connects > 1)
		tf_note("ipfix %s: connected again; %zu records waited", x->url, x->qlen);
	else if (x->down_told)
		tf_note("ipfix %s: connected; %zu records waited", x->url, x->qlen);
	x->down_told = false;
}

static void tcp_connect(struct tf_ipfix *x)
{
	const struct addrinfo *ai = x->ai_next ? x->ai_next : x->ai;

	x->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->fd < 0) {
		tcp_failed(x, errno);
		return;
	}
	if (connect(x->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		tcp_connected(x);
	} else if (errno == EINPROGRESS) {
		x->connecting = true;
		x->connect_at = x->now;
	} else {
		tcp_failed(x, errno);
	}
}

static void tcp_check_connect(struct tf_ipfix *x)
{
	struct pollfd p = { .fd = x->fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (poll(&p, 1, 0) <= 0) {
		if (x->now - x->connect_at >= CONNECT_TIMEOUT_S)
			tcp_failed(x, ETIMEDOUT);
		return;
	}
	if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err)
		tcp_failed(x, err);
	else
		tcp_connected(x);
}

/*
 * Whether the collector has closed or reset the connection: writing on
 * would put records into a connection that nobody reads. A collector has
 * nothing to say to an exporter: what it sends anyway is read and dropped.
 */
static bool tcp_gone(struct tf_ipfix *x, char *why, size_t whylen)
{
	char scratch[4096];
	ssize_t n;

	for (int i = 0; i < 16; i++) {
		n = recv(x->fd, scratch, sizeof(scratch), MSG_PEEK | MSG_DONTWAIT);
		if (n > 0) {
			(void)!recv(x->fd, scratch, (size_t)n, MSG_DONTWAIT);
			continue;
		}
		if (n == 0) {
			snprintf(why, whylen, "closed by the collector");
			return true;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return false;
		snprintf(why, whylen, "%s", strerror(errno));
		return true;
	}
	return false;
}

static void flush_tcp(struct tf_ipfix *x)
{
	char why[128];

	if (x->fd >= 0 && x->connecting)
		tcp_check_connect(x);
	if (x->fd < 0 && x->now >= x->next_try)
		tcp_connect(x);
	if (!x->st.up)
		return;
	if (tcp_gone(x, why, sizeof(why))) {
		tcp_lost(x, why);
		return;
	}
	pump(x);
}

static void flush_udp(struct tf_ipfix *x)
{
	if (!x->started || x->now - x->last_control >= x->refresh_s) {
		x->need_templates = true;
		x->last_control = x->now;
		x->started = true;
	}
	pump(x);
}

/* ---- files ------------------------------------------------------------------- */

/* The file for wall time t: PATH with strftime escapes, PATH.YYYYmmddHHMMSS, or PATH. */
static int file_name(const struct tf_ipfix *x, time_t t, char *name, size_t len)
{
	const char *path = x->url + strlen("file:");
	struct tm tm;
	char stamp[32];

	gmtime_r(&t, &tm);
	if (strchr(path, '%'))
		return strftime(name, len, path, &tm) ? 0 : -ENAMETOOLONG;
	if (x->o.rotate_s <= 0)
		return snprintf(name, len, "%s", path) < (int)len ? 0 : -ENAMETOOLONG;
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	return snprintf(name, len, "%s.%s", path, stamp) < (int)len ? 0 : -ENAMETOOLONG;
}

/* What was written since the last flush, in the file (counted) or lost. */
static void file_sync(struct tf_ipfix *x)
{
	if (!x->fp)
		return;
	if (fflush(x->fp) == 0) {
		x->st.records += x->pend_recs;
		x->st.messages += x->pend_msgs;
		x->st.bytes += x->pend_bytes;
		x->st.up = !x->write_failed;
	} else {
		x->send_errno = errno;
		x->st.up = false;
		x->st.send_errors++;
		lose(x, x->pend_recs, &x->unrep.send);
	}
	x->pend_recs = x->pend_msgs = x->pend_bytes = 0;
	x->write_failed = false;
}

static void file_close(struct tf_ipfix *x)
{
	if (!x->fp)
		return;
	file_sync(x);
	if (fclose(x->fp))
		tf_warn("ipfix %s: close %s: %s", x->url, x->path, strerror(errno));
	x->fp = NULL;
}

/*
 * A new file, complete in itself: a new transport session (RFC 5655), so
 * templates and options records first. Named after the wall time that
 * the caller's clock says (the periods then get distinct names).
 */
static int file_open(struct tf_ipfix *x, char *err, size_t errlen)
{
	time_t t = x->wall0 + (x->mono0 >= 0 ? (time_t)(x->now - x->mono0) : 0);
	char name[PATH_MAX];
	int ret = file_name(x, t, name, sizeof(name));

	if (ret) {
		snprintf(err, errlen, "%s: file name too long", x->url);
		return ret;
	}
	x->fp = fopen(name, "ae");
	if (!x->fp) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s: %s", name, strerror(errno));
		return ret;
	}
	free(x->path);
	x->path = strdup(name);
	if (!x->path) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		ret = -ENOMEM;
		goto fail;
	}
	ret = encoder_new(x, err, errlen);
	if (ret)
		goto fail;
	x->file_t0 = x->mono0 >= 0 ? x->now : -1;
	x->st.files++;
	x->st.up = true;
	return 0;
fail:
	fclose(x->fp);
	x->fp = NULL;
	return ret;
}

static void flush_file(struct tf_ipfix *x)
{
	char err[PATH_MAX + 64];

	if (x->mono0 < 0)
		x->mono0 = x->now;
	if (x->fp && x->file_t0 < 0)
		x->file_t0 = x->now;
	if (x->fp && x->o.rotate_s > 0 && x->now - x->file_t0 >= x->o.rotate_s)
		file_close(x);
	if (!x->fp) {
		if (file_open(x, err, sizeof(err))) {
			if (!x->file_told)
				tf_warn("ipfix %s: %s; records wait", x->url, err);
			x->file_told = true;
			x->st.up = false;
			return;
		}
		x->file_told = false;
	}
	pump(x);
	file_sync(x);
}

/* ---- the interface ------------------------------------------------------------ */

static void report_losses(struct tf_ipfix *x, bool force)
{
	const struct losses *l = &x->unrep;
	const struct {
		uint64_t n;
		const char *why, *detail;
	} parts[] = {
		{ l->full, "queue full", NULL },
		{ l->conn, "in a message the connection took with it", NULL },
		{ l->send, x->kind == K_FILE ? "in failed writes" : "in failed sends",
		  strerror(x->send_errno) },
		{ l->encode, "not encodable", NULL },
		{ l->end, "still waiting at the end", NULL },
	};
	uint64_t total = 0;
	char why[256];
	size_t o = 0;

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		total += parts[i].n;
	if (!total || (!force && x->loss_told && x->now - x->loss_told_at < LOSS_REPORT_S))
		return;
	why[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(parts) && o < sizeof(why); i++)
		if (parts[i].n)
			o += (size_t)snprintf(why + o, sizeof(why) - o, "%s%llu %s%s%s",
					      o ? ", " : "", (unsigned long long)parts[i].n,
					      parts[i].why, parts[i].detail ? ": " : "",
					      parts[i].detail ? parts[i].detail : "");
	tf_warn("ipfix %s: %llu records lost (%s)", x->url, (unsigned long long)total, why);
	memset(&x->unrep, 0, sizeof(x->unrep));
	x->loss_told = true;
	x->loss_told_at = x->now;
}

static int bad_url(const char *url, char *err, size_t errlen)
{
	snprintf(err, errlen, "--ipfix: \"%s\" is not udp://HOST:PORT, tcp://HOST:PORT or file:PATH",
		 url);
	return -EINVAL;
}

/* HOST:PORT or [V6]:PORT after the scheme, resolved. */
static int resolve(struct tf_ipfix *x, const char *hp, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_socktype = x->kind == K_UDP ? SOCK_DGRAM : SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	const char *colon = strrchr(hp, ':');
	char host[256], *end;
	size_t hl;
	long port;
	int ret;

	if (!colon)
		return bad_url(x->url, err, errlen);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	hl = (size_t)(colon - hp);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535 || !hl ||
	    hl >= sizeof(host))
		return bad_url(x->url, err, errlen);
	if (hp[0] == '[') {
		if (hl < 3 || hp[hl - 1] != ']')
			return bad_url(x->url, err, errlen);
		memcpy(host, hp + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		memcpy(host, hp, hl);
		host[hl] = '\0';
		if (strchr(host, ':'))	/* an IPv6 address goes in brackets */
			return bad_url(x->url, err, errlen);
	}
	ret = getaddrinfo(host, colon + 1, &hints, &x->ai);
	if (ret) {
		x->ai = NULL;
		snprintf(err, errlen, "--ipfix: \"%s\": cannot resolve %s: %s", x->url, host,
			 gai_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

/* A connected datagram socket to the first address that takes one. */
static int udp_open(struct tf_ipfix *x, char *err, size_t errlen)
{
	int e = 0;

	for (const struct addrinfo *ai = x->ai; ai; ai = ai->ai_next) {
		x->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (x->fd >= 0 && connect(x->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return 0;
		e = errno;
		if (x->fd >= 0)
			close(x->fd);
		x->fd = -1;
	}
	snprintf(err, errlen, "--ipfix: \"%s\": %s", x->url, strerror(e));
	return -e;
}

static int setup_transport(struct tf_ipfix *x, char *err, size_t errlen)
{
	const char *u = x->url;

	if (!strncmp(u, "udp://", 6)) {
		x->kind = K_UDP;
		if (resolve(x, u + 6, err, errlen))
			return -EINVAL;
		return udp_open(x, err, errlen);
	}
	if (!strncmp(u, "tcp://", 6)) {
		x->kind = K_TCP;
		return resolve(x, u + 6, err, errlen);
	}
	if (!strncmp(u, "file:", 5) && u[5]) {
		x->kind = K_FILE;
		if (x->o.rotate_s > 0 && x->o.rotate_s < 1) {
			snprintf(err, errlen, "--ipfix: \"%s\": files rotated less than 1 s "
				 "apart would get one name", u);
			return -EINVAL;
		}
		return 0;
	}
	return bad_url(u, err, errlen);
}

struct tf_ipfix *tf_ipfix_open(const struct tf_ipfix_opts *o, char *err, size_t errlen)
{
	struct tf_ipfix *x = calloc(1, sizeof(*x));

	snprintf(err, errlen, "%s", strerror(ENOMEM));
	if (!x)
		return NULL;
	model_get();
	x->fd = -1;
	x->o = *o;
	x->url = strdup(o->url ? o->url : "");
	x->domain_name = strdup(o->domain_name ? o->domain_name : "");
	if (!x->url || !x->domain_name)
		goto fail;
	x->o.url = x->url;
	x->o.domain_name = x->domain_name;
	if (!x->o.queue_max)
		x->o.queue_max = TF_IPFIX_QUEUE_DEFAULT;
	x->refresh_s = o->template_refresh_s > 0 ? o->template_refresh_s :
			TF_IPFIX_TEMPLATE_REFRESH_DEFAULT;
	x->backoff_min_s = o->backoff_min_s > 0 ? o->backoff_min_s : BACKOFF_MIN_S;
	x->backoff = x->backoff_min_s;
	x->file_t0 = x->mono0 = -1;
	x->wall0 = time(NULL);
	if (setup_transport(x, err, errlen))
		goto fail;
	x->msgcap = x->kind == K_UDP ? TF_IPFIX_UDP_MTU : STREAM_MSG_MAX;
	x->msgbuf = malloc(x->msgcap);
	if (!x->msgbuf)
		goto fail;
	if (x->kind == K_FILE) {
		if (file_open(x, err, errlen)) {
			char why[PATH_MAX + 64];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "--ipfix: %s", why);
			goto fail;
		}
	} else if (encoder_new(x, err, errlen)) {
		goto fail;
	}
	/* TCP: up once connected; UDP: until a send fails. */
	x->st.up = x->kind != K_TCP;
	return x;
fail:
	tf_ipfix_close(x, 0, NULL);
	return NULL;
}

/* v (n of them, each size bytes) as the new set: whether it differs from the old. */
static int replace(void **cur, size_t *ncur, const void *v, size_t n, size_t size, bool *changed)
{
	void *copy = NULL;

	if (n == *ncur && (!n || !memcmp(*cur, v, n * size))) {
		*changed = false;
		return 0;
	}
	if (n) {
		copy = malloc(n * size);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, v, n * size);
	}
	free(*cur);
	*cur = copy;
	*ncur = n;
	*changed = true;
	return 0;
}

int tf_ipfix_set_ifaces(struct tf_ipfix *x, const struct tf_ipfix_iface *v, size_t n)
{
	void *cur = x->ifaces;
	bool changed = false;
	int ret = replace(&cur, &x->nifaces, v, n, sizeof(*v), &changed);

	x->ifaces = cur;
	x->opts_dirty |= changed;
	return ret;
}

int tf_ipfix_set_reasons(struct tf_ipfix *x, const struct tf_ipfix_reason *v, size_t n)
{
	void *cur = x->reasons;
	bool changed = false;
	int ret = replace(&cur, &x->nreasons, v, n, sizeof(*v), &changed);

	x->reasons = cur;
	x->opts_dirty |= changed;
	return ret;
}

void tf_ipfix_add(struct tf_ipfix *x, const struct tf_ipfix_rec *r)
{
	if (x->qlen == x->o.queue_max || (x->qlen == x->qcap && q_grow(x))) {
		lose(x, 1, &x->unrep.full);
		return;
	}
	*q_at(x, x->qlen) = *r;
	x->qlen++;
}

void tf_ipfix_flush(struct tf_ipfix *x, double now)
{
	x->now = now;
	switch (x->kind) {
	case K_UDP:
		flush_udp(x);
		break;
	case K_TCP:
		flush_tcp(x);
		break;
	case K_FILE:
		flush_file(x);
		break;
	}
	report_losses(x, false);
}

/* Until the collector can take more, a connection is made, or the next try; at most left s. */
static void tcp_wait(struct tf_ipfix *x, double left)
{
	struct pollfd p = { .fd = x->fd, .events = POLLOUT };
	double wait = left;

	if (x->fd < 0 && x->next_try - x->now < wait)
		wait = x->next_try - x->now;
	if (wait < 0.001)
		wait = 0.001;
	poll(x->fd >= 0 ? &p : NULL, x->fd >= 0 ? 1 : 0, (int)(wait * 1000));
}

void tf_ipfix_close(struct tf_ipfix *x, double wait_s, struct tf_ipfix_stats *final)
{
	double t0 = mono(), base;

	if (!x)
		return;
	base = x->now;
	if (x->fbuf) {
		for (;;) {
			double left;

			tf_ipfix_flush(x, base + (mono() - t0));
			left = wait_s - (mono() - t0);
			if (x->kind != K_TCP || (!x->qlen && !x->nout) || left <= 0)
				break;
			tcp_wait(x, left);
		}
	}
	lose(x, x->qlen, &x->unrep.end);
	report_losses(x, true);
	if (final)
		*final = x->st;
	file_close(x);
	tcp_close(x);
	out_clear(x);
	if (x->fbuf)
		fBufFree(x->fbuf);
	if (x->ai)
		freeaddrinfo(x->ai);
	free(x->out);
	free(x->q);
	free(x->msgbuf);
	free(x->ifaces);
	free(x->reasons);
	free(x->path);
	free(x->url);
	free(x->domain_name);
	free(x);
	model_put();
}

void tf_ipfix_get_stats(const struct tf_ipfix *x, struct tf_ipfix_stats *out)
{
	*out = x->st;
}

const char *tf_ipfix_url(const struct tf_ipfix *x)
{
	return x->url;
}
