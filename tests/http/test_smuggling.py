"""Request smuggling defences (RFC 9112 §5, §6.1, §6.3, §7.1; RFC 9110 §5.5,
§8.6). Every ambiguous or malformed framing is rejected with one response
that says "Connection: close", the connection closes, and a request sent
right behind it is never answered (it could be a smuggled one)."""
import unittest

from server import GET_PLAIN, HELLO_BODY, parse_all
from test_protocol import HttpTestCase


def post(fields, body=b"", version=b"HTTP/1.1", target=b"/echo"):
    head = b"POST " + target + b" " + version + b"\r\nHost: localhost\r\n"
    return head + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def chunked(body):
    return post([b"Transfer-Encoding: chunked"], body)


class ContentLength(HttpTestCase):
    def test_valid_with_ows(self):
        """OWS around a field value is not part of it (RFC 9110 §5.5)."""
        for value in (b"  5", b"5 ", b"5\t", b"\t5", b" 5 \t"):
            with self.subTest(value=value):
                self.assert_served(post([b"Content-Length:" + value], b"hello"), 200, b"hello")

    def test_malformed(self):
        for value in (b"+5", b"-1", b"5 5", b"0x5", b"5.0", b"5a", b"1e1", b" ", b"",
                      b"\xd9\xa5"):  # an Arabic-Indic digit five
            with self.subTest(value=value):
                self.assert_rejected(post([b"Content-Length: " + value], b"hello"))

    def test_repeated(self):
        """RFC 9112 §6.3 lets a recipient reject a repeated value; the issue
        makes rejection the default."""
        for fields in ([b"Content-Length: 5, 5"],
                       [b"Content-Length: 5", b"Content-Length: 5"],
                       [b"Content-Length: 5", b"Content-Length: 6"],
                       [b"Content-Length: 5,6"]):
            with self.subTest(fields=fields):
                self.assert_rejected(post(fields, b"hello!"))

    def test_overflowing_value(self):
        """A numeral beyond 64 bits must neither wrap nor be trusted (RFC 9110 §8.6)."""
        for value in (b"18446744073709551616", b"99999999999999999999999999"):
            with self.subTest(value=value):
                self.assert_rejected(post([b"Content-Length: " + value], b"hello"),
                                     statuses=(400, 413))

    def test_huge_value_413_without_allocating(self):
        """A declared 1 TB body is refused (413) before any of it is sent, and
        the server does not allocate for it."""
        rss = self.server.rss_kib()
        self.assert_rejected(post([b"Content-Length: 1000000000000"]), statuses=(413,),
                             smuggle=False)
        grown = self.server.rss_kib() - rss
        self.assertLess(grown, 64 * 1024, f"RSS grew by {grown} KiB")


