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
"""
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
