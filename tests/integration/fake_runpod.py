#!/usr/bin/python3
"""A fake RunPod REST v2 API on 127.0.0.1 for rgtfs tests.

It answers the way api.runpod.io/v2 does (PLATFORMS.md section 2.4), not the
way that would be easiest for rgtfs:

    GET    /v2/pods        {"pods": [pod, ...]}   (wrapped; v1's bare array is gone)
    GET    /v2/pods/{id}   the pod object, or a 404 RFC 9457 problem
    DELETE /v2/pods/{id}   204, no body. The pod lingers as status TERMINATED
                           (cost 0, no runtime, no ssh) for `linger` list calls,
                           then vanishes; 404 for an unknown pod.
    POST   /v2/pods/{id}/action {"action": "start"|"stop"|"restart"|"terminate"}
                           200 with the pod (terminate: 204); 409 when the action
                           is not allowed in the current status
    GET    /v2/pods/{id}/logs?tail=N  Server-Sent Events (text/event-stream):
                           the last N (default 100, 0..5000) of the pod's
                           events (set_logs) as `id: K` / `data: {"ts",
                           "source","line"}` / blank line, then nothing more
                           while the connection stays open, until the client
                           goes away or `log_hold` seconds pass; 404 problem
                           for an unknown pod

Auth is `Authorization: Bearer KEY`; anything else gets a 401 problem
(application/problem+json with title/status/detail). Pods carry env and args
with values that contain SECRET_MARK so tests can grep for leaks. ssh.direct is
null unless the pod is RUNNING and 22/tcp is mapped on a public IP; ssh.proxy
has its own login "<podId>-<8hex>" (and no SFTP on the real service).

Every /v2 request is recorded (method, path, query, headers with the key
masked, body, status, kind "list"/"show"/"other").

Faults, FakeRunPod.fail(...), with fake_vast's fields and semantics (status,
times, mode truncate|cut|html|delay|hang|reset|body, method, path, kind, apply),
plus mode "endless": a 200 whose {"pods": [ ... never ends (one pod every few
milliseconds until the client gives up). The v2 list has no page cursor, so
this is RunPod's "page that never ends".
"""

import copy
import hashlib
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
API_KEY_ENV = "RUNPOD_API_KEY"
SECTION = {}
DESTROY_CALLS = [("DELETE", r"/v2/pods/{id}")]
FAULT_MODES = ("status", "truncate", "cut", "html", "delay", "hang", "reset",
               "body", "endless")
IMAGE = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"

# normalized name -> (raw fields, the word rgtfs must write to `status`)
STATES = {
    "provisioning": (dict(status="PROVISIONING", interruptible=False), "provisioning"),
    "starting": (dict(status="STARTING", interruptible=False), "provisioning"),
    "running": (dict(status="RUNNING", interruptible=False), "running"),
    "stopped": (dict(status="EXITED", interruptible=False), "stopped"),
    # an interruptible pod that RunPod stopped (rgtfs never stops pods)
    "preempted": (dict(status="EXITED", interruptible=True), "preempted"),
    "offline": (dict(status="ERROR", interruptible=False), "offline"),
    # v2 has no "terminating" status: a terminated pod may still be listed
    # as TERMINATED for a while; rgtfs does not list it
    "destroying": (dict(status="TERMINATED"), "gone"),
}

ACTIONS = {"RUNNING": ["stop", "restart", "terminate"],
           "EXITED": ["start", "terminate"], "ERROR": ["start", "terminate"],
           "PROVISIONING": ["stop", "terminate"], "STARTING": ["stop", "terminate"],
           "TERMINATED": []}

_rng = random.Random()
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_ids(n):
    """n fresh pod ids shaped like RunPod's (14 lowercase alphanumerics)."""
    return [_rng.choice(_ALNUM[:26]) + "".join(_rng.choice(_ALNUM) for _ in range(13))
            for _ in range(n)]


def _proxy_user(iid):
    return "%s-%s" % (iid, hashlib.sha256(iid.encode()).hexdigest()[:8])


def _shape(pod, eps):
    """Recompute the fields that follow from the status and the endpoints."""
    st = pod["status"]
    direct_host, direct_port, proxy_port = eps
    running = st == "RUNNING"
    pod["actions"] = list(ACTIONS.get(st, []))
    pod["cost"] = 0.69 if running or st in ("PROVISIONING", "STARTING") else 0.0
    ssh = {"proxy": None, "direct": None}
    if st != "TERMINATED" and proxy_port is not None:
        u = _proxy_user(pod["id"])
        ssh["proxy"] = {"host": "127.0.0.1", "port": proxy_port, "username": u,
                        "command": "ssh %s@127.0.0.1 -p %d" % (u, proxy_port)}
    if running and direct_port is not None:
        ssh["direct"] = {"host": direct_host, "port": direct_port, "username": "root",
                         "command": "ssh root@%s -p %d" % (direct_host, direct_port)}
    pod["ssh"] = ssh
    if running:
        ports = []
        if direct_port is not None:
            ports.append({"private": 22, "public": direct_port, "type": "tcp",
                          "ip": direct_host})
        pod["runtime"] = {"uptime": 6612, "gpus": [{"id": "GPU-5c1e", "gpuUtilPercent": 97,
                                                     "memoryUtilPercent": 61}],
                          "cpu": {"count": 8, "utilPercent": 40},
                          "memory": {"totalGb": 62, "utilPercent": 35}, "ports": ports}
    else:
        pod["runtime"] = None
    return pod


def make_instance(iid, *, direct_host="127.0.0.1", direct_port=None, proxy_port=None,
                  state="running", **fields):
    """A v2 pod object (PLATFORMS.md 2.4) for pod id iid."""
    iid = str(iid)
    pod = {
        "id": iid, "name": "rgtfs-exp-" + iid, "status": "RUNNING",
        "image": IMAGE,
        "args": "bash -c 'export HF_TOKEN=%s-args-%s; /start.sh'" % (SECRET_MARK, iid),
        "disk": 50, "ports": ["8888/http", "22/tcp"],
        "env": {"WANDB_API_KEY": "%s-env-%s-wandb" % (SECRET_MARK, iid),
                "PUBLIC_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA test"},
        "mounts": {"persistent": {"size": 100, "path": "/workspace"}},
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
        "cloud": "COMMUNITY", "dataCenterId": "EU-RO-1", "cudaVersion": "12.4",
        "template": None, "locked": False, "globalNetworking": {"enabled": False},
        "createdAt": "2026-11-30T09:12:44Z", "startedAt": "2026-11-30T09:14:02Z",
    }
    pod.update(copy.deepcopy(STATES[state][0]))
    pod.update(fields)
    pod["_eps"] = (direct_host, direct_port, proxy_port)
    return pod


def _public(pod):
    p = {k: copy.deepcopy(v) for k, v in pod.items() if not k.startswith("_")}
    return _shape(p, pod["_eps"])


def _problem(status, title, detail):
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


