"""An instance's `log` from the platform's log API (RunPod REST v2
GET /v2/pods/{id}/logs, Server-Sent Events), used when the section has no
log_path: the events' lines in order as "TS SOURCE LINE", control characters
escaped so that no event can forge a line, a failing API shown as one line
"rgtfs: log unavailable: <why>" while the mount stays fine. The stream is
never-ending on the stand-in as on RunPod: rgtfs listens for ~2 s.

vast.ai's log API is asynchronous (PLATFORMS.md 1.2, 8.10): PUT
request_logs/{id}/ {"tail":"1000"} answers a result_url, a presigned S3
object that appears after a moment; rgtfs polls it for at most ~8 s, never
sends the vast.ai key there, and shows the newest 1000 lines as they are.
The tests marked with kind "vastai" drive fake_vast's request_logs.
"""

import json
import os
import threading
import time

import pytest

import util
from contract_world import cworld, cfake  # noqa: F401 (fixtures)
from util import read_text

EVENTS = [
    {"ts": "2026-12-01T10:00:00.000Z", "source": "container", "line": "step 1 loss 2.50"},
    {"ts": "2026-12-01T10:00:01.000Z", "source": "system", "line": "pod started"},
    # a newline and a terminal escape inside one event's line
    {"ts": "2026-12-01T10:00:02.000Z", "source": "container",
     "line": "evil\n2026-12-01T10:00:03.000Z system forged \x1b[2J"},
    {"ts": "2026-12-01T10:00:04.000Z", "source": "container", "line": "step 2 loss 1.25"},
]

WANT = ("2026-12-01T10:00:00.000Z container step 1 loss 2.50\n"
        "2026-12-01T10:00:01.000Z system pod started\n"
        "2026-12-01T10:00:02.000Z container evil\\n2026-12-01T10:00:03.000Z system "
        "forged \\x1b[2J\n"
        "2026-12-01T10:00:04.000Z container step 2 loss 1.25\n")


@pytest.fixture
def kind():
    return "runpod"


def log_calls(w, iid):
    return [r for r in w.api.log() if r["path"] == "/v2/pods/%s/logs" % iid]


def test_log_from_the_api(cworld):
    w = cworld(log_path=None)
    iid = w.ids[0]
    w.api.set_logs(iid, EVENTS)
    # the box has a train.log, but no log_path: it is not what `log` shows
    util.write_file(os.path.join(w.boxes[0].workspace, "train.log"), b"from ssh\n")
    t0 = time.monotonic()
    got = read_text(w.f(0, "log"))
    took = time.monotonic() - t0
    assert got == WANT, got
    assert took < 12, "cat log took %.1fs" % took
    calls = log_calls(w, iid)
    assert calls and all(r["kind"] == "other" and r["authorized"] for r in calls), calls
    assert all(r["query"].get("tail") == ["1000"] for r in calls), calls
    assert w.api.api_key not in repr(calls)
    assert not w.api.mutations()
    st = os.stat(w.f(0, "log"))
    assert st.st_size == len(WANT.encode()), st
    # a later event shows on a later read (the answer is reused ~2 s only)
    w.api.set_logs(iid, EVENTS + [{"ts": "t5", "source": "container", "line": "done"}])
    time.sleep(2.5)
    assert read_text(w.f(0, "log")) == WANT + "t5 container done\n"


def test_log_api_failure(cworld, hygiene):
    w = cworld(log_path=None)
    iid = w.ids[0]
    w.api.set_logs(iid, EVENTS)
    w.api.fail(status=500, path="/v2/pods/%s/logs" % iid)
    got = read_text(w.f(0, "log"))
    assert got.startswith("rgtfs: log unavailable: ") and got.count("\n") == 1, got
    assert "500" in got, got
    assert w.api.api_key not in got
    # the mount is fine: the rest of the instance reads, the list goes on
    assert w.status() == "running\n"
    assert str(iid) in w.listed()
    # a 200 that is not an event stream (a proxy's HTML page) is no log
    time.sleep(2.5)
    w.api.fail(mode="body", status=200, body="<html><body>oops</body></html>\n",
               content_type="text/html", path="/v2/pods/%s/logs" % iid)
    got = read_text(w.f(0, "log"))
    assert got.startswith("rgtfs: log unavailable: ") and got.count("\n") == 1, got
    assert "not an event stream" in got, got
    w.api.clear()
    time.sleep(2.5)
    assert read_text(w.f(0, "log")) == WANT


