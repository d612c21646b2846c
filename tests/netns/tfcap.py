#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Traffic and a pcapng reader for tests/netns/test_capture.sh (not a test itself).

Every datagram's payload starts with b"TFCP", its sequence number (u32) and
the sender's CLOCK_REALTIME in ns (u64) taken just before sendto(), then
filler bytes, so a captured frame tells which datagram it is and when it
was sent.

  tfcap.py echo SRC SPORT DST DPORT SIZES
      One datagram per payload size in SIZES (comma-separated, each >= 16)
      from SRC:SPORT to DST:DPORT, one at a time, each waiting (2 s) for
      its echo. One line per exchange: "x SEQ SIZE T0 T1", T0 = the
      realtime stamp in the payload, T1 = CLOCK_REALTIME once the echo was
      read; every frame of the exchange crossed the host between the two.
      Last line: "<echoes>/<count>"; exit 0 if all came back.

  tfcap.py blast SRC SPORT DST DPORT COUNT SIZE [PPS]
      COUNT datagrams of SIZE payload bytes, no echo (the test drops them at
      the receiver). Paced: at most PPS a second (default 20000), so that no
      queue on the way (the veth's backlog) ever overflows and the frame
      counts stay exact. Prints COUNT. With COUNT 0: until killed.

  tfcap.py gso SRC SPORT DST DPORT SEGS SEGSIZE
      One UDP GSO send (UDP_SEGMENT): SEGS segments of SEGSIZE bytes in a
      single skb, which the veths pass on whole (one frame on each hook).

  tfcap.py pcapng FILE
      Parse FILE strictly (every block whole, lengths and options
      consistent, padding, EPB interface ids) and print one JSON object:
        ok, error, size, blocks, shb {version, section_len, userappl, comment},
        ifaces [{name, desc, linktype, snaplen, tsresol, comment, epbs, isbs
        [{start, end, ts, ifrecv, ifdrop}]}], epbs [[ifid, ts, cap, orig,
        flags, seq, sport, dport]] (seq of a TFCP payload, ports of IPv4/UDP,
        else null). Exit 0 if ok. Times are strings "SECONDS.NANOSECONDS"
        (of one width until 2286: they compare as strings).
      Neither tshark -T json nor capinfos shows the statistics blocks.

  tfcap.py times PCAPNG EXCHANGE_LOG PORT
      Every frame of the exchanges of the VM's UDP port PORT (either
      direction; by its sequence number) against the
      exchange's [T0, T1]: prints "n_frames n_outside worst_before_ns
      worst_after_ns median_width_ns" and, for the first frames outside
      [T0 - 1 ms, T1 + 1 ms], "outside IFID SEQ TS T0 T1".
