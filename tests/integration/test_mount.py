"""The tree rgtfs shows for vast.ai instances, and how it follows the API.

Each test: private sshd boxes, a fake vast.ai API listing them, one mount
(poll_interval 1 s), driven with ls, cat, stat, cp -a, rsync -a, tar, du, find."""

import json
import os
import time

import pytest

import util
from util import ok, run, cat, read_text, wait_until, snapshot, local_snapshot, tree_diff, ls
from fake_vast import make_instance, STATES, SECRET_MARK, secret_values
from sshd import SSH_OPTS

INSTANCE_FILES = {"status", "status_msg", "info.json", "ssh", "log", "teardown", ".error",
                  "checkpoints"}
OTHER_PLATFORMS = {"runpod", "lambda", "paperspace", "autodl", "ssh"}
STATUS_WAIT = 6.0       # poll_interval (1 s) + one API round trip + slack


def test_root_layout(world):
    w = world()
    top = ls(w.mnt)
    assert {"vastai", "archive"} <= top, top
    assert not (top & OTHER_PLATFORMS), "only configured platforms appear: %r" % top
    assert ls(os.path.join(w.mnt, "vastai")) == {".error", str(w.ids[0])}
    assert w.vast_error() == ""
    assert ls(os.path.join(w.mnt, "archive")) == set()
    r = ok(["stat", "-c", "%F", w.mnt + "/vastai", w.mnt + "/archive", w.idir(0)])
    assert r.text.split("\n")[:3] == ["directory"] * 3


def test_instance_directory(world):
    w = world()
    names = ls(w.idir(0))
    assert INSTANCE_FILES <= names, "missing: %r" % (INSTANCE_FILES - names)
    kinds = dict(line.split("\t", 1)[::-1] for line in ok(
        ["stat", "-c", "%F\t%n"] + [w.f(0, n) for n in sorted(INSTANCE_FILES)]).text.splitlines())
    for n in INSTANCE_FILES:
        want = "directory" if n == "checkpoints" else ("regular file", "regular empty file")
        assert kinds[w.f(0, n)] in ((want,) if isinstance(want, str) else want), (n, kinds)
    assert read_text(w.f(0, "teardown")) == ""
    assert read_text(w.f(0, ".error")) == ""


def test_status_status_msg_info_json(world):
    w = world()
    assert w.status() == "running\n"
    msg = read_text(w.f(0, "status_msg"))
    assert msg.rstrip("\n") == w.api.get(w.ids[0])["status_msg"]
    assert "\n" not in msg.rstrip("\n"), "status_msg is one line"
    info = json.loads(cat(w.f(0, "info.json")))
    assert info["id"] == w.ids[0]
    assert isinstance(info.get("rgtfs"), dict) and info["rgtfs"].get("state") == "running"
    assert info.get("gpu_name") == "RTX 4090"


def test_sizes_of_small_files_match_their_bytes(world):
    """stat size == bytes read, so tools that trust st_size (cp, rsync, python) work."""
    w = world()
    for n in ("status", "status_msg", "info.json", "ssh", "log", "teardown", ".error"):
        data = cat(w.f(0, n))
        size = int(ok(["stat", "-c", "%s", w.f(0, n)]).text)
        assert size == len(data), "%s: st_size %d, %d bytes read" % (n, size, len(data))
        ok(["cp", w.f(0, n), os.path.join(w.mount.workdir, "copy-" + n)])
        assert open(os.path.join(w.mount.workdir, "copy-" + n), "rb").read() == data


def test_ssh_file_is_a_pasteable_command(world, user_key):
    w = world()
    txt = read_text(w.f(0, "ssh"))
    assert txt == "ssh -p %d root@127.0.0.1\n" % w.boxes[0].port
    # and it really reaches the box
    # ssh -i KEY OPTS... -p PORT root@HOST CMD
    argv = ["ssh", "-i", user_key] + SSH_OPTS + txt.split()[1:] + [
        "cat /workspace/checkpoints/run-001/best_metrics.json"]
    r = run(argv, timeout=20)
    assert r.rc == 0 and r.out == open(w.box_ck(0, "run-001", "best_metrics.json"), "rb").read()


def test_log_is_the_remote_log_file(world):
    w = world()
    want = open(os.path.join(w.boxes[0].workspace, "train.log"), "rb").read()
    assert cat(w.f(0, "log")) == want
    assert ok(["tail", "-n", "1", w.f(0, "log")]).out == want.splitlines(True)[-1]