def test_log_path_still_wins(cworld):
    """With a log_path the file comes over SSH as before, not from the API."""
    w = cworld()
    iid = w.ids[0]
    w.api.set_logs(iid, EVENTS)
    util.write_file(os.path.join(w.boxes[0].workspace, "train.log"), b"from ssh\n")
    assert util.cat(w.f(0, "log")) == b"from ssh\n"
    assert not log_calls(w, iid)


# ---- vast.ai: PUT request_logs, then the object at result_url -------------------

VAST_TEXT = "".join("step %d loss %.4f\n" % (i, 3.0 / (i + 1)) for i in range(1200))
VAST_WANT = "".join(VAST_TEXT.splitlines(keepends=True)[-1000:])
VAST_PUT = "/api/v0/instances/request_logs/"
# the bound on one read of a vast `log`: the PUT (api_timeout 2 s in these
# tests) and the poll of the object (8 s), plus slack for a loaded machine
VAST_BOUND = 2 + 8 + 4
vast = pytest.mark.parametrize("kind", ["vastai"])


def vast_secrets(w):
    """What must never show in a file or the daemon's log: the key, and the
    object names and signatures of every result_url handed out."""
    out = [w.api.api_key]
    for r in w.api.object_gets():
        out += [r["path"].rsplit("/", 1)[-1]] + r["query"].get("X-Amz-Signature", [])
    return [x for x in out if x]


@vast
def test_vast_log_from_the_api(cworld):
    w = cworld(log_path=None)
    iid = w.ids[0]
    w.api.log_not_ready = 2        # two "not there yet" before the object appears
    w.api.set_log_text(iid, VAST_TEXT)
    util.write_file(os.path.join(w.boxes[0].workspace, "train.log"), b"from ssh\n")
    t0 = time.monotonic()
    got = read_text(w.f(0, "log"))
    took = time.monotonic() - t0
    assert got == VAST_WANT, got[:300]
    assert took < VAST_BOUND, "cat log took %.1fs" % took
    puts = w.api.log_requests(iid)
    assert puts, w.api.log()
    assert all(r["method"] == "PUT" and r["authorized"] and r["status"] == 200
               and json.loads(r["body"]) == {"tail": "1000"} for r in puts), puts
    gets = w.api.object_gets()
    assert [r["status"] for r in gets[:3]] == [404, 404, 200], gets
    # a presigned third-party URL: no vast.ai Authorization, no key anywhere
    assert not any(r["authorization_sent"] or r["key_seen"] for r in gets), gets
    assert all("authorization" not in (k.lower() for k in r["headers"]) for r in gets)
    assert os.stat(w.f(0, "log")).st_size == len(VAST_WANT.encode())
    # nothing but the log request changed anything
    assert all(r["path"].startswith(VAST_PUT) for r in w.api.mutations())
    # a later line shows on a later read (the answer is reused ~2 s only)
    w.api.set_log_text(iid, VAST_TEXT + "done\n")
    time.sleep(2.5)
    assert read_text(w.f(0, "log")) == VAST_WANT.split("\n", 1)[1] + "done\n"
    # neither the object's name nor its signature is logged by the daemon
    daemon = w.mount.read_log()
    for sec in vast_secrets(w):
        assert sec not in daemon, sec


