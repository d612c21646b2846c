#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Sockets of tests/netns/test_delivered.sh (not a test itself: the runner only runs test_*.sh).

  tfdeliver.py pingsock DST COUNT PAYLOAD
      COUNT ICMP echo requests of PAYLOAD bytes to DST through a ping socket
      (SOCK_DGRAM, IPPROTO_ICMP: the kernel's ping_rcv hands it the
      replies), one at a time, each waiting (2 s) for its reply. Prints
      "<received>/<count>"; exit 0 if all came back. Needs
      net.ipv4.ping_group_range to include the caller's group.

  tfdeliver.py rawsock 4|6 PROTO
      A raw IPv4 or IPv6 socket of IP protocol PROTO (1 ICMP, 6 TCP, 17 UDP,
      58 ICMPv6) that reads everything it gets. Prints "ready" once open,
      then "received <n>" after each packet, until SIGTERM.

  tfdeliver.py afp DEV RCVBUF
      A packet socket (AF_PACKET, SOCK_RAW, ETH_P_ALL, no ring: the kernel's
      packet_rcv queues a clone of each frame) bound to DEV, with
      SO_RCVBUF RCVBUF (0: the default), that never reads. Prints "ready"
      once bound; on SIGTERM prints "packets <n> drops <n>" from
      PACKET_STATISTICS (frames it was given, and of those the ones it had
      no room for) and exits.

  tfdeliver.py icmp-frame request|reply SRCMAC DSTMAC SRCIP DSTIP ID COUNT PAYLOAD
      Print, one per line, COUNT Ethernet frames of ICMP echo requests or
      replies (IPv4 or, for IPv6 addresses, ICMPv6; sequence 1..COUNT) as
      hex, for tfnet.py vm's frame command.
"""
import signal
import socket
import struct
import sys
import time

from tfnet import csum

SOL_PACKET = 263
PACKET_STATISTICS = 6
ETH_P_ALL = 3


def echo_request(ident, seq, payload, icmp_type=8, pseudo=b""):
    """An ICMP(v6) echo message; pseudo: the IPv6 pseudo-header of its checksum."""
    data = bytes(i & 0xFF for i in range(payload))
    hdr = struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq)
    return hdr[:2] + struct.pack("!H", csum(pseudo + hdr + data)) + hdr[4:] + data


def pingsock(dst, count, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    got = 0
    for seq in range(1, count + 1):
        # The kernel sets the identifier (the socket's port) and the checksum.
        s.sendto(echo_request(0, seq, payload), (dst, 0))
        deadline = time.monotonic() + 2
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                reply = s.recv(65536)
            except socket.timeout:
                break
            if reply[0] == 0 and struct.unpack("!H", reply[6:8])[0] == seq:
                got += 1
                break
    print("%d/%d" % (got, count))
    return 0 if got == count else 1


def until_term(report):
    def on_term(*_):
        print(report(), flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)


def rawsock(family, proto):
    s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_RAW, proto)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    n = 0
    while True:
        s.recv(65536)
        n += 1
        print("received %d" % n, flush=True)


def afp(dev, rcvbuf):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    # The protocol of a packet address is given in host order here.
    s.bind((dev, ETH_P_ALL))

    def stats():
        packets, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return "packets %d drops %d" % (packets, drops)
    until_term(stats)
    print("ready", flush=True)
    while True:
        signal.pause()


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def icmp_frames(kind, src_mac, dst_mac, src_ip, dst_ip, ident, count, payload):
    eth = mac_bytes(dst_mac) + mac_bytes(src_mac)
    for seq in range(1, count + 1):
        if ":" in src_ip:
            src, dst = (socket.inet_pton(socket.AF_INET6, a) for a in (src_ip, dst_ip))
            length = 8 + payload
            pseudo = src + dst + struct.pack("!IxxxB", length, 58)
            icmp = echo_request(ident, seq, payload, 128 if kind == "request" else 129, pseudo)
            ip = struct.pack("!IHBB16s16s", 6 << 28, length, 58, 64, src, dst)
            print((eth + b"\x86\xdd" + ip + icmp).hex())
            continue
        icmp = echo_request(ident, seq, payload, 8 if kind == "request" else 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        print((eth + b"\x08\x00" + ip + icmp).hex())
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "pingsock":
        return pingsock(argv[2], int(argv[3]), int(argv[4]))
    if len(argv) == 4 and argv[1] == "rawsock" and argv[2] in ("4", "6"):
        return rawsock(int(argv[2]), int(argv[3]))
    if len(argv) == 4 and argv[1] == "afp":
        return afp(argv[2], int(argv[3]))
    if len(argv) == 10 and argv[1] == "icmp-frame" and argv[2] in ("request", "reply"):
        return icmp_frames(argv[2], argv[3], argv[4], argv[5], argv[6], int(argv[7]),
                           int(argv[8]), int(argv[9]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
