#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers for the netns tests (not a test itself: the runner only runs test_*.sh).

  tfnet.py vm TAP MAC IP CTL LOG
      Be the "VM" behind tap TAP: hold the tap open (which gives it carrier),
      answer ICMP echo requests to IP from MAC, and take commands, one per
      line "ID COMMAND [ARGS]", from the FIFO CTL:
        ID send N SIZE DSTMAC DSTIP  write N IPv4/UDP frames of SIZE bytes
                                     (Ethernet header included) into the tap
        ID fuzz SEED N MAXLEN        write N fuzzed frames (tfframes.fuzz_frames:
                                     any content, 0 to MAXLEN+64 bytes) into
                                     the tap; answered "done ID fuzz WRITTEN
                                     BYTES REFUSED TC TC_BYTES": frames and
                                     bytes the tap took, writes it refused
                                     (under an Ethernet header: EINVAL), and
                                     what of them the tap's TC ingress sees
                                     (tfframes.tc_ingress_len)
        ID frame N HEX               write N copies of the frame HEX (as is)
        ID stats                     report what the VM received and sent
        ID quit
      Each command is answered, once done, with one line in LOG:
      "done ID COMMAND [...]". The stats answer is "done ID stats rx_frames
      rx_bytes tx_frames tx_bytes echo_replies unexpected".

  tfnet.py ping DST COUNT PAYLOAD
      COUNT ICMP echo requests of PAYLOAD bytes to DST, one at a time, each
      waiting for its reply (2 s); prints "<received>/<count>", exit 0 if all
      came back. Stands in for ping(8), which the test machines lack.

  tfnet.py tcx DEV
      The TCX programs on DEV (BPF_PROG_QUERY, kernel >= 6.6), one line
      each: "ingress|egress <prog id> <prog name>". bpftool 7.1 and
      iproute2 6.1 do not show TCX yet. Exit code 3: no TCX in this kernel.
