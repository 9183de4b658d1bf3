#!/usr/bin/python3
"""A fake vast.ai v0 REST API on 127.0.0.1 for rgtfs tests and the demo.

It answers the calls rgtfs makes the way console.vast.ai does
(PLATFORMS.md section 1):

    GET    /api/v0/instances?owner=me  {"instances":[...], "instances_found":n}
    GET    /api/v0/instances/{id}/     {"instances":{...}}  (single object under
                                        the plural key), {"instances":null} when unknown
    DELETE /api/v0/instances/{id}/     {"success":true,"msg":...}; the instance lingers
                                        (cur_state "unloaded", actual_status "exited")
                                        for `linger` list calls, then vanishes
    PUT    /api/v0/instances/{id}/     {"state":"stopped"|"running"} or {"label":...}
    PUT    /api/v0/instances/request_logs/{id}/  {"tail": "N"} (a string, as the
                                        public API documents it; optional "filter",
                                        "daemon_logs"): {"success": true, "result_url":
                                        URL, "msg": ...}; 404 {"error": "invalid_id",
                                        "msg": ...} for an unknown instance. The log
                                        (set_log_text) is then a plain object at URL,
                                        served by this fake under /_s3/ with a
                                        presigned-style query (X-Amz-Signature):
                                        no auth there (it is not vast.ai's host
                                        on the real service), 404 (log_missing_status)
                                        for the first log_not_ready GETs of each
                                        upload (None: never appears), then 200
                                        text/plain with the last `tail` lines
                                        as they were when the PUT came.
    GET    /api/v1/instances/?limit=N&after_token=T   the paged list ([3p] shape,
                                        PLATFORMS.md 1.2): {"success":true,
                                        "instances_found":n, "total_instances":N,
                                        "label_counts":{..}, "next_token":T|null,
                                        "instances":[...]}; limit 1..25 (default 25),
                                        ordered by id; order_by/select_filters are
                                        JSON (checked, filters not applied)

Auth is `Authorization: Bearer KEY` (or `?api_key=KEY`); anything else gets a
401 with a JSON error body. Instance objects carry the secret-bearing fields
(jupyter_token, onstart, extra_env) with values that contain SECRET_MARK so
tests can grep for leaks; HostPort is a string and public_ipaddr carries
surrounding whitespace, as on the real service.

Every /api request is recorded (method, path, query, headers with the key
masked, body, answer status) so tests count list calls and assert "no DELETE".
GETs of a log object are recorded too, as kind "object", with
"authorization_sent" (an Authorization header arrived) and "key_seen" (the API
key appeared anywhere in the request line or headers); object_gets() lists them.
Faults touch object GETs only when the fault's "path" starts with "/_s3".
Knobs for the log API: log_not_ready (default 1), log_missing_status (404; S3
also says 403), log_refuse (a msg: the PUT answers {"success": false, "msg"}),
object_base (the scheme://host[:port] result_url names; default the fake's).

Error injection without code changes: FakeVast.fail(...) in-process, or
POST /_fake/fault with the same fields as JSON when standalone:
    {"status": 500, "times": 3}       status N for the next K /api requests
    {"status": 429}                   ... or forever (times null)
    {"mode": "truncate"}              200 with the JSON cut in half
    {"mode": "cut"}                   Content-Length promises more than is sent
    {"mode": "html"}                  200 text/html instead of JSON
    {"mode": "delay", "delay": 5}     answer normally after 5 s
    {"mode": "hang"}                  never answer (until the fault is cleared)
    {"mode": "reset"}                 close the connection without an answer
    {"mode": "body", "body": "...", "status": 200}   any body
    {"mode": "endless"}               v1 pages never end (a fresh next_token each time)
  Any fault may also carry "method" (only that HTTP method), "path" (only
  paths starting with it), "kind" ("list", "show" or "other": only that kind
  of request, see the request log) and "apply": true (the request's real
  effect happens first, e.g. a DELETE destroys, and then the fault answers:
  a destroy whose outcome the client cannot know). A "path" that is a prefix of
  the v0 list path (/api/v0/instances) also aims at the v1 list: such a fault
  means "the list answers this", whichever list the client asks.
POST /_fake/clear removes it. Other control endpoints (no auth, not recorded):
    GET  /_fake/requests              the request log
    GET  /_fake/world                 the instances as stored
    POST /_fake/instances/{id}        JSON fields merged into the instance (creates it)
    POST /_fake/state/{id}/{name}     one of STATES (see below)
    POST /_fake/remove/{id}           vanish at once
    POST /_fake/key                   {"api_key": "..."} change the accepted key
    POST /_fake/log/{id}              {"text": "..."} the instance's log text
    POST /_fake/logapi                {"not_ready": N|null, "missing_status": 404|403,
                                       "refuse": msg|null, "object_base": URL|null}

Standalone:  python3 fake_vast.py --port P --world FILE.json [--api-key KEY]
World file:  {"api_key": "...", "linger": 3, "instances": [ {instance}, ... ]}
"""

