"""A vast.ai API that fails (401/403/429/5xx, garbage, slow, dead): the mount
stays up, vastai/ keeps the last known instances, each status keeps its last
value for stale_after seconds and then reads `unknown` (never `gone`), the
reason is in vastai/.error at the next poll, cached data stays readable, and
nothing is ever DELETEd. When the API answers again, everything recovers."""

import json
import os
import re
import time

import pytest

import util
from util import ok, cat, read_text, wait_until, ls
from fake_vast import make_instance

pytestmark = pytest.mark.faults

POLL = 1
API_TIMEOUT = 2
STALE = 6
ERROR_WAIT = POLL + API_TIMEOUT + 4      # the next poll fails, plus slack
STATUS_WAIT = 6.0

FAULTS = [
    ("http500", dict(status=500), r"500"),
    ("http502", dict(status=502), r"502"),
    ("http429_forever", dict(status=429), r"429"),
    ("http401_key_revoked", dict(status=401), r"401|refused"),
    ("http403", dict(status=403), r"403|refused|forbidden"),
    ("truncated_json", dict(mode="truncate"), r"JSON"),
    ("html_instead_of_json", dict(mode="html"), r"JSON"),
    ("text_instead_of_json", dict(mode="body", body="OK", content_type="text/plain"), r"JSON"),
    ("wrong_shape", dict(mode="body", body='{"instances": 7}'), r"JSON|instances"),
    ("short_body", dict(mode="cut"), r"JSON|partial|short|truncat|closed|transfer"),
    ("slow", dict(mode="delay", delay=API_TIMEOUT + 6), r"timed out|did not answer"),
    ("hang", dict(mode="hang"), r"timed out|did not answer"),
    ("reset", dict(mode="reset"), r"reset|closed|empty|reply|connection|recv"),
]


def _one_line(s):
    return s.endswith("\n") and "\n" not in s[:-1] or ("\n" not in s and s != "")


def _check_fault(w, inject, pattern, clear):
    iid = str(w.ids[0])
    cached = cat(w.ck(0, "run-001", "best_metrics.json"))
    assert w.vast_error() == ""
    assert w.status() == "running\n"
    t_fault = time.monotonic()
    inject()
    err = wait_until(lambda: w.vast_error(), ERROR_WAIT, msg="vastai/.error filled")
    t_err = time.monotonic() - t_fault
    assert _one_line(err), "one line of reason: %r" % err
    assert re.search(pattern, err, re.I), ".error %r does not match %r" % (err, pattern)
    assert w.api.api_key not in err
    # the last known instance stays, its status too until stale_after
    assert iid in ls(os.path.join(w.mnt, "vastai"))
    st = w.status()
    if time.monotonic() - t_fault < STALE - POLL - 1:
        assert st == "running\n", "status %r %.1fs after the fault (stale_after %d)" % (
            st, time.monotonic() - t_fault, STALE)
    seen = {st}
    wait_until(lambda: seen.add(w.status()) or "unknown\n" in seen,
               STALE + POLL + API_TIMEOUT + 4, msg="status unknown after stale_after")
    assert seen <= {"running\n", "unknown\n"}, "status went through %r" % seen
    # cached bytes still readable, other files still served
    assert cat(w.ck(0, "run-001", "best_metrics.json")) == cached
    json.loads(cat(w.f(0, "info.json")))
    assert w.api.deletes() == []
    # recovery
    clear()
    wait_until(lambda: w.vast_error() == "" and w.status() == "running\n",
               POLL + API_TIMEOUT + 5, msg="recovered after the fault cleared")
    return t_err


@pytest.mark.parametrize("name,fault,pattern", FAULTS, ids=[f[0] for f in FAULTS])
def test_api_fault(world, name, fault, pattern):
    w = world(stale_after=STALE, poll_interval=POLL, api_timeout=API_TIMEOUT)
    t0 = time.monotonic()
    _check_fault(w, lambda: w.api.fail(**fault), pattern, w.api.clear)
    elapsed = time.monotonic() - t0
    calls = w.api.list_calls(since=t0)
    # retries are fine, a hot loop is not (the vast CLI backs off 0.15 s x1.5)
    assert calls <= elapsed * 4 + 4, "%d list calls in %.1fs" % (calls, elapsed)


def test_api_unreachable(world):
    w = world(stale_after=STALE, poll_interval=POLL, api_timeout=API_TIMEOUT)
    _check_fault(w, w.api.stop, r"refused|connect|unreachable", w.api.restart)


