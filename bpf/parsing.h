/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Header parsing for the TC programs, in the style of xdp-tools'
 * parsing_helpers.h: a cursor walks the frame and every read is preceded by
 * a bounds check against the end of the frame.
 *
 * Unlike XDP, a TC skb need not have its headers in the linear area (GSO
 * skbs, large frames, some drivers put everything in page fragments), and
 * direct packet access only sees the linear area. tapflow must never change
 * a packet, so bpf_skb_pull_data() is out. A cursor therefore works in one
 * of two modes, fixed when it is created:
 *   direct   headers are read in place (packet pointers, checked against
 *            data_end); a header that is not in the linear area stops the
 *            parse with need_copy set;
 *   copy     every header is copied to a stack buffer with
 *            bpf_skb_load_bytes(), which reads paged data too.
 * The caller parses direct first and, only if need_copy, again by copy.
 * Direct saves ~40 ns per frame of three helper calls (tools/bench/README.md);
 * keeping the modes apart (rather than choosing per header) keeps the
 * verifier's work linear: a per-header choice doubles its paths per header.
 *
 * Both modes check every header against `end` (skb->len, or the end of the
 * IP packet) before touching it: a frame too short for a header is a parse
 * error in both, never a reason to copy.
 *
 * The header structs are spelled out here with bytes and __be16/__be32 only
 * (no bitfields), so that the layout does not depend on the target's
 * endianness nor on what vmlinux.h happens to contain.
 */
#ifndef TAPFLOW_PARSING_H
#define TAPFLOW_PARSING_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_802_3_MIN	0x0600	/* below: an 802.3 length, not an EtherType */
#define ETH_P_802_3	0x0001	/* what the key says for 802.3/LLC frames */
#define ETH_P_IP	0x0800
#define ETH_P_ARP	0x0806
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define ETH_P_IPV6	0x86DD

#define IPPROTO_HOPOPTS		0
#define IPPROTO_ICMP		1
#define IPPROTO_TCP		6
#define IPPROTO_UDP		17
#define IPPROTO_DCCP		33
#define IPPROTO_ROUTING		43
#define IPPROTO_FRAGMENT	44
#define IPPROTO_AH		51
#define IPPROTO_ICMPV6		58
#define IPPROTO_DSTOPTS		60
#define IPPROTO_SCTP		132
#define IPPROTO_UDPLITE		136

/* In-packet VLAN tags looked at (802.1ad S-tag + 802.1Q C-tag). */
#define TF_VLAN_MAX		2
/* IPv6 extension headers skipped before giving up on the chain. */
#define TF_IPV6_EXT_MAX		6

struct hdr_cursor {
	struct __sk_buff *skb;
	void *data, *data_end;	/* the linear area (direct mode) */
	__u32 off;	/* where the next header starts, from the Ethernet header */
	__u32 end;	/* bytes of the frame (skb->len), or of the IP packet */
	__u32 l4_off;	/* where the upper-layer header starts (0: not reached) */
	bool direct;	/* a constant of each inlined parser instance */
	bool need_copy;	/* direct: a header was not in the linear area */
};

/* Where a frame's TCP header starts and its IP packet ends (flow_key()). */
struct tf_l4pos {
	__u32 off;	/* 0: not a TCP header the analysis can read */
	__u32 end;
};

/*
 * Headers end before this offset in any frame parsed here (2 VLAN tags,
 * IPv6 and 6 extension headers of at most 2 KB, ICMP); the bound lets the
 * verifier accept a variable offset into the packet.
 */
#define TF_DIRECT_MAX_OFF 0x3fff

struct tf_ethhdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

struct tf_vlanhdr {
	__be16 tci;
	__be16 proto;	/* of what follows */
};

/*
 * Addresses as __be32 words: loaded by words (the JITs of the architectures
 * tapflow runs on load unaligned words; the verifier only insists on
 * alignment for the stack, where these structs are aligned).
 */
struct tf_iphdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

struct tf_ipv6hdr {
	__be32 ver_tc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__be32 saddr[4];
	__be32 daddr[4];
};

/* The first two bytes of hop-by-hop, routing, destination options and AH. */
struct tf_ipv6_opthdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct tf_ipv6_fraghdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;	/* offset << 3 | flags */
	__be32 id;
};

struct tf_tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res;		/* data offset << 4 */
	__u8 flags;		/* CWR ECE URG ACK PSH RST SYN FIN */
	__be16 window;
	__be16 check;
	__be16 urg_ptr;
};

