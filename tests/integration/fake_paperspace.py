#!/usr/bin/python3
"""A fake Paperspace machines API (/v1) on 127.0.0.1 for rgtfs tests.

It answers the way api.paperspace.com/v1 does (PLATFORMS.md section 4.1), with
each call's own shape:

    GET    /v1/machines?limit=&after=   {"hasMore": bool, "items": [Machine],
                                         "nextPage": cursor|null}   (paged)
    GET    /v1/machines/{id}            the bare Machine, or 404
    DELETE /v1/machines/{id}            {"data": Machine}; the machine lingers
                                        (state "off", dtDeleted set) for `linger`
                                        list walks, then vanishes. Its static IP
                                        and snapshots stay (and bill).
    PATCH  /v1/machines/{id}/stop|start|restart   body {}, {"data": Machine}
    GET    /v1/snapshots?limit=&after=  paged like machines; items carry machineId
    GET    /v1/public-ips               paged; {"ip", "assignedMachineId", "region"}

Auth is `Authorization: Bearer KEY`; anything else gets 401
{"message": ..., "status": 401}. (The error body's exact shape is not in
PLATFORMS.md; this one is an assumption, and rgtfs also accepts
{"error": {...}}.) Machines carry a startupScript with SECRET_MARK. There is
no port in a Machine: publicIp reaches sshd on port 22 (fake_rest.py), and
publicIp is null while provisioning.

Pages: `limit` (default 20, at most 120) and `page_size` on the stand-in (to
force many pages with few machines). A list "call" for the request log is
every page; lingering machines age once per walk (a page without `after`).
Faults as fake_rest.FakeRest.fail; "endless" answers every page with
hasMore: true and a fresh nextPage cursor, forever.
"""

import base64
import copy
import json
import random
import re
import time

from fake_rest import FakeRest, FAULT_MODES, SECRET_MARK  # noqa: F401

API_KEY_ENV = "PAPERSPACE_API_KEY"
# util.write_config says ssh_user = root: the test boxes log in root only;
# ML-in-a-Box uses "paperspace", rgtfs's default for this kind.
SECTION = {}
DESTROY_CALLS = [("DELETE", r"/v1/machines/{id}")]

# normalized name -> (raw fields, the word rgtfs must write to `status`).
# Paperspace has no preemption and no "offline" state.
STATES = {
    "provisioning": (dict(state="provisioning", dtDeleted=None), "provisioning"),
    "starting": (dict(state="starting", dtDeleted=None), "provisioning"),
    "running": (dict(state="ready", dtDeleted=None), "running"),
    "serviceready": (dict(state="serviceready", dtDeleted=None), "running"),
    "stopped": (dict(state="off", dtDeleted=None), "stopped"),
    "stopping": (dict(state="stopping", dtDeleted=None), "stopped"),
    "destroying": (dict(state="off", dtDeleted="2026-12-01T23:00:00.000Z"), "destroying"),
}
TERMINATING = dict(state="off", dtDeleted="2026-12-01T23:00:00.000Z")

ERROR_200 = {"message": "Something went wrong, please try again later", "status": 500}

# For the contract suite: the words this platform can show (no others exist
# in its API), and the `ssh` line's target. The API carries no port, so the
# line names the instance's IP and port 22, never the box's own 127.0.0.1:P.
SHOWABLE = {"provisioning", "running", "stopped", "destroying"}


def ssh_target(api, iid):
    """(host, port) that MOUNT/<kind>/<iid>/ssh names."""
    return api.get(iid)["publicIp"], 22

_rng = random.Random()
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_ids(n):
    """n fresh machine ids shaped like Paperspace's ("ps" + 7 alphanumerics)."""
    return ["ps" + "".join(_rng.choice(_ALNUM) for _ in range(7)) for _ in range(n)]


def make_instance(iid, *, direct_host="127.0.0.1", direct_port=None, proxy_port=None,
                  state="running", **fields):
    """A Machine object (PLATFORMS.md 4.1) for id iid."""
    iid = str(iid)
    m = {
        "id": iid, "name": "rgtfs-" + iid, "state": "ready",
        "machineType": "A100-80G", "os": "Ubuntu 22.04", "agentType": "LinuxHeadless",
        "region": "East Coast (NY2)", "networkId": "nx8wkbq",
        "cpus": 12, "ram": "96000000000", "storageTotal": "536870912000",
        "storageUsed": "210000000000",
        "accelerators": [{"name": "A100-80G", "count": 1, "memory": 80}],
        "publicIpType": "dynamic", "privateIp": "10.64.10.2",
        "autoShutdownEnabled": True, "autoShutdownTimeout": 8, "autoShutdownForce": False,
        "autoSnapshotEnabled": False, "restorePointEnabled": False,
        "startupScript": "export HF_TOKEN=%s-startup-%s" % (SECRET_MARK, iid),
        "usageRate": "A100-80G Hourly", "storageRate": "500 GB Storage",
        "updatesPending": False, "reservation": None,
        "dtCreated": "2026-11-20T10:00:00.000Z", "dtModified": "2026-12-01T09:00:00.000Z",
        "dtDeleted": None,
    }
    m.update(copy.deepcopy(STATES[state][0]))
    m.update(copy.deepcopy(fields))
    m["_eps"] = (direct_host, direct_port, proxy_port)
    return m