@vast
def test_vast_log_never_ready(cworld, hygiene):
    """An object that never appears: a clear line within the bound, and the
    rest of the instance keeps reading while the log waits."""
    w = cworld(log_path=None)
    iid = w.ids[0]
    w.api.set_log_text(iid, VAST_TEXT)
    w.api.log_not_ready = None
    w.api.log_missing_status = 403        # S3's answer without ListBucket
    res = {}

    def read_log():
        t0 = time.monotonic()
        res["got"] = read_text(w.f(0, "log"), timeout=60)
        res["took"] = time.monotonic() - t0
    th = threading.Thread(target=read_log)
    th.start()
    # while the log is being waited for, the other files answer at once
    util.wait_until(lambda: w.api.object_gets(), 10, msg="result_url polled")
    for name in ("status", "status_msg", "info.json", "ssh"):
        t0 = time.monotonic()
        read_text(w.f(0, name))
        assert time.monotonic() - t0 < 2, name
    assert w.status() == "running\n"
    # and the polls go on: status follows the platform during the wait
    w.api.set_state(iid, "stopped")
    util.wait_until(lambda: w.status() == "stopped\n", 4,
                    msg="status followed the platform while the log waited")
    assert th.is_alive()        # the log is still being waited for
    w.api.set_state(iid, "running")
    th.join(60)
    assert not th.is_alive()
    got, took = res["got"], res["took"]
    assert got.startswith("rgtfs: log unavailable: ") and got.count("\n") == 1, got
    assert "not ready" in got and "HTTP 403" in got, got
    assert 7 < took < VAST_BOUND, "cat log took %.1fs" % took
    gets = w.api.object_gets()
    assert 4 <= len(gets) <= 40, len(gets)        # a short backoff, not a hammer
    assert not any(r["authorization_sent"] or r["key_seen"] for r in gets)
    for sec in vast_secrets(w):
        assert sec not in got, sec
    # an object host that never answers: bounded the same way
    time.sleep(2.5)
    w.api.log_not_ready = 0
    w.api.fail(mode="hang", path="/_s3/")
    t0 = time.monotonic()
    got = read_text(w.f(0, "log"), timeout=60)
    took = time.monotonic() - t0
    assert got.startswith("rgtfs: log unavailable: ") and "not ready" in got, got
    assert took < VAST_BOUND, "cat log took %.1fs" % took
    w.api.clear()
    time.sleep(2.5)
    assert read_text(w.f(0, "log")) == VAST_WANT
    daemon = w.mount.read_log()
    for sec in vast_secrets(w):
        assert sec not in daemon, sec


@vast
def test_vast_log_refused(cworld, hygiene):
    """success false: the vendor's msg (key masked) is what `log` says; the
    rest of the instance and the list go on."""
    w = cworld(log_path=None)
    iid = w.ids[0]
    w.api.set_log_text(iid, VAST_TEXT)
    w.api.log_refuse = ("Instance %s is not running; cannot fetch logs (key %s)"
                        % (iid, w.api.api_key))
    got = read_text(w.f(0, "log"))
    assert got.startswith("rgtfs: log unavailable: ") and got.count("\n") == 1, got
    assert "refused the log request: Instance %s is not running" % iid in got, got
    assert w.api.api_key not in got
    assert not w.api.object_gets()
    assert w.status() == "running\n"
    assert str(iid) in w.listed()
    assert json.loads(read_text(w.f(0, "info.json")))["id"] == int(iid)

    # the log request failing with a 500: said so, the mount is fine
    w.api.log_refuse = None
    time.sleep(2.5)
    w.api.fail(status=500, path=VAST_PUT)
    got = read_text(w.f(0, "log"))
    assert got.startswith("rgtfs: log unavailable: ") and "500" in got, got
    assert w.status() == "running\n"
    assert str(iid) in w.listed()
    w.api.clear()

    # a reply without a result_url (a 200 that is not the documented shape)
    time.sleep(2.5)
    w.api.fail(mode="body", status=200, path=VAST_PUT,
               body=json.dumps({"success": True, "msg": "queued"}))
    got = read_text(w.f(0, "log"))
    assert "result_url" in got and "queued" in got, got
    w.api.clear()

    # a result_url on plain http:// to a non-loopback host is not followed
    time.sleep(2.5)
    before = len(w.api.object_gets())
    w.api.object_base = "http://s3.example.invalid"
    got = read_text(w.f(0, "log"))
    assert got.startswith("rgtfs: log unavailable: ") and "plain http://" in got, got
    assert "s3.example.invalid" in got and "instance_logs" not in got, got
    assert "X-Amz" not in got, got
    assert len(w.api.object_gets()) == before

    # and back to normal
    w.api.object_base = None
    time.sleep(2.5)
    assert read_text(w.f(0, "log")) == VAST_WANT


@vast
def test_vast_log_path_still_wins(cworld):
    """With a log_path the file comes over SSH as before, not from the API."""
    w = cworld()
    iid = w.ids[0]
    w.api.set_log_text(iid, VAST_TEXT)
    util.write_file(os.path.join(w.boxes[0].workspace, "train.log"), b"from ssh\n")
    assert util.cat(w.f(0, "log")) == b"from ssh\n"
    assert not w.api.log_requests()
    assert not w.api.object_gets()