class TransferEncoding(HttpTestCase):
    def test_cl_and_te(self):
        """RFC 9112 §6.1: reject, or serve by Transfer-Encoding alone; either
        way the connection closes after the response."""
        for fields in ([b"Content-Length: 3", b"Transfer-Encoding: chunked"],
                       [b"Transfer-Encoding: chunked", b"Content-Length: 3"],
                       [b"Transfer-Encoding: chunked", b"Content-Length: 0"]):
            with self.subTest(fields=fields), self.conn() as c:
                data = post(fields, b"5\r\nhello\r\n0\r\n\r\n")
                c.send(data + GET_PLAIN)
                out, how = c.drain(3.0)
                resps = parse_all(out)
                ctx = f"\n sent: {data!r}\n got: {out!r} / {how}"
                self.assertEqual(len(resps), 1, ctx)
                r = resps[0]
                self.assertIn((r.status, r.body if r.status == 200 else None),
                              [(400, None), (200, b"hello")], ctx)
                self.assertTrue(r.closes(), ctx)
                self.assertIn(how, ("eof", "reset"), ctx)

    def test_te_on_http10(self):
        """RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing."""
        self.assert_rejected(post([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n\r\n",
                                  version=b"HTTP/1.0"))
        self.assert_rejected(post([b"Transfer-Encoding: chunked", b"Content-Length: 5"],
                                  b"hello", version=b"HTTP/1.0"))

    def test_unknown_coding_before_chunked_501(self):
        """RFC 9112 §6.1: a transfer coding the server does not understand
        SHOULD get 501."""
        for te in (b"gzip, chunked", b"identity, chunked", b"foo, chunked"):
            with self.subTest(te=te):
                self.assert_rejected(post([b"Transfer-Encoding: " + te],
                                          b"5\r\nhello\r\n0\r\n\r\n"), statuses=(501,))

    def test_chunked_not_final_400(self):
        """RFC 9112 §6.3: chunked not the final coding of a request: 400 and close."""
        for fields in ([b"Transfer-Encoding: chunked, gzip"],
                       [b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"],
                       [b"Transfer-Encoding: xchunked"],
                       [b"Transfer-Encoding: chunkedx"],
                       [b"Transfer-Encoding: gzip"],
                       [b"Transfer-Encoding: identity"],
                       [b"Transfer-Encoding:"],
                       [b"Transfer-Encoding: \"chunked\""]):
            with self.subTest(fields=fields):
                self.assert_rejected(post(fields, b"5\r\nhello\r\n0\r\n\r\n"))

    def test_chunked_twice_400(self):
        """RFC 9112 §7: chunked is never applied more than once."""
        for fields in ([b"Transfer-Encoding: chunked, chunked"],
                       [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"]):
            with self.subTest(fields=fields):
                self.assert_rejected(post(fields, b"5\r\nhello\r\n0\r\n\r\n"))


class FieldSyntax(HttpTestCase):
    def test_space_before_colon(self):
        """RFC 9112 §5.1: whitespace between name and colon MUST be rejected with 400."""
        for field in (b"Transfer-Encoding : chunked", b"Transfer-Encoding\t: chunked",
                      b"Content-Length : 5"):
            with self.subTest(field=field):
                self.assert_rejected(post([field], b"5\r\nhello\r\n0\r\n\r\n"))

    def test_obs_fold(self):
        """RFC 9112 §5.2 allows rejecting obs-fold with 400; the issue requires it."""
        for fields in ([b"X-Folded: a", b" b"],
                       [b"X-Folded: a", b"\tb"],
                       [b"Transfer-Encoding: identity", b" chunked"],
                       [b"Content-Length: 5", b" 5"]):
            with self.subTest(fields=fields):
                self.assert_rejected(post(fields, b"5\r\nhello\r\n0\r\n\r\n"))

    def test_whitespace_before_first_field(self):
        """RFC 9112 §2.2: a line between the start-line and the first field
        that starts with whitespace: reject the message, or ignore that line.
        Either way the Transfer-Encoding in it must not frame the body."""
        data = (b"POST /echo HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n"
                b"Content-Length: 5\r\n\r\nhello")
        with self.conn() as c:
            c.send(data + GET_PLAIN)
            out, how = c.drain(3.0)
        resps = parse_all(out)
        ctx = f"\n sent: {data!r}\n got: {out!r} / {how}"
        self.assertTrue(resps, ctx)
        first = resps[0]
        if first.status == 400:  # rejected
            self.assertTrue(first.closes(), ctx)
            self.assertEqual(len(resps), 1, ctx)
            self.assertIn(how, ("eof", "reset"), ctx)
        else:  # the line was ignored: framed by Content-Length
            self.assertEqual((first.status, first.body), (200, b"hello"), ctx)
            self.assertEqual([(r.status, r.body) for r in resps[1:]], [(200, HELLO_BODY)], ctx)

    def test_bad_characters_in_values(self):
        """CR, LF, NUL (RFC 9110 §5.5) and other controls, DEL, are not field-vchar."""
        for value in (b"a\x00b", b"a\rb", b"a\x7fb", b"a\x01b", b"a\x1bb", b"a\x0bb"):
            with self.subTest(value=value):
                self.assert_rejected(post([b"X-Bad: " + value, b"Content-Length: 5"], b"hello"))

    def test_bare_cr_line_ending(self):
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: a\rContent-Length: 5\r\n\r\nhello")

    def test_bad_characters_in_names(self):
        for name in (b"X Bad", b"X\x00Bad", b"(X)", b"X@Y", b"X\x7f", b"X\xc3\xa9", b"X\"", b"",
                     b"X/Y", b"X[]", b"X{}", b"X\tY"):
            with self.subTest(name=name):
                self.assert_rejected(post([name + b": v", b"Content-Length: 5"], b"hello"))

    def test_line_without_colon(self):
        self.assert_rejected(post([b"NoColonHere", b"Content-Length: 5"], b"hello"))


class ChunkFraming(HttpTestCase):
    def test_bare_lf(self):
        """RFC 9112 §7.1 frames chunks with CRLF; a bare LF (Go's CVE-2025-22871) is 400."""
        for body in (b"5\nhello\r\n0\r\n\r\n",
                     b"5\r\nhello\n0\r\n\r\n",
                     b"5\r\nhello\r\n0\n\r\n",
                     b"5\r\nhello\r\n0\r\n\n",
                     b"5;ext=1\nhello\r\n0\r\n\r\n",
                     b"5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n"):
            with self.subTest(body=body):
                self.assert_rejected(chunked(body))

    def test_bare_cr(self):
        for body in (b"5\rhello\r\n0\r\n\r\n", b"5\r\nhello\r0\r\n\r\n"):
            with self.subTest(body=body):
                self.assert_rejected(chunked(body))

    def test_size_overflow(self):
        for size in (b"FFFFFFFFFFFFFFFFF", b"10000000000000000", b"FFFFFFFFFFFFFFFF"):
            with self.subTest(size=size):
                self.assert_rejected(chunked(size + b"\r\nhello\r\n0\r\n\r\n"),
                                     statuses=(400, 413))

    def test_size_invalid_characters(self):
        for size in (b"5g", b"0x5", b"-5", b"+5", b" 5", b"5 ", b"", b"g", b"5\x00", b"\xd9\xa5"):
            with self.subTest(size=size):
                self.assert_rejected(chunked(size + b"\r\nhello\r\n0\r\n\r\n"))

    def test_data_without_crlf(self):
        """A chunk's data is followed by CRLF; anything else is 400 (llhttp's CVE-2022-32215 class)."""
        for body in (b"5\r\nhelloXX0\r\n\r\n", b"5\r\nhello0\r\n\r\n", b"3\r\nhello\r\n0\r\n\r\n"):
            with self.subTest(body=body):
                self.assert_rejected(chunked(body))

    def test_bad_extension(self):
        for ext in (b";", b"; =v", b";a=\"unterminated", b";a=b c", b";a\x00", b";a=\x7f"):
            with self.subTest(ext=ext):
                self.assert_rejected(chunked(b"5" + ext + b"\r\nhello\r\n0\r\n\r\n"))

    def test_bad_trailer(self):
        for trailer in (b"X Bad: 1", b"X-Fold: a\r\n b", b"NoColon", b"X: a\x00b"):
            with self.subTest(trailer=trailer):
                self.assert_rejected(chunked(b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n"))

    def test_extension_flood_is_bounded(self):
        """Chunk extensions cost reads without body bytes (Go's CVE-2023-39326):
        1 MiB of them on one chunk must be refused, not read forever."""
        flood = b";" + b"a=b;" * (256 * 1024)
        self.assert_rejected(chunked(b"1" + flood + b"\r\nx\r\n0\r\n\r\n"),
                             statuses=tuple(range(400, 500)))


if __name__ == "__main__":
    unittest.main()