"""
import ctypes
import fcntl
import os
import select
import socket
import struct
import sys
import time

# ---- frames -------------------------------------------------------------


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_header(src, dst, proto, l4len, ident=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + l4len, ident, 0, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]


def udp_frame(dst_mac, src_mac, src_ip, dst_ip, size, seq):
    """An Ethernet/IPv4/UDP frame of exactly size bytes (size >= 42)."""
    l4len = size - 14 - 20
    payload = bytes((seq + i) & 0xFF for i in range(l4len - 8))
    udp = struct.pack("!HHHH", 40000, 9, l4len, 0) + payload
    return (mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" +
            ipv4_header(src_ip, dst_ip, 17, l4len, seq & 0xFFFF) + udp)


# ---- the VM behind a tap -------------------------------------------------

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def vm(tap, mac, ip, ctl, logpath):
    fd = open_tap(tap)
    my_mac = mac_bytes(mac)
    my_ip = socket.inet_aton(ip)
    # O_RDWR: the FIFO never reports EOF when a writer closes it.
    cfd = os.open(ctl, os.O_RDWR | os.O_NONBLOCK)
    log = open(logpath, "a", buffering=1)
    st = dict(rx_frames=0, rx_bytes=0, tx_frames=0, tx_bytes=0, echo=0, unexpected=0)
    pending = b""
    log.write("ready\n")

    def write_frame(frame):
        os.write(fd, frame)
        st["tx_frames"] += 1
        st["tx_bytes"] += len(frame)

    while True:
        r, _, _ = select.select([fd, cfd], [], [])
        if fd in r:
            frame = os.read(fd, 65536)
            st["rx_frames"] += 1
            st["rx_bytes"] += len(frame)
            # IPv4 ICMP echo request to us: answer it.
            if (len(frame) >= 42 and frame[0:6] == my_mac and frame[12:14] == b"\x08\x00"
                    and frame[23] == 1 and frame[30:34] == my_ip
                    and frame[14 + (frame[14] & 0xF) * 4] == 8):
                ihl = (frame[14] & 0xF) * 4
                ip_hdr = bytearray(frame[14:14 + ihl])
                ip_hdr[12:16], ip_hdr[16:20] = frame[30:34], frame[26:30]
                ip_hdr[10:12] = b"\0\0"
                ip_hdr[10:12] = struct.pack("!H", csum(bytes(ip_hdr)))
                icmp = bytearray(frame[14 + ihl:])
                icmp[0] = 0
                icmp[2:4] = b"\0\0"
                icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
                write_frame(frame[6:12] + my_mac + b"\x08\x00" + bytes(ip_hdr) + bytes(icmp))
                st["echo"] += 1
            else:
                st["unexpected"] += 1
                log.write("unexpected %d bytes: %s\n" % (len(frame), frame[:42].hex()))
        if cfd in r:
            try:
                pending += os.read(cfd, 4096)
            except BlockingIOError:
                pass
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if len(words) < 2:
                    continue
                cid, words = words[0], words[1:]
                if words[0] == "send":
                    n, size, dmac, dip = int(words[1]), int(words[2]), words[3], words[4]
                    for i in range(n):
                        write_frame(udp_frame(dmac, mac, ip, dip, size, i))
                    log.write("done %s send %d %d\n" % (cid, n, size))
                elif words[0] == "fuzz":
                    # Imported here: tfframes imports this module's helpers.
                    from tfframes import fuzz_frames, tc_ingress_len
                    done = [0, 0, 0, 0, 0]
                    for frame in fuzz_frames(int(words[1]), int(words[2]), int(words[3])):
                        try:
                            write_frame(frame)
                        except OSError:
                            done[2] += 1
                            continue
                        done[0] += 1
                        done[1] += len(frame)
                        seen = tc_ingress_len(frame)
                        if seen is not None:
                            done[3] += 1
                            done[4] += seen
                    log.write("done %s fuzz %d %d %d %d %d\n" % (cid, *done))
                elif words[0] == "frame" and len(words) == 3:
                    frame = bytes.fromhex(words[2])
                    for i in range(int(words[1])):
                        write_frame(frame)
                    log.write("done %s frame %d %d\n" % (cid, int(words[1]), len(frame)))
                elif words[0] == "stats":
                    log.write("done %s stats %d %d %d %d %d %d\n" % (
                        cid, st["rx_frames"], st["rx_bytes"], st["tx_frames"],
                        st["tx_bytes"], st["echo"], st["unexpected"]))
                elif words[0] == "quit":
                    log.write("done %s quit\n" % cid)
                    return 0
                else:
                    log.write("done %s error unknown command %s\n" % (cid, words[0]))


# ---- ping ---------------------------------------------------------------


def ping(dst, count, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
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


# ---- TCX query ----------------------------------------------------------

SYS_BPF = 321  # x86_64
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
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


def prog_name(prog_id):
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("I", attr, 0, prog_id)
    try:
        fd = bpf(BPF_PROG_GET_FD_BY_ID, attr)
    except OSError:
        return "?"
    info = ctypes.create_string_buffer(256)
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("IIQ", attr, 0, fd, 256, ctypes.addressof(info))
    try:
        bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    finally:
        os.close(fd)
    return info.raw[64:80].split(b"\0")[0].decode() or "?"


def tcx(dev):
    """Exit code 3 (nothing printed) if the kernel has no TCX."""
    ifindex = socket.if_nametoindex(dev)
    for name, atype in (("ingress", BPF_TCX_INGRESS), ("egress", BPF_TCX_EGRESS)):
        ids = (ctypes.c_uint32 * 64)()
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("IIIIQI", attr, 0, ifindex, atype, 0, 0, ctypes.addressof(ids), 64)
        try:
            bpf(BPF_PROG_QUERY, attr)
        except OSError as e:
            if e.errno == 22:  # EINVAL: attach type unknown before 6.6
                return 3
            raise
        cnt = struct.unpack_from("I", attr, 24)[0]
        for i in range(cnt):
            print(name, ids[i], prog_name(ids[i]))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "vm" and len(argv) == 7:
        return vm(*argv[2:7])
    if len(argv) == 5 and argv[1] == "ping":
        return ping(argv[2], int(argv[3]), int(argv[4]))
    if len(argv) == 3 and argv[1] == "tcx":
        return tcx(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
