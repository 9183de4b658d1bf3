"""A fault-injecting HTTP reverse proxy in front of an S3 server (stdlib only).

    from s3fault import FaultProxy, hostile_listing
    with FaultProxy(s3.port) as px:             # listens on 127.0.0.1:<free port>
        cli = s3.client(endpoint=px.endpoint)   # clients sign for the PROXY's host:port
        px.fail("slowdown", times=2, method="GET", path="/bkt/a.bin")
        ...
        assert px.count(method="GET", path="/bkt/a.bin") == 3

Forwarding: every request is sent upstream unchanged: same method, the same
request target (path and query, byte for byte), the same headers in the same
order, Host included (the proxy does NOT rewrite Host to the upstream's
address), and the same body (Content-Length or chunked, relayed as is). A
SigV4 signature covers Host and the x-amz-* headers, so the client must be
pointed at (and sign for) the proxy's host:port; s3rver checks the signature
against the Host header it receives, so such a client verifies through the
proxy. Responses are relayed with their status and headers (a chunked
upstream answer is re-sent with a Content-Length).
Expect: 100-continue is answered by the proxy itself (so the client sends
its body) and also forwarded; the upstream's own 100 is not relayed.

FaultProxy(upstream_port, upstream_host="127.0.0.1", host="127.0.0.1", port=0)
  .start() / .stop()   (also a context manager; the constructor does not
                       start). stop() closes the listener and every client
                       connection, ends hangs at once, and joins every thread.
  .port, .endpoint ("http://127.0.0.1:PORT"), .host_port ("127.0.0.1:PORT")

  .fail(kind, times=1, method=None, path=None, query=None, match=None, **params)
       Arm a fault for the next `times` requests that match (times=None: every
       matching request until clear_faults()). Faults are tried in the order
       armed; the first armed fault that matches and has uses left applies.
       Predicate (all given parts must hold):
         method  "GET", "PUT", "HEAD", ... (case-insensitive)
         path    the request path without the query, as sent (percent-
                 encoded): a str for equality, or a compiled regex (search)
         query   dict: name -> value (decoded) that must be present; value
                 None means "present with any value", e.g. {"list-type": "2"}
         match   callable(Request) -> bool
       Kinds and their params:
         "slowdown"   503 with <Error><Code>SlowDown</Code>...; not forwarded
         "500"        500 InternalError; not forwarded
         "403"        403 AccessDenied; not forwarded
         "status"     status=N, code="...", message="..."; not forwarded
         "hang"       seconds=T: read the request, answer nothing for T s
                      (or until stop()), then close the connection; not
                      forwarded
         "truncate"   at=K: forwarded; the upstream status and headers are sent
                      (Content-Length unchanged) but only the first K body
                      bytes, then the connection is closed
         "body"       body=bytes (or str), status=200,
                      content_type="application/xml": forwarded, then the
                      upstream body is replaced by `body` (Content-Length
                      fixed up, ETag and other headers kept). Use with
                      hostile_listing() for a ListObjectsV2 answer
                      (query={"list-type": "2"}).
         "reset"      close the connection at once, without an answer
       Returns the Fault object (.remaining counts down; .hits counts uses).
  .clear_faults()
  .log                 list of Request, in arrival order (see below)
  .requests(method=None, path=None, query=None, match=None) -> [Request]
  .count(...)          len(.requests(...))
  .clear_log()

Request (one per request the proxy read): .method, .path (raw, no query),
  .raw_query (str), .query (dict of decoded values; a repeated name keeps the
  last), .headers (list of (name, value) as received), .range (the Range
  header or None), .status (int sent to the client; None for hang/reset or
  if the client went away), .fault (the kind applied or None), .time
  (time.monotonic() at arrival). A Request is in .log before any byte of its
  answer is sent, and .status is set before the answer's body is sent.

hostile_listing(keys, bucket="bkt", prefix="", truncated=False, token=None,
                doctype=None) -> bytes
  A ListObjectsV2 answer listing `keys` (each str or bytes; bytes are put in
  the document raw, so invalid UTF-8 and control characters reach the
  client). HOSTILE_KEYS has ready-made nasty keys; ENTITY_BOMB is a
  "billion laughs" DOCTYPE to pass as doctype= (or use entity_bomb_listing()).
"""

import contextlib
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

FAULT_KINDS = ("slowdown", "500", "403", "status", "hang", "truncate", "body", "reset")

_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "403": (403, "AccessDenied", "Access Denied"),
}

