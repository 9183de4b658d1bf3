"""What the Lambda and Paperspace stand-ins (fake_lambda.py, fake_paperspace.py)
share: an HTTP server on 127.0.0.1 with fake_vast's request log and fault
injection, and a small loopback "network" that gives each instance an IP
with sshd on port 22.

Why the network: neither Lambda nor Paperspace says which port sshd listens
on; their instance objects carry an IP only ("ip", "publicIp"), and the
login is always port 22 (PLATFORMS.md 3.2, 4.3). The test boxes are private
sshds on random ports of 127.0.0.1. So the stand-in plays the part of the
cloud's network: an instance whose box listens on 127.0.0.1:P gets its own
loopback address 127.X.Y.Z, and a TCP forwarder there on port 22 carries
connections to 127.0.0.1:P. The API then answers exactly what the real one
would (an IP, nothing else), and rgtfs connects to IP:22 as it would in
production. Every byte stays on the loopback interface.

Faults (FakeRest.fail), with fake_vast's fields and semantics: status N
(with the platform's own error body), mode truncate | cut | html | delay |
hang | reset | body, plus mode "endless" (each stand-in defines what a list
that never ends looks like for its API), method/path/kind filters, times,
and apply.
"""

import copy
import json
import random
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from fake_vast import _Fault

SECRET_MARK = "FAKESECRET"
FAULT_MODES = ("status", "truncate", "cut", "html", "delay", "hang", "reset",
               "body", "endless")


# ---- the loopback network ------------------------------------------------------

class Forwarder:
    """127.X.Y.Z:22 -> target (host, port); retarget() when the box moves."""

    def __init__(self, target):
        self.target = target
        self.lsock = None
        for _ in range(200):
            addr = "127.%d.%d.%d" % (random.randint(100, 250), random.randint(0, 255),
                                     random.randint(2, 254))
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, 22))
            except OSError:
                s.close()
                continue
            s.listen(64)
            self.lsock, self.addr = s, addr
            break
        if self.lsock is None:
            raise RuntimeError("no free loopback address for port 22")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks = set()
        threading.Thread(target=self._accept, name="fwd-" + self.addr, daemon=True).start()

    def retarget(self, target):
        with self._lock:
            self.target = target

    def _accept(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.lsock], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            with self._lock:
                target = self.target
            try:
                u = socket.create_connection(target, timeout=5)
            except OSError:
                c.close()           # like a host whose sshd is down
                continue
            with self._lock:
                self._socks.update((c, u))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


# ---- the server -------------------------------------------------------------------

