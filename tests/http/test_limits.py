"""Limits (414, 431, 413), Expect: 100-continue, and the read-header and
idle timeouts, on raw sockets."""
import socket
import time
import unittest

from server import GET_PLAIN, HELLO_BODY, build
from test_protocol import HttpTestCase

MAX_BODY = 4096


def fields(n, size=16):
    """n header fields of about `size` bytes each."""
    return [(f"X-F{i}", "v" * max(1, size - 8)) for i in range(n)]


class Limits(HttpTestCase):
    FLAGS = ("--max-body", MAX_BODY)

    def test_request_line_414(self):
        self.assert_rejected(build("GET", "/" + "a" * (9 * 1024)), statuses=(414,))

    def test_request_line_under_limit(self):
        target = "/plaintext?q=" + "a" * (8000 - len("GET /plaintext?q= HTTP/1.1"))
        self.assert_served(build("GET", target), 200, HELLO_BODY)

    def test_header_section_431(self):
        self.assert_rejected(build("GET", "/plaintext", fields=fields(70, 1024)), statuses=(431,))

    def test_one_huge_field_431(self):
        self.assert_rejected(build("GET", "/plaintext", fields=[("X-Big", "b" * 70 * 1024)]),
                             statuses=(431,))

    def test_header_section_under_limit(self):
        self.assert_served(build("GET", "/plaintext", fields=fields(60, 1000)), 200, HELLO_BODY)

    def test_101_fields_431(self):
        """Host plus 100 more: 101 fields, one over the default limit of 100."""
        self.assert_rejected(build("GET", "/plaintext", fields=fields(100)), statuses=(431,))

    def test_100_fields_served(self):
        self.assert_served(build("GET", "/plaintext", fields=fields(99)), 200, HELLO_BODY)

    def test_body_at_limit_served(self):
        body = bytes(i % 251 for i in range(MAX_BODY))
        self.assert_served(build("POST", "/echo", body), 200, body)

    def test_body_over_limit_413(self):
        """413 (RFC 9110 §15.5.14); if the connection stays open, the body
        was skipped correctly and the next request is served."""
        self.assert_served(build("POST", "/echo", b"x" * (MAX_BODY + 1)), 413)

    def test_chunked_body_over_limit_413(self):
        body = b"".join(b"400\r\n" + b"y" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
        self.assert_served(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + body, 413)

    def test_big_body_declared_413_before_sending(self):
        with self.conn() as c:
            c.send(build("POST", "/echo", fields=[("Content-Length", 10 * MAX_BODY)]))
            r = c.read_response(timeout=3.0)
        self.assertEqual(r.status, 413, r)


class ExpectContinue(HttpTestCase):
    FLAGS = ("--max-body", MAX_BODY)

    def expect_head(self, method, target, length, version="HTTP/1.1"):
        return build(method, target, fields=[("Expect", "100-continue"),
                                             ("Content-Length", length)], version=version)

    def test_100_continue_before_body(self):
        body = b"the body, sent only after 100 Continue"
        with self.conn() as c:
            c.send(self.expect_head("POST", "/echo", len(body)))
            interim = c.read_response(timeout=3.0)
            self.assertEqual(interim.status, 100, interim)
            self.assertTrue(interim.raw.startswith(b"HTTP/1.1 100 Continue\r\n"), interim)
            c.send(body)
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, body), r)
            # the connection is still good
            c.send(GET_PLAIN)
            self.assertEqual(c.final_response().body, HELLO_BODY)

    def expect_no_continue(self, head, status):
        with self.conn() as c:
            c.send(head)
            r = c.read_response(timeout=3.0)
        self.assertEqual(r.status, status, f"sent {head!r}, got {r.raw!r}")

    def test_unknown_path_404_without_100(self):
        self.expect_no_continue(self.expect_head("POST", "/nope", 5), 404)

    def test_wrong_method_405_without_100(self):
        self.expect_no_continue(self.expect_head("POST", "/plaintext", 5), 405)

    def test_over_limit_413_without_100(self):
        self.expect_no_continue(self.expect_head("POST", "/echo", MAX_BODY + 1), 413)

    def test_http10_expectation_ignored(self):
        """RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 MUST be ignored."""
        with self.conn() as c:
            c.send(self.expect_head("POST", "/echo", 5, version="HTTP/1.0"))
            c.sock.settimeout(0.5)
            try:
                early = c.sock.recv(100)
            except socket.timeout:
                early = b""
            self.assertEqual(early, b"", "the server answered an HTTP/1.0 expectation")
            c.send(b"hello")
            r = c.final_response()
        self.assertEqual((r.status, r.body), (200, b"hello"), r)


READ_HEADER_MS = 1000
IDLE_MS = 1500


class Timeouts(HttpTestCase):
    FLAGS = ("--read-header-timeout-ms", READ_HEADER_MS, "--idle-timeout-ms", IDLE_MS)

    def closed_after(self, c, timeout):
        """Seconds until the server ends `c` (its 408, if any, is checked)."""
        start = time.monotonic()
        out, how = c.drain(timeout)
        took = time.monotonic() - start
        self.assertIn(how, ("eof", "reset"), f"still open after {timeout}s; got {out!r}")
        if out:
            self.assertTrue(out.startswith(b"HTTP/1.1 408 "), out)
        return took

    def test_idle_keep_alive_closed(self):
        with self.conn() as c:
            self.assertEqual(c.request("GET", "/plaintext").status, 200)
            took = self.closed_after(c, IDLE_MS / 1000 + 2.0)
        self.assertGreater(took, IDLE_MS / 1000 - 0.3, "closed before the idle timeout")

    def test_silent_connection_closed(self):
        with self.conn() as c:
            self.closed_after(c, max(IDLE_MS, READ_HEADER_MS) / 1000 + 2.0)

    def test_read_header_timeout(self):
        with self.conn() as c:
            c.send(b"GET /plaintext HTTP/1.1\r\nHo")
            took = self.closed_after(c, READ_HEADER_MS / 1000 + 2.0)
        self.assertGreater(took, READ_HEADER_MS / 1000 - 0.3)

    def test_trickle_does_not_extend_the_header_deadline(self):
        """The header deadline runs from the first byte: a byte every 100 ms
        does not restart it. The cut-off is the 408 or the close, whichever
        comes first."""
        data = b"GET /plaintext HTTP/1.1\r\nX-Slow: " + b"a" * 100
        with self.conn() as c:
            start = time.monotonic()
            cut = None
            for byte in data:
                if not c.send(bytes([byte])):
                    cut = time.monotonic() - start
                    break
                c.sock.settimeout(0.1)
                try:
                    got = c.sock.recv(1024)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    got = b""
                c.buf += got
                cut = time.monotonic() - start
                break
            self.assertIsNotNone(cut, "a trickling header section was never cut off")
            self.assertLess(cut, READ_HEADER_MS / 1000 + 1.5)
            self.assertGreater(cut, READ_HEADER_MS / 1000 - 0.3)
            rest, how = c.drain(2.0)
            answer = c.buf + rest
            if answer:
                self.assertTrue(answer.startswith(b"HTTP/1.1 408 "), answer)
            self.assertIn(how, ("eof", "reset"), f"not closed after {answer!r}")

    def test_slow_header_within_deadline_served(self):
        with self.conn() as c:
            for part in (b"GET /plain", b"text HTTP/1.1\r\n", b"Host: a\r\n", b"\r\n"):
                c.send(part)
                time.sleep(0.15)
            r = c.final_response()
        self.assertEqual((r.status, r.body), (200, HELLO_BODY), r)

    def test_idle_timer_restarts_per_request(self):
        with self.conn() as c:
            for _ in range(3):
                time.sleep(IDLE_MS / 1000 * 0.6)
                r = c.request("GET", "/plaintext")
                self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
