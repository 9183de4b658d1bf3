"""vast.ai's paged v1 list (GET /api/v1/instances/, PLATFORMS.md 1.2) through
the mount: every page is followed, the cursor goes back as after_token, a
list that never ends is an error (not a hang, never `gone`), and when v1
declines (HTTP 404 or {"success": false}) the v0 list answers instead."""

import os
import time

import pytest

from util import ls, read_text, wait_until
from fake_vast import make_instance

WAIT = 10


def vastai(w):
    return os.path.join(w.mnt, "vastai")


def test_every_v1_page_is_followed(world):
    w = world(mount=False)
    extra = [w.ids[0] + 1000 + i for i in range(60)]
    for iid in extra:
        w.api.add(make_instance(iid))
    w.mount.start()
    wait_until(lambda: {str(i) for i in extra + w.ids} <= ls(vastai(w)), WAIT,
               msg="all 61 instances listed")
    t = time.monotonic()
    wait_until(lambda: w.api.list_calls(since=t) >= 2, WAIT, msg="two more polls")
    v1 = [r for r in w.api.calls(kind="list", since=t) if r["path"].startswith("/api/v1/")]
    assert v1 and all(r["query"].get("limit") == ["25"] for r in v1)
    assert sum(1 for r in v1 if "after_token" in r["query"]) >= 2, \
        "61 instances at 25 a page take 3 pages a poll"
    assert not [r for r in w.api.calls(kind="list", since=t) if r["path"].startswith("/api/v0/")]
    # the list is complete: an instance that goes away is seen as gone
    w.api.remove(extra[-1])
    wait_until(lambda: str(extra[-1]) not in ls(vastai(w)), WAIT, msg="removed one gone")


@pytest.mark.faults
def test_endless_v1_list_is_an_error(world):
    w = world()
    w.api.fail(mode="endless", kind="list")
    err = wait_until(lambda: read_text(os.path.join(vastai(w), ".error")), 30,
                     msg=".error for an endless list")
    assert "did not end" in err or "did not finish" in err, err
    assert str(w.ids[0]) in ls(vastai(w))
    assert w.status() in ("running\n", "unknown\n")
    w.api.clear()
    wait_until(lambda: read_text(os.path.join(vastai(w), ".error")) == "", 30,
               msg=".error clears")
    assert w.status() == "running\n"


@pytest.mark.faults
@pytest.mark.parametrize("fault", [
    dict(status=404),
    dict(mode="body", status=200, body='{"success": false, "msg": "use v0"}'),
], ids=["404", "success-false"])
def test_v1_declining_falls_back_to_v0(world, fault):
    w = world(mount=False)
    w.api.fail(path="/api/v1/instances", **fault)
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in ls(vastai(w)), WAIT, msg="listed through v0")
    assert w.status() == "running\n"
    assert read_text(os.path.join(vastai(w), ".error")) == ""
    lists = w.api.calls(kind="list")
    assert any(r["path"].startswith("/api/v0/") for r in lists)
    # v1 is not asked on every poll once it declined
    t = time.monotonic()
    wait_until(lambda: w.api.list_calls(since=t) >= 3, WAIT, msg="three polls")
    later = [r for r in w.api.calls(kind="list", since=t) if r["path"].startswith("/api/v1/")]
    assert later == [], later
