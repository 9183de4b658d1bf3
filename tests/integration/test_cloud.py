"""MOUNT/cloud/NAME: an S3-compatible bucket (a real SigV4-verifying server on
loopback, s3server.py) as a read-only tree, fetched lazily into the same
LMDB cache, blocks keyed by the object's ETag.

Listings and sizes match the bucket (more than 1000 keys in one directory,
so continuation tokens are followed), bytes match through cat/cp/rsync, what
was read stays readable when the server is gone, a wrong secret is a clear
error in MOUNT/cloud/.error with the mount still up, throttling (503
SlowDown) is retried with a bound, hostile keys never become names in the
tree, and a rewritten object never mixes old and new bytes.
"""

import hashlib
import os
import random
import time

import pytest

import conftest
import util
from s3fault import FaultProxy, HOSTILE_KEYS, entity_bomb_listing, hostile_listing
from s3server import installed, start_s3
from util import Mount, ls, op_errno, read_text, run, wait_until

pytestmark = pytest.mark.skipif(not installed(), reason="s3rver not installed "
                                "(tools/install-s3rver.sh)")

BUCKET = "ckpts"
LIST_MAX_AGE = 1      # fs/tree.h: seconds a listing is reused


def write_cloud_config(path, endpoint, extra=None, sections=()):
    lines = ["; written by test_cloud.py", "[rgtfs]", "connect_timeout = 3",
             "io_timeout = 5", "",
             "[cloud:ckpt]", "endpoint = %s" % endpoint, "region = us-east-1",
             "bucket = %s" % BUCKET]
    for k, v in (extra or {}).items():
        lines.append("%s = %s" % (k, v))
    for s in sections:
        lines += [""] + list(s)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture
def cloud(tmp_path, rgtfs_bin, hygiene):
    """make(endpoint=None, env=None, extra=None) -> Mount of a config with one
    [cloud:ckpt] section on the test's S3 server (or @endpoint)."""
    made = []
    with start_s3(tmp_path) as s3:
        s3.make_bucket(BUCKET)

        def make(endpoint=None, env=None, extra=None, sections=(), start=True):
            workdir = str(tmp_path / ("cloud%d" % len(made)))
            os.makedirs(workdir, exist_ok=True)
            conf = write_cloud_config(os.path.join(workdir, "rgtfs.ini"),
                                      endpoint or s3.endpoint, extra, sections)
            e = conftest._rgtfs_env(workdir, None)
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                      "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE"):
                e.pop(k, None)
            e.update(s3.env() if env is None else env)
            m = Mount(rgtfs_bin, workdir, e, conf)
            made.append(m)
            if start:
                m.start()
            return m
        make.s3 = s3
        yield make
        util.kill_children()
        problems = []
        for m in made:
            m.cleanup()
        for m in made:
            problems += ["%s: %s" % (m.mnt, p) for p in m.problems]
            problems += hygiene.check(m.read_log())
        if problems:
            pytest.fail("mount teardown:\n  " + "\n  ".join(problems), pytrace=False)


def put_sample(s3, seed=1):
    """A checkpoint tree: {key: bytes}."""
    rnd = random.Random(seed)
    objs = {
        "vastai/123/run-1/model.pt": rnd.randbytes(3 * 1024 * 1024 + 12345),
        "vastai/123/run-1/metrics.json": b'{"loss": 0.25}\n',
        "vastai/123/run-2/optimizer.bin": rnd.randbytes(1024 * 1024),
        "notes.txt": b"hello bucket\n",
        "empty.bin": b"",
    }
    for k, v in objs.items():
        s3.put(BUCKET, k, v)
    return objs


