#!/usr/bin/python3
"""A stand-in for the AutoDL Pro developer API on 127.0.0.1 (PLATFORMS.md 5).

It answers with the shapes the public API documents ([3p], confirmed by
several independent clients):

    POST /api/v1/dev/instance/pro/list      {"page_index":P,"page_size":S}
         -> {"code":"Success","msg":"","request_id":..,"data":{"list":[..],
             "page_index":P,"page_size":S,"max_page":M,"result_total":N}}
    GET  /api/v1/dev/instance/pro/status?instance_uuid=pro-..   data: a bare string
    GET  /api/v1/dev/instance/pro/snapshot?instance_uuid=..     data: ssh fields
    POST /api/v1/dev/instance/pro/power_off {"instance_uuid"}   async: the box
         shows "shutting_down", then "shutdown" after `off_lag` list calls
    POST /api/v1/dev/instance/pro/release   {"instance_uuid"}   only from
         "shutdown" (else code InstanceStatusNotAllowed); then "releasing" for
         `linger` list calls, then absent
    POST /api/v1/dev/instance/pro/power_on  {"instance_uuid","payload":"gpu"}

Every reply is HTTP 200 with "code"; success is "code": "Success" only.
Unknown uuids answer RecordNotFoundError; a bad body RequestParameterIsWrong.
Auth is the raw developer token in `Authorization` (no "Bearer"): anything
else gets HTTP 401 with code AuthorizeFailed. GET parameters are read from
the query string only (a JSON body is ignored, as the real API does).

Every /api request is recorded (method, path, query, headers with the token
masked, body, kind, answer status, and for list pages the statuses served)
so tests can check order ("release only after a list showed shutdown").

Faults: FakeAutodl.fail(...) or POST /_fake/fault, as in fake_vast:
    status=N [times=K]       HTTP N for the next K matching requests
    mode="truncate"|"cut"|"html"|"delay"|"hang"|"reset"|"body"
    mode="endless"           list pages never end (max_page = page_index + 1)
    mode="code", code="X"    HTTP 200 with {"code": "X"} (an error with 200)
  with method / path / kind ("list", "show", "power_off", "release",
  "other") filters and apply=True (the real effect first, then the fault).
"""

import copy
import json
import random
import re
import socket
import sys
import threading
import time
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SECTION = {}                    # extra INI keys the [autodl] section needs
API_KEY_ENV = "AUTODL_TOKEN"
FAULT_MODES = ("status", "truncate", "cut", "html", "delay", "hang", "reset", "body",
               "code", "endless")
SECRET_MARK = "FAKESECRET"
BASE = "/api/v1/dev/instance/pro/"
# The destroy sequence, in order. The uuid travels in the JSON body
# ({"instance_uuid": ...}), not in the path.
DESTROY_CALLS = [("POST", r"/api/v1/dev/instance/pro/power_off"),
                 ("POST", r"/api/v1/dev/instance/pro/release")]

# rgtfs's normalized state -> the raw AutoDL status (PLATFORMS.md 7), and
# raw statuses by their own names.
STATES = {
    "provisioning": "creating",
    "running": "running",
    "stopped": "shutdown",
    "destroying": "releasing",
    "creating": "creating",
    "shutting_down": "shutting_down",
    "shutdown": "shutdown",
    "releasing": "releasing",
}
# What the mount can show for an AutoDL Pro box: there is no preemption and
# no offline signal in the API (PLATFORMS.md 7).
SHOWABLE = {"running", "stopped", "provisioning", "destroying"}
WORDS = {"creating": "provisioning", "starting": "provisioning", "running": "running",
         "shutting_down": "stopped", "shutdown": "stopped", "releasing": "destroying"}


def new_ids(n):
    return ["pro-%012x" % random.getrandbits(48) for _ in range(n)]


def make_instance(iid, *, direct_host="127.0.0.1", direct_port=None, proxy_port=None,
                  state="running", name=None, **_):
    """A list item as the Pro API sends it. AutoDL has one SSH endpoint (a
    gateway host and port): direct_port, else proxy_port."""
    port = direct_port if direct_port is not None else proxy_port
    inst = {
        "uuid": iid, "name": name or "exp-%s" % iid[-4:],
        "status": STATES[state],
        "gpu_spec_uuid": "v-48g", "image_uuid": "base-image-l2t43iu6uk",
        "region_sign": "westDC2", "req_gpu_amount": 1, "payg_price": 2580,
        "created_at": "2026-11-30T09:12:44+08:00",
        "started_at": "2026-11-30T09:13:20+08:00", "stopped_at": None,
        "proxy_host": direct_host if port else None,
        "ssh_port": port or 0,
        "ssh_command": ("ssh -p %d root@%s" % (port, direct_host)) if port else "",
        "root_password": "%s-rootpw-%s" % (SECRET_MARK, iid),
        "jupyter_token": "%s-jupyter-%s" % (SECRET_MARK, iid),
        "jupyter_domain": "https://%s.westb.seetacloud.com:8443/jupyter" % iid,
        "service_6006_domain": "https://%s-6006.westb.seetacloud.com:8443" % iid,
    }
    return inst


