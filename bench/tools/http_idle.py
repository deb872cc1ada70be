#!/usr/bin/env python3
"""Holds many idle HTTP/1.1 keep-alive connections open to a server.

    http_idle.py --port P [--conns 10000] [--hold 10] [--path /plaintext] [--timeout 30]

Opens --conns connections to 127.0.0.1:P, at most IN_FLIGHT of them
connecting or waiting for their response at a time (so the server's accept
queue never overflows into SYN retries), and sends one GET on each. Once
every connection has had its 200 response it prints

    READY conns=N errors=E

and holds them, idle, for --hold seconds or until SIGUSR1 arrives (the
driver measures the server's memory meanwhile and then signals). Then it
checks that the server has closed none of them and prints

    RESULT idle_conns=N errors=E

before exiting 0: the protocol of bench/tools/echo-load's idle mode, so
that one driver function (benchlib.measure_idle) reads both. Errors are
failed connects, non-200 answers, resets, early EOFs and connections the
server closed while idle; the driver treats any as a failed measurement.
Needs a descriptor limit above --conns (it raises its soft limit to the
hard one).
"""
from __future__ import annotations

import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time

IN_FLIGHT = 256  # below every server's listen backlog (nginx is given 4,096)


class Conn:
    """One connection: its socket, the request still to send, the answer so far."""

    def __init__(self, port: int, request: bytes):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = request
        self.received = b""
        err = self.sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(err, f"connect: {errno.errorcode.get(err, err)}")

    def on_writable(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"connect: {errno.errorcode.get(err, err)}")
        sent = self.sock.send(self.pending)
        self.pending = self.pending[sent:]

    def on_readable(self) -> bool:
        """True once the whole response is in; raises on EOF or a non-200 status."""
        data = self.sock.recv(65536)
        if not data:
            raise OSError(errno.ECONNRESET, "EOF before the whole response")
        self.received += data
        head, sep, body = self.received.partition(b"\r\n\r\n")
        if not sep:
            return False
        lines = head.decode("latin-1").split("\r\n")
        if lines[0].split()[1:2] != ["200"]:
            raise OSError(errno.EPROTO, f"answered {lines[0]!r}")
        fields = {name.strip().lower(): value.strip() for name, _, value in
                  (line.partition(":") for line in lines[1:])}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            return body.endswith(b"0\r\n\r\n")  # no trailers: enough for a GET's answer
        if "content-length" not in fields:
            raise OSError(errno.EPROTO, "neither Content-Length nor chunked")
        return len(body) >= int(fields["content-length"])


def open_all(port: int, count: int, request: bytes, deadline: float) -> tuple[list, int]:
    """Returns (sockets that got their answer, errors)."""
    sel = selectors.DefaultSelector()
    done, errors, started, busy = [], 0, 0, 0
    while len(done) + errors < count:
        while busy < IN_FLIGHT and started < count:
            started += 1
            try:
                conn = Conn(port, request)
            except OSError as e:
                errors += 1
                print(f"connection {started}: {e.strerror}", file=sys.stderr)
                continue
            sel.register(conn.sock, selectors.EVENT_WRITE, conn)
            busy += 1
        if time.monotonic() > deadline:
            errors += count - len(done) - errors
            print("timed out waiting for answers", file=sys.stderr)
            break
        for key, events in sel.select(timeout=1):
            conn = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    conn.on_writable()
                    if not conn.pending:
                        sel.modify(conn.sock, selectors.EVENT_READ, conn)
                    continue
                if not conn.on_readable():
                    continue
                sel.unregister(conn.sock)
                done.append(conn.sock)
            except OSError as e:
                errors += 1
                print(f"{e.strerror}", file=sys.stderr)
                sel.unregister(conn.sock)
                conn.sock.close()
            busy -= 1
    sel.close()
    return done, errors


def count_closed(socks: list) -> int:
    """Connections the server has closed or written to meanwhile (neither should happen)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(timeout=0))
    sel.close()
    return closed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=10000)
    parser.add_argument("--hold", type=float, default=10,
                        help="most s to hold them (default 10)")
    parser.add_argument("--path", default="/plaintext")
    parser.add_argument("--timeout", type=float, default=30,
                        help="most s to get every answer (default 30)")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.conns + 64:
        parser.error(f"the descriptor limit ({hard}) is below --conns + 64")

    # Blocked before READY, so that a signal sent right after it waits for us.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    request = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n\r\n".encode()
    socks, errors = open_all(args.port, args.conns, request, time.monotonic() + args.timeout)
    print(f"READY conns={len(socks)} errors={errors}", flush=True)
    signal.sigtimedwait([signal.SIGUSR1], args.hold)
    closed = count_closed(socks)
    if closed:
        print(f"the server closed {closed} idle connections", file=sys.stderr)
    for s in socks:
        s.close()
    print(f"RESULT idle_conns={len(socks)} errors={errors + closed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
