"""Real clients against hello: curl and Python's http.client."""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from server import HELLO_BODY, JSON_BODY, ServerTestCase

CURL = shutil.which("curl")


@unittest.skipUnless(CURL, "curl is not installed")
class Curl(ServerTestCase):
    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def curl(self, *args, timeout=30):
        p = subprocess.run([CURL, "-sS", "-v", "--max-time", str(timeout - 5), *args],
                           capture_output=True, timeout=timeout)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-3000:])
        return p.stdout, p.stderr.decode(errors="replace")

    def upload_file(self, size):
        f = tempfile.NamedTemporaryFile(delete=False)
        self.addCleanup(os.unlink, f.name)
        data = os.urandom(size)
        f.write(data)
        f.close()
        return f.name, data

    def test_keep_alive_reuses_connection(self):
        out, err = self.curl(self.url("/plaintext"), self.url("/json"), self.url("/plaintext"))
        self.assertEqual(out, HELLO_BODY + JSON_BODY + HELLO_BODY)
        self.assertEqual(err.count("Re-using existing connection"), 2, err)

    def test_chunked_upload(self):
        name, data = self.upload_file(300 * 1024 + 7)
        out, err = self.curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{name}",
                             "-H", "Content-Type: application/octet-stream", self.url("/echo"))
        self.assertIn("> Transfer-Encoding: chunked", err)
        self.assertIn("< HTTP/1.1 200", err)
        self.assertEqual(len(out), len(data))
        self.assertTrue(out == data, "echoed body differs")

    def test_100_continue_large_upload(self):
        """curl waits for 100 Continue (up to --expect100-timeout) before it
        sends the body: the server must send it promptly."""
        name, data = self.upload_file(2 * 1024 * 1024)
        start = time.monotonic()
        out, err = self.curl("-H", "Expect: 100-continue", "--expect100-timeout", "10",
                             "--data-binary", f"@{name}", self.url("/echo"))
        took = time.monotonic() - start
        self.assertIn("< HTTP/1.1 100 Continue", err)
        self.assertIn("< HTTP/1.1 200", err)
        self.assertTrue(out == data, "echoed body differs")
        self.assertLess(took, 8.0, "curl waited for its expect timeout")

    def test_http10(self):
        out, err = self.curl("-0", self.url("/json"))
        self.assertEqual(out, JSON_BODY)

    def test_head(self):
        out, err = self.curl("-I", self.url("/plaintext"))
        self.assertIn(b"HTTP/1.1 200", out)
        self.assertIn(b"content-length: 13", out.lower())


class HttpClient(ServerTestCase):
    def client(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(c.close)
        return c

    def call(self, c, method, path, body=None, headers=None):
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r, r.read()

    def test_get(self):
        c = self.client()
        r, body = self.call(c, "GET", "/plaintext")
        self.assertEqual((r.status, body), (200, HELLO_BODY))
        r, body = self.call(c, "GET", "/json")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(body), {"message": "Hello, World!"})
        self.assertTrue(r.getheader("Content-Type").startswith("application/json"))

    def test_head(self):
        c = self.client()
        r, body = self.call(c, "HEAD", "/json")
        self.assertEqual((r.status, body), (200, b""))
        self.assertEqual(r.getheader("Content-Length"), str(len(JSON_BODY)))
        r, body = self.call(c, "GET", "/plaintext")  # the HEAD left no body behind
        self.assertEqual((r.status, body), (200, HELLO_BODY))

    def test_post_echo(self):
        c = self.client()
        r, body = self.call(c, "POST", "/echo", b"ping")
        self.assertEqual((r.status, body), (200, b"ping"))

    def test_large_body_echo(self):
        data = os.urandom(5 * 1024 * 1024)
        c = self.client()
        r, body = self.call(c, "POST", "/echo", data)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(body), len(data))
        self.assertTrue(body == data, "5 MiB echo differs")

    def test_chunked_request_body(self):
        c = self.client()
        c.request("POST", "/echo", body=iter([b"one,", b"two,", b"three"]), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        body = r.read()
        self.assertEqual((r.status, body), (200, b"one,two,three"))

    def test_many_requests_one_connection(self):
        c = self.client()
        c.connect()
        local = c.sock.getsockname()
        for i in range(300):
            if i % 3 == 2:
                r, body = self.call(c, "POST", "/echo", str(i).encode())
                want = str(i).encode()
            else:
                r, body = self.call(c, "GET", "/plaintext")
                want = HELLO_BODY
            self.assertEqual((r.status, body), (200, want), f"request {i}")
            self.assertFalse(r.will_close, f"request {i}: server asked to close")
            self.assertEqual(c.sock.getsockname(), local, f"request {i}: a new connection")

    def test_errors(self):
        c = self.client()
        r, _ = self.call(c, "GET", "/missing")
        self.assertEqual(r.status, 404)
        r, _ = self.call(c, "DELETE", "/json")
        self.assertEqual(r.status, 405)
        self.assertIn("GET", r.getheader("Allow", ""))


if __name__ == "__main__":
    unittest.main()