def secret_values(inst):
    return [v for v in (inst.get("root_password"), inst.get("jupyter_token"))
            if v and SECRET_MARK in v]


class _Fault:
    def __init__(self, status=None, times=None, mode=None, delay=0.0, body=None,
                 content_type=None, method=None, path=None, kind=None, apply=False,
                 code=None):
        self.mode = mode or ("status" if status else "delay" if delay else "status")
        self.status = status
        self.times = times
        self.delay = float(delay or 0)
        self.body = body
        self.content_type = content_type
        self.method = method
        self.path = path
        self.kind = kind
        self.apply = bool(apply)
        self.code = code
        self.released = threading.Event()

    def matches(self, method, path, kind=None):
        if self.method and self.method != method:
            return False
        if self.kind and self.kind != kind:
            return False
        if self.path and not path.startswith(self.path):
            return False
        return True

    def as_dict(self):
        return {"mode": self.mode, "status": self.status, "times": self.times,
                "delay": self.delay, "method": self.method, "path": self.path,
                "kind": self.kind, "apply": self.apply, "code": self.code}


def _kind(path):
    if not path.startswith(BASE):
        return "other"
    verb = path[len(BASE):].strip("/")
    if verb == "list":
        return "list"
    if verb in ("status", "snapshot"):
        return "show"
    if verb in ("power_off", "release", "power_on"):
        return verb
    return "other"


def _reply(data=None, code="Success", msg=""):
    return {"code": code, "msg": msg, "request_id": str(uuidlib.uuid4()), "data": data}