"""
import json
import socket
import struct
import sys
import time

MAGIC = b"TFCP"


def payload(seq, size):
    head = MAGIC + struct.pack("!IQ", seq, time.time_ns())
    return head + bytes((seq + i) & 0xFF for i in range(size - len(head)))


def udp_socket(src, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.bind((src, sport))
    return s


def echo(src, sport, dst, dport, sizes):
    s = udp_socket(src, sport)
    s.settimeout(2)
    got = 0
    for seq, size in enumerate(sizes):
        s.sendto(payload(seq, size), (dst, dport))
        t0 = None
        while True:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            if data[:4] == MAGIC and struct.unpack("!I", data[4:8])[0] == seq:
                t0 = struct.unpack("!Q", data[8:16])[0]
                break
        t1 = time.time_ns()
        if t0 is not None:
            got += 1
            print("x %d %d %d %d" % (seq, size, t0, t1))
    print("%d/%d" % (got, len(sizes)))
    return 0 if got == len(sizes) else 1


def blast(src, sport, dst, dport, count, size, pps):
    s = udp_socket(src, sport)
    start = time.monotonic()
    seq = 0
    while count == 0 or seq < count:
        s.sendto(payload(seq, size), (dst, dport))
        seq += 1
        ahead = seq / pps - (time.monotonic() - start)
        if ahead > 0.001:
            time.sleep(ahead)
    print(seq)
    return 0


def gso(src, sport, dst, dport, segs, segsize):
    s = udp_socket(src, sport)
    s.setsockopt(socket.SOL_UDP, 103, segsize)  # UDP_SEGMENT
    s.sendto(bytes(segs * segsize), (dst, dport))
    return 0


# ---- pcapng ---------------------------------------------------------------


class Bad(Exception):
    pass


def options(body, off, end):
    """Options from body[off:end]: [(code, value)]; must end with opt_endofopt."""
    opts = []
    if off == end:
        return opts
    while True:
        if off + 4 > end:
            raise Bad("option header past the block end")
        code, n = struct.unpack_from("<HH", body, off)
        off += 4
        if code == 0:
            if n != 0 or off != end:
                raise Bad("opt_endofopt with length %d, %d bytes after it" % (n, end - off))
            return opts
        pad = (n + 3) & ~3
        if off + pad > end:
            raise Bad("option %d (%d bytes) past the block end" % (code, n))
        if body[off + n:off + pad] != bytes(pad - n):
            raise Bad("option %d: padding not zero" % code)
        opts.append((code, bytes(body[off:off + n])))
        off += pad
    return opts


def text(opts, code):
    vals = [v.decode() for c, v in opts if c == code]
    return vals[0] if len(vals) == 1 else (None if not vals else vals)


def u64(opts, code):
    vals = [struct.unpack("<Q", v)[0] for c, v in opts if c == code and len(v) == 8]
    return vals[0] if len(vals) == 1 else None


def ts_opt(opts, code):
    vals = [v for c, v in opts if c == code and len(v) == 8]
    if len(vals) != 1:
        return None
    hi, lo = struct.unpack("<II", vals[0])
    return hi << 32 | lo


def parse(path):
    data = open(path, "rb").read()
    res = dict(ok=False, error=None, size=len(data), blocks=0, shb=None, ifaces=[], epbs=[])
    off = 0
    try:
        while off < len(data):
            if off + 12 > len(data):
                raise Bad("partial block header at offset %d (%d bytes left)" % (off, len(data) - off))
            btype, blen = struct.unpack_from("<II", data, off)
            if blen < 12 or blen % 4:
                raise Bad("block at %d: bad length %d" % (off, blen))
            if off + blen > len(data):
                raise Bad("block at %d (type %#x, %d bytes) cut short: file ends after %d"
                          % (off, btype, blen, len(data) - off))
            if struct.unpack_from("<I", data, off + blen - 4)[0] != blen:
                raise Bad("block at %d: trailing length differs" % off)
            body = memoryview(data)[off + 8:off + blen - 4]
            if res["blocks"] == 0 and btype != 0x0A0D0D0A:
                raise Bad("the first block is not a Section Header Block")
            if btype == 0x0A0D0D0A:
                if res["shb"] is not None:
                    raise Bad("a second section")
                magic, major, minor, slen = struct.unpack_from("<IHHq", body, 0)
                if magic != 0x1A2B3C4D:
                    raise Bad("byte-order magic %#x" % magic)
                o = options(body, 16, len(body))
                res["shb"] = dict(version="%d.%d" % (major, minor), section_len=slen,
                                  userappl=text(o, 4), comment=text(o, 1))
            elif btype == 1:
                lt, _, snap = struct.unpack_from("<HHI", body, 0)
                o = options(body, 8, len(body))
                tsr = [v[0] for c, v in o if c == 9 and len(v) == 1]
                res["ifaces"].append(dict(name=text(o, 2), desc=text(o, 3), linktype=lt,
                                          snaplen=snap, tsresol=tsr[0] if tsr else None,
                                          comment=text(o, 1), epbs=0, isbs=[]))
            elif btype == 6:
                ifid, hi, lo, cap, orig = struct.unpack_from("<IIIII", body, 0)
                if ifid >= len(res["ifaces"]):
                    raise Bad("EPB at %d: interface %d not described" % (off, ifid))
                if 20 + ((cap + 3) & ~3) > len(body):
                    raise Bad("EPB at %d: %d captured bytes do not fit" % (off, cap))
                if cap > orig or cap > res["ifaces"][ifid]["snaplen"]:
                    raise Bad("EPB at %d: cap_len %d, orig_len %d, snaplen %d"
                              % (off, cap, orig, res["ifaces"][ifid]["snaplen"]))
                pkt = bytes(body[20:20 + cap])
                if body[20 + cap:20 + ((cap + 3) & ~3)] != bytes(((cap + 3) & ~3) - cap):
                    raise Bad("EPB at %d: padding not zero" % off)
                o = options(body, 20 + ((cap + 3) & ~3), len(body))
                fl = [struct.unpack("<I", v)[0] for c, v in o if c == 2 and len(v) == 4]
                seq = sport = dport = None
                # Ethernet + IPv4 (no options) + UDP: ports at 34, the payload at 42.
                if cap >= 42 and pkt[12:14] == b"\x08\x00" and pkt[14] == 0x45 and pkt[23] == 17:
                    sport, dport = struct.unpack("!HH", pkt[34:38])
                    if cap >= 50 and pkt[42:46] == MAGIC:
                        seq = struct.unpack("!I", pkt[46:50])[0]
                res["ifaces"][ifid]["epbs"] += 1
                res["epbs"].append([ifid, hi << 32 | lo, cap, orig, fl[0] if fl else None, seq,
                                    sport, dport])
            elif btype == 5:
                ifid, hi, lo = struct.unpack_from("<III", body, 0)
                if ifid >= len(res["ifaces"]):
                    raise Bad("ISB at %d: interface %d not described" % (off, ifid))
                o = options(body, 12, len(body))
                res["ifaces"][ifid]["isbs"].append(dict(
                    ts=hi << 32 | lo, start=ts_opt(o, 2), end=ts_opt(o, 3),
                    ifrecv=u64(o, 4), ifdrop=u64(o, 5)))
            else:
                raise Bad("unexpected block type %#x at %d" % (btype, off))
            res["blocks"] += 1
            off += blen
        if res["shb"] is None:
            raise Bad("empty file")
        res["ok"] = True
    except (Bad, struct.error) as e:
        res["error"] = str(e)
    return res


def ts_str(ns):
    """As tshark prints frame.time_epoch: exact (jq's numbers are doubles)."""
    return None if ns is None else "%d.%09d" % (ns // 1000000000, ns % 1000000000)


def printable(res):
    for e in res["epbs"]:
        e[1] = ts_str(e[1])
    for i in res["ifaces"]:
        for b in i["isbs"]:
            for k in ("ts", "start", "end"):
                b[k] = ts_str(b[k])
    return res


def times(pcap, log, port):
    res = parse(pcap)
    if not res["ok"]:
        print("bad pcapng: %s" % res["error"])
        return 1
    win = {}
    for line in open(log):
        w = line.split()
        if w and w[0] == "x":
            win[int(w[1])] = (int(w[3]), int(w[4]))
    n = outside = 0
    before = after = 0
    shown = []
    for ifid, ts, _, _, _, seq, sport, dport in res["epbs"]:
        if seq is None or port not in (sport, dport) or seq not in win:
            continue
        t0, t1 = win[seq]
        n += 1
        before = max(before, t0 - ts)
        after = max(after, ts - t1)
        if ts < t0 - 1000000 or ts > t1 + 1000000:
            outside += 1
            if len(shown) < 5:
                shown.append("outside %d %d %d %d %d" % (ifid, seq, ts, t0, t1))
    widths = sorted(t1 - t0 for t0, t1 in win.values())
    print("%d %d %d %d %d" % (n, outside, before, after, widths[len(widths) // 2] if widths else -1))
    for s in shown:
        print(s)
    return 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "echo" and len(argv) == 7:
        return echo(argv[2], int(argv[3]), argv[4], int(argv[5]),
                    [int(x) for x in argv[6].split(",")])
    if cmd == "blast" and len(argv) in (8, 9):
        return blast(argv[2], int(argv[3]), argv[4], int(argv[5]), int(argv[6]), int(argv[7]),
                     float(argv[8]) if len(argv) == 9 else 20000.0)
    if cmd == "gso" and len(argv) == 8:
        return gso(argv[2], int(argv[3]), argv[4], int(argv[5]), int(argv[6]), int(argv[7]))
    if cmd == "pcapng" and len(argv) == 3:
        res = parse(argv[2])
        print(json.dumps(printable(res)))
        return 0 if res["ok"] else 1
    if cmd == "times" and len(argv) == 5:
        return times(argv[2], argv[3], int(argv[4]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