class FakeRunPod:
    """The fake API. start() runs it in a thread; stop() ends it."""
    kind = "runpod"

    def __init__(self, api_key, host="127.0.0.1", port=0, linger=3, quiet=True):
        self.api_key = api_key
        self.host = host
        self.port = port
        self.linger = linger
        self.quiet = quiet
        self.lock = threading.RLock()
        self.pods = {}
        self.lingering = {}
        self.requests = []
        self.fault = None
        self.on_fault = None
        self.httpd = None
        self.thread = None
        self._conns = set()
        self.logs = {}            # pod id -> [{"ts", "source", "line"}, ...]
        self.log_hold = 5.0       # seconds a log stream stays open, silent

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
                                       name="fake-runpod", daemon=True)
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
        inst = copy.deepcopy(inst)
        inst.setdefault("_eps", ("127.0.0.1", None, None))
        with self.lock:
            self.pods[str(inst["id"])] = inst
        return inst

    def get(self, iid):
        with self.lock:
            p = self.pods.get(str(iid))
            return _public(p) if p else None

    def update(self, iid, **fields):
        with self.lock:
            self.pods[str(iid)].update(fields)

    def set_state(self, iid, name):
        fields, word = STATES[name]
        self.update(iid, **copy.deepcopy(fields))
        return word

    def set_endpoints(self, iid, direct_port=None, proxy_port=None,
                      direct_host="127.0.0.1"):
        self.update(iid, _eps=(direct_host, direct_port, proxy_port))

    def set_logs(self, iid, events):
        """The pod's log events, oldest first: dicts {ts, source, line}, or
        strings (sent as the data line as they are, for garbage)."""
        with self.lock:
            self.logs[str(iid)] = list(events)

    def remove(self, iid):
        with self.lock:
            self.pods.pop(str(iid), None)
            self.lingering.pop(str(iid), None)

    def destroy(self, iid):
        with self.lock:
            iid = str(iid)
            if iid not in self.pods or self.pods[iid]["status"] == "TERMINATED":
                return False
            self.pods[iid]["status"] = "TERMINATED"
            self.lingering[iid] = self.linger
            return True

    # ---- faults ----------------------------------------------------------

    def fail(self, status=None, times=None, mode=None, delay=0.0, body=None,
             content_type=None, method=None, path=None, kind=None, apply=False):
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

    # ---- the request log ---------------------------------------------------

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
        """The requests of the destroy sequence (and any other terminate)."""
        return [r for r in self.log() if r["method"] == "DELETE"
                or (r["method"] == "POST" and r["path"].endswith("/action")
                    and '"terminate"' in r["body"])]

    def mutations(self):
        return [r for r in self.log() if r["method"] not in ("GET", "HEAD")]

    # ---- routing -------------------------------------------------------------

    def _list(self):
        with self.lock:
            for iid in list(self.lingering):
                self.lingering[iid] -= 1
                if self.lingering[iid] < 0:
                    self.pods.pop(iid, None)
                    self.lingering.pop(iid, None)
            return {"pods": [_public(p) for p in self.pods.values()]}

    def handle_api(self, method, path, query, body):
        """(status, object or None) for an authenticated /v2 request."""
        if re.fullmatch(r"/v2/pods/?", path):
            if method == "GET":
                return 200, self._list()
            return 405, _problem(405, "Method Not Allowed", "%s /v2/pods" % method)
        m = re.fullmatch(r"/v2/pods/([A-Za-z0-9]+)(/action)?", path)
        if m:
            iid, action = m.group(1), m.group(2)
            with self.lock:
                pod = self.pods.get(iid)
                pub = _public(pod) if pod else None
            if pub is None:
                return 404, _problem(404, "Not Found", "pod %s not found" % iid)
            if not action:
                if method == "GET":
                    return 200, pub
                if method == "DELETE":
                    self.destroy(iid)
                    return 204, None
                return 405, _problem(405, "Method Not Allowed", method)
            if method != "POST":
                return 405, _problem(405, "Method Not Allowed", method)
            try:
                act = json.loads(body or b"{}").get("action")
            except (ValueError, AttributeError):
                return 400, _problem(400, "Bad Request", "body is not a JSON object")
            if act not in pub["actions"]:
                return 409, _problem(409, "Conflict", "action %r is not allowed while "
                                     "the pod is %s" % (act, pub["status"]))
            if act == "terminate":
                self.destroy(iid)
                return 204, None
            self.update(iid, status="EXITED" if act == "stop" else "RUNNING")
            return 200, self.get(iid)
        return 404, _problem(404, "Not Found", "no route " + path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare"
    sys_version = ""
    timeout = 60
    fake = None

    def version_string(self):
        return "cloudflare"

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
            sys.stderr.write("fake_runpod: " + (fmt % args) + "\n")

    def _send(self, status, body, ctype=None, length=None, close=False, extra=None):
        if status == 204:
            self.send_response(204)
            self.end_headers()
            self.wfile.flush()
            return
        problem = isinstance(body, dict) and "title" in body and "pods" not in body
        if body is None or isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype or ("application/problem+json" if problem
                                                   else "application/json"))
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("RateLimit-Policy", '"burst";q=100;w=10')
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
        authed = auth == "Bearer " + str(fake.api_key)
        kind = ("list" if re.fullmatch(r"/v2/pods/?", path) else
                "show" if re.fullmatch(r"/v2/pods/[^/]+", path) else "other")
        rec = {
            "t": time.monotonic(), "wall": time.time(), "method": self.command,
            "path": path, "query": {k: (["***"] if "key" in k.lower() else v)
                                    for k, v in query.items()},
            "kind": kind,
            "headers": {k: ("Bearer ***" if k.lower() == "authorization"
                            and auth.startswith("Bearer ") else
                            "***" if k.lower() == "authorization" else v)
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
            return self._fault(f, rec, query, body)
        if not authed:
            rec["status"] = 401
            return self._send(401, _problem(401, "Unauthorized",
                                            "missing or invalid API key"))
        m = re.fullmatch(r"/v2/pods/([A-Za-z0-9]+)/logs", path)
        if m and self.command == "GET":
            return self._logs(m.group(1), query, rec)
        status, obj = fake.handle_api(self.command, path, query, body)
        rec["status"] = status
        self._send(status, obj)

    def _logs(self, iid, query, rec):
        """GET /v2/pods/{id}/logs as the public API serves it: an SSE stream."""
        fake = self.fake
        with fake.lock:
            known = iid in fake.pods
            events = list(fake.logs.get(iid, []))
        if not known:
            rec["status"] = 404
            return self._send(404, _problem(404, "Not Found", "pod %s not found" % iid))
        try:
            tail = int((query.get("tail") or ["100"])[0])
        except ValueError:
            tail = -1
        if not 0 <= tail <= 5000:
            rec["status"] = 400
            return self._send(400, _problem(400, "Bad Request", "tail must be 0..5000"))
        events = events[len(events) - tail:] if tail else []
        rec["status"] = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(b):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()
        try:
            chunk(b": connected\n\n")
            for k, ev in enumerate(events, 1):
                data = ev if isinstance(ev, str) else json.dumps(ev)
                chunk(("id: %d\ndata: %s\n\n" % (k, data)).encode())
            t0 = time.monotonic()
            while time.monotonic() - t0 < fake.log_hold:
                r, _, _ = select.select([self.connection], [], [], 0.1)
                if r and not self.connection.recv(1, socket.MSG_PEEK):
                    break           # the client went away
            else:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

    def _fault(self, f, rec, query, body):
        path = urlsplit(self.path).path
        if f.mode == "delay":
            f.released.wait(f.delay)
            status, obj = (self.fake.handle_api(self.command, path, query, body)
                           if rec["authorized"] else
                           (401, _problem(401, "Unauthorized", "invalid API key")))
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
            return self._endless(f, rec)
        if f.mode in ("truncate", "cut"):
            full = json.dumps(self.fake._list()).encode()
            half = full[: len(full) // 2]
            rec["status"] = 200
            if f.mode == "truncate":
                return self._send(200, half)
            return self._send(200, half, length=len(full), close=True)
        if f.mode == "html":
            rec["status"] = f.status or 502
            return self._send(rec["status"], "<!DOCTYPE html><html><head><title>502 Bad "
                              "gateway</title></head><body>cloudflare</body></html>\n",
                              ctype="text/html")
        if f.mode == "body":
            rec["status"] = f.status or 200
            return self._send(rec["status"], f.body if f.body is not None else b"",
                              ctype=f.content_type or "application/json")
        status = f.status or 500
        rec["status"] = status
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
                  502: "Bad Gateway", 503: "Service Unavailable"}
        extra = {"Retry-After": "1", "RateLimit": '"burst";r=0;t=1'} if status == 429 else None
        return self._send(status, _problem(status, titles.get(status, "Error"),
                                           "injected fault"), extra=extra)

    def _endless(self, f, rec):
        """200, chunked, {"pods": [ pod, pod, ... without end."""
        rec["status"] = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pod = json.dumps(_public(make_instance("endless0000001"))).encode()

        def chunk(b):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()
        try:
            chunk(b'{"pods": [')
            t0 = time.monotonic()
            while not f.released.is_set() and time.monotonic() - t0 < 120:
                chunk(pod + b",")
                time.sleep(0.005)
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle


def main(argv=None):
    import argparse
    import os
    import signal
    ap = argparse.ArgumentParser(description="fake RunPod REST v2 API for rgtfs")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--world", help="JSON file: {api_key, linger, pods:[...]}; a pod may "
                    "carry \"_eps\": [direct_host, direct_port, proxy_port]")
    ap.add_argument("--api-key", default=None,
                    help="accepted key (default: the world's, else $%s)" % API_KEY_ENV)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    fake = FakeRunPod(a.api_key, host=a.host, port=a.port, quiet=not a.verbose)
    if a.world:
        with open(a.world) as f:
            w = json.load(f)
        fake.api_key = fake.api_key or w.get("api_key")
        fake.linger = int(w.get("linger", fake.linger))
        for pod in w.get("pods", []):
            pod["_eps"] = tuple(pod.get("_eps") or ("127.0.0.1", None, None))
            fake.add(pod)
    fake.api_key = fake.api_key or os.environ.get(API_KEY_ENV)
    if not fake.api_key:
        ap.error("no API key: give --api-key, a world api_key or $%s" % API_KEY_ENV)
    fake.start()
    print("fake_runpod: listening on %s (%d pods)" % (fake.url, len(fake.pods)), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
