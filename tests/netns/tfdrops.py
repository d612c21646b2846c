#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers of tests/netns/test_drops.sh (not a test itself: the runner only runs test_*.sh).

  tfdrops.py send SRC SPORT DST DPORT COUNT PAYLOAD [TTL]
      Send COUNT UDP datagrams of PAYLOAD bytes from SRC:SPORT to DST:DPORT
      at once, with IP TTL TTL if given. A send that fails (a local netfilter
      rule drops the packet: EPERM) still made and dropped its packet: it is
      counted and the rest go on. Prints "sent <COUNT> failed <n>".

  tfdrops.py spray SRC SPORT0 NPORTS DST DPORT ROUNDS PAYLOAD
      ROUNDS rounds of one UDP datagram of PAYLOAD bytes from each source
      port SPORT0 .. SPORT0+NPORTS-1 of SRC, in turn, to DST:DPORT: NPORTS
      flows whose packets interleave. Prints "sent <n> failed <n>".

  tfdrops.py icmp DST COUNT PAYLOAD ID
      Send COUNT ICMP echo requests of PAYLOAD bytes with identifier ID to
      DST at once, without waiting for replies. Prints "sent <COUNT>".

  tfdrops.py tc-drop DEV ingress|egress sport|dport PORT
      Another tc program on DEV: a BPF_PROG_TYPE_SCHED_CLS program, appended
      to DEV's TCX ingress or egress (after the programs already there), that
      returns TC_ACT_SHOT for IPv4/UDP frames (Ethernet, no VLAN, no IP
      options) with that source or destination port and TC_ACT_UNSPEC (next)
      for all else. Prints "ready" once attached and holds the link until
      killed (the link, and so the program, dies with the process).

  tfdrops.py ksym LOCATION NAME...
      LOCATION is "symbol+0xoff" as tapflow prints it: check, against
      /proc/kallsyms, that symbol is one of NAME..., is a text symbol of the
      running kernel, and that the offset lies inside it (below the next
      symbol's address). Prints "ok <symbol>" or what is wrong (exit 1).

  tfdrops.py rate FILE PER_SEC
      FILE: drop_event records (JSON lines). Check the rate limit as the
      kernel side applies it (at most PER_SEC events per window of at least
      one second, a window starting at the first event after the previous
      one ended): any PER_SEC*2+1 consecutive events span at least a second.
      Prints "ok <events>" or the first offending run (exit 1).
"""
import ctypes
import datetime
import json
import os
import signal
import socket
import struct
import sys

# ---- send ------------------------------------------------------------------


def send(src, sport, dst, dport, count, payload, ttl=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ttl is not None:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.bind((src, sport))
    failed = 0
    for seq in range(count):
        data = struct.pack("!I", seq) + bytes(max(payload - 4, 0))
        try:
            s.sendto(data[:payload], (dst, dport))
        except OSError:
            failed += 1
    print("sent %d failed %d" % (count, failed))
    return 0

def spray(src, sport0, nports, dst, dport, rounds, payload):
    socks = []
    for port in range(sport0, sport0 + nports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, port))
        socks.append(s)
    failed = 0
    for seq in range(rounds):
        data = (struct.pack("!I", seq) + bytes(max(payload - 4, 0)))[:payload]
        for s in socks:
            try:
                s.sendto(data, (dst, dport))
            except OSError:
                failed += 1
    print("sent %d failed %d" % (rounds * nports, failed))
    return 0


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def icmp(dst, count, payload, ident):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    data = bytes(i & 0xFF for i in range(payload))
    for seq in range(1, count + 1):
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        s.sendto(hdr[:2] + struct.pack("!H", csum(hdr + data)) + hdr[4:] + data, (dst, 0))
    print("sent %d" % count)
    return 0

# ---- another tc program ------------------------------------------------------


SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47


def bpf(cmd, attr):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ret = libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(cmd), attr,
                       ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def drop_prog(port_off, port):
    """r0 = (IPv4 && UDP && port at port_off == port) ? TC_ACT_SHOT : TC_ACT_UNSPEC."""
    be = socket.htons(port)  # as a little-endian u16 load of the wire bytes reads it
    p = [
        insn(0xb7, 2, 0, 0, 12),              # r1 = skb; r2 = 12 (EtherType)
        insn(0xbf, 3, 10),                    # r3 = fp
        insn(0x07, 3, 0, 0, -32),             # r3 -= 32
        insn(0xb7, 4, 0, 0, 26),              # r4 = 26: bytes 12..37
        insn(0x85, 0, 0, 0, 26),              # call bpf_skb_load_bytes
        ("jne0",),                            # if r0 != 0 goto pass
        insn(0x69, 1, 10, -32),               # r1 = *(u16 *)(fp - 32): EtherType
        ("jne", 1, socket.htons(0x0800)),     # if r1 != IPv4 goto pass
        insn(0x71, 1, 10, -32 + 23 - 12),     # r1 = *(u8 *)(fp - 21): protocol
        ("jne", 1, 17),                       # if r1 != UDP goto pass
        insn(0x71, 1, 10, -32 + 14 - 12),     # r1 = *(u8 *)(fp - 30): version/ihl
        ("jne", 1, 0x45),                     # options: not ours
        insn(0x69, 1, 10, -32 + port_off - 12),  # r1 = the port
        ("jne", 1, be),
        insn(0xb7, 0, 0, 0, 2),               # r0 = TC_ACT_SHOT
        insn(0x95),                           # exit
    ]
    pass_idx = len(p)
    out = b""
    for i, x in enumerate(p):
        if isinstance(x, tuple):
            if x[0] == "jne0":
                x = insn(0x55, 0, 0, pass_idx - i - 1, 0)
            else:
                x = insn(0x55, x[1], 0, pass_idx - i - 1, x[2])
        out += x
    out += insn(0xb7, 0, 0, 0, -1)            # pass: r0 = TC_ACT_UNSPEC
    out += insn(0x95)
    return out


def tc_drop(dev, where, which, port):
    ifindex = socket.if_nametoindex(dev)
    code = drop_prog(34 if which == "sport" else 36, port)
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(160)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
    # prog_flags, prog_name[16]
    struct.pack_into("IIQQIIQII16s", attr, 0, BPF_PROG_TYPE_SCHED_CLS, len(code) // 8,
                     ctypes.addressof(insns), ctypes.addressof(lic), 1, len(log),
                     ctypes.addressof(log), 0, 0, b"tft_drop")
    try:
        fd = bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        sys.stderr.write("BPF_PROG_LOAD: %s\n%s\n" % (e, log.value.decode(errors="replace")))
        return 1
    attr = ctypes.create_string_buffer(64)
    # prog_fd, target_ifindex, attach_type, flags (0: appended after the others)
    struct.pack_into("IIII", attr, 0, fd,
                     ifindex, BPF_TCX_INGRESS if where == "ingress" else BPF_TCX_EGRESS, 0)
    try:
        bpf(BPF_LINK_CREATE, attr)
    except OSError as e:
        sys.stderr.write("BPF_LINK_CREATE: %s\n" % e)
        return 1
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()

# ---- kernel symbols ------------------------------------------------------------


def ksym(location, names):
    if "+0x" not in location:
        print("not symbol+0xoff: %r" % location)
        return 1
    sym, off = location.split("+0x", 1)
    off = int(off, 16)
    if sym not in names:
        print("%s is none of %s" % (sym, " ".join(names)))
        return 1
    addr, after = None, None
    with open("/proc/kallsyms") as f:
        addrs = []
        for line in f:
            a, t, n = line.split()[:3]
            a = int(a, 16)
            if not a:
                continue
            addrs.append(a)
            if n == sym and t in "tT" and addr is None:
                addr = a
    if addr is None:
        print("%s: no text symbol of that name in /proc/kallsyms" % sym)
        return 1
    after = min((a for a in addrs if a > addr), default=None)
    if after is None or addr + off >= after:
        print("%s+0x%x is beyond %s (next symbol at +0x%x)" %
              (sym, off, sym, (after or addr) - addr))
        return 1
    print("ok %s" % sym)
    return 0

# ---- event rate ------------------------------------------------------------------


def ts_of(rec):
    t = rec["ts"].replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(t).timestamp()


def rate(path, per_sec):
    with open(path) as f:
        ts = sorted(ts_of(r) for r in map(json.loads, f) if r.get("type") == "drop_event")
    run = 2 * per_sec + 1
    for i in range(len(ts) - run + 1):
        # ms in the records: 1 ms of rounding either way.
        if ts[i + run - 1] - ts[i] < 0.998:
            print("%d events within %.3f s" % (run, ts[i + run - 1] - ts[i]))
            return 1
    print("ok %d" % len(ts))
    return 0


def main(argv):
    if len(argv) in (8, 9) and argv[1] == "send":
        return send(argv[2], int(argv[3]), argv[4], int(argv[5]), int(argv[6]), int(argv[7]),
                    int(argv[8]) if len(argv) == 9 else None)
    if len(argv) == 9 and argv[1] == "spray":
        return spray(argv[2], int(argv[3]), int(argv[4]), argv[5], int(argv[6]), int(argv[7]),
                     int(argv[8]))
    if len(argv) == 6 and argv[1] == "icmp":
        return icmp(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    if len(argv) == 6 and argv[1] == "tc-drop" and argv[3] in ("ingress", "egress") and \
            argv[4] in ("sport", "dport"):
        return tc_drop(argv[2], argv[3], argv[4], int(argv[5]))
    if len(argv) >= 4 and argv[1] == "ksym":
        return ksym(argv[2], argv[3:])
    if len(argv) == 4 and argv[1] == "rate":
        return rate(argv[2], int(argv[3]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