def _err(status, message):
    return {"message": message, "status": status}


def _cursor(off):
    return base64.urlsafe_b64encode(json.dumps({"o": off}).encode()).decode()


def _offset(c):
    try:
        return int(json.loads(base64.urlsafe_b64decode(c.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        return None


class FakePaperspace(FakeRest):
    kind = "paperspace"
    STATES = STATES
    TERMINATING = TERMINATING
    DESTROY_CALLS = DESTROY_CALLS

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.page_size = None
        self.snapshots = []             # {"id", "name", "machineId", ...}
        self._endless_n = 0

    def add_snapshot(self, machine_id, sid, name=None):
        with self.lock:
            self.snapshots.append({"id": sid, "name": name or sid, "machineId": machine_id,
                                   "dtCreated": "2026-11-30T00:00:00.000Z",
                                   "size": 107374182400})

    def public(self, inst):
        p = {k: copy.deepcopy(v) for k, v in inst.items() if not k.startswith("_")}
        up = p["state"] not in ("provisioning", "off") and not p.get("dtDeleted")
        p["publicIp"] = inst.get("_ip") if up or p.get("publicIpType") == "static" else None
        if p["publicIp"] is None and p.get("publicIpType") != "static":
            p["publicIpType"] = p.get("publicIpType") or "dynamic"
        return p

    def classify(self, method, path):
        if re.fullmatch(r"/v1/machines/?", path):
            return "list"
        if re.fullmatch(r"/v1/machines/[^/]+", path):
            return "show"
        return "other"

    def error_body(self, status):
        return _err(status, {401: "Invalid API token", 403: "Forbidden",
                             404: "Not found", 429: "Too many requests"}
                    .get(status, "Internal server error"))

    def _page(self, items, query):
        try:
            limit = int((query.get("limit") or ["20"])[0])
        except ValueError:
            return 400, _err(400, "limit must be an integer")
        limit = max(1, min(limit, 120))
        if self.page_size:
            limit = min(limit, self.page_size)
        after = (query.get("after") or [None])[0]
        off = 0 if after in (None, "") else _offset(after)
        if off is None or off < 0:
            return 400, _err(400, "invalid cursor")
        chunk = items[off:off + limit]
        more = off + limit < len(items)
        return 200, {"hasMore": more, "items": chunk,
                     "nextPage": _cursor(off + limit) if more else None}

    def endless_reply(self, query):
        with self.lock:
            self._endless_n += 1
            n = self._endless_n
        items = self.listed()[:1]
        return 200, {"hasMore": True, "items": items,
                     "nextPage": _cursor(10 ** 6 + n) + "-%d" % time.monotonic_ns()}

    def handle_api(self, method, path, query, body):
        if re.fullmatch(r"/v1/machines/?", path):
            if method != "GET":
                return 405, _err(405, "method not allowed")
            if not (query.get("after") or [""])[0]:
                self._tick()
            return self._page(self.listed(), query)
        m = re.fullmatch(r"/v1/machines/([^/]+)(?:/(stop|start|restart))?", path)
        if m:
            iid, action = m.group(1), m.group(2)
            with self.lock:
                known = iid in self.instances
            if not known:
                return 404, _err(404, "Machine %s not found" % iid)
            if action:
                if method != "PATCH":
                    return 405, _err(405, "method not allowed")
                self.set_state(iid, "stopped" if action == "stop" else "running")
                return 200, {"data": self.get(iid)}
            if method == "GET":
                return 200, self.get(iid)
            if method == "DELETE":
                with self.lock:
                    if iid in self.lingering:
                        return 404, _err(404, "Machine %s not found" % iid)
                    self.destroy(iid)
                return 200, {"data": self.get(iid)}
            return 405, _err(405, "method not allowed")
        if path == "/v1/snapshots" and method == "GET":
            with self.lock:
                snaps = copy.deepcopy(self.snapshots)
            return self._page(snaps, query)
        if path == "/v1/public-ips" and method == "GET":
            with self.lock:
                ips = [{"ip": i["_ip"], "assignedMachineId": i["id"], "region": i["region"]}
                       for i in self.instances.values()
                       if i.get("publicIpType") == "static" and i.get("_ip")]
            return self._page(ips, query)
        return 404, _err(404, "no route " + path)