def test_bucket_tree_lists_and_reads(cloud, tmp_path):
    m = cloud()
    s3 = cloud.s3
    objs = put_sample(s3)
    many = {"many/f%04d.txt" % i: b"%d\n" % i for i in range(1100)}
    for k, v in many.items():
        s3.put(BUCKET, k, v)
    root = m.p("cloud", "ckpt")
    assert ls(m.p("cloud")) == {".error", "ckpt"}
    assert ls(root) == {"vastai", "notes.txt", "empty.bin", "many"}
    assert ls(os.path.join(root, "many")) == {k.split("/")[1] for k in many}
    for k, v in objs.items():
        p = os.path.join(root, *k.split("/"))
        st = os.stat(p)
        assert st.st_size == len(v), (k, st.st_size)
        assert st.st_mode & 0o777 == 0o444
        assert util.sha256sum(p) == hashlib.sha256(v).hexdigest(), k
    # cp -a and rsync -a of the whole tree: byte for byte what was put
    for tool in (["cp", "-a", os.path.join(root, "vastai"), str(tmp_path / "cp")],
                 ["rsync", "-a", os.path.join(root, "vastai") + "/", str(tmp_path / "rs")]):
        r = run(tool, timeout=120)
        assert r.rc == 0, r
    for d in ("cp", "rs"):
        for k, v in objs.items():
            if not k.startswith("vastai/"):
                continue
            with open(os.path.join(str(tmp_path / d), *k.split("/")[1:]), "rb") as f:
                assert f.read() == v, (d, k)
    assert read_text(m.p("cloud", ".error")) == ""
    # read-only: nothing can change the bucket through the mount
    assert op_errno("unlink", os.path.join(root, "notes.txt")) in ("EROFS", "EPERM", "EACCES")
    assert op_errno("rmdir", os.path.join(root, "many")) in ("EROFS", "EPERM", "EACCES")
    assert s3.head(BUCKET, "notes.txt") is not None


def test_read_bytes_stay_readable_without_the_server(cloud):
    m = cloud()
    s3 = cloud.s3
    objs = put_sample(s3)
    p = m.p("cloud", "ckpt", "vastai", "123", "run-1", "model.pt")
    want = hashlib.sha256(objs["vastai/123/run-1/model.pt"]).hexdigest()
    assert util.sha256sum(p) == want
    s3.stop()
    t0 = time.monotonic()
    assert util.sha256sum(p) == want
    assert time.monotonic() - t0 < 30
    assert "model.pt" in ls(os.path.dirname(p))


def test_wrong_secret_is_a_clear_error(cloud):
    s3 = cloud.s3
    put_sample(s3)
    env = dict(s3.env(), AWS_SECRET_ACCESS_KEY="not-the-secret")
    m = cloud(env=env)
    root = m.p("cloud", "ckpt")
    err = op_errno("listdir", root, timeout=60)
    assert err in ("EACCES", "EPERM", "EIO"), err
    e = read_text(m.p("cloud", ".error"))
    assert "ckpt:" in e and ("denied" in e.lower() or "403" in e), e
    assert "not-the-secret" not in e and "not-the-secret" not in m.read_log()
    # the mount is fine otherwise
    assert {"cloud", "archive"} <= ls(m.mnt)


def test_missing_credentials_say_which(cloud, hygiene):
    hygiene.allow(r"no S3 credentials")
    m = cloud(env={})
    assert op_errno("listdir", m.p("cloud", "ckpt"), timeout=60) != "OK"
    e = read_text(m.p("cloud", ".error"))
    assert "AWS_ACCESS_KEY_ID" in e or "credentials" in e.lower(), e


def test_throttling_is_retried_then_bounded(cloud):
    s3 = cloud.s3
    objs = put_sample(s3)
    with FaultProxy(s3.port) as px:
        m = cloud(endpoint=px.endpoint)
        p = m.p("cloud", "ckpt", "notes.txt")
        assert ls(m.p("cloud", "ckpt"))
        # two SlowDowns on the object's GET, then it answers: retried
        px.fail("slowdown", times=2, method="GET", path="/%s/notes.txt" % BUCKET)
        assert read_text(p) == objs["notes.txt"].decode()
        assert px.count(method="GET", path="/%s/notes.txt" % BUCKET) >= 3
        # throttled for good: a bounded failure, not a hang
        q = m.p("cloud", "ckpt", "vastai", "123", "run-1", "metrics.json")
        os.stat(q)
        px.fail("slowdown", times=None, method="GET",
                path="/%s/vastai/123/run-1/metrics.json" % BUCKET)
        t0 = time.monotonic()
        err = op_errno("read", q, timeout=120)
        took = time.monotonic() - t0
        assert err in ("EIO", "EAGAIN", "ETIMEDOUT"), err
        assert took < 90, took
        n = px.count(method="GET", path="/%s/vastai/123/run-1/metrics.json" % BUCKET)
        assert 2 <= n <= 40, n
        px.clear_faults()
        assert read_text(q) == objs["vastai/123/run-1/metrics.json"].decode()


def _b(x):
    return x if isinstance(x, bytes) else x.encode()


def test_hostile_keys_never_become_names(cloud):
    s3 = cloud.s3
    for d in ("sub1", "sub2", "sub3"):
        s3.put(BUCKET, d + "/good.bin", b"ok")
    # a well-formed listing full of keys that are not names
    # (keys over S3's 1024-byte limit and invalid UTF-8 make the whole
    # document malformed: below)
    bad = [v for k, v in HOSTILE_KEYS.items()
           if k not in ("nul", "invalid_utf8", "long_path")]
    keys = [b"sub1/good.bin"] + [b"sub1/" + _b(k) for k in bad] + [b"elsewhere/x.bin"]
    with FaultProxy(s3.port) as px:
        m = cloud(endpoint=px.endpoint)
        root = m.p("cloud", "ckpt")
        assert {"sub1", "sub2", "sub3"} <= ls(root)
        px.fail("body", times=None, method="GET", path="/%s" % BUCKET,
                query={"list-type": None, "prefix": "sub1/"},
                body=hostile_listing(keys, bucket=BUCKET, prefix="sub1/"),
                content_type="application/xml")
        names = ls(os.path.join(root, "sub1"))
        assert names == {"good.bin"}, names
        e = read_text(m.p("cloud", ".error"))
        assert "ckpt:" in e, e
        # not well-formed (invalid UTF-8): the listing is refused whole
        px.fail("body", times=None, method="GET", path="/%s" % BUCKET,
                query={"list-type": None, "prefix": "sub2/"},
                body=hostile_listing([b"sub2/good.bin", b"sub2/bad-\xff\xfe"],
                                     bucket=BUCKET, prefix="sub2/"),
                content_type="application/xml")
        assert op_errno("listdir", os.path.join(root, "sub2")) == "EIO"
        px.clear_faults()
        px.fail("body", times=None, method="GET", path="/%s" % BUCKET,
                query={"list-type": None, "prefix": "sub2/"},
                body=hostile_listing([b"sub2/" + _b(HOSTILE_KEYS["long_path"])],
                                     bucket=BUCKET, prefix="sub2/"),
                content_type="application/xml")
        time.sleep(LIST_MAX_AGE + 0.2)   # the failed answer is not reused
        assert op_errno("listdir", os.path.join(root, "sub2")) == "EIO"
        # an entity bomb is refused outright
        px.fail("body", times=None, method="GET", path="/%s" % BUCKET,
                query={"list-type": None, "prefix": "sub3/"},
                body=entity_bomb_listing(BUCKET), content_type="application/xml")
        assert op_errno("listdir", os.path.join(root, "sub3")) == "EIO"
        e = read_text(m.p("cloud", ".error"))
        assert "ckpt:" in e, e
        # the mount is fine, and a clean listing reads again
        px.clear_faults()
        assert ls(os.path.join(root, "sub3")) == {"good.bin"}


def test_rewritten_object_never_mixes_versions(cloud):
    s3 = cloud.s3
    a = random.Random(5).randbytes(4 * 1024 * 1024)
    b = random.Random(6).randbytes(4 * 1024 * 1024)
    s3.put(BUCKET, "ckpt.bin", a)
    m = cloud()
    p = m.p("cloud", "ckpt", "ckpt.bin")
    with open(p, "rb") as f:
        first = f.read(1024 * 1024)
        assert first == a[:1024 * 1024]
        s3.put(BUCKET, "ckpt.bin", b)          # same size, new bytes, new ETag
        try:
            rest = f.read()
        except OSError:
            rest = None                          # refused: fine, never mixed
    if rest is not None:
        assert first + rest == a, "an open file mixed two versions"
    # a later open sees the new version whole (one opened while the listing
    # still names the old ETag is refused, EIO: never old and new bytes)
    def whole_new():
        r = util.run(["sha256sum", "--", p])
        assert r.rc == 0 or b"Input/output error" in r.err, r
        return r.rc == 0 and r.out.split()[0].decode() == hashlib.sha256(b).hexdigest()
    wait_until(whole_new, 10, msg="the rewritten object read whole")


def test_sequential_read_fetches_runs_of_blocks(cloud):
    """A sequential reader costs the server one ranged GET per run of
    blocks (up to 8 MiB), not one per MiB; the bytes are the object's."""
    s3 = cloud.s3
    data = random.Random(9).randbytes(24 * 1024 * 1024)
    s3.put(BUCKET, "seq.bin", data)
    with FaultProxy(s3.port) as px:
        m = cloud(endpoint=px.endpoint)
        p = m.p("cloud", "ckpt", "seq.bin")
        assert util.sha256sum(p) == hashlib.sha256(data).hexdigest()
        gets = [r for r in px.requests(method="GET", path="/%s/seq.bin" % BUCKET)
                if r.range]
        assert gets, px.log
        # 24 blocks; the first demand read may go alone, then runs of up to 8
        assert len(gets) <= 12, [r.range for r in gets]
