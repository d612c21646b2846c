#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The lab's remote end: an HTTP server and a UDP echo server on one address.

Runs in the "internet" namespace (tfinet) and on the LAN (tflan), started by
tools/lab/lab.sh. Responses have exact, known sizes so that tests can check
byte counts:
  GET /1M       1048576 bytes (the guests' "http" script)
  GET /N        N bytes, for any N up to 64 MiB (e.g. /1000)
  UDP port 7    echo: every datagram goes back unchanged

  inet-server.py ADDR PIDFILE
"""
import http.server
import os
import socket
import socketserver
import sys
import threading

MAX_BODY = 64 << 20
CHUNK = bytes(range(256)) * 256  # 64 KiB of a fixed pattern


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: the server closes after each response, so every download is
    # one complete TCP connection (SYN..FIN) inside the guest's script run.
    protocol_version = "HTTP/1.0"
    server_version = "tflab"
    sys_version = ""

    def do_GET(self):
        path = self.path.lstrip("/")
        size = 1 << 20 if path == "1M" else int(path) if path.isdigit() else -1
        if size < 0 or size > MAX_BODY:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        left = size
        while left > 0:
            n = min(left, len(CHUNK))
            self.wfile.write(CHUNK[:n])
            left -= n

    def log_message(self, fmt, *args):
        sys.stderr.write("http %s %s\n" % (self.client_address[0], fmt % args))


class HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def udp_echo(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 7))
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data, peer)


def main():
    addr, pidfile = sys.argv[1], sys.argv[2]
    httpd = HTTPServer((addr, 80), Handler)
    threading.Thread(target=udp_echo, args=(addr,), daemon=True).start()
    # Written only once both sockets are bound: lab.sh waits for this file.
    with open(pidfile + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(pidfile + ".tmp", pidfile)
    sys.stderr.write("serving on %s: http :80, udp echo :7\n" % addr)
    sys.stderr.flush()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
