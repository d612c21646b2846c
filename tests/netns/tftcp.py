#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TCP traffic, delay line and oracle of tests/netns/test_tcp.sh (not a test
itself: the runner only runs test_*.sh).

  tftcp.py delay MS
      A delay line: every packet iptables sends to NFQUEUE 0 of this network
      namespace (test_tcp.sh: all TCP coming in) goes on MS milliseconds
      later, in order. (This kernel has
      neither netem nor fq, so no qdisc can hold packets; a queued packet
      stays in the kernel, only its id comes up here.) Prints "ready" once
      bound, then runs until killed.

  tftcp.py server PORT MODE [ARG...]
      Listen on PORT, print "ready", take one connection and:
        sink            read until EOF
        source BYTES    send BYTES
        stream PAUSE STOP
                        send 16 KiB every 10 ms, none while the file PAUSE
                        exists, until the file STOP exists
        echo            send back what comes, until EOF
        stall SEC       with a 16 KiB receive buffer, read nothing for SEC
                        seconds (the window closes), then read until EOF
      then close cleanly (no RST: the side that got EOF closes last).

  tftcp.py client SRC SPORT DST DPORT MODE [ARG]
      From SRC:SPORT to DST:DPORT:
        recv            read until EOF
        send BYTES      send BYTES
        echo BYTES      send BYTES, read them back
        connect SEC     only connect, giving up after SEC seconds
      Prints what happened: "received N", "sent N", "echoed N", or for
      connect "connected", "refused", "timeout"; exit 0 if as asked.

  tftcp.py analyze PCAP
      tshark's TCP analysis of PCAP as one JSON object, per direction
      "SRC:SPORT>DST:DPORT": frames; the frames tshark flags
      retransmission, fast_retransmission, spurious_retransmission,
      out_of_order, keep_alive, zero_window, zero_window_probe,
      zero_window_probe_ack; "retrans": the frames with any of the first
      four, keep-alives aside (tshark 4.0 flags every fast or spurious
      retransmission a retransmission too; out_of_order comes alone);
      syn (SYN without ACK), synack, rst; the frames with options:
      timestamps, sack_perm, wscale; "ack_rtt" {n, median, mean} in
      ms: tcp.analysis.ack_rtt of this direction's ACKs, i.e. the RTT of
      the other direction's segments; "ack_rtt_karn": the same without
      the ACKs of data that saw a hole, a retransmission or reordering
      before its ACK came (Karn's rule, stretched to what a passive
      observer sees); "handshake_ms" on the direction that
      sent the SYN: its first SYN to the first SYN-ACK back, a SYN sent
      again included, as the application waits (and as Wireshark's iRTT
      starts); null if none;
      "syn_unanswered": SYNs no SYN-ACK answered.
