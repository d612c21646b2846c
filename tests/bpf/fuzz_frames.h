/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Seeded frame generator of the BPF fuzz test (tests/bpf/test_fuzz.c):
 * structured frames (Ethernet, 802.1Q/802.1ad stacks, IPv4 with options
 * and fragments, IPv6 with extension header chains, TCP, UDP, UDP-Lite,
 * SCTP, DCCP, ICMP and ICMPv6 queries and errors quoting garbage, ARP,
 * other EtherTypes, 802.3 lengths), most of them then mutated (bit flips,
 * interesting bytes, cuts, bad IHL, bad IP/UDP lengths, appended bytes),
 * and purely random ones, from zero length to past what the test run
 * takes. Addresses and ports come mostly from small pools, so that flows
 * repeat, both ways, and uplink replies find their flows.
 *
 * Everything comes from one 64-bit state: a seed gives the same frames.
 */
#ifndef TF_TEST_FUZZ_FRAMES_H
#define TF_TEST_FUZZ_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Room for every frame made: past the test run's largest (a page less overhead). */
#define FZ_FRAME_MAX 4096

struct fz_rng {
	uint64_t s;
};

/* splitmix64: tiny, seedable with any value, good enough to fuzz with. */
static inline uint64_t fz_next(struct fz_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint32_t fz_below(struct fz_rng *r, uint32_t n)
{
	return n ? (uint32_t)(fz_next(r) % n) : 0;
}

static inline bool fz_chance(struct fz_rng *r, uint32_t percent)
{
	return fz_below(r, 100) < percent;
}

/* A frame under construction; where its headers start, for the mutations. */
struct fz_frame {
	uint8_t b[FZ_FRAME_MAX];
	uint32_t len;
	int l3, l4;		/* -1: none */
	int fam;		/* 4, 6 or 0 */
	int l4_proto;		/* the upper-layer protocol written, -1: none */
};

static inline void fz_put8(struct fz_frame *f, uint8_t v)
{
	if (f->len < FZ_FRAME_MAX)
		f->b[f->len++] = v;
}

static inline void fz_put16(struct fz_frame *f, uint16_t v)
{
	fz_put8(f, (uint8_t)(v >> 8));
	fz_put8(f, (uint8_t)v);
}

static inline void fz_put32(struct fz_frame *f, uint32_t v)
{
	fz_put16(f, (uint16_t)(v >> 16));
	fz_put16(f, (uint16_t)v);
}

static inline void fz_rand_bytes(struct fz_rng *r, struct fz_frame *f, uint32_t n)
{
	while (n--)
		fz_put8(f, (uint8_t)fz_next(r));
}

static inline void fz_set16(struct fz_frame *f, int off, uint16_t v)
{
	if (off >= 0 && (uint32_t)off + 2 <= f->len) {
		f->b[off] = (uint8_t)(v >> 8);
		f->b[off + 1] = (uint8_t)v;
	}
}

/* Small pools: the same few hosts and ports, so that flows meet again. */
static inline uint32_t fz_ip4(struct fz_rng *r)
{
	static const uint32_t pool[] = { 0x0a000001, 0x0a000002, 0xc0000201, 0xc6336401 };

	return fz_chance(r, 85) ? pool[fz_below(r, 4)] : (uint32_t)fz_next(r);
}

static inline void fz_ip6(struct fz_rng *r, struct fz_frame *f)
{
	if (fz_chance(r, 85)) {
		fz_put32(f, 0xfd000000);
		fz_put32(f, 0);
		fz_put32(f, 0);
		fz_put32(f, 1 + fz_below(r, 4));
	} else {
		fz_rand_bytes(r, f, 16);
	}
}

static inline uint16_t fz_port(struct fz_rng *r)
{
	static const uint16_t pool[] = { 53, 80, 443, 40000, 0, 65535 };

	return fz_chance(r, 85) ? pool[fz_below(r, 4)] :
	       fz_chance(r, 50) ? pool[4 + fz_below(r, 2)] : (uint16_t)fz_next(r);
}

static inline void fz_mac(struct fz_rng *r, struct fz_frame *f)
{
	static const uint8_t pool[3][6] = {
		{ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
		{ 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 },
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	};

	if (fz_chance(r, 80)) {
		memcpy(f->b + f->len, pool[fz_below(r, 3)], 6);
		f->len += 6;
	} else {
		fz_rand_bytes(r, f, 6);
	}
}

/* Payload bytes: mostly short, some up to the largest frame. */
static inline void fz_payload(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	uint32_t room = max_frame > f->len ? max_frame - f->len : 0;
	uint32_t n = fz_chance(r, 93) ? fz_below(r, 65) : fz_below(r, room + 1);

	fz_rand_bytes(r, f, n < room ? n : room);
}

static inline uint8_t fz_icmp_type(struct fz_rng *r, bool v6)
{
	static const uint8_t t4[] = { 8, 0, 3, 11, 12, 13, 14, 15, 16, 17, 18, 5 };
	static const uint8_t t6[] = { 128, 129, 1, 2, 3, 4, 133, 134, 135, 136, 139, 140 };

	if (fz_chance(r, 10))
		return (uint8_t)fz_next(r);
	return v6 ? t6[fz_below(r, sizeof(t6))] : t4[fz_below(r, sizeof(t4))];
}

/* An ICMP/ICMPv6 header; errors quote an IP header and 8 bytes, often garbage. */
static inline void fz_icmp(struct fz_rng *r, struct fz_frame *f, bool v6)
{
	uint8_t type = fz_icmp_type(r, v6);
	bool error = v6 ? type < 128 : (type == 3 || type == 11 || type == 12 || type == 5);

	fz_put8(f, type);
	fz_put8(f, (uint8_t)(fz_chance(r, 80) ? 0 : fz_next(r)));
	fz_put16(f, 0);
	fz_put16(f, (uint16_t)fz_below(r, 4));	/* identifier: a few */
	fz_put16(f, (uint16_t)fz_next(r));
	if (!error)
		return;
	if (fz_chance(r, 50)) {
		fz_rand_bytes(r, f, fz_below(r, 48));	/* garbage quoted */
		return;
	}
	fz_put8(f, v6 ? 0x60 : 0x45);		/* a quoted header, cut anywhere */
	fz_rand_bytes(r, f, fz_below(r, v6 ? 48 : 28));
}

/* The upper-layer header of protocol proto, with some payload. */
static inline void fz_l4(struct fz_rng *r, struct fz_frame *f, int proto, uint32_t max_frame)
{
	f->l4 = (int)f->len;
	f->l4_proto = proto;
	switch (proto) {
	case 6: {
		uint32_t opt = fz_chance(r, 70) ? 0 : fz_below(r, 11);

		fz_put16(f, fz_port(r));
		fz_put16(f, fz_port(r));
		fz_put32(f, (uint32_t)fz_next(r));
		fz_put32(f, (uint32_t)fz_next(r));
		fz_put8(f, (uint8_t)((5 + opt) << 4));
		fz_put8(f, (uint8_t)fz_next(r));	/* any flags */
		fz_put16(f, 65535);
		fz_put32(f, 0);
		fz_rand_bytes(r, f, opt * 4);
		break;
	}
	case 17: case 136: case 132: case 33:
		fz_put16(f, fz_port(r));
		fz_put16(f, fz_port(r));
		fz_put16(f, 0);				/* UDP length: fz_lengths() */
		fz_put16(f, 0);
		if (proto == 132 || proto == 33)
			fz_rand_bytes(r, f, 4 + fz_below(r, 8));
		break;
	case 1:
		fz_icmp(r, f, false);
		break;
	case 58:
		fz_icmp(r, f, true);
		break;
	default:
		break;
	}
	fz_payload(r, f, max_frame);
}

static inline int fz_l4_proto(struct fz_rng *r, bool v6)
{
	static const int any[] = { 6, 6, 6, 17, 17, 17, 136, 132, 33, 47, 50, 0 };

	if (fz_chance(r, 25))
		return v6 ? (fz_chance(r, 90) ? 58 : 1) : (fz_chance(r, 90) ? 1 : 58);
	if (fz_chance(r, 5))
		return (int)fz_below(r, 256);
	return any[fz_below(r, sizeof(any) / sizeof(any[0]))];
}

static inline void fz_ipv4(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	uint32_t opt = fz_chance(r, 80) ? 0 : fz_below(r, 11);
	int proto = fz_l4_proto(r, false);
	uint16_t frag = 0;

	if (fz_chance(r, 8))
		frag = (uint16_t)(1 + fz_below(r, 0x1fff));	/* a later fragment */
	else if (fz_chance(r, 5))
		frag = 0x2000;				/* MF: a first one */
	f->l3 = (int)f->len;
	f->fam = 4;
	fz_put8(f, (uint8_t)(0x40 | (5 + opt)));
	fz_put8(f, 0);
	fz_put16(f, 0);					/* tot_len: fz_lengths() */
	fz_put16(f, (uint16_t)fz_next(r));
	fz_put16(f, frag);
	fz_put8(f, 64);
	fz_put8(f, (uint8_t)proto);
	fz_put16(f, 0);
	fz_put32(f, fz_ip4(r));
	fz_put32(f, fz_ip4(r));
	for (uint32_t i = 0; i < opt * 4; i++)
		fz_put8(f, fz_chance(r, 80) ? 1 : (uint8_t)fz_next(r));
	fz_l4(r, f, proto, max_frame);
}

/* An IPv6 extension header chain: any order, HBH anywhere, up to 8 of them. */
static inline int fz_ip6_ext(struct fz_rng *r, struct fz_frame *f, int next_off, int proto)
{
	static const uint8_t ext[] = { 0, 43, 60, 51, 44, 60, 43 };
	uint32_t n = fz_chance(r, 55) ? 0 : 1 + fz_below(r, fz_chance(r, 80) ? 3 : 8);

	/* A chain cut by the frame's room still ends in a protocol number. */
	for (uint32_t i = 0; i < n && f->len + 8 <= FZ_FRAME_MAX; i++) {
		uint8_t type = ext[fz_below(r, sizeof(ext))];
		int here = (int)f->len;

		f->b[next_off] = type;
		fz_put8(f, 0);				/* next header: below */
		if (type == 44) {
			fz_put8(f, 0);
			fz_put16(f, fz_chance(r, 70) ? (uint16_t)fz_below(r, 2) :
				    (uint16_t)fz_next(r));	/* offset, flags */
			fz_put32(f, (uint32_t)fz_next(r));
		} else {
			uint8_t units = (uint8_t)fz_below(r, fz_chance(r, 90) ? 3 : 256);

			fz_put8(f, units);
			fz_rand_bytes(r, f, (type == 51 ? (units + 2u) * 4 : (units + 1u) * 8) - 2);
		}
		next_off = here;
	}
	f->b[next_off] = (uint8_t)proto;
	return next_off;
}

static inline void fz_ipv6(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	int proto = fz_l4_proto(r, true);

	f->l3 = (int)f->len;
	f->fam = 6;
	fz_put32(f, 0x60000000 | (uint32_t)fz_below(r, 1 << 20));
	fz_put16(f, 0);					/* payload_len: fz_lengths() */
	fz_put8(f, 0);					/* next header: fz_ip6_ext() */
	fz_put8(f, 64);
	fz_ip6(r, f);
	fz_ip6(r, f);
	fz_ip6_ext(r, f, f->l3 + 6, proto);
	fz_l4(r, f, proto, max_frame);
}

static inline void fz_arp(struct fz_rng *r, struct fz_frame *f)
{
	bool eth_ip = fz_chance(r, 85);

	f->l3 = (int)f->len;
	fz_put16(f, eth_ip ? 1 : (uint16_t)fz_below(r, 8));
	fz_put16(f, eth_ip ? 0x0800 : (uint16_t)fz_next(r));
	fz_put8(f, eth_ip ? 6 : (uint8_t)fz_below(r, 16));
	fz_put8(f, eth_ip ? 4 : (uint8_t)fz_below(r, 16));
	fz_put16(f, (uint16_t)(1 + fz_below(r, 2)));
	fz_rand_bytes(r, f, 6);
	fz_put32(f, fz_ip4(r));
	fz_rand_bytes(r, f, 6);
	fz_put32(f, fz_ip4(r));
}

/* IP lengths (and UDP's) as a sender would set them. */
static inline void fz_lengths(struct fz_frame *f)
{
	if (f->fam == 4)
		fz_set16(f, f->l3 + 2, (uint16_t)(f->len - (uint32_t)f->l3));
	else if (f->fam == 6)
		fz_set16(f, f->l3 + 4, (uint16_t)(f->len - (uint32_t)f->l3 - 40));
	if (f->l4 >= 0 && (f->l4_proto == 17 || f->l4_proto == 136))
		fz_set16(f, f->l4 + 4, (uint16_t)(f->len - (uint32_t)f->l4));
}

/* A well-formed frame of a random kind (before any mutation). */
static inline void fz_structured(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	static const uint16_t other[] = { 0x88cc, 0x88b5, 0x8035, 0x8847, 0x9000 };
	uint32_t tags = fz_chance(r, 60) ? 0 : fz_chance(r, 50) ? 1 : fz_chance(r, 75) ? 2 : 3;
	uint32_t kind = fz_below(r, 100);
	uint16_t type;

	f->len = 0;
	f->l3 = f->l4 = -1;
	f->fam = 0;
	f->l4_proto = -1;
	fz_mac(r, f);
	fz_mac(r, f);
	type = kind < 45 ? 0x0800 : kind < 80 ? 0x86dd : kind < 88 ? 0x0806 :
	       kind < 95 ? other[fz_below(r, 5)] : (uint16_t)fz_below(r, 0x0600);
	for (uint32_t i = 0; i < tags; i++) {
		fz_put16(f, fz_chance(r, 70) ? 0x8100 : 0x88a8);
		fz_put16(f, (uint16_t)(fz_chance(r, 80) ? 100 + fz_below(r, 3) : fz_next(r)));
	}
	fz_put16(f, type);
	if (type == 0x0800)
		fz_ipv4(r, f, max_frame);
	else if (type == 0x86dd)
		fz_ipv6(r, f, max_frame);
	else if (type == 0x0806)
		fz_arp(r, f);
	else
		fz_payload(r, f, max_frame);
	fz_lengths(f);
	/* Ethernet padding after the IP packet, as short frames have on the wire. */
	if (fz_chance(r, 15))
		while (f->len < 60)
			fz_put8(f, 0);
}

/* A length field gone wrong: off by one, tiny, huge, or anything. */
static inline uint16_t fz_bad_len(struct fz_rng *r, uint32_t len)
{
	static const uint16_t fixed[] = { 0, 1, 7, 8, 19, 20, 39, 40, 0xffff };

	switch (fz_below(r, 4)) {
	case 0:
		return (uint16_t)(len - 1);
	case 1:
		return (uint16_t)(len + 1);
	case 2:
		return (uint16_t)fz_next(r);
	default:
		return fixed[fz_below(r, sizeof(fixed) / sizeof(fixed[0]))];
	}
}

/* One mutation of a frame: what a broken sender, or a fuzzer, does. */
static inline void fz_mutate(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	static const uint8_t interesting[] = { 0x00, 0xff, 0x7f, 0x80, 0x01, 0x45, 0x60, 0x81 };
	uint32_t hdr = f->len < 96 ? f->len : 96;

	switch (fz_below(r, 9)) {
	case 0:	/* bit flip, mostly in the headers */
	case 1:
		if (f->len)
			f->b[fz_below(r, fz_chance(r, 80) ? hdr : f->len)] ^=
				(uint8_t)(1u << fz_below(r, 8));
		break;
	case 2:
		if (f->len)
			f->b[fz_below(r, hdr)] = interesting[fz_below(r, sizeof(interesting))];
		break;
	case 3:	/* cut */
		f->len = fz_below(r, f->len + 1);
		break;
	case 4:	/* bad IHL */
		if (f->fam == 4 && (uint32_t)f->l3 < f->len)
			f->b[f->l3] = (uint8_t)((f->b[f->l3] & 0xf0) | fz_below(r, 16));
		break;
	case 5:	/* bad IP length */
		if (f->fam)
			fz_set16(f, f->l3 + (f->fam == 4 ? 2 : 4), fz_bad_len(r, f->len));
		break;
	case 6:	/* bad UDP length, or bad TCP data offset */
		if (f->l4_proto == 6 && (uint32_t)f->l4 + 12 < f->len)
			f->b[f->l4 + 12] = (uint8_t)(fz_below(r, 16) << 4);
		else if (f->l4 >= 0)
			fz_set16(f, f->l4 + 4, fz_bad_len(r, f->len));
		break;
	case 7:	/* bytes appended */
		fz_rand_bytes(r, f, fz_below(r, 64));
		if (f->len > max_frame + 64)
			f->len = max_frame + 64;
		break;
	default:	/* another EtherType where the first one is */
		fz_set16(f, 12, fz_chance(r, 50) ? 0x8100 : (uint16_t)fz_next(r));
		break;
	}
}

/* Purely random bytes, any length from 0 to past the largest frame. */
static inline void fz_random(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	static const uint16_t types[] = { 0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8 };
	uint32_t len = fz_chance(r, 90) ? fz_below(r, 129) : fz_below(r, max_frame + 65);

	f->len = 0;
	f->l3 = f->l4 = -1;
	f->fam = 0;
	f->l4_proto = -1;
	fz_rand_bytes(r, f, len);
	/* Half of them claim a parsed EtherType, so that the parser goes on. */
	if (fz_chance(r, 50))
		fz_set16(f, 12, types[fz_below(r, 5)]);
}

/* The next frame: 10% random, 90% structured, 65% of those mutated. */
static inline void fz_next_frame(struct fz_rng *r, struct fz_frame *f, uint32_t max_frame)
{
	if (fz_chance(r, 10)) {
		fz_random(r, f, max_frame);
		return;
	}
	fz_structured(r, f, max_frame);
	if (fz_chance(r, 65)) {
		uint32_t n = 1 + fz_below(r, fz_chance(r, 80) ? 2 : 6);

		while (n--)
			fz_mutate(r, f, max_frame);
	}
}

#endif /* TF_TEST_FUZZ_FRAMES_H */