def test_checkpoints_match_the_box(world):
    w = world()
    want = local_snapshot(w.box_ck(0))
    got = snapshot(w.ck(0))
    assert tree_diff(got, want) == []
    # the same facts through the usual tools
    r = ok(["find", w.ck(0), "-type", "f", "-printf", "%s %T@ %P\n"])
    found = {}
    for line in r.text.splitlines():
        size, mt, rel = line.split(" ", 2)
        found[rel] = (int(size), int(float(mt)))
    want_files = {k.decode(): (v["size"], v["mtime"]) for k, v in want.items() if v["mode"] == 0o100000}
    assert found == want_files
    r = ok(["ls", "-l", "--time-style=+%s", w.ck(0, "run-001")])
    lines = {l.split()[-1]: l.split() for l in r.text.splitlines() if not l.startswith("total")}
    st = os.stat(w.box_ck(0, "run-001", "best.pth"))
    assert lines["best.pth"][4] == str(st.st_size) and lines["best.pth"][5] == str(int(st.st_mtime))
    assert sorted(lines) == sorted(os.listdir(w.box_ck(0, "run-001")))
    r = ok(["sha256sum", w.ck(0, "run-001", "best.pth"), w.ck(0, "run-001", "model.safetensors")])
    assert [l.split()[0] for l in r.text.splitlines()] == [
        util.sha256_file(w.box_ck(0, "run-001", "best.pth")),
        util.sha256_file(w.box_ck(0, "run-001", "model.safetensors"))]
    # du: apparent sizes per file, and disk usage that is not zero (st_blocks)
    r = ok(["du", "-ab", w.ck(0)])
    du = {os.path.relpath(l.split("\t", 1)[1], w.ck(0)): int(l.split("\t")[0]) for l in r.text.splitlines()}
    for rel, (size, _) in want_files.items():
        assert du[rel] == size, (rel, du[rel], size)
    total_kib = sum(s for s, _ in want_files.values()) / 1024
    used_kib = int(ok(["du", "-sk", w.ck(0)]).text.split()[0])
    assert used_kib >= 0.9 * total_kib, "du -sk %d KiB for %d KiB of data (st_blocks?)" % (
        used_kib, total_kib)


def test_cp_rsync_tar_copy_the_tree(world, tmp_path):
    w = world()
    want = local_snapshot(w.box_ck(0))
    src = w.ck(0)
    dst = tmp_path / "cp"
    ok(["cp", "-a", src, str(dst)], timeout=120)
    assert tree_diff(local_snapshot(str(dst)), want) == []
    dst = tmp_path / "rsync"
    ok(["rsync", "-a", src + "/", str(dst) + "/"], timeout=120)
    assert tree_diff(local_snapshot(str(dst)), want) == []
    # a second rsync finds nothing to do (sizes and mtimes are stable)
    r = ok(["rsync", "-ai", "--dry-run", src + "/", str(dst) + "/"], timeout=120)
    assert r.text.strip() == "", "rsync sees changes on an unchanged tree:\n" + r.text
    dst = tmp_path / "tar"
    dst.mkdir()
    ok("tar -C %s -cf - . | tar -C %s -xf -" % (src, dst), timeout=120)
    assert tree_diff(local_snapshot(str(dst)), want) == []
    r = ok(["tar", "-C", src, "-cvf", "/dev/null", "."], timeout=120)
    assert "./run-001/best.pth" in r.text


def test_instances_are_separate(world):
    w = world(n=2)
    assert ls(os.path.join(w.mnt, "vastai")) == {".error", str(w.ids[0]), str(w.ids[1])}
    for i in (0, 1):
        assert tree_diff(snapshot(w.ck(i)), local_snapshot(w.box_ck(i))) == []
        assert cat(w.f(i, "log")) == open(os.path.join(w.boxes[i].workspace, "train.log"), "rb").read()
        assert read_text(w.f(i, "ssh")) == "ssh -p %d root@127.0.0.1\n" % w.boxes[i].port
    assert util.sha256sum(w.ck(0, "run-001", "best.pth")) != util.sha256sum(w.ck(1, "run-001", "best.pth"))


def test_status_follows_the_api_without_remount(world):
    w = world()
    iid = w.ids[0]
    bad = []
    seq = ["loading", "running", "stopped", "frozen", "exited", "running", "preempted",
           "running", "offline", "unknown", "provisioning", "running"]
    for name in seq:
        want = w.api.set_state(iid, name)
        try:
            wait_until(lambda: w.status() == want + "\n", STATUS_WAIT,
                       msg="status after %s" % name)
            msg = STATES[name][0]["status_msg"]
            wait_until(lambda: read_text(w.f(0, "status_msg")).rstrip("\n") == msg, STATUS_WAIT,
                       msg="status_msg after %s" % name)
            info = json.loads(cat(w.f(0, "info.json")))
            if info.get("rgtfs", {}).get("state") != want:
                bad.append("%s: info.json rgtfs.state %r, want %r" % (
                    name, info.get("rgtfs", {}).get("state"), want))
        except AssertionError as e:
            bad.append("%s -> want %r: %s (status now %r)" % (name, want, e, w.status()))
    assert bad == [], "\n".join(bad)


def test_a_shell_loop_sees_changes(world):
    """The way a script watches a box: re-read `status` in a loop."""
    w = world()
    w.api.set_state(w.ids[0], "stopped")
    r = run("for i in $(seq 100); do s=$(cat %s); [ \"$s\" = stopped ] && { echo $i; exit 0; }; "
            "sleep 0.1; done; echo never; exit 1" % w.f(0, "status"), timeout=30)
    assert r.rc == 0, r


def test_one_list_call_per_poll_interval(world):
    w = world(n=3)
    t0 = time.monotonic()
    files = " ".join(w.f(i, n) for i in range(3) for n in ("status", "status_msg", "info.json",
                                                          "ssh", ".error"))
    files += " " + os.path.join(w.mnt, "vastai", ".error")
    r = ok("end=$((SECONDS+5)); n=0; while [ $SECONDS -lt $end ]; do cat %s >/dev/null; "
           "ls %s >/dev/null; n=$((n+1)); done; echo $n" % (files, os.path.join(w.mnt, "vastai")),
           timeout=60)
    elapsed = time.monotonic() - t0
    calls = w.api.list_calls(since=t0)
    reads = int(r.text.strip())
    assert reads >= 5, "too few read rounds to judge (%d)" % reads
    assert calls <= elapsed / 1.0 + 2, "%d list calls in %.1fs for %d read rounds (poll_interval 1s)" % (
        calls, elapsed, reads)
    assert calls >= 2, "status must stay fresh: only %d list calls in %.1fs" % (calls, elapsed)
    # it is always the list call, never one call per instance
    assert w.api.calls(kind="show", since=t0) == []


def test_api_requests_carry_the_bearer_key(world):
    w = world()
    reqs = w.api.log()
    assert reqs and all(r["authorized"] for r in reqs)
    assert all(r["headers"].get("Authorization") == "Bearer ***" for r in reqs)
    lists = [r for r in reqs if r["kind"] == "list"]
    assert lists and all(r["query"].get("owner") == ["me"] for r in lists)


def test_new_instance_appears(world, box_factory):
    w = world()
    b = box_factory(name="late")
    iid = w.ids[0] + 1
    w.api.add(make_instance(iid, direct_port=b.port, proxy_port=b.port))
    wait_until(lambda: str(iid) in ls(os.path.join(w.mnt, "vastai")), STATUS_WAIT,
               msg="new instance listed")
    p = os.path.join(w.mnt, "vastai", str(iid))
    wait_until(lambda: read_text(os.path.join(p, "status")) == "running\n", STATUS_WAIT)
    assert cat(os.path.join(p, "checkpoints", "run-001", "best_metrics.json")) == open(
        os.path.join(b.workspace, "checkpoints", "run-001", "best_metrics.json"), "rb").read()


def test_destroyed_elsewhere_goes_destroying_then_gone(world):
    """Destroyed from the web console: listed as unloaded for a while
    (destroying), then absent; the cache still holds what was read, so the
    directory stays with status `gone` (SPEC: the tree)."""
    w = world()
    w.api.linger = 6
    want = cat(w.ck(0, "run-001", "best.pth"))
    w.api.destroy(w.ids[0])
    wait_until(lambda: w.status() == "destroying\n", STATUS_WAIT, msg="status destroying")
    wait_until(lambda: w.status() == "gone\n", w.api.linger + STATUS_WAIT, msg="status gone")
    assert str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai"))
    assert cat(w.ck(0, "run-001", "best.pth")) == want
    assert w.api.deletes() == [], "rgtfs must never DELETE on its own"


def test_no_secrets_in_the_tree_the_cache_or_the_log(world):
    w = world(n=2)
    secrets = [SECRET_MARK, w.api.api_key]
    for iid in w.ids:
        secrets += secret_values(w.api.get(iid))
    texts = {}
    for i in range(2):
        for n in ("status", "status_msg", "info.json", "ssh", "log", "teardown", ".error"):
            texts[w.f(i, n)] = cat(w.f(i, n))
    texts[os.path.join(w.mnt, "vastai", ".error")] = cat(os.path.join(w.mnt, "vastai", ".error"))
    cat(w.ck(0, "run-001", "best_metrics.json"))    # something in the cache
    for path, data in texts.items():
        for s in secrets:
            assert s.encode() not in data, "secret %r in %s" % (s[:20], path)
    info = json.loads(texts[w.f(0, "info.json")])
    for k in ("jupyter_token", "onstart", "extra_env"):
        assert not info.get(k) or SECRET_MARK not in json.dumps(info[k]), k
    for dirpath, _, files in os.walk(w.mount.cache):
        for fn in files:
            data = open(os.path.join(dirpath, fn), "rb").read()
            for s in secrets:
                assert s.encode() not in data, "secret %r in cache file %s" % (s[:20], fn)
    log = w.mount.read_log()
    for s in secrets:
        assert s not in log, "secret %r in the daemon log" % s[:20]


@pytest.mark.parametrize("transport", ["libssh2", "openssh"])
def test_each_transport_serves_the_same_tree(world, transport):
    # transport = pins the SSH backend: every byte and name read through it
    # matches the box, and the log says which one carried them.
    w = world(extra_vastai={"transport": transport})
    got = snapshot(w.ck(0))
    assert tree_diff(got, local_snapshot(w.box_ck(0))) == []
    with open(w.mount.log, "rb") as f:
        assert ("SSH transport %s" % transport).encode() in f.read()
