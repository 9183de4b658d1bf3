"""An instance's `log` from the platform's log API (RunPod REST v2
GET /v2/pods/{id}/logs, Server-Sent Events), used when the section has no
log_path: the events' lines in order as "TS SOURCE LINE", control characters
escaped so that no event can forge a line, a failing API shown as one line
"rgtfs: log unavailable: <why>" while the mount stays fine. The stream is
never-ending on the stand-in as on RunPod: rgtfs listens for ~2 s.
"""

import os
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