/* UDP, and the port words that SCTP, DCCP and UDP-Lite start with. */
struct tf_udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__be16 check;
};

/* ICMP and ICMPv6 share the first 8 bytes' layout (id for queries). */
struct tf_icmphdr {
	__u8 type;
	__u8 code;
	__be16 check;
	__be16 id;
	__be16 seq;
};

struct tf_arphdr {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
};

/* The addresses of an Ethernet/IPv4 ARP packet, after struct tf_arphdr. */
struct tf_arp_eth_ipv4 {
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

/*
 * The skb fields the parser needs, read once: clang must not see two
 * parser instances read the context, or it may share a pointer into it
 * (skb + off), which the verifier refuses for the context.
 */
struct tf_skb_view {
	struct __sk_buff *skb;
	void *data, *data_end;
	__u32 len;
};

static __always_inline void skb_view(struct tf_skb_view *v, struct __sk_buff *skb)
{
	v->skb = skb;
	v->data = (void *)(long)skb->data;
	v->data_end = (void *)(long)skb->data_end;
	v->len = skb->len;
}

/* direct must be a constant: each mode is its own inlined parser. */
static __always_inline void cursor_init(struct hdr_cursor *c, const struct tf_skb_view *v,
					bool direct)
{
	c->skb = v->skb;
	c->data = v->data;
	c->data_end = v->data_end;
	c->off = 0;
	c->end = v->len;
	c->l4_off = 0;
	c->direct = direct;
	c->need_copy = false;
}

/* Are n more bytes in the frame at the cursor? */
static __always_inline bool cursor_has(const struct hdr_cursor *c, __u32 n)
{
	return c->off <= c->end && c->end - c->off >= n;
}

/*
 * Bounds check, then the n bytes at the cursor: a pointer into the packet
 * (direct) or to buf, where they were copied. Advances the cursor. NULL if
 * they are not in the frame (or, direct, not in the linear area:
 * need_copy).
 */
static __always_inline void *cursor_pull(struct hdr_cursor *c, void *buf, __u32 n)
{
	__u32 off = c->off;
	void *p;

	if (!cursor_has(c, n))
		return NULL;
	if (c->direct) {
		if (off > TF_DIRECT_MAX_OFF) {
			c->need_copy = true;
			return NULL;
		}
		p = c->data + off;
		if (p + n > c->data_end) {
			c->need_copy = true;
			return NULL;
		}
	} else {
		if (bpf_skb_load_bytes(c->skb, off, buf, n))
			return NULL;
		p = buf;
	}
	c->off = off + n;
	return p;
}

/* Bounds check, advance over n bytes. 0 or -1. */
static __always_inline int cursor_skip(struct hdr_cursor *c, __u32 n)
{
	if (!cursor_has(c, n))
		return -1;
	c->off += n;
	return 0;
}

/* The Ethernet header: its EtherType (host order), or -1. */
static __always_inline int parse_ethhdr(struct hdr_cursor *c)
{
	struct tf_ethhdr buf, *eth = cursor_pull(c, &buf, sizeof(buf));

	return eth ? bpf_ntohs(eth->proto) : -1;
}

/*
 * Skip up to TF_VLAN_MAX in-packet 802.1Q/802.1ad tags after the Ethernet
 * header. vids[i] is the VID of the i-th tag (unchanged where there is
 * none). Returns the EtherType after the tags (a VLAN TPID if there were
 * more of them than looked at), or -1 if a tag is truncated.
 */
static __always_inline int parse_vlans(struct hdr_cursor *c, int proto, __u16 vids[TF_VLAN_MAX])
{
	struct tf_vlanhdr buf, *vh;

#pragma unroll
	for (int i = 0; i < TF_VLAN_MAX; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		vh = cursor_pull(c, &buf, sizeof(buf));
		if (!vh)
			return -1;
		vids[i] = bpf_ntohs(vh->tci) & 0x0fff;
		proto = bpf_ntohs(vh->proto);
	}
	return proto;
}

/*
 * IPv4 header, options skipped: NULL if malformed (version not 4, ihl < 5,
 * header beyond the frame, tot_len shorter than the header). When tot_len
 * is set, the cursor's end becomes the end of the IP packet, so that
 * Ethernet padding is never read as a header; tot_len 0 (BIG TCP GSO
 * packets) leaves the frame's end.
 */
static __always_inline struct tf_iphdr *parse_iphdr(struct hdr_cursor *c, struct tf_iphdr *buf)
{
	__u32 start = c->off, hlen, tot;
	struct tf_iphdr *iph = cursor_pull(c, buf, sizeof(*buf));

	if (!iph)
		return NULL;
	if (iph->ver_ihl >> 4 != 4)
		return NULL;
	hlen = (iph->ver_ihl & 0x0f) * 4;
	if (hlen < sizeof(*iph))
		return NULL;
	if (cursor_skip(c, hlen - sizeof(*iph)))
		return NULL;
	tot = bpf_ntohs(iph->tot_len);
	if (tot) {
		if (tot < hlen)
			return NULL;
		if (c->end - start > tot)
			c->end = start + tot;
	}
	return iph;
}

/* Offset of a non-first IPv4 fragment (no L4 header in it): non-zero. */
static __always_inline __u16 iph_frag_offset(const struct tf_iphdr *iph)
{
	return bpf_ntohs(iph->frag_off) & 0x1fff;
}

/*
 * Fixed IPv6 header: NULL if truncated or not version 6. A non-zero
 * payload_len limits the cursor as tot_len does for IPv4.
 */
static __always_inline struct tf_ipv6hdr *parse_ip6hdr(struct hdr_cursor *c,
						       struct tf_ipv6hdr *buf)
{
	__u32 start = c->off, plen;
	struct tf_ipv6hdr *ip6h = cursor_pull(c, buf, sizeof(*buf));

