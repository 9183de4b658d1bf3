"""The platform contract: what every adapter must do, driven through the mount
against each platform's stand-in (platforms.PLATFORMS; fixtures in
contract_world.py).

For every platform: the tree and the status mapping as the mount shows them;
a state change seen without remounting; one list call per poll interval
however many files are read; API faults (401, 429, 5xx, an error body with
HTTP 200, truncated JSON, a list that never ends) leave status readable and
.error set, never `gone`; a verified teardown (rmdir) sends exactly the
platform's DESTROY_CALLS in order and the archive serves the box's files
byte-identical; a refused teardown sends no call at all.
"""

import json
import os
import re
import stat
import time

import pytest

import util
from contract_world import cworld, cfake, kind  # noqa: F401 (fixtures)
from platforms import ERROR_200, make_instance
from util import wait_until, op_errno, cat, read_text, MIB, BASE_MTIME

SECRET_MARK = "FAKESECRET"
INSTANCE_FILES = {"status", "status_msg", "info.json", "ssh", "log", "teardown",
                  "checkpoints"}
FAULTS = [
    ("401", dict(status=401)),
    ("429", dict(status=429)),
    ("500", dict(status=500)),
    ("503", dict(status=503)),
    ("error-body-200", None),          # ERROR_200[kind], HTTP 200
    ("truncated", dict(mode="truncate")),
]


def regular_files(snap):
    return {k: (v["size"], v["mtime"], v.get("sha256")) for k, v in snap.items()
            if stat.S_ISREG(v["mode"])}


def error_text(w):
    r = util.run(["cat", "--", os.path.join(w.kdir(), ".error")], timeout=30)
    return r.text if r.rc == 0 else ""


def assert_not_gone(w, i=0):
    assert str(w.ids[i]) in w.listed(), "instance %s left MOUNT/%s" % (w.ids[i], w.kind)
    st = w.status(i)
    assert st.endswith("\n") and st.strip() not in ("gone", "destroying", ""), st


def small_checkpoints(w, i=0):
    ck = w.box_ck(i)
    util.torch_like_zip(os.path.join(ck, "run-a", "model.pt"), 256 * 1024, seed=3,
                        mtime=BASE_MTIME + 1)
    util.write_file(os.path.join(ck, "run-a", "metrics.json"),
                    json.dumps({"epoch": 3, "val_loss": 0.25}).encode() + b"\n",
                    BASE_MTIME + 2)
    util.write_file(os.path.join(ck, "run-b", "optimizer.bin"),
                    util.pattern_bytes(300001, 5), BASE_MTIME + 3)
    util.write_file(os.path.join(w.boxes[i].workspace, "train.log"), b"step 1 loss 2\n",
                    BASE_MTIME + 4)
    return ck


def call_matches(call, rec, iid):
    method, rx = call
    return rec["method"] == method and re.fullmatch(rx.replace("{id}", re.escape(str(iid))),
                                                    rec["path"])


# ---- the tree, the mapping, change without remount ---------------------------------

def test_tree_and_status_mapping(cworld, kind):
    w = cworld()
    iid, box = w.ids[0], w.boxes[0]
    assert INSTANCE_FILES <= set(util.ls(w.idir())), util.ls(w.idir())
    assert w.status() == "running\n"
    info = cat(w.f(0, "info.json"))
    json.loads(info)
    assert SECRET_MARK.encode() not in info, "a secret in info.json"
    assert w.api.api_key.encode() not in info
    ssh = read_text(w.f(0, "ssh"))
    if hasattr(w.mod, "ssh_target"):
        # APIs that carry no port (Lambda, Paperspace): port 22 of the
        # instance's own address, as the stand-in gives it
        want_host, want_port = w.mod.ssh_target(w.api, iid)
    else:
        want_port, want_host = box.port, "127.0.0.1"
    assert "-p %d " % want_port in ssh and "@%s" % want_host in ssh, ssh
    rel = os.path.join("run-001", "best_metrics.json")
    assert cat(w.f(0, "checkpoints", rel)) == open(w.box_ck(0, rel), "rb").read()

    # every raw state the stand-in knows, seen without a remount
    seen = []
    for name in w.mod.STATES:
        word = w.api.set_state(iid, name)
        if word == "gone":          # not listed at all; covered by the teardown test
            continue
        wait_until(lambda: w.status() == word + "\n", 6,
                   msg="%s: raw %r shows %r, want %r" % (kind, name, w.status(), word))
        seen.append(word)
    # every normalized state the platform can show (Lambda has no stop,
    # Paperspace no preemption)
    want = set(getattr(w.mod, "SHOWABLE",
                       {"running", "stopped", "preempted", "offline", "provisioning"}))
    want.discard("destroying")
    want.discard("gone")
    assert want <= set(seen), (want, seen)
    w.api.set_state(iid, "running")
    wait_until(lambda: w.status() == "running\n", 6, msg="back to running")


def test_one_list_call_per_poll_interval(cworld):
    w = cworld(poll_interval=1)
    names = ["status", "status_msg", "info.json", "ssh", "teardown"]
    time.sleep(1.2)
    t0 = time.monotonic()
    reads = 0
    while time.monotonic() - t0 < 4.0:
        for n in names:
            cat(w.f(0, n))
            reads += 1
        util.ls(w.kdir())
        reads += 1
    elapsed = time.monotonic() - t0
    n = w.api.list_calls(since=t0)
    assert reads > 50, reads
    assert 2 <= n <= elapsed / 1.0 + 2, "%d list calls in %.1fs for %d reads" % (
        n, elapsed, reads)
    assert not [r for r in w.api.log() if r["t"] >= t0 and r["kind"] != "list"], \
        "reads made other API calls"


# ---- control-plane faults ------------------------------------------------------------

@pytest.mark.faults
@pytest.mark.deadline(120)
def test_api_faults_leave_status_readable_and_error_set(cworld, kind):
    w = cworld(api_timeout=2, stale_after=30)
    for label, f in FAULTS:
        if f is None:
            f = dict(mode="body", status=200, body=json.dumps(ERROR_200[kind]))
        t0 = time.monotonic()
        w.api.fail(kind="list", **f)
        wait_until(lambda: w.api.list_calls(since=t0) >= 1 and error_text(w).strip(), 10,
                   msg="%s %s: .error stays empty" % (kind, label))
        err = error_text(w)
        assert w.api.api_key not in err, "the key in .error"
        assert_not_gone(w)
        w.api.clear()
        wait_until(lambda: not error_text(w).strip(), 10,
                   msg="%s %s: .error not cleared: %r" % (kind, label, error_text(w)))
        assert w.status() == "running\n", (label, w.status())
    assert not w.api.mutations()


@pytest.mark.faults
@pytest.mark.deadline(60)
def test_a_list_that_never_ends_is_an_error(cworld, kind):
    mod_modes = getattr(__import__("platforms").fake_module(kind), "FAULT_MODES", ())
    if "endless" not in mod_modes:
        pytest.skip("the %s stand-in has no endless-page fault yet" % kind)
    w = cworld(api_timeout=2, stale_after=30)
    t0 = time.monotonic()
    w.api.fail(kind="list", mode="endless")
    wait_until(lambda: w.api.list_calls(since=t0) >= 1 and error_text(w).strip(), 15,
               msg="endless list: .error stays empty")
    assert_not_gone(w)
    w.api.clear()
    wait_until(lambda: not error_text(w).strip(), 15, msg=".error not cleared")
    assert w.status() == "running\n"


# ---- teardown ----------------------------------------------------------------------------

@pytest.mark.deadline(120)
def test_teardown_sends_exactly_the_destroy_calls_and_archives(cworld, kind):
    w = cworld(populate=False, mount=False, section={"destroy_timeout": 8})
    iid = w.ids[0]
    want = regular_files(util.local_snapshot(small_checkpoints(w)))
    assert len(want) == 3
    w.start()
    err = op_errno("rmdir", w.idir(), timeout=90)
    assert err == "OK", "rmdir -> %s; teardown:\n%s\n%s" % (
        err, util.run(["cat", w.f(0, "teardown")]).text, w.mount.log_tail())
    muts = w.api.mutations()
    calls = w.mod.DESTROY_CALLS
    assert len(muts) == len(calls) and all(
        call_matches(c, r, iid) for c, r in zip(calls, muts)), \
        "sent %r, want %r" % ([(r["method"], r["path"]) for r in muts], calls)
    assert all(r["status"] is not None and r["status"] < 300 for r in muts), muts
    wait_until(lambda: str(iid) not in w.listed(), 10, msg="instance left the listing")
    a = w.archive()
    assert read_text(os.path.join(a, "status")) == "gone\n"
    got = regular_files(util.snapshot(os.path.join(a, "checkpoints")))
    assert got == want
    info = cat(os.path.join(a, "info.json"))
    assert SECRET_MARK.encode() not in info and w.api.api_key.encode() not in info


@pytest.mark.faults
@pytest.mark.deadline(120)
def test_destroy_answering_500_is_sent_once_and_the_instance_lives(cworld):
    w = cworld(populate=False, mount=False, section={"destroy_timeout": 8})
    iid = w.ids[0]
    small_checkpoints(w)
    w.start()
    first = w.mod.DESTROY_CALLS[0]
    w.api.fail(status=500, method=first[0])
    err = op_errno("rmdir", w.idir(), timeout=90)
    rep = read_text(w.f(0, "teardown"))
    assert err == "EIO", "rmdir -> %s; teardown:\n%s" % (err, rep)
    muts = w.api.mutations()
    assert len(muts) == 1 and call_matches(first, muts[0], iid), \
        "a destroy verb was retried blindly: %r" % [(r["method"], r["path"]) for r in muts]
    assert_not_gone(w)
    # the platform works again: the next rmdir completes the sequence
    w.api.clear()
    err = op_errno("rmdir", w.idir(), timeout=90)
    assert err == "OK", "retry -> %s; teardown:\n%s" % (
        err, util.run(["cat", w.f(0, "teardown")]).text)
    wait_until(lambda: str(iid) not in w.listed(), 10, msg="instance left the listing")


@pytest.mark.faults
def test_refused_teardown_sends_no_call(cworld):
    w = cworld(mount=False, section={"destroy_timeout": 8})
    os.symlink("best.pth", w.box_ck(0, "run-001", "latest.pth"))
    w.start()
    before = util.box_tree_sha(w.boxes[0].workspace)
    err = op_errno("rmdir", w.idir(), timeout=60)
    assert err == "EINVAL", err
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:") and "latest.pth" in rep, rep
    assert w.api.mutations() == [], w.api.mutations()
    assert_not_gone(w)
    assert util.box_tree_sha(w.boxes[0].workspace) == before


# ---- RunPod: only the direct endpoint carries SFTP -------------------------------------

@pytest.mark.parametrize("kind", ["runpod"])
def test_runpod_proxy_only_gives_the_proxy_login_for_ssh(cworld, kind):
    w = cworld()
    iid, box = w.ids[0], w.boxes[0]
    w.api.set_endpoints(iid, direct_port=None, proxy_port=box.port)
    pod = w.api.get(iid)
    user = pod["ssh"]["proxy"]["username"]
    assert re.fullmatch(re.escape(iid) + r"-[0-9a-f]{8}", user), user
    wait_until(lambda: ("%s@127.0.0.1" % user) in read_text(w.f(0, "ssh")), 6,
               msg="ssh file shows the proxy login")
    assert "-p %d " % box.port in read_text(w.f(0, "ssh"))
    assert "no SFTP" in read_text(w.f(0, "status_msg"))
    assert w.status() == "running\n"


@pytest.mark.faults
@pytest.mark.parametrize("kind", ["runpod"])
@pytest.mark.parametrize("label,fault", [
    ("409-not-allowed", dict(status=409)),
    ("200-not-the-documented-204", dict(mode="body", status=200, body="{}")),
])
def test_runpod_terminate_without_204_is_not_success(cworld, kind, label, fault):
    w = cworld(populate=False, mount=False, section={"destroy_timeout": 4})
    iid = w.ids[0]
    small_checkpoints(w)
    w.start()
    before = util.box_tree_sha(w.boxes[0].workspace)
    w.api.fail(method="DELETE", **fault)
    err = op_errno("rmdir", w.idir(), timeout=60)
    rep = read_text(w.f(0, "teardown"))
    assert err not in ("OK", "TIMEOUT"), "rmdir -> %s; teardown:\n%s" % (err, rep)
    muts = w.api.mutations()
    assert [(r["method"], r["path"]) for r in muts] == [("DELETE", "/v2/pods/" + iid)], muts
    w.api.clear()
    assert_not_gone(w)
    assert str(iid) not in set(util.run(["ls", "-A", "--", os.path.join(
        w.mnt, "archive", kind)]).text.split()), "archived though the pod lives"
    assert util.box_tree_sha(w.boxes[0].workspace) == before