import argparse
import base64
import copy
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SECRET_MARK = "FAKESECRET"
V0_LIST = "/api/v0/instances"
V1_LIST_RE = r"/api/v1/instances/?"
V1_LIMIT_MAX = 25
FAULT_MODES = ("status", "truncate", "cut", "html", "delay", "hang", "reset", "body",
               "endless")

IMAGE = "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"
RUNNING_MSG = "success, running pytorch/pytorch_2.4.0-cuda12.4-cudnn9-runtime/ssh"

# Raw vast.ai status fields -> the word rgtfs must write to `status`
# (PLATFORMS.md section 7). Each entry: (fields to set, expected status).
STATES = {
    "running": (dict(actual_status="running", intended_status="running",
                     cur_state="running", next_state="running", is_bid=False,
                     status_msg=RUNNING_MSG), "running"),
    "provisioning": (dict(actual_status=None, intended_status="running",
                          cur_state="running", next_state="running", is_bid=False,
                          status_msg="Pulling image " + IMAGE), "provisioning"),
    "loading": (dict(actual_status="loading", intended_status="running",
                     cur_state="running", next_state="running", is_bid=False,
                     status_msg="Loading " + IMAGE + ": 41% of layers"), "provisioning"),
    "stopped": (dict(actual_status="stopped", intended_status="stopped",
                     cur_state="stopped", next_state="stopped", is_bid=False,
                     status_msg="Instance stopped by user"), "stopped"),
    "frozen": (dict(actual_status="frozen", intended_status="frozen",
                    cur_state="stopped", next_state="stopped", is_bid=False,
                    status_msg="frozen (GPU still billed)"), "stopped"),
    "exited": (dict(actual_status="exited", intended_status="running",
                    cur_state="running", next_state="running", is_bid=False,
                    status_msg="container exited with code 137"), "stopped"),
    # an interruptible (bid) instance that had been running was paused
    "preempted": (dict(actual_status="stopped", intended_status="running",
                       cur_state="stopped", next_state="running", is_bid=True,
                       status_msg="outbid: instance paused"), "preempted"),
    "offline": (dict(actual_status="offline", intended_status="running",
                     cur_state="running", next_state="running", is_bid=False,
                     status_msg="host disconnected"), "offline"),
    "unknown": (dict(actual_status="unknown", intended_status="running",
                     cur_state="running", next_state="running", is_bid=False,
                     status_msg="no heartbeat from host"), "unknown"),
    # what a DELETE leaves behind until the instance vanishes
    "destroying": (dict(actual_status="exited", intended_status="stopped",
                        cur_state="unloaded", next_state="unloaded",
                        status_msg="destroying instance"), "destroying"),
}


def secret_values(inst):
    """Every secret string an instance object carries (for leak greps)."""
    out = [inst.get("jupyter_token") or "", inst.get("onstart") or ""]
    for kv in inst.get("extra_env") or []:
        out += [str(x) for x in kv if SECRET_MARK in str(x)]
    return [s for s in out if SECRET_MARK in s]


