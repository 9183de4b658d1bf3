#!/usr/bin/python3
"""A fake Lambda Cloud API (/api/v1) on 127.0.0.1 for rgtfs tests.

It answers the way cloud.lambdalabs.com does (PLATFORMS.md section 3), not the
way that would be easiest for rgtfs:

    GET  /api/v1/instances              {"data": [Instance, ...]}
    GET  /api/v1/instances/{id}         {"data": Instance}, or 404
                                        {"error": {"code": "global/object-does-not-exist",
                                                   "message": ...}}
    POST /api/v1/instance-operations/terminate   {"instance_ids": ["<id>", ...]}
                                        {"data": {"terminated_instances": [Instance]}};
                                        an unknown id: 404 and nothing terminated.
                                        The instance lingers as "terminating" for
                                        `linger` list calls, then vanishes.
    GET  /api/v1/file-systems           {"data": [FileSystem, ...]}

Auth is HTTP Basic with the key as the user name and an empty password
(Bearer KEY is accepted too, as [3p] clients report); anything else gets 401
{"error": {"code": "global/invalid-api-key", ...}}. Instances carry
jupyter_token and jupyter_url with SECRET_MARK values. There is no port in
an instance object: "ip" reaches sshd on port 22 (see fake_rest.py for how
the stand-in gives each box its own loopback IP), and "ip" is absent while
booting.

Every /api request is recorded (headers with the key masked). Faults as
fake_rest.FakeRest.fail; "endless" is a 200 whose {"data": [ never closes
(Lambda's list has no page cursor, so this is its page that never ends).
"""

import base64
import copy
import json
import random
import re

from fake_rest import FakeRest, FAULT_MODES, SECRET_MARK  # noqa: F401

API_KEY_ENV = "LAMBDA_API_KEY"
# util.write_config says ssh_user = root: the test boxes log in root only;
# real Lambda images use "ubuntu", rgtfs's default for this kind.
SECTION = {}
DESTROY_CALLS = [("POST", r"/api/v1/instance-operations/terminate")]

# normalized name -> (raw fields, the word rgtfs must write to `status`).
# Lambda has no stop, so there is no "stopped".
STATES = {
    "provisioning": (dict(status="booting"), "provisioning"),
    "running": (dict(status="active"), "running"),
    "offline": (dict(status="unhealthy"), "offline"),
    "preempted": (dict(status="preempted"), "preempted"),
    "destroying": (dict(status="terminating"), "destroying"),
}
TERMINATING = dict(status="terminating")

ERROR_200 = {"error": {"code": "global/unknown",
                       "message": "An unknown error occurred. Please try again."}}

# For the contract suite: the words this platform can show (no others exist
# in its API), and the `ssh` line's target. The API carries no port, so the
# line names the instance's IP and port 22, never the box's own 127.0.0.1:P.
SHOWABLE = {"provisioning", "running", "offline", "preempted", "destroying"}


def ssh_target(api, iid):
    """(host, port) that MOUNT/<kind>/<iid>/ssh names."""
    return api.get(iid)["ip"], 22

_rng = random.Random()


def new_ids(n):
    """n fresh instance ids shaped like Lambda's (32 lowercase hex)."""
    return ["%032x" % _rng.getrandbits(128) for _ in range(n)]


def make_instance(iid, *, direct_host="127.0.0.1", direct_port=None, proxy_port=None,
                  state="running", **fields):
    """An Instance object (PLATFORMS.md 3.1) for id iid."""
    iid = str(iid)
    inst = {
        "id": iid, "name": "rgtfs-exp-" + iid[:8],
        "private_ip": "10.19.60.%d" % (int(iid[-2:], 16) % 250 + 2)
        if re.fullmatch(r"[0-9a-f]+", iid[-2:]) else "10.19.60.2",
        "status": "active",
        "ssh_key_names": ["rgtfs-test"],
        "file_system_names": [],
        "region": {"name": "us-tx-1", "description": "Austin, Texas"},
        "instance_type": {
            "name": "gpu_1x_a100_sxm4", "description": "1x A100 (40 GB SXM4)",
            "gpu_description": "A100 (40 GB SXM4)", "price_cents_per_hour": 129,
            "specs": {"vcpus": 30, "memory_gib": 200, "storage_gib": 512, "gpus": 1}},
        "hostname": "10-0-8-196.cloud.lambdalabs.com",
        "jupyter_token": "%s-jupyter-%s" % (SECRET_MARK, iid[:8]),
        "jupyter_url": "https://jupyter-%s.lambdaspaces.com/?token=%s-url-%s"
                       % (iid[:8], SECRET_MARK, iid[:8]),
        "is_reserved": False,
    }
    inst.update(copy.deepcopy(STATES[state][0]))
    inst.update(copy.deepcopy(fields))
    inst["_eps"] = (direct_host, direct_port, proxy_port)
    return inst