"""
import json
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import deque

# ---- delay line (nfnetlink_queue) ---------------------------------------------------

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_GSO = 4
NF_ACCEPT = 1


def nla(atype, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, atype) + payload + b"\0" * (-n % 4)


def nfq_msg(mtype, flags, attrs, queue=0):
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype,
                       flags, 0, 0) + body


def nfq_config(sock, *attrs):
    sock.send(nfq_msg(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs))
    data = sock.recv(65536)
    mtype, = struct.unpack_from("=H", data, 4)
    err, = struct.unpack_from("=i", data, 16)
    if mtype != NLMSG_ERROR or err != 0:
        raise OSError(-err, "nfqueue config: " + os.strerror(-err))


def packet_ids(data):
    """Ids of the NFQNL_MSG_PACKET messages in one netlink datagram."""
    off = 0
    while off + 16 <= len(data):
        mlen, mtype = struct.unpack_from("=IH", data, off)
        if mtype == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            a = off + 20
            while a + 4 <= off + mlen:
                alen, atype = struct.unpack_from("=HH", data, a)
                if atype & 0x3fff == NFQA_PACKET_HDR:
                    yield struct.unpack_from("!I", data, a + 4)[0]
                    break
                a += (alen + 3) & ~3
        off += (mlen + 3) & ~3


def delay(ms):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    sock.bind((0, 0))
    nfq_config(sock, nla(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)))
    # Metadata only; GSO packets as they are (not segmented for us); room
    # for far more than ever waits (a full queue would drop).
    nfq_config(sock, nla(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)),
               nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 65536)),
               nla(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_GSO)),
               nla(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_GSO)))
    # Real-time, so that a busy machine does not add its scheduling
    # latency to the delay (the RTTs would grow a tail).
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        pass
    print("ready", flush=True)
    wait = deque()  # (due, id): ids and due times both grow
    d = ms / 1000
    while True:
        timeout = max(0.0, wait[0][0] - time.monotonic()) if wait else None
        if select.select([sock], [], [], timeout)[0]:
            now = time.monotonic()
            while True:
                try:
                    data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                wait.extend((now + d, i) for i in packet_ids(data))
        now = time.monotonic()
        last = None
        while wait and wait[0][0] <= now:
            last = wait.popleft()[1]
        if last is not None:
            # One verdict for every queued id up to last: exactly those due.
            sock.send(nfq_msg(NFQNL_MSG_VERDICT_BATCH, NLM_F_REQUEST,
                              [nla(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, last))]))


# ---- traffic ------------------------------------------------------------------------

CHUNK = 16384


def send_all(s, n):
    buf = b"x" * CHUNK
    left = n
    while left > 0:
        left -= s.send(buf[:min(left, CHUNK)])
    return n


def read_all(s):
    n = 0
    while True:
        b = s.recv(1 << 16)
        if not b:
            return n
        n += len(b)


def finish(s):
    """Our data is all sent: FIN, then wait for the peer's."""
    s.shutdown(socket.SHUT_WR)
    n = read_all(s)
    s.close()
    return n


def server(port, mode, args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mode == "stall":
        # Inherited by the accepted socket, before the handshake sets the window.
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    print("ready", flush=True)
    s, _ = ls.accept()
    ls.close()
    if mode == "sink":
        n = read_all(s)
        s.close()
        print(f"received {n}")
    elif mode == "source":
        send_all(s, int(args[0]))
        finish(s)
        print(f"sent {args[0]}")
    elif mode == "stream":
        n = 0
        while not os.path.exists(args[1]):
            if not os.path.exists(args[0]):
                n += send_all(s, CHUNK)
            time.sleep(0.01)
        finish(s)
        print(f"sent {n}")
    elif mode == "echo":
        n = 0
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            s.sendall(b)
            n += len(b)
        s.close()
        print(f"echoed {n}")
    elif mode == "stall":
        time.sleep(float(args[0]))
        n = read_all(s)
        s.close()
        print(f"received {n}")
    return 0


def client(src, sport, dst, dport, mode, args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
    if mode == "connect":
        s.settimeout(float(args[0]))
        try:
            s.connect((dst, dport))
        except ConnectionRefusedError:
            print("refused")
            return 0
        except TimeoutError:
            print("timeout")
            return 0
        finally:
            s.close()
        print("connected")
        return 0
    s.connect((dst, dport))
    if mode == "recv":
        n = read_all(s)
        s.close()
        print(f"received {n}")
    elif mode == "send":
        n = send_all(s, int(args[0]))
        finish(s)
        print(f"sent {n}")
    elif mode == "echo":
        want = int(args[0])
        t = threading.Thread(target=send_all, args=(s, want))
        t.start()
        got = 0
        while got < want:
            b = s.recv(1 << 16)
            if not b:
                break
            got += len(b)
        t.join()
        finish(s)
        print(f"echoed {got}")
        return 0 if got == want else 1
    return 0


# ---- the oracle ---------------------------------------------------------------------

FLAGS = ["retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
         "keep_alive", "zero_window", "zero_window_probe", "zero_window_probe_ack"]
OPTIONS = {"timestamps": "tcp.options.timestamp.tsval", "sack_perm": "tcp.options.sack_perm",
           "wscale": "tcp.options.wscale.shift"}
FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
          "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset", "tcp.analysis.ack_rtt",
          "tcp.analysis.acks_frame", "tcp.analysis.lost_segment"] + \
    list(OPTIONS.values()) + ["tcp.analysis." + f for f in FLAGS]


def rtt_stats(r):
    return {"n": len(r), "median": round(statistics.median(r), 3) if r else None,
            "mean": round(statistics.mean(r), 3) if r else None}


def analyze(pcap):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "tcp", "-T", "fields", "-E", "separator=/t",
           "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    dirs = {}
    rtts, karn = {}, {}
    first_syn = {}
    trouble = {}  # per direction: the last frame that was a hole, retransmission or reordering
    for line in out.splitlines():
        f = dict(zip(FIELDS, line.split("\t")))
        flags = {a: f["tcp.analysis." + a] != "" for a in FLAGS}
        n = int(f["frame.number"])
        key = f"{f['ip.src']}:{f['tcp.srcport']}>{f['ip.dst']}:{f['tcp.dstport']}"
        rkey = f"{f['ip.dst']}:{f['tcp.dstport']}>{f['ip.src']}:{f['tcp.srcport']}"
        for k in (key, rkey):  # both directions, also when one is silent
            dirs.setdefault(k, dict({a: 0 for a in FLAGS}, frames=0, retrans=0, syn=0, synack=0,
                                    rst=0, handshake_ms=None, **{o: 0 for o in OPTIONS}))
        d = dirs[key]
        d["frames"] += 1
        for a in FLAGS:
            d[a] += flags[a]
        if not flags["keep_alive"] and any(flags[a] for a in FLAGS[:4]):
            d["retrans"] += 1
        if any(flags[a] for a in FLAGS[:4]) or f["tcp.analysis.lost_segment"]:
            trouble[key] = n
        for o, field in OPTIONS.items():
            d[o] += f[field] != ""
        syn, ack = f["tcp.flags.syn"] == "1", f["tcp.flags.ack"] == "1"
        d["syn"] += syn and not ack
        d["synack"] += syn and ack
        d["rst"] += f["tcp.flags.reset"] == "1"
        t = float(f["frame.time_epoch"])
        if syn and not ack:
            first_syn.setdefault(key, t)
        if syn and ack and d["synack"] == 1 and rkey in first_syn:
            dirs[rkey]["handshake_ms"] = round((t - first_syn[rkey]) * 1000, 3)
        if f["tcp.analysis.ack_rtt"]:
            ms = float(f["tcp.analysis.ack_rtt"]) * 1000
            rtts.setdefault(key, []).append(ms)
            # Karn: not if the acked data saw trouble between it and this ACK.
            if trouble.get(rkey, 0) < int(f["tcp.analysis.acks_frame"] or 0):
                karn.setdefault(key, []).append(ms)
    for key, d in dirs.items():
        d["ack_rtt"] = rtt_stats(rtts.get(key, []))
        d["ack_rtt_karn"] = rtt_stats(karn.get(key, []))
        src, dst = key.split(">")
        answered = dirs[f"{dst}>{src}"]["synack"] > 0
        d["syn_unanswered"] = max(0, d["syn"] - answered)
    json.dump(dirs, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "delay":
        return delay(float(argv[2]))
    if len(argv) >= 4 and argv[1] == "server":
        return server(int(argv[2]), argv[3], argv[4:])
    if len(argv) >= 7 and argv[1] == "client":
        return client(argv[2], int(argv[3]), argv[4], int(argv[5]), argv[6], argv[7:])
    if len(argv) == 3 and argv[1] == "analyze":
        return analyze(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