def make_instance(iid, *, direct_host="127.0.0.1", direct_port=None,
                  proxy_host="127.0.0.1", proxy_port=None, state="running",
                  label=None, gpu_name="RTX 4090", machine_id=4821):
    """An instance object shaped like PLATFORMS.md section 1.4.

    direct_port: the host side of 22/tcp (HostPort, sent as a string);
    None leaves ports without "22/tcp". proxy_port: ssh_port (int)."""
    ports = {}
    if direct_port is not None:
        ports["22/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": str(direct_port)}]
        ports["6006/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": str(direct_port + 1)}]
    inst = {
        "id": iid, "machine_id": machine_id,
        "label": label if label is not None else "rgtfs:exp-%d" % iid,
        "image_uuid": IMAGE, "image_runtype": "ssh ssh_direc ssh_proxy",
        "image_args": [],
        "extra_env": [["WANDB_API_KEY", "%s-extraenv-%d-wandb" % (SECRET_MARK, iid)],
                      ["-p 6006:6006", "1"]],
        "onstart": "export HF_TOKEN=%s-onstart-%d-hf; bash /workspace/onstart.sh"
                   % (SECRET_MARK, iid),
        "jupyter_token": "%s-jupyter-%d-0123456789abcdef" % (SECRET_MARK, iid),
        "public_ipaddr": "  %s\n" % direct_host,
        "local_ipaddrs": "10.2.1.7 172.17.0.1",
        "ssh_host": proxy_host, "ssh_idx": "5",
        "ssh_port": proxy_port if proxy_port is not None else 0,
        "ports": ports,
        "direct_port_count": 8, "direct_port_start": direct_port or 0,
        "direct_port_end": (direct_port or 0) + 8, "static_ip": False,
        "start_date": 1753860000.12, "end_date": 1756452000, "uptime_mins": 182.4,
        "duration": 2592000.0,
        "num_gpus": 1, "gpu_name": gpu_name, "gpu_arch": "nvidia", "gpu_ram": 24564,
        "gpu_totalram": 24564, "gpu_util": 97.0, "gpu_temp": 61.0, "gpu_frac": 1.0,
        "cpu_cores": 32, "cpu_cores_effective": 8.0, "cpu_ram": 64312, "cpu_util": 88.5,
        "mem_limit": 64.0, "mem_usage": 23.1,
        "disk_space": 80, "disk_usage": 41.2, "disk_util": 0.51,
        "inet_up": 812.0, "inet_down": 905.0, "reliability2": 0.991,
        "dph_total": 0.3866, "dph_base": 0.35, "storage_cost": 0.15,
        "template_id": None, "template_hash_id": None, "template_name": None,
    }
    inst.update(copy.deepcopy(STATES[state][0]))
    return inst


class _Fault:
    def __init__(self, status=None, times=None, mode=None, delay=0.0, body=None,
                 content_type=None, method=None, path=None, kind=None, apply=False):
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
        self.released = threading.Event()

    def matches(self, method, path, kind=None):
        if self.method and self.method != method:
            return False
        if self.kind and self.kind != kind:
            return False
        if self.path and not path.startswith(self.path) and not (
                kind == "list" and V0_LIST.startswith(self.path)):
            return False
        return True

    def as_dict(self):
        return {"mode": self.mode, "status": self.status, "times": self.times,
                "delay": self.delay, "method": self.method, "path": self.path,
                "kind": self.kind, "apply": self.apply}


class FakeVast:
    """The fake API. start() runs it in a thread; stop() ends it."""

    def __init__(self, api_key, host="127.0.0.1", port=0, linger=3, quiet=True):
        self.api_key = api_key
        self.host = host
        self.port = port
        self.linger = linger
        self.quiet = quiet
        self.lock = threading.RLock()
        self.instances = {}           # id -> instance object (insertion ordered)
        self.lingering = {}           # id -> list calls left before it vanishes
        self.requests = []
        self.fault = None
        self.on_fault = None          # callback(fault) for stderr-hygiene bookkeeping
        self.httpd = None
        self.thread = None
        self._conns = set()
        # the log API (request_logs and its result objects)
        self.log_texts = {}           # id -> the instance's log text
        self.log_not_ready = 1        # 404s per upload before it appears; None: never
        self.log_missing_status = 404
        self.log_refuse = None        # a msg: request_logs answers success false
        self.object_base = None       # result_url's scheme://host[:port]; None: ours
        self.objects = {}             # object path -> {"text", "misses", "sig"}

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
                # a client that gave up (timeout) is not the fake's problem
                if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
                    super().handle_error(request, client_address)

        class H(_Handler):
            pass
        H.fake = fake
        self.httpd = Server((self.host, self.port), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       name="fake-vast", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop listening and drop every open connection (API unreachable)."""
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
        """Listen again on the same port after stop()."""
        return self.start()

    # ---- the world -----------------------------------------------------

    def add(self, inst):
        with self.lock:
            self.instances[int(inst["id"])] = inst
        return inst

    def get(self, iid):
        with self.lock:
            return copy.deepcopy(self.instances.get(int(iid)))

    def update(self, iid, **fields):
        with self.lock:
            self.instances[int(iid)].update(fields)

    def set_state(self, iid, name):
        """Put instance iid into one of STATES; returns the expected status word."""
        fields, word = STATES[name]
        self.update(iid, **copy.deepcopy(fields))
        return word

    def set_endpoints(self, iid, direct_port=None, proxy_port=None,
                      direct_host="127.0.0.1", proxy_host="127.0.0.1"):
        ports = {}
        if direct_port is not None:
            ports["22/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": str(direct_port)}]
        self.update(iid, ports=ports, public_ipaddr="  %s\n" % direct_host,
                    ssh_host=proxy_host, ssh_port=proxy_port or 0)

    def set_log_text(self, iid, text):
        """The instance's log (what request_logs uploads the tail of)."""
        with self.lock:
            self.log_texts[int(iid)] = text

    def object_gets(self, since=0.0):
        """The recorded GETs of log objects (result_url)."""
        return [r for r in self.log() if r["kind"] == "object" and r["t"] >= since]

    def log_requests(self, iid=None):
        """The recorded request_logs PUTs (of instance iid, if given)."""
        pat = r"/api/v0/instances/request_logs/%s/?" % (int(iid) if iid is not None
                                                        else r"\d+")
        return [r for r in self.log() if re.fullmatch(pat, r["path"])]

    def _request_logs(self, iid, body):
        """(status, object) for PUT /api/v0/instances/request_logs/{id}/."""
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return 400, {"success": False, "error": "bad_request",
                         "msg": "body is not JSON"}
        if not isinstance(req, dict):
            return 400, {"success": False, "error": "bad_request",
                         "msg": "body is not a JSON object"}
        tail = req.get("tail", "1000")
        if not isinstance(tail, str) or not re.fullmatch(r"\d{1,6}", tail):
            return 400, {"success": False, "error": "invalid_args",
                         "msg": "tail must be a string of digits"}
        with self.lock:
            if iid not in self.instances:
                return 404, {"error": "invalid_id", "msg": "Invalid instance id."}
            if self.log_refuse is not None:
                return 200, {"success": False, "error": "logs_unavailable",
                             "msg": self.log_refuse}
            lines = (self.log_texts.get(iid) or "").splitlines(keepends=True)
            text = "".join(lines[-int(tail):]) if int(tail) else ""
            name = hashlib.md5(("%s%d%s" % (self.api_key, iid, os.urandom(8).hex()))
                               .encode()).hexdigest()
            path = "/_s3/vast.ai/instance_logs/%s.log" % name
            sig = os.urandom(16).hex()
            self.objects[path] = {"text": text, "misses": self.log_not_ready, "sig": sig}
            base = self.object_base or self.url
        url = ("%s%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600"
               "&X-Amz-SignedHeaders=host&X-Amz-Signature=%s" % (base, path, sig))
        return 200, {"success": True, "result_url": url,
                     "msg": "Logs will be uploaded to the result url shortly."}

    def _object(self, path, query):
        """(status, body, content type) for a GET of a log object."""
        with self.lock:
            o = self.objects.get(path)
            if o is None or query.get("X-Amz-Signature") != [o["sig"]]:
                code = "NoSuchKey" if o is None else "SignatureDoesNotMatch"
                st = 404 if o is None else 403
                return st, ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s"
                            "</Code><Message>-</Message></Error>" % code), "application/xml"
            if o["misses"] is None or o["misses"] > 0:
                if o["misses"] is not None:
                    o["misses"] -= 1
                st = self.log_missing_status
                code = "NoSuchKey" if st == 404 else "AccessDenied"
                return st, ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s"
                            "</Code><Message>-</Message></Error>" % code), "application/xml"
            return 200, o["text"], "text/plain"

    def remove(self, iid):
        """The instance vanishes from every answer at once."""
        with self.lock:
            self.instances.pop(int(iid), None)
            self.lingering.pop(int(iid), None)

    def destroy(self, iid):
        """What a DELETE does (also usable as 'destroyed from the web console')."""
        with self.lock:
            iid = int(iid)
            if iid not in self.instances:
                return False
            self.instances[iid].update(copy.deepcopy(STATES["destroying"][0]))
            self.lingering[iid] = self.linger
            return True

    # ---- faults --------------------------------------------------------

    def fail(self, status=None, times=None, mode=None, delay=0.0, body=None,
             content_type=None, method=None, path=None, kind=None, apply=False):
        """Inject a fault into /api answers (see the module doc)."""
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

    # ---- the request log -------------------------------------------------

    def log(self):
        with self.lock:
            return list(self.requests)

    def list_calls(self, since=0.0):
        """Number of list calls (GET /api/v0/instances, or the first page of
        GET /api/v1/instances/) at or after time `since`."""
        return sum(1 for r in self.log()
                   if r["method"] == "GET" and r["kind"] == "list" and r["t"] >= since
                   and "after_token" not in r["query"])

    def calls(self, method=None, kind=None, since=0.0):
        return [r for r in self.log()
                if (method is None or r["method"] == method)
                and (kind is None or r["kind"] == kind) and r["t"] >= since]

    def deletes(self):
        return [r for r in self.log() if r["method"] == "DELETE"]

    def mutations(self):
        return [r for r in self.log() if r["method"] not in ("GET", "HEAD")]

    # ---- routing -----------------------------------------------------------

    def _tick(self):
        """One list poll passes: destroyed instances linger one call less."""
        with self.lock:
            for iid in list(self.lingering):
                self.lingering[iid] -= 1
                if self.lingering[iid] < 0:
                    self.instances.pop(iid, None)
                    self.lingering.pop(iid, None)

    def _list(self):
        self._tick()
        with self.lock:
            insts = [copy.deepcopy(v) for v in self.instances.values()]
        return {"instances": insts, "instances_found": len(insts)}

    # Opaque cursors in standard base64 with "+", "/" and "=" in them, so a
    # client that does not percent-encode after_token gets them wrong.
    _TOKEN_PREFIX = b"\xfb\xef\xbe\xff\xff\xff"

    @classmethod
    def _token(cls, last_id, serial=0):
        raw = json.dumps({"values": {"id": last_id}, "serial": serial}).encode()
        return base64.b64encode(cls._TOKEN_PREFIX + raw + b"\n").decode()

    @classmethod
    def _untoken(cls, tok):
        try:
            raw = base64.b64decode(tok, validate=True)
            if not raw.startswith(cls._TOKEN_PREFIX):
                return None
            v = json.loads(raw[len(cls._TOKEN_PREFIX):])
            return int(v["values"]["id"])
        except (ValueError, KeyError, TypeError):
            return None

    def _v1_page(self, query, endless=False):
        """(status, object): one page of the v1 list, as the public API pages it."""
        def bad(msg):
            return 400, {"success": False, "error": "invalid_args", "msg": msg}
        limit = (query.get("limit") or ["25"])[0]
        if not re.fullmatch(r"\d{1,3}", limit) or not 1 <= int(limit) <= V1_LIMIT_MAX:
            return bad("limit must be 1..%d" % V1_LIMIT_MAX)
        limit = int(limit)
        for k, typ in (("order_by", list), ("select_filters", dict)):
            if k in query:
                try:
                    if not isinstance(json.loads(query[k][0]), typ):
                        return bad("%s has the wrong type" % k)
                except ValueError:
                    return bad("%s is not JSON" % k)
        after = None
        if "after_token" in query:
            after = self._untoken(query["after_token"][0])
            if after is None:
                return bad("invalid after_token")
        else:
            self._tick()
        with self.lock:
            insts = sorted((copy.deepcopy(v) for v in self.instances.values()),
                           key=lambda i: int(i["id"]))
            self._v1_serial = getattr(self, "_v1_serial", 0) + 1
            serial = self._v1_serial
        rest = [i for i in insts if after is None or int(i["id"]) > after]
        page = rest[:limit]
        more = len(rest) > limit
        labels = {}
        for i in insts:
            labels[i.get("label")] = labels.get(i.get("label"), 0) + 1
        nxt = None
        if endless:
            # a fresh cursor every time, back to the same place: never ends
            nxt = self._token(after if after is not None else 0, serial)
        elif more:
            nxt = self._token(int(page[-1]["id"]))
        return 200, {"success": True, "instances_found": len(page),
                     "total_instances": len(insts), "label_counts": labels,
                     "next_token": nxt, "instances": page}

    def handle_api(self, method, path, query, body, endless=False):
        """(status, object) for an authenticated /api request."""
        if re.fullmatch(V1_LIST_RE, path):
            if method == "GET":
                return self._v1_page(query, endless)
            return 405, {"success": False, "error": "method_not_allowed",
                         "msg": "method not allowed"}
        m = re.fullmatch(r"/api/v0/instances/?", path)
        if m:
            if method == "GET":
                return 200, self._list()
            return 405, {"success": False, "error": "method_not_allowed",
                         "msg": "method not allowed"}
        m = re.fullmatch(r"/api/v0/instances/request_logs/(\d+)/?", path)
        if m:
            if method == "PUT":
                return self._request_logs(int(m.group(1)), body)
            return 405, {"success": False, "error": "method_not_allowed",
                         "msg": "method not allowed"}
        m = re.fullmatch(r"/api/v0/instances/(\d+)/?", path)
        if m:
            iid = int(m.group(1))
            with self.lock:
                inst = copy.deepcopy(self.instances.get(iid))
            if method == "GET":
                return 200, {"instances": inst}
            if inst is None:
                return 404, {"success": False, "error": "no_such_instance",
                             "msg": "Instance %d not found." % iid}
            if method == "DELETE":
                self.destroy(iid)
                return 200, {"success": True, "msg": "deleting instance %d" % iid}
            if method == "PUT":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    return 400, {"success": False, "error": "bad_request",
                                 "msg": "body is not JSON"}
                if req.get("state") in ("stopped", "running"):
                    self.set_state(iid, req["state"])
                if "label" in req:
                    self.update(iid, label=req["label"])
                return 200, {"success": True, "msg": "ok"}
        return 404, {"success": False, "error": "not_found", "msg": "no route " + path}


def _mask_query(q):
    return {k: (["***"] if k == "api_key" else v) for k, v in q.items()}


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
            sys.stderr.write("fake_vast: " + (fmt % args) + "\n")

    def _send(self, status, body, ctype="application/json", extra=None,
              length=None, close=False):
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
        if path.startswith("/_fake/"):
            return self._control(path, body)
        if path.startswith("/_s3/"):
            return self._get_object(path, query)
        auth = self.headers.get("Authorization") or ""
        good = "Bearer " + str(fake.api_key)
        authed = auth == good or query.get("api_key") == [str(fake.api_key)]
        kind = ("list" if re.fullmatch(r"/api/v0/instances/?", path)
                or re.fullmatch(V1_LIST_RE, path) else
                "show" if re.fullmatch(r"/api/v0/instances/\d+/?", path) else "other")
        rec = {
            "t": time.monotonic(), "wall": time.time(), "method": self.command,
            "path": path, "query": _mask_query(query), "kind": kind,
            "headers": {k: ("Bearer ***" if k.lower() == "authorization" and auth.startswith("Bearer ")
                            else "***" if k.lower() == "authorization" else v)
                        for k, v in self.headers.items()},
            "authorized": authed, "body": body.decode(errors="replace"),
            "status": None,
        }
        with fake.lock:
            fake.requests.append(rec)
        f = fake._take_fault(self.command, path, kind)
        if f is not None and f.mode == "endless":
            rec["fault"] = f.mode
            if not authed:
                rec["status"] = 401
                return self._send(401, {"success": False, "error": "invalid_user_key",
                                        "msg": "Invalid user key (401 Unauthorized)."})
            status, obj = fake.handle_api(self.command, path, query, body, endless=True)
            rec["status"] = status
            return self._send(status, obj)
        if f is not None:
            rec["fault"] = f.mode
            if f.apply and authed and f.mode != "delay":
                # the real effect first (a DELETE destroys), then the fault
                rec["applied"] = fake.handle_api(self.command, path, query, body)[0]
            return self._fault(f, rec)
        if not authed:
            rec["status"] = 401
            return self._send(401, {"success": False, "error": "invalid_user_key",
                                    "msg": "Invalid user key (401 Unauthorized)."})
        status, obj = fake.handle_api(self.command, path, query, body)
        rec["status"] = status
        self._send(status, obj)

    def _get_object(self, path, query):
        """A log object, as S3 serves one: no vast.ai auth, recorded."""
        fake = self.fake
        key = str(fake.api_key)
        raw = self.requestline + "\n" + "\n".join("%s: %s" % kv for kv in self.headers.items())
        rec = {
            "t": time.monotonic(), "wall": time.time(), "method": self.command,
            "path": path, "query": query, "kind": "object",
            "headers": {k: ("***" if k.lower() == "authorization" else v)
                        for k, v in self.headers.items()},
            "authorization_sent": "Authorization" in self.headers,
            "key_seen": bool(key) and key in raw,
            "authorized": False, "body": "", "status": None,
        }
        with fake.lock:
            fake.requests.append(rec)
            f = fake.fault
            aimed = f is not None and f.path and path.startswith(f.path)
        if aimed:
            f = fake._take_fault(self.command, path, "object")
            if f is not None:
                rec["fault"] = f.mode
                return self._fault(f, rec)
        if self.command not in ("GET", "HEAD"):
            rec["status"] = 405
            return self._send(405, "", ctype="application/xml")
        status, body, ctype = fake._object(path, query)
        rec["status"] = status
        return self._send(status, body, ctype=ctype)

    def _fault(self, f, rec):
        if f.mode == "delay":
            f.released.wait(f.delay)
            url = urlsplit(self.path)
            status, obj = (self.fake.handle_api(self.command, url.path,
                                                parse_qs(url.query, keep_blank_values=True), b"")
                           if rec["authorized"] else
                           (401, {"success": False, "error": "invalid_user_key"}))
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
            url = urlsplit(self.path)
            if re.fullmatch(V1_LIST_RE, url.path):
                full = json.dumps(self.fake._v1_page(
                    parse_qs(url.query, keep_blank_values=True))[1]).encode()
            else:
                full = json.dumps(self.fake._list()).encode()
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
                              "</center><hr><center>nginx</center></body></html>\n",
                              ctype="text/html")
        if f.mode == "body":
            status = f.status or 200
            rec["status"] = status
            return self._send(status, f.body if f.body is not None else b"",
                              ctype=f.content_type or "application/json")
        # plain status code
        status = f.status or 500
        rec["status"] = status
        extra = {"Retry-After": "1"} if status == 429 else None
        msgs = {401: ("invalid_user_key", "Invalid user key"),
                403: ("forbidden", "Forbidden"),
                429: ("rate_limited", "API requests too frequent")}
        err, msg = msgs.get(status, ("server_error", "Internal server error"))
        return self._send(status, {"success": False, "error": err,
                                   "msg": "%s (%d)" % (msg, status)}, extra=extra)

    def _control(self, path, body):
        fake = self.fake
        try:
            req = json.loads(body) if body else {}
        except ValueError:
            return self._send(400, {"success": False, "msg": "body is not JSON"})
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
                                             "apply") if k in req})
            return self._send(200, {"success": True})
        if path == "/_fake/clear":
            fake.clear()
            return self._send(200, {"success": True})
        if path == "/_fake/key":
            fake.api_key = req["api_key"]
            return self._send(200, {"success": True})
        m = re.fullmatch(r"/_fake/log/(\d+)", path)
        if m:
            fake.set_log_text(int(m.group(1)), str(req.get("text", "")))
            return self._send(200, {"success": True})
        if path == "/_fake/logapi":
            with fake.lock:
                for k, attr in (("not_ready", "log_not_ready"),
                                ("missing_status", "log_missing_status"),
                                ("refuse", "log_refuse"), ("object_base", "object_base")):
                    if k in req:
                        setattr(fake, attr, req[k])
            return self._send(200, {"success": True})
        m = re.fullmatch(r"/_fake/instances/(\d+)", path)
        if m:
            iid = int(m.group(1))
            with fake.lock:
                inst = fake.instances.setdefault(iid, make_instance(iid))
                inst.update(req)
            return self._send(200, {"success": True})
        m = re.fullmatch(r"/_fake/state/(\d+)/(\w+)", path)
        if m and m.group(2) in STATES:
            word = fake.set_state(int(m.group(1)), m.group(2))
            return self._send(200, {"success": True, "expect": word})
        m = re.fullmatch(r"/_fake/remove/(\d+)", path)
        if m:
            fake.remove(int(m.group(1)))
            return self._send(200, {"success": True})
        return self._send(404, {"success": False, "msg": "no control route " + path})

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle


def load_world(fake, path):
    with open(path) as f:
        w = json.load(f)
    if isinstance(w, list):
        w = {"instances": w}
    if w.get("api_key") and not fake.api_key:
        fake.api_key = w["api_key"]
    if "linger" in w:
        fake.linger = int(w["linger"])
    for inst in w.get("instances", []):
        fake.add(inst)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake vast.ai v0 API for rgtfs")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--world", help="JSON file: {api_key, linger, instances:[...]}")
    ap.add_argument("--api-key", default=None,
                    help="accepted key (default: the world's, else $VAST_API_KEY)")
    ap.add_argument("--pidfile")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    fake = FakeVast(a.api_key, host=a.host, port=a.port, quiet=not a.verbose)
    if a.world:
        load_world(fake, a.world)
    if not fake.api_key:
        fake.api_key = os.environ.get("VAST_API_KEY")
    if not fake.api_key:
        ap.error("no API key: give --api-key, a world api_key or $VAST_API_KEY")
    fake.start()
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    print("fake_vast: listening on %s (%d instances)" % (fake.url, len(fake.instances)),
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---- the stand-in interface shared by every platform's fake (test_contract.py) ----

SECTION = {}                    # extra INI keys the [vastai] section needs
API_KEY_ENV = "VAST_API_KEY"
# the destroy sequence rgtfs must send, in order ({id}: the instance id)
DESTROY_CALLS = [("DELETE", r"/api/v0/instances/{id}/?")]


def new_ids(n):
    """n fresh instance ids as directory names (vast ids are integers)."""
    import random
    base = random.randint(10_000_000, 89_999_999)
    return [str(base + 7 * i) for i in range(n)]