def _error(code, message):
    return {"error": {"code": code, "message": message}}


class FakeLambda(FakeRest):
    kind = "lambda"
    STATES = STATES
    TERMINATING = TERMINATING
    DESTROY_CALLS = DESTROY_CALLS

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.file_systems = {}          # name -> extra fields

    def authorized(self, header):
        basic = "Basic " + base64.b64encode(("%s:" % self.api_key).encode()).decode()
        return header in (basic, "Bearer %s" % self.api_key)

    def public(self, inst):
        p = {k: copy.deepcopy(v) for k, v in inst.items() if not k.startswith("_")}
        if inst.get("_ip") and p["status"] not in ("booting", "terminated"):
            p["ip"] = inst["_ip"]
        else:
            p.pop("ip", None)
        return p

    def classify(self, method, path):
        if re.fullmatch(r"/api/v1/instances/?", path):
            return "list"
        if re.fullmatch(r"/api/v1/instances/[^/]+", path):
            return "show"
        return "other"

    def error_body(self, status):
        return {401: _error("global/invalid-api-key",
                            "API key was invalid, expired, or deleted."),
                403: _error("global/account-inactive", "Your account is inactive."),
                404: _error("global/object-does-not-exist",
                            "Specified instance does not exist."),
                429: _error("global/quota-exceeded", "Rate limit exceeded."),
                }.get(status, _error("global/unknown", "An unknown error occurred."))

    def endless_reply(self, query):
        return 200, None

    def endless_chunks(self):
        inst = json.dumps(self.public(make_instance("e" * 32, direct_port=None))).encode()
        return b'{"data": [', inst + b","

    def _file_systems(self):
        names = {}
        with self.lock:
            for inst in self.instances.values():
                for n in inst.get("file_system_names") or []:
                    names.setdefault(n, True)
            names.update({n: False for n in self.file_systems if n not in names})
        return [{"id": "%032x" % (abs(hash(n)) % (1 << 128)), "name": n,
                 "mount_point": "/lambda/nfs/" + n, "region": {"name": "us-tx-1"},
                 "is_in_use": used, "bytes_used": 10 << 30,
                 "created": "2026-11-20T10:00:00.000Z"} for n, used in names.items()]

    def handle_api(self, method, path, query, body):
        if re.fullmatch(r"/api/v1/instances/?", path):
            if method != "GET":
                return 405, _error("global/invalid-parameters", "method not allowed")
            self._tick()
            return 200, {"data": self.listed()}
        m = re.fullmatch(r"/api/v1/instances/([^/]+)", path)
        if m and method == "GET":
            inst = self.get(m.group(1))
            if inst is None:
                return 404, self.error_body(404)
            return 200, {"data": inst}
        if path == "/api/v1/instance-operations/terminate":
            if method != "POST":
                return 405, _error("global/invalid-parameters", "method not allowed")
            try:
                ids = json.loads(body or b"{}")["instance_ids"]
                assert isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids)
            except (ValueError, KeyError, TypeError, AssertionError):
                return 400, _error("global/invalid-parameters",
                                   "instance_ids must be a non-empty list of ids")
            with self.lock:
                if any(i not in self.instances for i in ids):
                    return 404, self.error_body(404)
                for i in ids:
                    self.destroy(i)
                return 200, {"data": {"terminated_instances": [self.get(i) for i in ids]}}
        if path == "/api/v1/file-systems" and method == "GET":
            return 200, {"data": self._file_systems()}
        return 404, _error("global/object-does-not-exist", "no route " + path)