class FakeRest:
    """Base of the stand-ins. Subclasses set kind, API_PREFIX and implement
    public(inst), handle_api(), error_body(), classify(), endless_chunks()."""
    kind = "rest"
    auth_scheme = "Bearer"

    def __init__(self, api_key, host="127.0.0.1", port=0, linger=3, quiet=True):
        self.api_key = api_key
        self.host = host
        self.port = port
        self.linger = linger
        self.quiet = quiet
        self.lock = threading.RLock()
        self.instances = {}
        self.lingering = {}
        self.requests = []
        self.fault = None
        self.on_fault = None
        self.httpd = None
        self.thread = None
        self._conns = set()
        self._fwd = {}              # iid -> Forwarder

    # ---- lifecycle -------------------------------------------------------------

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        fake = self

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 64

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
                    super().handle_error(request, client_address)

        class H(_Handler):
            pass
        H.fake = fake
        self.httpd = Server((self.host, self.port), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       name="fake-" + self.kind, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop listening and drop open connections (the API is unreachable;
        the instances' network stays up, as a real cloud's would)."""
        with self.lock:
            if self.fault is not None:
                self.fault.released.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None

    def restart(self):
        return self.start()

    def close(self):
        """stop() and take the instances' network down too."""
        self.stop()
        with self.lock:
            fwds, self._fwd = list(self._fwd.values()), {}
        for f in fwds:
            f.close()

    # ---- the world ---------------------------------------------------------------

    def _ip_for(self, iid, eps):
        """The address at which port 22 reaches instance iid's box, or None."""
        host, port = eps[0], eps[1]
        f = self._fwd.get(iid)
        if port is None:
            if f:
                f.close()
                del self._fwd[iid]
            return None
        if port == 22:
            return host
        if f is None:
            f = self._fwd[iid] = Forwarder((host, port))
        else:
            f.retarget((host, port))
        return f.addr

    def add(self, inst):
        inst = copy.deepcopy(inst)
        inst.setdefault("_eps", ("127.0.0.1", None, None))
        iid = str(inst["id"])
        with self.lock:
            inst["_ip"] = self._ip_for(iid, inst["_eps"])
            self.instances[iid] = inst
        return self.public(inst)

    def get(self, iid):
        with self.lock:
            inst = self.instances.get(str(iid))
            return self.public(inst) if inst else None

    def update(self, iid, **fields):
        with self.lock:
            self.instances[str(iid)].update(copy.deepcopy(fields))

    def set_state(self, iid, name):
        """Put iid in normalized state `name` (one of STATES); returns the word
        rgtfs must show."""
        fields, word = self.STATES[name]
        self.update(iid, **fields)
        return word

    def set_endpoints(self, iid, direct_port=None, proxy_port=None,
                      direct_host="127.0.0.1"):
        """The box moved: same instance IP (forwarded to the new port), or no
        IP at all when direct_port is None. These APIs have no proxy."""
        with self.lock:
            inst = self.instances[str(iid)]
            inst["_eps"] = (direct_host, direct_port, proxy_port)
            inst["_ip"] = self._ip_for(str(iid), inst["_eps"])

    def remove(self, iid):
        with self.lock:
            self.instances.pop(str(iid), None)
            self.lingering.pop(str(iid), None)

    def destroy(self, iid):
        """What the platform's destroy does; the instance lingers in its
        terminating shape for `linger` list calls, then vanishes."""
        with self.lock:
            iid = str(iid)
            if iid not in self.instances or iid in self.lingering:
                return False
            self.instances[iid].update(copy.deepcopy(self.TERMINATING))
            self.lingering[iid] = self.linger
            return True

    def _tick(self):
        """One list call passed: lingering instances age, then vanish."""
        with self.lock:
            for iid in list(self.lingering):
                self.lingering[iid] -= 1
                if self.lingering[iid] < 0:
                    self.instances.pop(iid, None)
                    self.lingering.pop(iid, None)

    def listed(self):
        with self.lock:
            return [self.public(i) for i in self.instances.values()]

    # ---- faults ----------------------------------------------------------------------

    def fail(self, status=None, times=None, mode=None, delay=0.0, body=None,
             content_type=None, method=None, path=None, kind=None, apply=False):
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError("unknown fault mode %r" % mode)
        f = _Fault(status, times, mode, delay, body, content_type, method, path, kind, apply)
        with self.lock:
            if self.fault is not None:
                self.fault.released.set()
            self.fault = f
        if self.on_fault:
            self.on_fault(f)
        return f

    def clear(self):
        with self.lock:
            if self.fault is not None:
                self.fault.released.set()
            self.fault = None

    def _take_fault(self, method, path, kind=None):
        with self.lock:
            f = self.fault
            if f is None or not f.matches(method, path, kind):
                return None
            if f.times is not None:
                f.times -= 1
                if f.times <= 0:
                    self.fault = None
            return f

    # ---- the request log ----------------------------------------------------------------

    def log(self):
        with self.lock:
            return list(self.requests)

    def list_calls(self, since=0.0):
        return sum(1 for r in self.log()
                   if r["method"] == "GET" and r["kind"] == "list" and r["t"] >= since)

    def calls(self, method=None, kind=None, since=0.0):
        return [r for r in self.log()
                if (method is None or r["method"] == method)
                and (kind is None or r["kind"] == kind) and r["t"] >= since]

    def deletes(self):
        """The requests of the destroy sequence."""
        return [r for r in self.log()
                if any(r["method"] == m and re.fullmatch(rx.replace("{id}", "[^/]+"),
                                                         r["path"])
                       for m, rx in self.DESTROY_CALLS)]

    def mutations(self):
        return [r for r in self.log() if r["method"] not in ("GET", "HEAD")]

    def authorized(self, header):
        return header == "%s %s" % (self.auth_scheme, self.api_key)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    timeout = 60
    fake = None

    def version_string(self):
        return "nginx"

    def setup(self):
        super().setup()
        with self.fake.lock:
            self.fake._conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.fake.lock:
                self.fake._conns.discard(self.connection)

    def log_message(self, fmt, *args):
        if not self.fake.quiet:
            sys.stderr.write("fake_%s: %s\n" % (self.fake.kind, fmt % args))

    def _send(self, status, body, ctype="application/json", length=None, close=False,
              extra=None):
        if body is None or isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        fake = self.fake
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        body = self._body()
        auth = self.headers.get("Authorization") or ""
        authed = fake.authorized(auth)
        kind = fake.classify(self.command, path)
        scheme = auth.split(" ", 1)[0] if " " in auth else ""
        rec = {
            "t": time.monotonic(), "wall": time.time(), "method": self.command,
            "path": path, "query": {k: (["***"] if "key" in k.lower() or "token" in k.lower()
                                        else v) for k, v in query.items()},
            "kind": kind,
            "headers": {k: ((scheme + " ***").strip() if k.lower() == "authorization" else v)
                        for k, v in self.headers.items()},
            "authorized": authed, "body": body.decode(errors="replace"), "status": None,
        }
        with fake.lock:
            fake.requests.append(rec)
        f = fake._take_fault(self.command, path, kind)
        if f is not None:
            rec["fault"] = f.mode
            if f.apply and authed and f.mode != "delay":
                rec["applied"] = fake.handle_api(self.command, path, query, body)[0]
            return self._fault(f, rec, path, query, body)
        if not authed:
            rec["status"] = 401
            return self._send(401, fake.error_body(401))
        status, obj = fake.handle_api(self.command, path, query, body)
        rec["status"] = status
        self._send(status, obj)

    def _fault(self, f, rec, path, query, body):
        fake = self.fake
        if f.mode == "delay":
            f.released.wait(f.delay)
            status, obj = (fake.handle_api(self.command, path, query, body)
                           if rec["authorized"] else (401, fake.error_body(401)))
            rec["status"] = status
            return self._send(status, obj)
        if f.mode == "hang":
            f.released.wait(600)
            self.close_connection = True
            return
        if f.mode == "reset":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if f.mode == "endless":
            return self._endless(f, rec, query)
        if f.mode in ("truncate", "cut"):
            status, obj = fake.handle_api(self.command, path, query, body)
            full = json.dumps(obj).encode()
            half = full[: len(full) // 2]
            rec["status"] = 200
            if f.mode == "truncate":
                return self._send(200, half)
            return self._send(200, half, length=len(full), close=True)
        if f.mode == "html":
            rec["status"] = f.status or 200
            return self._send(rec["status"], "<!DOCTYPE html>\n<html><head><title>502 Bad "
                              "Gateway</title></head><body><center><h1>502 Bad Gateway"
                              "</h1></center><hr><center>nginx</center></body></html>\n",
                              ctype="text/html")
        if f.mode == "body":
            rec["status"] = f.status or 200
            return self._send(rec["status"], f.body if f.body is not None else b"",
                              ctype=f.content_type or "application/json")
        status = f.status or 500
        rec["status"] = status
        extra = {"Retry-After": "1"} if status == 429 else None
        return self._send(status, fake.error_body(status), extra=extra)

    def _endless(self, f, rec, query):
        """200, chunked: the stand-in's own never-ending answer."""
        rec["status"] = 200
        status, obj = self.fake.endless_reply(query)
        if obj is not None:                       # a well-formed page, forever
            return self._send(status, obj)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(b):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()
        head, item = self.fake.endless_chunks()
        try:
            chunk(head)
            t0 = time.monotonic()
            while not f.released.is_set() and time.monotonic() - t0 < 120:
                chunk(item)
                time.sleep(0.002)
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle
