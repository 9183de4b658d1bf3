"""archive_to: a verified archive pushed to a bucket (cache/archive_push.c)
and read back by another mount with its own cache, against a real
SigV4-verifying S3 server (s3server.py) and, for failures, the fault proxy
in front of it (s3fault.py).

The archive is a real one: a vast.ai-shaped instance on a test sshd box is
torn down by rmdir (test_teardown.py's world). The push itself is driven by
tests/archive_push_probe on the stopped mount's cache (found next to the
rgtfs binary, BUILD/tests/), the same archive_push() the teardown calls;
a part size of 5 MiB makes the 12 MiB checkpoint go as a multipart upload.

A second mount, configured with nothing but the [cloud:ckpt] section and a
fresh cache, lists the archive under archive/vastai/<id>/ and reads every
file back byte-identical, PULL_MANIFEST.json included, fetching the bytes
lazily; a corrupted object is never served as good bytes; rmdir of a
remote archive is EROFS and deletes nothing; a failed upload is an error
and leaves no archive that anyone lists.
"""

import hashlib
import json
import os
import subprocess

import pytest

import conftest
import util
from s3fault import FaultProxy
from s3server import installed, start_s3
from test_teardown import build_checkpoints
from util import Mount, ls, op_errno, wait_until, MIB, BASE_MTIME

pytestmark = pytest.mark.skipif(not installed(), reason="s3rver not installed "
                                "(tools/install-s3rver.sh)")

BUCKET = "ckpts"
PART = 5 * MIB                 # the probe's multipart part size
ODD = {                        # names the key mapping must carry
    "odd names/a b%c.bin": b"spaces and percent\n",
    "odd names/new\nline.txt": b"a newline in the name\n",
}
BIG = "run-c/big.bin"          # > PART: a multipart upload of 3 parts


@pytest.fixture
def s3(tmp_path):
    with start_s3(tmp_path) as s:
        s.make_bucket(BUCKET)
        yield s


@pytest.fixture
def probe(rgtfs_bin):
    p = os.path.join(os.path.dirname(rgtfs_bin), "tests", "archive_push_probe")
    if not os.access(p, os.X_OK):
        pytest.fail("archive_push_probe not found next to %s" % rgtfs_bin,
                    pytrace=False)
    return p


def cloud_kv(s3, tmp_path, endpoint=None):
    ak, sk = tmp_path / "ak", tmp_path / "sk"
    ak.write_text(s3.access_key + "\n")
    sk.write_text(s3.secret_key + "\n")
    os.chmod(ak, 0o600)
    os.chmod(sk, 0o600)
    return {"endpoint": endpoint or s3.endpoint, "region": "us-east-1",
            "bucket": BUCKET, "access_key_file": str(ak),
            "secret_key_file": str(sk)}


def write_cloud_only(path, kv):
    lines = ["[rgtfs]", "connect_timeout = 3", "io_timeout = 5", "",
             "[cloud:ckpt]"] + ["%s = %s" % kv_ for kv_ in kv.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_probe(probe, config, cache, *args, timeout=120):
    r = subprocess.run([probe, config, cache, "ckpt"] + list(args),
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), \
        r.stderr.decode("utf-8", "replace")


def torn_down(world, s3, tmp_path, push=True):
    """A real local archive: the box's checkpoints torn down by rmdir (which
    pushes it to the bucket when @push: archive_to = ckpt). Returns (world,
    {relpath bytes: sha256}, manifest bytes); the first mount is unmounted
    (its cache free for the probe)."""
    extra = {"destroy_timeout": 8}
    if push:
        extra["archive_to"] = "ckpt"
    w = world(populate=False, mount=False, extra_vastai=extra,
              extra_sections={"[cloud:ckpt]": cloud_kv(s3, tmp_path)})
    box = w.boxes[0]
    ck = build_checkpoints(box.workspace)
    for rel, data in ODD.items():
        util.write_file(os.path.join(ck, rel), data, BASE_MTIME + 50)
    util.write_file(os.path.join(ck, BIG), util.pattern_bytes(12 * MIB + 4321, 9),
                    BASE_MTIME + 60)
    want = {}
    for d, _, files in os.walk(ck):
        for name in files:
            p = os.path.join(d, name)
            want[os.path.relpath(p, ck).encode("utf-8", "surrogateescape")] = \
                util.sha256sum(p)
    w.mount.start()
    iid = str(w.ids[0])
    wait_until(lambda: iid in ls(os.path.join(w.mnt, "vastai")), 10,
               msg="instance listed")
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err == "OK", "rmdir -> %s\n%s" % (err, w.mount.log_tail())
    a = os.path.join(w.mnt, "archive", "vastai", iid)
    wait_until(lambda: os.path.isdir(a), 10, msg="archived")
    with open(os.path.join(a, "PULL_MANIFEST.json"), "rb") as f:
        manifest = f.read()
    assert w.mount.unmount() == 0
    return w, want, manifest


def push(probe, w, *extra):
    return run_probe(probe, w.mount.config, w.mount.cache, "push", "vastai",
                     str(w.ids[0]), *extra)


def second_mount(rgtfs_bin, tmp_path, s3, name="reader", endpoint=None):
    workdir = str(tmp_path / name)
    os.makedirs(workdir, exist_ok=True)
    conf = write_cloud_only(os.path.join(workdir, "rgtfs.ini"),
                            cloud_kv(s3, tmp_path, endpoint))
    m = Mount(rgtfs_bin, workdir, conftest._rgtfs_env(workdir, None), conf)
    m.start()
    return m


@pytest.fixture
def mounts(hygiene):
    made = []
    yield made
    util.kill_children()
    for m in made:
        m.cleanup()
    problems = []
    for m in made:
        problems += m.problems
        problems += hygiene.check(m.read_log())
    if problems:
        pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


def tree_sums(root):
    out = {}
    for d, _, files in os.walk(root.encode()):
        for name in files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root.encode())] = util.sha256sum(p)
    return out


@pytest.mark.deadline(400)
def test_pushed_archive_reads_back_in_a_second_mount(world, s3, tmp_path, probe,
                                                     rgtfs_bin, mounts):
    w, want, manifest = torn_down(world, s3, tmp_path, push=False)
    iid = str(w.ids[0])
    rc, out, err = push(probe, w, str(PART))
    assert rc == 0 and out.strip() == "pushed", (rc, out, err)

    pre = "archive/vastai/%s/" % iid
    keys = s3.keys(BUCKET, pre)
    assert pre + "RGTFS_ARCHIVE.json" in keys
    assert pre + "PULL_MANIFEST.json" in keys and pre + "PULL_VERIFIED.json" in keys
    assert pre + "files/odd%20names/a%20b%25c.bin" in keys, keys
    assert pre + "files/odd%20names/new%0Aline.txt" in keys, keys
    assert len([k for k in keys if k.startswith(pre + "files/")]) == len(want)
    # every object is the archived bytes (read straight from the bucket)
    assert s3.get(BUCKET, pre + "PULL_MANIFEST.json") == manifest
    big = s3.get(BUCKET, pre + "files/" + BIG)
    assert hashlib.sha256(big).hexdigest() == want[BIG.encode()]
    rec = json.loads(s3.get(BUCKET, pre + "RGTFS_ARCHIVE.json"))
    assert rec["platform"] == "vastai" and rec["id"] == iid
    assert all(f["etag"].startswith('"') for f in rec["files"]), rec["files"]

    rc, out, err = run_probe(probe, w.mount.config, w.mount.cache, "list")
    assert rc == 0 and out.split("\n")[0] == "vastai %s" % iid, (rc, out, err)

    # the pushing mount, now also seeing the bucket: its local archive wins
    # (it has the box's log, which is not pushed)
    w.mount.start()
    local = os.path.join(w.mnt, "archive", "vastai", iid)
    wait_until(lambda: "log" in ls(local), 10, msg="local archive shown")
    assert ls(os.path.join(w.mnt, "archive", "vastai")) == {iid}
    assert w.mount.unmount() == 0

    # a second mount: only the bucket, its own empty cache
    m = second_mount(rgtfs_bin, tmp_path, s3)
    mounts.append(m)
    arch = os.path.join(m.mnt, "archive")
    assert ls(arch) == {"vastai"}
    assert ls(os.path.join(arch, "vastai")) == {iid}
    a = os.path.join(arch, "vastai", iid)
    assert {"status", "PULL_MANIFEST.json", "PULL_VERIFIED.json", "checkpoints",
            "teardown", "info.json"} <= ls(a)
    assert "log" not in ls(a)                     # the box's log stays local
    with open(os.path.join(a, "PULL_MANIFEST.json"), "rb") as f:
        assert f.read() == manifest
    got = tree_sums(os.path.join(a, "checkpoints"))
    assert got == want
    st = os.stat(os.path.join(a, "checkpoints", BIG))
    assert st.st_size == 12 * MIB + 4321 and st.st_mtime == BASE_MTIME + 60
    # the manifest's promise holds for the bytes read back
    for f in json.loads(manifest)["files"]:
        rel = f["path"]
        rel = rel[len("checkpoints/"):] if rel.startswith("checkpoints/") else rel
        assert got[rel.encode("utf-8", "surrogateescape")] == f["sha256"], rel

    # read-only, and rmdir deletes nothing in the bucket
    assert op_errno("rmdir", a) in ("EROFS", "EPERM")
    assert op_errno("unlink", os.path.join(a, "checkpoints", BIG)) in ("EROFS", "EPERM")
    assert s3.keys(BUCKET, pre) == keys

    # what was read is in the reader's cache: it survives the server
    assert m.unmount() == 0
    s3.stop()
    m.start()
    wait_until(lambda: iid in ls(os.path.join(arch, "vastai")), 10,
               msg="archive listed with the bucket away")
    assert tree_sums(os.path.join(a, "checkpoints")) == want


@pytest.mark.deadline(300)
def test_a_corrupted_object_is_never_served(world, s3, tmp_path, probe, rgtfs_bin,
                                            mounts, hygiene):
    w, want, _ = torn_down(world, s3, tmp_path, push=False)
    iid = str(w.ids[0])
    rc, out, err = push(probe, w)
    assert rc == 0, (rc, out, err)
    key = "archive/vastai/%s/files/run-b/optimizer.bin" % iid
    s3.corrupt(BUCKET, key)                       # new bytes, new ETag

    rc, out, err = run_probe(probe, w.mount.config, w.mount.cache, "load",
                             "vastai", iid)
    assert rc == 0 and out.startswith("refused 1\n"), (rc, out, err)
    assert "optimizer.bin" in err and "ETag" in err, err

    hygiene.allow(r"optimizer\.bin.*(refused|ETag|changed)")
    hygiene.allow(r"changed in the bucket")
    m = second_mount(rgtfs_bin, tmp_path, s3)
    mounts.append(m)
    a = os.path.join(m.mnt, "archive", "vastai", iid, "checkpoints")
    bad = os.path.join(a, "run-b", "optimizer.bin")
    assert os.path.exists(bad)                    # listed, never served
    assert op_errno("read", bad) == "EIO"
    rep = util.read_text(os.path.join(m.mnt, "archive", "vastai", iid, "teardown"))
    assert "1 file refused" in rep and "run-b/optimizer.bin" in rep, rep
    for rel, sha in want.items():                 # the others are fine
        if rel != b"run-b/optimizer.bin":
            assert util.sha256sum(os.path.join(a.encode(), rel)) == sha, rel


@pytest.mark.deadline(300)
def test_a_failed_upload_is_an_error_and_lists_nothing(world, s3, tmp_path, probe):
    w, _, _ = torn_down(world, s3, tmp_path, push=False)
    iid = str(w.ids[0])
    with FaultProxy(s3.port) as px:
        conf = write_cloud_only(str(tmp_path / "proxied.ini"),
                                cloud_kv(s3, tmp_path, px.endpoint))
        # every PUT of one file answers 500: retried (bounded), then an error
        px.fail("500", times=None, method="PUT",
                match=lambda r: "optimizer.bin" in r.path)
        rc, out, err = run_probe(probe, conf, w.mount.cache, "push", "vastai", iid)
        assert rc == 1 and "optimizer.bin" in err and "500" in err, (rc, out, err)
        assert "error: -5:" in err, err                     # -EIO
        assert 2 <= px.count(method="PUT", match=lambda r: "optimizer.bin" in r.path) <= 8
        keys = s3.keys(BUCKET, "archive/")
        assert not any(k.endswith("RGTFS_ARCHIVE.json") for k in keys), keys
        rc, out, _ = run_probe(probe, conf, w.mount.cache, "list")
        assert rc == 0 and out == ""

        # a multipart upload whose completion fails is aborted
        px.clear_faults()
        px.fail("500", times=None, method="POST",
                match=lambda r: "uploadId" in r.query)
        rc, out, err = run_probe(probe, conf, w.mount.cache, "push", "vastai", iid,
                                 str(PART))
        assert rc == 1 and "big.bin" in err, (rc, out, err)
        assert px.count(method="DELETE", match=lambda r: "uploadId" in r.query) == 1
        assert not any(k.endswith("RGTFS_ARCHIVE.json") for k in s3.keys(BUCKET, "archive/"))

        # a cancelled push (an interrupted teardown): EINTR, no record
        px.clear_faults()
        s3.delete(BUCKET, "archive/vastai/%s/files/%s" % (iid, BIG))
        r = subprocess.run([probe, conf, w.mount.cache, "ckpt", "push", "vastai",
                            iid, str(PART)], capture_output=True, timeout=120,
                           env=dict(os.environ, ARCHIVE_PUSH_CANCEL_AFTER="9"))
        err = r.stderr.decode()
        assert r.returncode == 1 and "error: -4:" in err and "interrupted" in err, err
        assert not any(k.endswith("RGTFS_ARCHIVE.json") for k in s3.keys(BUCKET, "archive/"))

        # the bucket refusing the key: EACCES
        px.clear_faults()
        px.fail("403", times=None, method="PUT")
        rc, out, err = run_probe(probe, conf, w.mount.cache, "push", "vastai", iid)
        assert rc == 1 and "error: -13:" in err, (rc, out, err)

        # and once the server behaves, the same push succeeds
        px.clear_faults()
        rc, out, err = run_probe(probe, conf, w.mount.cache, "push", "vastai", iid,
                                 str(PART))
        assert rc == 0, (rc, out, err)
        rc, out, _ = run_probe(probe, conf, w.mount.cache, "list")
        assert out.strip() == "vastai %s" % iid

        # run again (a retried teardown): what is there and verified is kept
        px.clear_log()
        rc, out, err = run_probe(probe, conf, w.mount.cache, "push", "vastai", iid,
                                 str(PART))
        assert rc == 0, (rc, out, err)
        assert px.count(method="PUT") == 0 and px.count(method="POST") == 0
        assert px.count(method="HEAD") >= 10


@pytest.mark.deadline(300)
def test_teardown_pushes_before_the_destroy_call(world, s3, tmp_path):
    """rmdir with archive_to = ckpt: the archive is in the bucket, complete
    (RGTFS_ARCHIVE.json), before the instance is destroyed."""
    w, want, manifest = torn_down(world, s3, tmp_path)
    iid = str(w.ids[0])
    pre = "archive/vastai/%s/" % iid
    keys = s3.keys(BUCKET, pre)
    assert pre + "RGTFS_ARCHIVE.json" in keys, keys
    assert len([k for k in keys if k.startswith(pre + "files/")]) == len(want)
    assert s3.get(BUCKET, pre + "PULL_MANIFEST.json") == manifest
    # every file and the pending record were there before the DELETE; the
    # record mounts list (RGTFS_ARCHIVE.json) only after it
    dels = w.api.deletes()
    assert len(dels) == 1, dels
    objs = {o["key"]: o["last_modified"].timestamp() for o in s3.list(BUCKET, pre)}
    assert pre + "RGTFS_PENDING.json" in objs, sorted(objs)
    before = [t for k, t in objs.items() if not k.endswith("RGTFS_ARCHIVE.json")]
    assert max(before) <= dels[0]["wall"] + 1, (objs, dels[0])
    assert objs[pre + "RGTFS_ARCHIVE.json"] >= dels[0]["wall"] - 1, (objs, dels[0])


@pytest.mark.deadline(300)
def test_failed_push_refuses_the_teardown(world, s3, tmp_path, hygiene):
    """The bucket answers 500 to every upload: the teardown refuses, the
    instance is not destroyed, and no archive is listed in the bucket."""
    hygiene.allow(r"archive_to \[cloud:ckpt\]")
    px = FaultProxy(s3.port).start()
    try:
        w = world(mount=False, extra_vastai={"destroy_timeout": 8, "archive_to": "ckpt"},
                  extra_sections={"[cloud:ckpt]": cloud_kv(s3, tmp_path, px.endpoint)})
        px.fail("500", times=None, method="PUT")
        px.fail("500", times=None, method="POST")
        w.mount.start()
        iid = str(w.ids[0])
        wait_until(lambda: iid in ls(os.path.join(w.mnt, "vastai")), 10, msg="listed")
        err = op_errno("rmdir", w.idir(0), timeout=180)
        assert err != "OK", err
        rep = util.read_text(w.f(0, "teardown"))
        assert rep.startswith("refused:") and "archive_to" in rep, rep
        assert w.api.deletes() == []
        assert not [k for k in s3.keys(BUCKET, "archive/") if k.endswith("RGTFS_ARCHIVE.json")]
        assert iid in ls(os.path.join(w.mnt, "vastai"))
    finally:
        px.stop()


@pytest.mark.deadline(300)
def test_archive_of_an_instance_whose_destroy_failed_is_listed_nowhere(
        world, s3, tmp_path, rgtfs_bin, mounts, hygiene):
    """The push succeeds, then the DELETE fails: the instance lives, so no
    mount (the pushing one or a teammate's) lists it under archive/."""
    hygiene.allow(r"HTTP 500|destroy")
    w = world(extra_vastai={"destroy_timeout": 8, "archive_to": "ckpt"},
              extra_sections={"[cloud:ckpt]": cloud_kv(s3, tmp_path)})
    iid = str(w.ids[0])
    w.api.fail(status=500, method="DELETE")
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err != "OK", err
    assert iid in ls(os.path.join(w.mnt, "vastai"))
    pre = "archive/vastai/%s/" % iid
    keys = s3.keys(BUCKET, pre)
    assert pre + "RGTFS_PENDING.json" in keys and pre + "RGTFS_ARCHIVE.json" not in keys, keys
    assert iid not in util.run(["ls", "-A", os.path.join(w.mnt, "archive", "vastai")]).text
    m = second_mount(rgtfs_bin, tmp_path, s3)
    mounts.append(m)
    assert iid not in util.run(["ls", "-A", "-R", os.path.join(m.mnt, "archive")]).text


@pytest.mark.deadline(300)
def test_remote_archive_blocks_obey_cache_size(world, s3, tmp_path, probe, rgtfs_bin,
                                               mounts, store_tool):
    """A teammate's archive read from the bucket: the bucket keeps the bytes,
    so the reader's cache_size bounds them (they are not pinned)."""
    from test_eviction import cached_blocks
    w, want, _ = torn_down(world, s3, tmp_path, push=False)
    iid = str(w.ids[0])
    rc, out, err = push(probe, w, str(PART))
    assert rc == 0, (rc, out, err)
    workdir = str(tmp_path / "reader")
    os.makedirs(workdir, exist_ok=True)
    conf = write_cloud_only(os.path.join(workdir, "rgtfs.ini"), cloud_kv(s3, tmp_path))
    m = Mount(rgtfs_bin, workdir, conftest._rgtfs_env(workdir, None), conf,
              extra_args=["-o", "cache_size=%d" % (4 * MIB)])
    m.start()
    mounts.append(m)
    a = os.path.join(m.mnt, "archive", "vastai", iid, "checkpoints")
    assert tree_sums(a) == want
    wait_until(lambda: cached_blocks(store_tool, m.cache) * MIB <= 8 * MIB, 30,
               msg="evicted down to the bound")


@pytest.mark.deadline(120)
def test_dot_names_from_a_bucket_never_reach_archive(s3, tmp_path, rgtfs_bin, mounts):
    """A bucket writer names a platform '..' (archive/%2E%2E/x/...): it is
    not listed under archive/."""
    rec = {"platform": "..", "id": "x", "root": "/r", "status_msg": None,
           "info": None, "ssh": None, "report": None, "manifest": None,
           "verified": None, "log": None, "log_text": None, "files": [], "dirs": []}
    s3.put(BUCKET, "archive/%2E%2E/x/RGTFS_ARCHIVE.json", json.dumps(rec).encode())
    m = second_mount(rgtfs_bin, tmp_path, s3)
    mounts.append(m)
    r = util.run(["ls", "-a", os.path.join(m.mnt, "archive")])
    assert r.rc == 0 and r.text.split() == [".", ".."], r.text