class FakeAutodl:
    kind = "autodl"

    def __init__(self, api_key, host="127.0.0.1", port=0, linger=3, quiet=True):
        self.api_key = api_key
        self.host = host
        self.port = port
        self.linger = linger
        self.off_lag = 2              # list calls from shutting_down to shutdown
        self.quiet = quiet
        self.lock = threading.RLock()
        self.instances = {}           # uuid -> item (insertion ordered)
        self.lingering = {}           # uuid -> list calls left before it vanishes
        self.shutting = {}            # uuid -> list calls left before "shutdown"
        self.requests = []
        self.fault = None
        self.on_fault = None
        self.httpd = None
        self.thread = None
        self._conns = set()

    # ---- lifecycle -------------------------------------------------------

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
                                       name="fake-autodl", daemon=True)
        self.thread.start()
        return self

    def stop(self):
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

    # ---- the world -----------------------------------------------------

    def add(self, inst):
        with self.lock:
            self.instances[inst["uuid"]] = inst
        return inst

    def get(self, iid):
        with self.lock:
            return copy.deepcopy(self.instances.get(iid))

    def update(self, iid, **fields):
        with self.lock:
            self.instances[iid].update(fields)

    def set_state(self, iid, name):
        """Put iid into a normalized (or raw) state; returns the status word."""
        raw = STATES[name]
        with self.lock:
            self.shutting.pop(iid, None)
            self.instances[iid]["status"] = raw
        return WORDS[raw]

    def set_endpoints(self, iid, direct_port=None, proxy_port=None,
                      direct_host="127.0.0.1", **_):
        port = direct_port if direct_port is not None else proxy_port
        self.update(iid, proxy_host=direct_host if port else None, ssh_port=port or 0,
                    ssh_command=("ssh -p %d root@%s" % (port, direct_host)) if port else "")

    def remove(self, iid):
        with self.lock:
            self.instances.pop(iid, None)
            self.lingering.pop(iid, None)
            self.shutting.pop(iid, None)

    def power_off(self, iid):
        with self.lock:
            inst = self.instances.get(iid)
            if inst is None:
                return False
            if inst["status"] in ("running", "creating", "starting"):
                inst["status"] = "shutting_down"
                inst["stopped_at"] = "2026-12-01T10:00:00+08:00"
                self.shutting[iid] = self.off_lag
            return True

    def destroy(self, iid):
        """What a release does (also usable as 'released from the console')."""
        with self.lock:
            if iid not in self.instances:
                return False
            self.instances[iid]["status"] = "releasing"
            self.shutting.pop(iid, None)
            self.lingering[iid] = self.linger
            return True

    # ---- faults --------------------------------------------------------

    def fail(self, status=None, times=None, mode=None, delay=0.0, body=None,
             content_type=None, method=None, path=None, kind=None, apply=False, code=None):
        f = _Fault(status, times, mode, delay, body, content_type, method, path, kind,
                   apply, code)
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

    # ---- the request log -------------------------------------------------

    def log(self):
        with self.lock:
            return list(self.requests)

    def list_calls(self, since=0.0):
        """List polls (first pages) at or after `since`."""
        return sum(1 for r in self.log()
                   if r["kind"] == "list" and r["t"] >= since and r.get("page", 1) == 1)

    def calls(self, method=None, kind=None, since=0.0):
        return [r for r in self.log()
                if (method is None or r["method"] == method)
                and (kind is None or r["kind"] == kind) and r["t"] >= since]

    def deletes(self):
        """The requests of the destroy sequence (power_off, release), in order."""
        return [r for r in self.log() if r["kind"] in ("power_off", "release")]

    def mutations(self):
        return [r for r in self.log() if r["kind"] in ("power_off", "release", "power_on")
                or r["method"] not in ("GET", "HEAD", "POST")]

    # ---- routing -----------------------------------------------------------

    def _tick(self):
        """One list poll passes: transitions advance."""
        with self.lock:
            for iid in list(self.shutting):
                self.shutting[iid] -= 1
                if self.shutting[iid] <= 0:
                    self.shutting.pop(iid)
                    if iid in self.instances and \
                            self.instances[iid]["status"] == "shutting_down":
                        self.instances[iid]["status"] = "shutdown"
            for iid in list(self.lingering):
                self.lingering[iid] -= 1
                if self.lingering[iid] < 0:
                    self.instances.pop(iid, None)
                    self.lingering.pop(iid, None)

    def _page(self, page, size, endless=False):
        if page == 1:
            self._tick()
        with self.lock:
            insts = [copy.deepcopy(v) for v in self.instances.values()]
        n = len(insts)
        max_page = (n + size - 1) // size
        chunk = insts[(page - 1) * size: page * size]
        if endless:
            max_page = page + 1
        return {"list": chunk, "page_index": page, "page_size": size,
                "max_page": max_page, "result_total": n}

    def _body_json(self, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return None
        return req if isinstance(req, dict) else None

    def handle_api(self, method, path, query, body, endless=False, rec=None):
        """(status, object) for an authenticated /api request."""
        kind = _kind(path)
        verb = path[len(BASE):].strip("/") if path.startswith(BASE) else ""
        if kind == "list":
            if method != "POST":
                return 405, _reply(None, "MethodNotAllowed", "use POST")
            req = self._body_json(body)
            pi, ps = (req or {}).get("page_index", 1), (req or {}).get("page_size", 10)
            if req is None or not isinstance(pi, int) or not isinstance(ps, int) \
                    or isinstance(pi, bool) or pi < 1 or not 1 <= ps <= 1000:
                return 200, _reply(None, "RequestParameterIsWrong", "page_index/page_size")
            data = self._page(pi, ps, endless)
            if rec is not None:
                rec["page"] = pi
                rec["served"] = {i["uuid"]: i["status"] for i in data["list"]}
            return 200, _reply(data)
        if kind == "show":
            if method != "GET":
                return 405, _reply(None, "MethodNotAllowed", "use GET")
            iid = (query.get("instance_uuid") or [None])[0]
            inst = self.get(iid) if iid else None
            if not iid:
                return 200, _reply(None, "RequestParameterIsWrong", "instance_uuid missing")
            if inst is None:
                return 200, _reply(None, "RecordNotFoundError", "record not found")
            if verb == "status":
                return 200, _reply(inst["status"])
            return 200, _reply({k: inst.get(k) for k in (
                "ssh_command", "proxy_host", "ssh_port", "root_password",
                "jupyter_domain", "jupyter_token", "service_6006_domain")}
                | {"jupyter_port": 8443, "service_6006_port": 8443,
                   "usage_info": {"valid": True}})
        if kind in ("power_off", "release", "power_on"):
            if method != "POST":
                return 405, _reply(None, "MethodNotAllowed", "use POST")
            req = self._body_json(body)
            iid = (req or {}).get("instance_uuid")
            if not isinstance(iid, str):
                return 200, _reply(None, "RequestParameterIsWrong", "instance_uuid missing")
            with self.lock:
                inst = self.instances.get(iid)
                if inst is None or iid in self.lingering:
                    return 200, _reply(None, "RecordNotFoundError", "record not found")
                if kind == "power_off":
                    self.power_off(iid)
                    return 200, _reply(None)
                if kind == "release":
                    if inst["status"] != "shutdown":
                        return 200, _reply(None, "InstanceStatusNotAllowed",
                                           "instance is %s: power off first" % inst["status"])
                    self.destroy(iid)
                    return 200, _reply(None)
                if inst["status"] == "shutdown":
                    inst["status"] = "running"
                return 200, _reply(None)
        return 404, {"code": "NotFound", "msg": "no route " + path}


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
            sys.stderr.write("fake_autodl: " + (fmt % args) + "\n")

    def _send(self, status, body, ctype="application/json", length=None, close=False):
        if body is None or isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
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
        if path.startswith("/_fake/"):
            return self._control(path, body)
        auth = self.headers.get("Authorization") or ""
        authed = auth == str(fake.api_key)
        kind = _kind(path)

        def mask(k, v):
            if k.lower() != "authorization":
                return v
            return "Bearer ***" if v.startswith("Bearer ") else "***"
        rec = {
            "t": time.monotonic(), "wall": time.time(), "method": self.command,
            "path": path, "query": query, "kind": kind,
            "headers": {k: mask(k, v) for k, v in self.headers.items()},
            "authorized": authed, "body": body.decode(errors="replace"),
            "status": None,
        }
        try:
            jb = json.loads(body) if body else None
            if isinstance(jb, dict) and isinstance(jb.get("page_index"), int):
                rec["page"] = jb["page_index"]
            if isinstance(jb, dict) and isinstance(jb.get("instance_uuid"), str):
                rec["instance"] = jb["instance_uuid"]
        except ValueError:
            pass
        with fake.lock:
            fake.requests.append(rec)
        f = fake._take_fault(self.command, path, kind)
        if f is not None and f.mode != "endless":
            rec["fault"] = f.mode
            if f.apply and authed and f.mode != "delay":
                rec["applied"] = fake.handle_api(self.command, path, query, body, rec=rec)[0]
            return self._fault(f, rec, query, body)
        if not authed:
            rec["status"] = 401
            return self._send(401, _reply(None, "AuthorizeFailed", "invalid developer token"))
        status, obj = fake.handle_api(self.command, path, query, body,
                                      endless=f is not None, rec=rec)
        if f is not None:
            rec["fault"] = f.mode
        rec["status"] = status
        self._send(status, obj)

    def _fault(self, f, rec, query, body):
        path = urlsplit(self.path).path
        if f.mode == "delay":
            f.released.wait(f.delay)
            status, obj = (self.fake.handle_api(self.command, path, query, body, rec=rec)
                           if rec["authorized"] else
                           (401, _reply(None, "AuthorizeFailed", "invalid developer token")))
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
        if f.mode in ("truncate", "cut"):
            full = json.dumps(_reply(self.fake._page(1, 50))).encode()
            half = full[: len(full) // 2]
            rec["status"] = 200
            if f.mode == "truncate":
                return self._send(200, half)
            return self._send(200, half, length=len(full), close=True)
        if f.mode == "html":
            status = f.status or 200
            rec["status"] = status
            return self._send(status, "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway"
                              "</title></head><body><center><h1>502 Bad Gateway</h1>"
                              "</center></body></html>\n", ctype="text/html")
        if f.mode == "body":
            status = f.status or 200
            rec["status"] = status
            return self._send(status, f.body if f.body is not None else b"",
                              ctype=f.content_type or "application/json")
        if f.mode == "code":
            rec["status"] = f.status or 200
            return self._send(f.status or 200, _reply(None, f.code or "InternalError",
                                                      "injected"))
        status = f.status or 500
        rec["status"] = status
        codes = {401: "AuthorizeFailed", 403: "Forbidden", 429: "TooManyRequests"}
        return self._send(status, _reply(None, codes.get(status, "InternalError"),
                                         "injected HTTP %d" % status))

    def _control(self, path, body):
        fake = self.fake
        try:
            req = json.loads(body) if body else {}
        except ValueError:
            return self._send(400, {"code": "BadRequest", "msg": "body is not JSON"})
        if path == "/_fake/requests":
            return self._send(200, fake.log())
        if path == "/_fake/world":
            with fake.lock:
                return self._send(200, {"instances": list(fake.instances.values()),
                                        "lingering": fake.lingering,
                                        "fault": fake.fault and fake.fault.as_dict()})
        if path == "/_fake/fault":
            fake.fail(**{k: req[k] for k in ("status", "times", "mode", "delay", "body",
                                             "content_type", "method", "path", "kind",
                                             "apply", "code") if k in req})
            return self._send(200, {"code": "Success"})
        if path == "/_fake/clear":
            fake.clear()
            return self._send(200, {"code": "Success"})
        m = re.fullmatch(r"/_fake/state/([\w.-]+)/(\w+)", path)
        if m and m.group(2) in STATES:
            return self._send(200, {"code": "Success",
                                    "expect": fake.set_state(m.group(1), m.group(2))})
        m = re.fullmatch(r"/_fake/remove/([\w.-]+)", path)
        if m:
            fake.remove(m.group(1))
            return self._send(200, {"code": "Success"})
        return self._send(404, {"code": "NotFound", "msg": "no control route " + path})

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle
