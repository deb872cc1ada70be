"""HTTP/1.1 protocol correctness on raw sockets (RFC 9110, RFC 9112):
routes, keep-alive, pipelining, chunked bodies, HEAD, OPTIONS, request
targets, Host, versions and malformed request lines."""
import email.utils
import json
import re
import socket
import time
import unittest

from server import (GET_PLAIN, HELLO_BODY, JSON_BODY, ServerTestCase, build, parse_all)

IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                         r"Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT")


class HttpTestCase(ServerTestCase):
    def assert_rejected(self, data, statuses=(400,), smuggle=True, eof_timeout=3.0):
        """`data` must get exactly one response with a status in `statuses`
        and "Connection: close", then the connection must close; a request
        sent right after it (smuggle) must never be answered."""
        with self.conn() as c:
            c.send(data + (GET_PLAIN if smuggle else b""))
            out, how = c.drain(eof_timeout)
        resps = parse_all(out)
        ctx = f"\n sent: {data[:600]!r}\n got:  {out[:600]!r}\n then: {how}"
        self.assertTrue(resps, "no complete response" + ctx)
        self.assertIn(resps[0].status, statuses, "status" + ctx)
        self.assertTrue(resps[0].closes(), "the response lacks Connection: close" + ctx)
        self.assertEqual(len(resps), 1, "bytes after the bad request were served" + ctx)
        self.assertNotIn(HELLO_BODY, out, "the smuggled request was served" + ctx)
        self.assertIn(how, ("eof", "reset"), "the server kept the connection open" + ctx)
        return resps[0]

    def assert_served(self, data, status=200, body=None, head=False):
        """`data` is one request that must be answered with `status`, and the
        connection must then serve a plain GET."""
        with self.conn() as c:
            c.send(data)
            resp = c.final_response(head=head)
            ctx = f"\n sent: {data[:600]!r}\n got:  {resp.raw[:600]!r}"
            self.assertEqual(resp.status, status, ctx)
            if body is not None:
                self.assertEqual(resp.body, body, ctx)
            if not resp.closes():
                c.send(GET_PLAIN)
                nxt = c.final_response()
                self.assertEqual((nxt.status, nxt.body), (200, HELLO_BODY), "after" + ctx)
        return resp


class Routes(HttpTestCase):
    def test_plaintext(self):
        with self.conn() as c:
            r = c.request("GET", "/plaintext")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, HELLO_BODY)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"), r)
        self.assertEqual(r.header("Content-Length"), "13", r)

    def test_json(self):
        with self.conn() as c:
            r = c.request("GET", "/json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, JSON_BODY)
        self.assertEqual(json.loads(r.body), {"message": "Hello, World!"})
        self.assertTrue(r.header("Content-Type").startswith("application/json"), r)

    def test_date_header(self):
        """RFC 9110 §6.6.1: an origin server with a clock sends Date, IMF-fixdate."""
        with self.conn() as c:
            r = c.request("GET", "/plaintext")
        date = r.header("Date")
        self.assertIsNotNone(date, r)
        self.assertRegex(date, IMF_FIXDATE)
        sent = email.utils.parsedate_to_datetime(date).timestamp()
        self.assertLess(abs(sent - time.time()), 3.0, f"Date {date} is off")

    def test_echo(self):
        body = bytes(range(256)) * 4
        with self.conn() as c:
            r = c.request("POST", "/echo", body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, body)

    def test_echo_empty_body(self):
        with self.conn() as c:
            r = c.request("POST", "/echo", b"")
        self.assertEqual((r.status, r.body), (200, b""), r)

    def test_unknown_path_404(self):
        with self.conn() as c:
            r = c.request("GET", "/nope")
        self.assertEqual(r.status, 404, r)

    def test_wrong_method_405_with_allow(self):
        with self.conn() as c:
            r = c.request("POST", "/plaintext", b"")
            self.assertEqual(r.status, 405, r)
            self.assertIn("get", r.tokens("Allow"), r)
            self.assertIn("head", r.tokens("Allow"), r)
            r = c.request("GET", "/echo")
            self.assertEqual(r.status, 405, r)
            self.assertIn("post", r.tokens("Allow"), r)

    def test_head_has_length_and_no_body(self):
        """HEAD answered like GET without a body (RFC 9110 §9.3.2): the GET
        pipelined behind it must be the very next bytes."""
        with self.conn() as c:
            c.send(build("HEAD", "/plaintext") + build("GET", "/json"))
            head = c.read_response(head=True)
            self.assertEqual(head.status, 200, head)
            self.assertEqual(head.header("Content-Length"), "13", head)
            nxt = c.read_response()
            self.assertEqual((nxt.status, nxt.body), (200, JSON_BODY),
                             f"after HEAD: {head.raw!r} then {nxt.raw!r}")

    def test_options_asterisk(self):
        """OPTIONS * (RFC 9112 §3.2.4) is a server-wide request: 2xx with Allow."""
        with self.conn() as c:
            r = c.request("OPTIONS", "*")
        self.assertTrue(200 <= r.status < 300, r)
        self.assertIsNotNone(r.header("Allow"), r)

    def test_options_path(self):
        with self.conn() as c:
            r = c.request("OPTIONS", "/plaintext")
        self.assertTrue(200 <= r.status < 300, r)
        self.assertIn("get", r.tokens("Allow"), r)

    def test_unclean_path_redirects(self):
        """Go's ServeMux answers an unclean path with 301 to the cleaned one."""
        for target in ("/x/../plaintext", "//plaintext", "/./plaintext"):
            with self.subTest(target=target), self.conn() as c:
                r = c.request("GET", target)
                self.assertEqual(r.status, 301, r)
                self.assertEqual(r.header("Location"), "/plaintext", r)


class KeepAlive(HttpTestCase):
    def test_three_requests_one_connection(self):
        with self.conn() as c:
            for target, body in (("/plaintext", HELLO_BODY), ("/json", JSON_BODY),
                                 ("/plaintext", HELLO_BODY)):
                r = c.request("GET", target)
                self.assertEqual((r.status, r.body), (200, body), r)
                self.assertFalse(r.closes(), r)

    def test_http10_closes_by_default(self):
        with self.conn() as c:
            c.send(b"GET /plaintext HTTP/1.0\r\nHost: localhost\r\n\r\n")
            r = c.final_response()
            self.assertEqual((r.status, r.body), (200, HELLO_BODY), r)
            self.assertNotIn("keep-alive", r.tokens("Connection"), r)
            rest, how = c.drain(3.0)
        self.assertEqual((rest, how), (b"", "eof"), "an HTTP/1.0 connection stayed open")

    def test_http10_keep_alive_opt_in(self):
        req = b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        with self.conn() as c:
            for _ in range(2):
                c.send(req)
                r = c.final_response()
                self.assertEqual((r.status, r.body), (200, HELLO_BODY), r)
                self.assertIn("keep-alive", r.tokens("Connection"), r)

    def test_client_connection_close(self):
        for value in ("close", "Close", "keep-alive, close"):
            with self.subTest(connection=value), self.conn() as c:
                c.send(build("GET", "/plaintext", fields=[("Connection", value)]) + GET_PLAIN)
                r = c.final_response()
                self.assertEqual((r.status, r.body), (200, HELLO_BODY), r)
                self.assertTrue(r.closes(), r)
                rest, how = c.drain(3.0)
                self.assertEqual((rest, how in ("eof", "reset")), (b"", True),
                                 f"after Connection: close the server sent {rest!r} / {how}")

    def test_half_close_after_requests(self):
        # Requests and the client's FIN in one send: the server answers each,
        # then sees the FIN and closes at once. (After a short read it waits
        # for the next readiness edge instead of reading again, and a FIN
        # that came with the data raises no edge of its own.)
        # A first exchange leaves the connection idle with its read armed,
        # so the next data and FIN come in as one edge.
        for count in (1, 2):
            with self.subTest(requests=count), self.conn() as c:
                self.assertEqual(c.request("GET", "/plaintext").status, 200)
                time.sleep(0.05)  # let the server go idle
                c.sock.sendall(GET_PLAIN * count)
                c.sock.shutdown(socket.SHUT_WR)
                got = [c.final_response() for _ in range(count)]
                self.assertEqual([(r.status, r.body) for r in got], [(200, HELLO_BODY)] * count)
                rest, how = c.drain(3.0)
                self.assertEqual((rest, how), (b"", "eof"),
                                 "the server kept a half-closed connection open")


PIPELINE = (build("GET", "/plaintext") + build("POST", "/echo", b"hello world") +
            build("GET", "/json"))
PIPELINE_CHUNKED = (build("GET", "/plaintext") +
                    b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" + build("GET", "/json"))
PIPELINE_WANT = [(200, HELLO_BODY), (200, b"hello world"), (200, JSON_BODY)]


class Pipelining(HttpTestCase):
    def exchange(self, parts, pause):
        with self.conn(timeout=2.0) as c:
            for i, part in enumerate(parts):
                if i:
                    time.sleep(pause)
                c.send(part)
            return [c.final_response() for _ in PIPELINE_WANT]

    def test_three_in_one_send(self):
        got = self.exchange([PIPELINE], 0)
        self.assertEqual([(r.status, r.body) for r in got], PIPELINE_WANT)

    def check_every_split(self, data):
        bad = []
        for k in range(1, len(data)):
            for pause in (0, 0.005):
                try:
                    got = [(r.status, r.body) for r in self.exchange([data[:k], data[k:]], pause)]
                except Exception as e:  # a timeout or a close is a failure of this split
                    got = repr(e)
                if got != PIPELINE_WANT:
                    bad.append((k, pause, data[:k][-20:], got))
            if len(bad) >= 6:  # enough to show the pattern; each costs a timeout
                break
        self.assertEqual(bad, [], f"splits that failed (offset, pause, bytes before the split, "
                                  f"responses; the search stops at 6): {bad}")

    def test_split_at_every_byte(self):
        self.check_every_split(PIPELINE)

    def test_split_at_every_byte_chunked(self):
        self.check_every_split(PIPELINE_CHUNKED)


class ChunkedBodies(HttpTestCase):
    def test_extensions_and_trailers(self):
        data = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                b"Trailer: X-Checksum\r\n\r\n"
                b"5;name=value\r\nhello\r\n"
                b"1;a;b=\"quoted;ext\"\r\n \r\n"
                b"A;token=1\r\nchunked!!!\r\n"
                b"0;last=1\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n")
        self.assert_served(data, 200, b"hello chunked!!!")

    def test_extension_quoted_pair(self):
        """chunk-ext-val may be a quoted-string with quoted-pairs (RFC 9110 §5.6.4)."""
        data = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;a=\"say \\\"hi\\\" \\\\ ok\"\r\nhello\r\n0\r\n\r\n")
        self.assert_served(data, 200, b"hello")

    def test_extension_bad_whitespace(self):
        """chunk-ext allows BWS around ";" and "=" (RFC 9112 §7.1.1), which a
        recipient MUST accept and remove (RFC 9110 §5.6.3)."""
        for ext in (b" ;a=b", b"; a=b", b";a =b", b";a= b", b" ; a = b"):
            with self.subTest(ext=ext):
                data = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                        b"\r\n5" + ext + b"\r\nhello\r\n0\r\n\r\n")
                self.assert_served(data, 200, b"hello")

    def test_uppercase_hex_and_leading_zeros(self):
        body = bytes(range(256)) * 2
        data = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"00FF\r\n" + body[:255] + b"\r\n0101\r\n" + body[255:] + b"\r\n000\r\n\r\n")
        self.assert_served(data, 200, body)

    def test_many_small_chunks(self):
        body = bytes((i * 7) % 256 for i in range(3000))
        chunked = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body)))
        data = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
                chunked + b"0\r\n\r\n")
        self.assert_served(data, 200, body)

    def test_transfer_encoding_case_insensitive(self):
        """Transfer codings are case-insensitive (RFC 9112 §7)."""
        data = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: Chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\n\r\n")
        self.assert_served(data, 200, b"abc")


class RequestTargets(HttpTestCase):
    def test_absolute_form(self):
        self.assert_served(b"GET http://localhost/plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n",
                           200, HELLO_BODY)

    def test_absolute_form_wins_over_host(self):
        """RFC 9112 §3.2.2: the origin server ignores Host for an absolute-form target."""
        self.assert_served(b"GET http://localhost:8080/json HTTP/1.1\r\nHost: other.example\r\n\r\n",
                           200, JSON_BODY)

    def test_query_string(self):
        self.assert_served(build("GET", "/plaintext?a=1&b=%20"), 200, HELLO_BODY)

    def test_empty_line_before_request_line(self):
        """RFC 9112 §2.2: a server SHOULD ignore at least one empty line before it."""
        self.assert_served(b"\r\n" + GET_PLAIN, 200, HELLO_BODY)


class HostField(HttpTestCase):
    def test_missing_host_on_11(self):
        """RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host."""
        self.assert_rejected(b"GET /plaintext HTTP/1.1\r\n\r\n")

    def test_missing_host_on_absolute_form(self):
        self.assert_rejected(b"GET http://localhost/plaintext HTTP/1.1\r\n\r\n")

    def test_host_optional_on_10(self):
        with self.conn() as c:
            c.send(b"GET /plaintext HTTP/1.0\r\nUser-Agent: t\r\n\r\n")
            r = c.final_response()
        self.assertEqual((r.status, r.body), (200, HELLO_BODY), r)

    def test_request_without_any_field(self):
        """A head that is just the request line and the empty line is
        complete: it is answered at once (HTTP/1.0: served; HTTP/1.1: 400, no Host)."""
        for data, status in ((b"GET /plaintext HTTP/1.0\r\n\r\n", 200),
                             (b"GET /plaintext HTTP/1.1\r\n\r\n", 400)):
            with self.subTest(data=data), self.conn() as c:
                c.send(data)
                try:
                    r = c.final_response(timeout=3.0)
                except Exception as e:
                    self.fail(f"sent {data!r}: no response in 3 s ({e!r})")
                self.assertEqual(r.status, status, r)

    def test_two_host_fields(self):
        self.assert_rejected(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")
        self.assert_rejected(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")

    def test_host_list(self):
        self.assert_rejected(b"GET /plaintext HTTP/1.1\r\nHost: a, b\r\n\r\n")

    def test_invalid_host(self):
        """Host = uri-host [ ":" port ] (RFC 9110 §7.2); anything else is 400."""
        for host in (b"exa mple.com", b"user@example.com", b"example.com:port", b"a/b",
                     b"[::1", b"example.com:80:80", b"ex\"ample", b"a\\b"):
            with self.subTest(host=host):
                self.assert_rejected(b"GET /plaintext HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")

    def test_valid_hosts(self):
        for host in (b"localhost", b"localhost:8080", b"127.0.0.1:1", b"[::1]:80",
                     b"xn--bcher-kva.example", b"a-b.c_d~e", b""):
            with self.subTest(host=host):
                self.assert_served(b"GET /plaintext HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                                   200, HELLO_BODY)


class Versions(HttpTestCase):
    def test_higher_minor_version_is_11(self):
        """RFC 9110 §2.5: a higher minor version of a known major version
        SHOULD be processed as the highest minor the server implements."""
        with self.conn() as c:
            c.send(b"GET /plaintext HTTP/1.2\r\nHost: localhost\r\n\r\n")
            r = c.final_response()
        self.assertEqual((r.status, r.body), (200, HELLO_BODY), r)
        self.assertEqual(r.version, "HTTP/1.1", r)

    def test_unsupported_major_version_505(self):
        """RFC 9110 §15.6.6: 505 for a major version the server does not support."""
        for version in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9"):
            with self.subTest(version=version):
                self.assert_rejected(b"GET /plaintext " + version + b"\r\nHost: localhost\r\n\r\n",
                                     statuses=(505,))

    def test_malformed_version_400(self):
        for version in (b"HTTP/1", b"HTTP/1.10", b"HTTP/11.1", b"http/1.1", b"HTTP/1.1x",
                        b"HTTP/1.a", b"HTTPS/1.1", b"HTTP 1.1"):
            with self.subTest(version=version):
                self.assert_rejected(b"GET /plaintext " + version + b"\r\nHost: localhost\r\n\r\n")


class MalformedRequestLines(HttpTestCase):
    def test_malformed_request_lines_400(self):
        """RFC 9112 §3: request-line = method SP request-target SP HTTP-version."""
        for line in (b"GET /plaintext",                      # HTTP/0.9 form
                     b"GET /plaintext HTTP/1.1 extra",
                     b"/plaintext HTTP/1.1",
                     b"GET  /plaintext HTTP/1.1",            # two spaces
                     b"GET /plaintext  HTTP/1.1",
                     b" GET /plaintext HTTP/1.1",
                     b"GET /plain text HTTP/1.1",
                     b"G@T /plaintext HTTP/1.1",             # not a token
                     b"GET plaintext HTTP/1.1",              # no form matches
                     b"GET * HTTP/1.1",                      # asterisk-form is for OPTIONS
                     b"GET localhost:80 HTTP/1.1",           # authority-form is for CONNECT
                     b"GET /plain\x00text HTTP/1.1",
                     b"GET /plain\x7ftext HTTP/1.1",
                     b"GET /plain\x01text HTTP/1.1",
                     b"GET /plaintext\rHTTP/1.1"):
            with self.subTest(line=line):
                self.assert_rejected(line + b"\r\nHost: localhost\r\n\r\n")

    def test_garbage(self):
        for data in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n",
                     b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                     b"\xff\xfe\xfd\r\n\r\n"):
            with self.subTest(data=data[:16]):
                with self.conn() as c:
                    c.send(data + GET_PLAIN)
                    out, how = c.drain(3.0)
                resps = parse_all(out)
                self.assertLessEqual(len(resps), 1, out)
                self.assertTrue(all(400 <= r.status < 600 for r in resps), out)
                self.assertNotIn(HELLO_BODY, out)
                self.assertIn(how, ("eof", "reset"), out)


class FieldValues(HttpTestCase):
    def test_obs_text_and_htab_accepted(self):
        """field-vchar includes obs-text (0x80-0xFF) and HTAB is allowed
        inside a value (RFC 9110 §5.5)."""
        self.assert_served(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n"
                           b"X-Name: caf\xc3\xa9\r\nX-Tab: a\tb\r\nX-Empty:\r\n"
                           b"X-Ows: \t padded \t\r\n\r\n", 200, HELLO_BODY)


if __name__ == "__main__":
    unittest.main()