# hop-by-hop headers of the upstream answer that the proxy re-does itself
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Request:
    __slots__ = ("method", "path", "raw_query", "query", "headers", "range", "status",
                 "fault", "time")

    def __init__(self, method, target, headers):
        self.method = method
        self.path, _, self.raw_query = target.partition("?")
        self.query = dict(parse_qsl(self.raw_query, keep_blank_values=True))
        self.headers = headers
        self.range = next((v for k, v in headers if k.lower() == "range"), None)
        self.status = None
        self.fault = None
        self.time = time.monotonic()

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def __repr__(self):
        return "<%s %s%s range=%s -> %s%s>" % (
            self.method, self.path, "?" + self.raw_query if self.raw_query else "",
            self.range, self.status, " fault=" + self.fault if self.fault else "")


def _matches(req, method=None, path=None, query=None, match=None):
    if method is not None and req.method.upper() != method.upper():
        return False
    if path is not None:
        if isinstance(path, str):
            if req.path != path:
                return False
        elif not path.search(req.path):
            return False
    if query:
        for k, v in query.items():
            if k not in req.query or (v is not None and req.query[k] != v):
                return False
    if match is not None and not match(req):
        return False
    return True


class Fault:
    def __init__(self, kind, times, pred, params):
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(FAULT_KINDS)))
        self.kind, self.remaining, self.pred, self.params = kind, times, pred, params
        self.hits = 0

    def __repr__(self):
        return "<Fault %s remaining=%s hits=%d %r>" % (self.kind, self.remaining, self.hits,
                                                      self.params)


def error_body(code, message, resource=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s'
            '</Message><Resource>%s</Resource><RequestId>FAULTPROXY</RequestId></Error>'
            % (escape(code), escape(message), escape(resource))).encode()


# ---- hostile ListObjectsV2 documents ----------------------------------------------

HOSTILE_KEYS = {
    "dotdot": "a/../../etc/passwd",
    "dotdot_only": "..",
    "dot": "a/./b",
    "double_slash": "a//b",
    "leading_slash": "/abs/path",
    "trailing_slash": "dir/",
    "newline": "line1\nline2",
    "tab_cr": "a\tb\rc",
    "invalid_utf8": b"bad-\xff\xfe-name",
    "nul": b"nul-\x00-name",       # not well-formed XML 1.0 at all
    "long": "x" * 300,               # longer than NAME_MAX (255)
    "long_path": "/".join(["d" * 200] * 25),   # longer than PATH_MAX (4096)
}

ENTITY_BOMB = (b'<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
               + b"".join(b' <!ENTITY lol%d "%s">\n'
                          % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                          for i in range(1, 10))
               + b"]>\n")


def _b(x):
    return x if isinstance(x, bytes) else x.encode("utf-8")


def hostile_listing(keys, bucket="bkt", prefix="", truncated=False, token=None,
                    doctype=None, size=1, etag='"d41d8cd98f00b204e9800998ecf8427e"'):
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n']
    if doctype:
        parts.append(_b(doctype))
    parts.append(b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
    parts.append(b"<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>"
                 b"<MaxKeys>1000</MaxKeys><IsTruncated>%s</IsTruncated>"
                 % (_b(escape(bucket)), _b(escape(prefix)), len(keys),
                    b"true" if truncated else b"false"))
    if token:
        parts.append(b"<NextContinuationToken>%s</NextContinuationToken>" % _b(escape(token)))
    for k in keys:
        kb = _b(k).replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
        parts.append(b"<Contents><Key>%s</Key><LastModified>2024-01-01T00:00:00.000Z"
                     b"</LastModified><ETag>%s</ETag><Size>%d</Size>"
                     b"<StorageClass>STANDARD</StorageClass></Contents>"
                     % (kb, _b(escape(etag)), size))
    parts.append(b"</ListBucketResult>")
    return b"".join(parts)


def entity_bomb_listing(bucket="bkt"):
    """A ListObjectsV2 answer whose one key is &lol9; (10^9 "lol"s if expanded)."""
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + ENTITY_BOMB
            + b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            + b"<Name>%s</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
              b"<IsTruncated>false</IsTruncated><Contents><Key>&lol9;</Key>"
              b"<LastModified>2024-01-01T00:00:00.000Z</LastModified>"
              b'<ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>1</Size></Contents>'
              b"</ListBucketResult>" % _b(escape(bucket)))