def test_bad_key_from_the_start(fake_api, box_factory, mount_factory):
    b = box_factory()
    fake_api.add(make_instance(31000001, direct_port=b.port, proxy_port=b.port))
    m = mount_factory(fake_api, api_key="not-the-key-0000", stale_after=STALE)
    vast = os.path.join(m.mnt, "vastai")
    err = wait_until(lambda: read_text(os.path.join(vast, ".error")), ERROR_WAIT,
                     msg=".error for a refused key")
    assert re.search(r"401|refused", err), err
    assert _one_line(err)
    assert "not-the-key-0000" not in err and "not-the-key-0000" not in m.read_log()
    assert ls(vast) == {".error"}
    assert all(not r["authorized"] for r in fake_api.log())
    # the key becomes valid (e.g. the account was fixed): the instance appears
    fake_api.api_key = "not-the-key-0000"
    wait_until(lambda: "31000001" in ls(vast), STATUS_WAIT, msg="instance listed")
    wait_until(lambda: read_text(os.path.join(vast, ".error")) == "", STATUS_WAIT)
    assert read_text(os.path.join(vast, "31000001", "status")) == "running\n"


def test_missing_key_variable(fake_api, mount_factory):
    """VAST_API_KEY unset: either the mount refuses to start with a message
    naming the variable, or it mounts with the reason in vastai/.error; no
    request is ever sent with an empty key."""
    fake_api.add(make_instance(31000001, direct_port=1, proxy_port=1))
    m = mount_factory(fake_api, api_key=None, start=False)
    try:
        m.start()
    except util.MountError as e:
        assert "VAST_API_KEY" in str(e), e
    else:
        vast = os.path.join(m.mnt, "vastai")
        err = wait_until(lambda: read_text(os.path.join(vast, ".error")), ERROR_WAIT)
        assert "VAST_API_KEY" in err or re.search(r"key", err, re.I), err
        assert ls(vast) == {".error"}
    for r in fake_api.log():
        assert r["headers"].get("Authorization") in (None, "Bearer ***", "***")
        assert not r["authorized"]


def test_hostile_instance_objects(fake_api, box_factory, mount_factory):
    """Shapes the real API has been seen to send: ports null / {} / a list,
    HostPort not a number, whitespace around the IP, a multi-line and huge
    status_msg, and objects that are not instances at all. Good instances are
    listed and readable (through the proxy where there is no direct port);
    bad ones are skipped; nothing escapes vastai/."""
    b = box_factory()
    good = {
        41000001: dict(ports=None),
        41000002: dict(ports={}),
        41000003: dict(ports=[8080, 8081]),
        41000004: dict(ports={"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "not-a-port"}]}),
        41000005: dict(ports={"22/tcp": None}),
        41000006: dict(status_msg="line one\nline two\r\n" + "x" * 100000),
    }
    for iid, fields in good.items():
        inst = make_instance(iid, direct_port=None, proxy_port=b.port)
        inst.update(fields)
        fake_api.add(inst)
    body = json.loads(json.dumps({"instances": [fake_api.get(i) for i in good]}))
    body["instances"] += [
        {"id": "../../../etc", "actual_status": "running"},
        {"id": None, "actual_status": "running"},
        {"no_id": True},
        "a string",
        17,
        None,
        {"id": 41000099, "actual_status": {"nested": ["garbage"]}, "ports": "22:22",
         "public_ipaddr": 5, "ssh_port": "x", "ssh_host": None},
    ]
    body["instances_found"] = "many"
    fake_api.fail(mode="body", body=json.dumps(body))
    m = mount_factory(fake_api)
    vast = os.path.join(m.mnt, "vastai")
    wait_until(lambda: {str(i) for i in good} <= ls(vast), STATUS_WAIT,
               msg="every well-formed instance listed")
    for n in util.listdir_raw(vast):
        assert n == b".error" or n.isdigit(), "odd entry %r in vastai/" % n
    assert ok(["find", m.mnt, "-maxdepth", "3"]).rc == 0
    want = open(os.path.join(b.workspace, "checkpoints", "run-001", "best_metrics.json"), "rb").read()
    for iid in good:
        d = os.path.join(vast, str(iid))
        assert read_text(os.path.join(d, "status")) == "running\n", iid
        msg = read_text(os.path.join(d, "status_msg"))
        assert "\n" not in msg.rstrip("\n"), "status_msg of %d is not one line" % iid
        json.loads(cat(os.path.join(d, "info.json")))
        assert cat(os.path.join(d, "checkpoints", "run-001", "best_metrics.json")) == want, iid
    assert fake_api.deletes() == []