	if (!ip6h)
		return NULL;
	if (bpf_ntohl(ip6h->ver_tc_flow) >> 28 != 6)
		return NULL;
	plen = bpf_ntohs(ip6h->payload_len);
	if (plen && c->end - start > plen + sizeof(*ip6h))
		c->end = start + plen + sizeof(*ip6h);
	return ip6h;
}

/*
 * Skip hop-by-hop (first only), routing, fragment, destination options and
 * AH headers, at most TF_IPV6_EXT_MAX of them. Returns the upper-layer
 * protocol, or -1 for a bad chain: truncated extension header, hop-by-hop
 * not first, or more extension headers than looked at. *nonfirst_frag is
 * set for a fragment with a non-zero offset: its upper-layer header is in
 * an earlier fragment.
 */
static __always_inline int skip_ip6hdrext(struct hdr_cursor *c, int nexthdr, bool *nonfirst_frag)
{
	struct tf_ipv6_fraghdr fbuf, *fh;
	struct tf_ipv6_opthdr obuf, *oh;

#pragma unroll
	for (int i = 0; i < TF_IPV6_EXT_MAX; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
			if (i != 0)
				return -1;
			/* fall through */
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			oh = cursor_pull(c, &obuf, sizeof(obuf));
			if (!oh || cursor_skip(c, (oh->hdrlen + 1) * 8 - sizeof(obuf)))
				return -1;
			nexthdr = oh->nexthdr;
			break;
		case IPPROTO_AH:
			oh = cursor_pull(c, &obuf, sizeof(obuf));
			if (!oh || cursor_skip(c, (oh->hdrlen + 2) * 4 - sizeof(obuf)))
				return -1;
			nexthdr = oh->nexthdr;
			break;
		case IPPROTO_FRAGMENT:
			fh = cursor_pull(c, &fbuf, sizeof(fbuf));
			if (!fh)
				return -1;
			nexthdr = fh->nexthdr;
			if (bpf_ntohs(fh->frag_off) & ~7) {
				*nonfirst_frag = true;
				return nexthdr;
			}
			break;
		default:
			return nexthdr;
		}
	}
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return -1;
	}
	return nexthdr;
}

/* TCP header: NULL if truncated, data offset < 5 or beyond the end. */
static __always_inline struct tf_tcphdr *parse_tcphdr(struct hdr_cursor *c, struct tf_tcphdr *buf)
{
	struct tf_tcphdr *th = cursor_pull(c, buf, sizeof(*buf));
	__u32 doff;

	if (!th)
		return NULL;
	doff = (th->doff_res >> 4) * 4;
	if (doff < sizeof(*th) || cursor_skip(c, doff - sizeof(*th)))
		return NULL;
	return th;
}

/* Ports of UDP, SCTP, DCCP, UDP-Lite: NULL if under min_len bytes remain. */
static __always_inline struct tf_udphdr *parse_porthdr(struct hdr_cursor *c, struct tf_udphdr *buf,
						       __u32 min_len)
{
	if (!cursor_has(c, min_len))
		return NULL;
	return cursor_pull(c, buf, sizeof(*buf));
}

#endif /* TAPFLOW_PARSING_H */
