#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Frames of any kind for the flow tests (not a test itself).

  tfframes.py IFACE SRCMAC DSTMAC COUNT SIZE KIND [ARGS]

writes COUNT frames of exactly SIZE bytes (Ethernet header, and VLAN tag if
any, included) with an AF_PACKET socket into IFACE -- the netns tests use
the peer's end of the veth, so that the bridge delivers them to the tap,
where they are what the "VM" receives. KIND:

  udp4 SRCIP SPORT DSTIP DPORT        IPv4/UDP
  udp6 SRCIP SPORT DSTIP DPORT        IPv6/UDP
  vlan VID SRCIP SPORT DSTIP DPORT    802.1Q-tagged IPv4/UDP
  arp SENDERIP TARGETIP               ARP request (SIZE >= 42)
  ether ETHERTYPE                     zeros behind an EtherType (hex)
  trunc SRCIP DSTIP                   IPv4/TCP, the TCP header cut short (SIZE < 54):
                                      a valid IPv4 packet (br_netfilter lets it
                                      through), unparseable for the flow key

fuzz_frames(seed, n, max_len) is the netns fuzz test's generator (the test
VM of tfnet.py writes its frames into the tap): the same seed, the same
frames.
"""
import random
import socket
import struct
import sys

# The frame helpers tfnet.py (the test "VM") already has.
from tfnet import csum, ipv4_header, mac_bytes


def ipv4(src, dst, proto, payload, ident):
    return ipv4_header(src, dst, proto, len(payload), ident) + payload


def udp(sport, dport, n, seq):
    return struct.pack("!HHHH", sport, dport, n, 0) + bytes((seq + i) & 0xFF for i in range(n - 8))


def udp6(src, sport, dst, dport, n, seq):
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    body = bytes((seq + i) & 0xFF for i in range(n - 8))
    pseudo = s + d + struct.pack("!IxxxB", n, 17)
    u = struct.pack("!HHHH", sport, dport, n, 0) + body
    c = csum(pseudo + u) or 0xFFFF
    u = u[:6] + struct.pack("!H", c) + u[8:]
    return struct.pack("!IHBB", 6 << 28, n, 17, 64) + s + d + u


def frame(src, dst, size, kind, args, seq):
    eth = mac_bytes(dst) + mac_bytes(src)
    if kind == "udp4":
        sip, sp, dip, dp = args[0], int(args[1]), args[2], int(args[3])
        return eth + b"\x08\x00" + ipv4(sip, dip, 17, udp(sp, dp, size - 34, seq), seq)
    if kind == "udp6":
        sip, sp, dip, dp = args[0], int(args[1]), args[2], int(args[3])
        return eth + b"\x86\xdd" + udp6(sip, sp, dip, dp, size - 54, seq)
    if kind == "vlan":
        vid, sip, sp, dip, dp = int(args[0]), args[1], int(args[2]), args[3], int(args[4])
        return (eth + struct.pack("!HH", 0x8100, vid) + b"\x08\x00" +
                ipv4(sip, dip, 17, udp(sp, dp, size - 38, seq), seq))
    if kind == "arp":
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac_bytes(src),
                          socket.inet_aton(args[0]), b"\0" * 6, socket.inet_aton(args[1]))
        return eth + b"\x08\x06" + arp + b"\0" * (size - 42)
    if kind == "ether":
        return eth + struct.pack("!H", int(args[0], 16)) + b"\0" * (size - 14)
    if kind == "trunc":
        return eth + b"\x08\x00" + ipv4(args[0], args[1], 6, b"\0" * (size - 34), seq)
    raise SystemExit("unknown kind " + kind)


# ---- fuzzed frames ---------------------------------------------------------
#
# Structured frames (Ethernet, 802.1Q/802.1ad stacks, IPv4 with options and
# fragments, IPv6 with extension header chains, TCP, UDP, SCTP, ICMP and
# ICMPv6 queries and errors quoting garbage, ARP, other EtherTypes, 802.3
# lengths), most of them mutated (bit flips, interesting bytes, cuts, bad
# IHL, bad IP/UDP lengths, appended bytes), and purely random ones, from
# zero bytes to jumbo. Addresses come from the benchmarking ranges
# (198.18.0.0/15, 2001:db8::/32), never the topology's 10.77.0.0/24, so
# that nothing in the namespaces answers them later on: every frame's
# echo, if any, is immediate.

FZ_IP4 = [bytes([198, 18, 0, i]) for i in (1, 2, 3, 4)]
FZ_IP6 = [bytes.fromhex("20010db8" + "00" * 11 + "%02x" % i) for i in (1, 2, 3, 4)]
FZ_PORTS = [53, 80, 443, 40000]
FZ_MACS = [mac_bytes("52:54:00:77:00:01"), mac_bytes("02:77:00:00:00:02"), b"\xff" * 6,
           mac_bytes("02:fe:00:00:00:01")]


def fz_pick(rng, pool, nbytes):
    return rng.choice(pool) if rng.random() < 0.85 else rng.randbytes(nbytes)


def fz_port(rng):
    return rng.choice(FZ_PORTS) if rng.random() < 0.85 else rng.randrange(65536)


def fz_icmp(rng, v6):
    types = [128, 129, 1, 2, 3, 4, 133, 135, 136, 139] if v6 else [8, 0, 3, 11, 12, 13, 14, 5]
    t = rng.choice(types) if rng.random() < 0.9 else rng.randrange(256)
    h = struct.pack("!BBHHH", t, 0 if rng.random() < 0.8 else rng.randrange(256), 0,
                    rng.randrange(4), rng.randrange(65536))
    if (t < 128) if v6 else t in (3, 5, 11, 12):
        # An error quotes a header and 8 bytes: here often garbage, cut anywhere.
        quoted = (b"\x60" if v6 else b"\x45") + rng.randbytes(rng.randrange(48))
        h += quoted if rng.random() < 0.5 else rng.randbytes(rng.randrange(48))
    return h


def fz_l4(rng, proto, v6):
    if proto == 6:
        opt = 0 if rng.random() < 0.7 else rng.randrange(11)
        return (struct.pack("!HHIIBBHHH", fz_port(rng), fz_port(rng), rng.getrandbits(32),
                            rng.getrandbits(32), (5 + opt) << 4, rng.randrange(256), 65535, 0, 0)
                + rng.randbytes(opt * 4))
    if proto in (17, 136, 132):
        return struct.pack("!HHHH", fz_port(rng), fz_port(rng), 0, 0)
    if proto in (1, 58):
        return fz_icmp(rng, proto == 58)
    return b""


def fz_payload(rng, max_len, used):
    n = rng.randrange(65) if rng.random() < 0.93 else rng.randrange(max(1, max_len - used))
    return rng.randbytes(n)


def fz_proto(rng, v6):
    if rng.random() < 0.25:
        return 58 if v6 == (rng.random() < 0.9) else 1
    if rng.random() < 0.05:
        return rng.randrange(256)
    return rng.choice([6, 6, 6, 17, 17, 17, 136, 132, 47, 0])


def fz_ipv4(rng, max_len, used):
    opt = 0 if rng.random() < 0.8 else rng.randrange(11)
    proto = fz_proto(rng, False)
    frag = (1 + rng.randrange(0x1fff)) if rng.random() < 0.08 else 0
    l4 = fz_l4(rng, proto, False)
    body = l4 + fz_payload(rng, max_len, used + 20 + opt * 4 + len(l4))
    if proto in (17, 136) and len(l4) >= 8:
        body = body[:4] + struct.pack("!H", len(body) & 0xffff) + body[6:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | (5 + opt), 0, (20 + opt * 4 + len(body)) & 0xffff,
                      rng.randrange(65536), frag, 64, proto, 0, fz_pick(rng, FZ_IP4, 4),
                      fz_pick(rng, FZ_IP4, 4))
    options = bytes(1 if rng.random() < 0.8 else rng.randrange(256) for _ in range(opt * 4))
    return hdr + options + body


def fz_ipv6(rng, max_len, used):
    proto = fz_proto(rng, True)
    chain, nxt = b"", proto
    n = 0 if rng.random() < 0.55 else 1 + rng.randrange(3 if rng.random() < 0.8 else 8)
    # Built back to front: each extension header names the one after it.
    for _ in range(n):
        t = rng.choice([0, 43, 60, 51, 44, 60, 43])
        if t == 44:
            off = rng.randrange(2) if rng.random() < 0.7 else rng.randrange(65536)
            h = struct.pack("!BBHI", nxt, 0, off, rng.getrandbits(32))
        else:
            units = rng.randrange(3) if rng.random() < 0.9 else rng.randrange(256)
            size = (units + 2) * 4 if t == 51 else (units + 1) * 8
            h = struct.pack("!BB", nxt, units) + rng.randbytes(size - 2)
        chain, nxt = h + chain, t
    l4 = fz_l4(rng, proto, True)
    body = chain + l4
    body += fz_payload(rng, max_len, used + 40 + len(body))
    if proto in (17, 136) and len(l4) >= 8:
        u = len(chain)
        body = body[:u + 4] + struct.pack("!H", (len(body) - u) & 0xffff) + body[u + 6:]
    return (struct.pack("!IHBB", 0x60000000 | rng.randrange(1 << 20), len(body) & 0xffff, nxt, 64)
            + fz_pick(rng, FZ_IP6, 16) + fz_pick(rng, FZ_IP6, 16) + body)


def fz_structured(rng, max_len):
    eth = fz_pick(rng, FZ_MACS, 6) + fz_pick(rng, FZ_MACS[:1] + FZ_MACS[3:], 6)
    r = rng.random()
    tags = 0 if r < 0.6 else 1 if r < 0.8 else 2 if r < 0.95 else 3
    for _ in range(tags):
        eth += struct.pack("!HH", 0x8100 if rng.random() < 0.7 else 0x88a8,
                           100 + rng.randrange(3) if rng.random() < 0.8 else rng.randrange(65536))
    kind = rng.randrange(100)
    if kind < 45:
        return eth + b"\x08\x00" + fz_ipv4(rng, max_len, len(eth) + 2)
    if kind < 80:
        return eth + b"\x86\xdd" + fz_ipv6(rng, max_len, len(eth) + 2)
    if kind < 88:
        eth_ip = rng.random() < 0.85
        arp = struct.pack("!HHBBH", 1 if eth_ip else rng.randrange(8),
                          0x0800 if eth_ip else rng.randrange(65536),
                          6 if eth_ip else rng.randrange(16),
                          4 if eth_ip else rng.randrange(16), 1 + rng.randrange(2))
        arp += rng.randbytes(6) + fz_pick(rng, FZ_IP4, 4)
        arp += rng.randbytes(6) + fz_pick(rng, FZ_IP4, 4)
        return eth + b"\x08\x06" + arp
    etype = rng.choice([0x88cc, 0x88b5, 0x8035, 0x9000]) if kind < 95 else rng.randrange(0x600)
    return eth + struct.pack("!H", etype) + fz_payload(rng, max_len, len(eth) + 2)


def fz_mutate(rng, f, max_len):
    f = bytearray(f)
    m = rng.randrange(7)
    if m in (0, 1) and f:
        i = rng.randrange(min(len(f), 96) if rng.random() < 0.8 else len(f))
        f[i] ^= 1 << rng.randrange(8)
    elif m == 2 and f:
        f[rng.randrange(min(len(f), 96))] = rng.choice([0, 0xff, 0x7f, 0x80, 0x45, 0x60])
    elif m == 3:
        del f[rng.randrange(len(f) + 1):]
    elif m == 4 and len(f) > 17:
        # A bad length where IPv4 or IPv6 keeps it (untagged), or the IHL.
        if f[14] >> 4 == 4 and rng.random() < 0.5:
            f[14] = (f[14] & 0xf0) | rng.randrange(16)
        else:
            off = 16 if f[14] >> 4 == 4 else 18
            f[off:off + 2] = struct.pack("!H", rng.choice([0, 1, 19, 20, 39, 40, 0xffff,
                                                           len(f) - 1, len(f) + 1]) & 0xffff)
    elif m == 5:
        f += rng.randbytes(rng.randrange(64))
        del f[max_len + 64:]
    elif len(f) >= 14:
        f[12:14] = struct.pack("!H", 0x8100 if rng.random() < 0.5 else rng.randrange(65536))
    return bytes(f)


def fuzz_frame(rng, max_len):
    """One frame: 10% random bytes, else structured, 65% of those mutated."""
    if rng.random() < 0.1:
        n = rng.randrange(129) if rng.random() < 0.9 else rng.randrange(max_len + 65)
        f = bytearray(rng.randbytes(n))
        if n >= 14 and rng.random() < 0.5:
            f[12:14] = rng.choice([b"\x08\x00", b"\x86\xdd", b"\x08\x06", b"\x81\x00"])
        return bytes(f)
    f = fz_structured(rng, max_len)
    if rng.random() < 0.65:
        for _ in range(1 + rng.randrange(2 if rng.random() < 0.8 else 6)):
            f = fz_mutate(rng, f, max_len)
    return f


def tc_ingress_len(frame):
    """The skb->len TC ingress sees of a frame a tap took, None if it sees none.

    Before TC ingress, __netif_receive_skb_core() moves an outer 802.1Q or
    802.1ad tag out of the data into skb->vlan_tci (skb_vlan_untag()), and
    frees a tagged frame too short for the tag and the EtherType after it.
    """
    if len(frame) >= 14 and frame[12:14] in (b"\x81\x00", b"\x88\xa8"):
        return len(frame) - 4 if len(frame) - 14 >= 6 else None
    return len(frame)


def fuzz_frames(seed, n, max_len):
    """n frames from seed, of up to max_len (+64) bytes, zero-length ones too."""
    rng = random.Random(seed)
    for _ in range(n):
        yield fuzz_frame(rng, max_len)


def main():
    if len(sys.argv) < 7:
        raise SystemExit(__doc__)
    iface, src, dst, count, size, kind = sys.argv[1:7]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for i in range(int(count)):
        f = frame(src, dst, int(size), kind, sys.argv[7:], i)
        assert len(f) == int(size), (len(f), size)
        s.send(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