# ---- the proxy ----------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy = None            # set per FaultProxy (subclass)

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        self.proxy._track(self.connection, True)

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()
        self.proxy._track(self.connection, False)

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            raw = []
            while True:
                line = self.rfile.readline(65537)
                raw.append(line)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while True:         # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        raw.append(t)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                raw.append(self.rfile.read(n + 2))
            return b"".join(raw)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        px = self.proxy
        hdrs = list(self.headers.items())
        req = Request(self.command, self.path, hdrs)
        body = self._read_body()
        fault = px._take_fault(req)
        req.fault = fault.kind if fault else None
        px._log_append(req)
        kind = fault.kind if fault else None
        if kind == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "hang":
            px._stopping.wait(float(fault.params.get("seconds", 30)))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind in _ERRORS or kind == "status":
            st, code, msg = _ERRORS.get(kind, (None, None, None))
            st = fault.params.get("status", st)
            code = fault.params.get("code", code or "InternalError")
            msg = fault.params.get("message", msg or "injected fault")
            eb = error_body(code, msg, req.path)
            req.status = st
            self.send_response(st)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(eb)))
            self.send_header("x-amz-request-id", "FAULTPROXY")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(eb)
            return
        # forward
        try:
            up = socket.create_connection((px.upstream_host, px.upstream_port), timeout=60)
        except OSError:
            req.status = 502
            self.send_error(502)
            return
        try:
            head = ["%s %s HTTP/1.1" % (self.command, self.path)]
            head += ["%s: %s" % (k, v) for k, v in hdrs]
            up.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            resp = http.client.HTTPResponse(up, method=self.command)
            resp.begin()
            rhdrs = resp.getheaders()
            status = resp.status
            if kind == "truncate":
                data = resp.read()
                clen = next((v for k, v in rhdrs if k.lower() == "content-length"),
                            str(len(data)))
                req.status = status
                self.send_response_only(status, resp.reason)
                for k, v in rhdrs:
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", clen)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[:int(fault.params.get("at", 0))])
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind == "body":
                resp.read()
                data = _b(fault.params.get("body", b""))
                status = int(fault.params.get("status", 200))
                ctype = fault.params.get("content_type", "application/xml")
                rhdrs = [(k, v) for k, v in rhdrs if k.lower() != "content-type"]
                rhdrs.append(("Content-Type", ctype))
                req.status = status
                self._send(status, None, rhdrs, data)
                return
            clen = resp.getheader("Content-Length")
            chunked = "chunked" in (resp.getheader("Transfer-Encoding") or "").lower()
            if self.command == "HEAD" or status in (204, 304) or status < 200:
                req.status = status
                self._send(status, resp.reason, rhdrs, b"", keep_len=True)
                return
            if clen is not None and not chunked:
                req.status = status
                self.send_response_only(status, resp.reason)
                for k, v in rhdrs:
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", clen)
                self.end_headers()
                left = int(clen)
                while left > 0:
                    chunk = resp.read(min(left, 256 * 1024))
                    if not chunk:
                        self.close_connection = True
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
                return
            data = resp.read()
            req.status = status
            self._send(status, resp.reason, rhdrs, data)
        finally:
            up.close()

    def _send(self, status, reason, rhdrs, data, keep_len=False):
        self.send_response_only(status, reason)
        for k, v in rhdrs:
            if k.lower() not in _HOP or (keep_len and k.lower() == "content-length"):
                self.send_header(k, v)
        if not keep_len:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


class FaultProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1", host="127.0.0.1", port=0):
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.host, self._want_port = host, port
        self.port = None
        self.log = []
        self._faults = []
        self._lock = threading.Lock()
        self._conns = set()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def host_port(self):
        return "%s:%d" % (self.host, self.port)

    def start(self):
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = _Server((self.host, self._want_port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="s3fault-%d" % self.port)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self._server.server_close()     # joins the handler threads (block_on_close)
        self._thread.join(10)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn, add):
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)
        if add and self._stopping.is_set():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # ---- faults ----------------------------------------------------------------

    def fail(self, kind, times=1, method=None, path=None, query=None, match=None, **params):
        f = Fault(kind, times, dict(method=method, path=path, query=query, match=match), params)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def _take_fault(self, req):
        with self._lock:
            for f in self._faults:
                if f.remaining is not None and f.remaining <= 0:
                    continue
                if _matches(req, **f.pred):
                    if f.remaining is not None:
                        f.remaining -= 1
                    f.hits += 1
                    return f
        return None

    # ---- the log -----------------------------------------------------------------

    def _log_append(self, req):
        with self._lock:
            self.log.append(req)

    def requests(self, method=None, path=None, query=None, match=None):
        with self._lock:
            log = list(self.log)
        return [r for r in log if _matches(r, method, path, query, match)]

    def count(self, method=None, path=None, query=None, match=None):
        return len(self.requests(method, path, query, match))

    def clear_log(self):
        with self._lock:
            self.log.clear()
