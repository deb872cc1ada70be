"""What every HTTP integration test needs: apps/hello started on a free port,
and a raw-socket HTTP/1.1 client that shows exactly what the server sent.

The client is deliberately small and literal: it parses responses itself
(status line, fields, Content-Length or chunked bodies) so a test sees the
bytes on the wire, not what a forgiving library made of them.
"""
import ctypes
import os
import queue
import re
import resource
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HELLO = os.environ.get("SPINDLE_HELLO")  # run.py sets it from --hello
HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds until "listening on" must appear


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def child_setup():
    """In hello, before exec: the raised file limit (slowloris), and death
    with this process, so a runner killed by meson's timeout leaks no server."""
    raise_nofile()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def raise_nofile():
    """Raises this process's open-file limit to its hard limit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Hello:
    """apps/hello as a child process: start() waits for its listening line,
    stop() sends SIGTERM and returns the exit status."""

    def __init__(self, *flags):
        if not HELLO:
            raise unittest.SkipTest("no --hello executable given")
        self.flags = [str(f) for f in flags]
        self.proc = None
        self.port = None
        self.stdout_lines = []

    def start(self):
        args = [HELLO, "--host", HOST, "--port", "0", *self.flags]
        # The server's log goes to a file: a pipe nobody reads would block it.
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     preexec_fn=child_setup)
        lines = queue.Queue()

        def pump():  # keeps reading stdout so the server never blocks on it
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(f"{' '.join(args)}: no 'listening on' line in "
                                     f"{START_TIMEOUT}s; stderr: {self.log()}")
            if line is None:
                code = self.proc.wait()
                raise AssertionError(f"{' '.join(args)} exited {code} before listening; "
                                     f"stderr: {self.log()}")
            m = re.search(r"listening on (\S+):(\d+)", line)
            if m:
                self.port = int(m.group(2))
                return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self, limit=4000):
        """The server's stderr so far (its tail), for failure messages."""
        self.stderr.flush()
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        return text[-limit:]

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit status, or None if still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=15.0):
        """SIGTERM, then the exit status; kills it (and fails) if it hangs."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill()
            raise AssertionError(f"hello did not exit within {timeout}s of SIGTERM")
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()


class ServerTestCase(unittest.TestCase):
    """One hello per test class (FLAGS are its command-line flags); after every
    test the server must still be running, so a crash is pinned on the test
    that caused it."""

    FLAGS = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Hello(*cls.FLAGS).start()
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"hello exited {code} on SIGTERM; stderr: {cls.server.log()}")

    def tearDown(self):
        if not self.server.alive():
            code = self.server.proc.returncode
            log = self.server.log()
            type(self).server = Hello(*self.FLAGS).start()  # the next test gets a server
            type(self).port = self.server.port
            self.fail(f"hello died during this test (status {code}); stderr: {log}")

    def conn(self, timeout=5.0):
        return Conn(self.port, timeout)


class Closed(Exception):
    """The connection ended before a complete response arrived."""


class Response:
    def __init__(self, version, status, reason, fields, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.fields = fields  # [(name, value)] in order, names as sent
        self.body = body
        self.raw = raw  # the response's bytes as received (head + body)

    def all(self, name):
        return [v for n, v in self.fields if n.lower() == name.lower()]

    def header(self, name):
        values = self.all(name)
        return ", ".join(values) if values else None

    def tokens(self, name):
        """A list-valued field's members, lower-cased (e.g. Connection)."""
        value = self.header(name) or ""
        return [t.strip().lower() for t in value.split(",") if t.strip()]

    def closes(self):
        return "close" in self.tokens("Connection")

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


class Conn:
    """A raw TCP connection with a response parser; recv errors are reported
    as Closed, never hidden."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.ended = None  # None, "eof" or "reset" once the peer is gone

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """Sends everything it can; returns False if the server had already
        closed (EPIPE/ECONNRESET): its response may still be readable."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline):
        if self.ended:
            raise Closed(self.ended)
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.ended = "reset"
            raise Closed("reset")
        if not chunk:
            self.ended = "eof"
            raise Closed("eof")
        self.buf += chunk

    def _take_until(self, marker, deadline):
        while marker not in self.buf:
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head=False, timeout=None):
        """The next response (1xx included). head: it answers a HEAD request.
        Raises Closed if the connection ends first, socket.timeout if slow."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        raw_head = self._take_until(b"\r\n\r\n", deadline)
        lines = raw_head[:-4].split(b"\r\n")
        m = re.fullmatch(rb"(HTTP/\d\.\d) (\d{3}) ?(.*)", lines[0])
        if not m:
            raise AssertionError(f"malformed status line {lines[0]!r} in {raw_head!r}")
        fields = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise AssertionError(f"malformed response field {line!r}")
            fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        resp = Response(m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1"),
                        fields, b"", raw_head)
        if head or resp.status < 200 or resp.status in (204, 304):
            return resp
        if "chunked" in resp.tokens("Transfer-Encoding"):
            body = b""
            while True:
                line = self._take_until(b"\r\n", deadline)
                resp.raw += line
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailer section up to the empty line
                        line = self._take_until(b"\r\n", deadline)
                        resp.raw += line
                        if line == b"\r\n":
                            break
                    break
                data = self._take(size + 2, deadline)
                resp.raw += data
                if data[-2:] != b"\r\n":
                    raise AssertionError(f"chunk without CRLF: {data[-10:]!r}")
                body += data[:-2]
            resp.body = body
        elif resp.header("Content-Length") is not None:
            resp.body = self._take(int(resp.header("Content-Length")), deadline)
            resp.raw += resp.body
        else:  # delimited by the end of the connection
            try:
                while True:
                    self._fill(deadline)
            except Closed:
                pass
            resp.body, self.buf = self.buf, b""
            resp.raw += resp.body
        return resp

    def final_response(self, head=False, timeout=None):
        """The next non-1xx response."""
        while True:
            resp = self.read_response(head=head, timeout=timeout)
            if resp.status >= 200:
                return resp

    def drain(self, timeout):
        """Reads until the peer closes or `timeout` passes; returns
        (bytes, how) with how in "eof", "reset", "timeout"."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed as e:
            how = str(e)
        except socket.timeout:
            how = "timeout"
        out, self.buf = self.buf, b""
        return out, how

    def request(self, method, target, body=None, fields=(), version="HTTP/1.1"):
        """Sends one well-formed request and returns its final response."""
        self.send(build(method, target, body, fields, version))
        return self.final_response(head=(method == "HEAD"))


def build(method, target, body=None, fields=(), version="HTTP/1.1", host="localhost"):
    """Request bytes: Host (unless None), the fields given, Content-Length
    when there is a body, then the body."""
    head = f"{method} {target} {version}\r\n"
    if host is not None:
        head += f"Host: {host}\r\n"
    for name, value in fields:
        head += f"{name}: {value}\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def parse_all(data, head_first=False):
    """Every complete response in `data` (e.g. what arrived before the close)."""
    c = Conn.__new__(Conn)
    c.buf, c.ended, c.timeout = data, "eof", 0
    out = []
    while c.buf:
        try:
            out.append(c.read_response(head=head_first and not out, timeout=0))
        except (Closed, socket.timeout, AssertionError, ValueError):
            break
    return out


GET_PLAIN = build("GET", "/plaintext")
HELLO_BODY = b"Hello, World!"
JSON_BODY = b'{"message":"Hello, World!"}'
