#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Traffic of tests/netns/test_nat.sh (not a test itself: the runner only runs test_*.sh).

  tfnat.py udp-echo FAMILY PORT...
      Echo every UDP datagram to PORT back to its sender, from PORT (FAMILY
      4 or 6; one socket per port, any address). Prints "ready" once bound,
      then runs until killed.

  tfnat.py udp SRC SPORT DST DPORT COUNT PAYLOAD [EXPECT]
      Send COUNT datagrams of PAYLOAD bytes from SRC:SPORT to DST:DPORT.
      Without EXPECT, one at a time, each waiting (up to 2 s) for its echo;
      with EXPECT (a part of them is dropped on the way on purpose), all at
      once, then wait until EXPECT echoes came back (or 3 s passed).
      Prints "<echoes received>/<count>"; exit 0 if that is all (or EXPECT).

  tfnat.py ping DST COUNT PAYLOAD ID
      COUNT ICMP echo requests of PAYLOAD bytes with identifier ID (not the
      pid, as tfnet.py's ping: two "VMs" use the same one on purpose), one at
      a time, each waiting (2 s) for its reply. Prints "<received>/<count>".

Sequence numbers are in the payload (UDP) and the ICMP header, so a late
echo is never taken for another one's.
"""
import os
import select
import socket
import struct
import sys
import time


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def udp_echo(family, ports):
    fam = socket.AF_INET6 if family == "6" else socket.AF_INET
    socks = []
    for p in ports:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", int(p)))
        socks.append(s)
    print("ready", flush=True)
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            data, peer = s.recvfrom(65536)
            s.sendto(data, peer)


def udp(src, sport, dst, dport, count, payload, expect=None):
    s = socket.socket(family_of(dst), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
    got = set()

    def datagram(seq):
        return struct.pack("!I", seq) + bytes((seq + i) & 0xFF for i in range(payload - 4))

    def recv_until(deadline, done):
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([s], [], [], left)
            if not r:
                return
            data = s.recv(65536)
            if len(data) == payload:
                got.add(struct.unpack("!I", data[:4])[0])

    if expect is None:
        for seq in range(count):
            s.sendto(datagram(seq), (dst, dport))
            recv_until(time.monotonic() + 2, lambda: seq in got)
        ok = len(got) == count
    else:
        for seq in range(count):
            s.sendto(datagram(seq), (dst, dport))
        recv_until(time.monotonic() + 3, lambda: len(got) >= expect)
        ok = len(got) == expect
    print("%d/%d" % (len(got), count))
    return 0 if ok else 1


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(dst, count, payload, ident):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    got = 0
    for seq in range(1, count + 1):
        data = bytes(i & 0xFF for i in range(payload))
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        pkt = hdr[:2] + struct.pack("!H", csum(hdr + data)) + hdr[4:] + data
        s.sendto(pkt, (dst, 0))
        deadline = time.monotonic() + 2
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            reply = s.recv(65536)
            ihl = (reply[0] & 0xF) * 4
            t, _, _, rid, rseq = struct.unpack("!BBHHH", reply[ihl:ihl + 8])
            if t == 0 and rid == ident and rseq == seq:
                got += 1
                break
    print("%d/%d" % (got, count))
    return 0 if got == count else 1


def main(argv):
    if len(argv) >= 4 and argv[1] == "udp-echo":
        return udp_echo(argv[2], argv[3:])
    if len(argv) in (8, 9) and argv[1] == "udp":
        return udp(argv[2], int(argv[3]), argv[4], int(argv[5]), int(argv[6]), int(argv[7]),
                   int(argv[8]) if len(argv) == 9 else None)
    if len(argv) == 6 and argv[1] == "ping":
        return ping(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
