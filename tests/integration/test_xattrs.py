"""Extended attributes (xattr.h): user.rgtfs.sha256, user.rgtfs.cached and
user.rgtfs.source, read with getfattr, and kept by cp -a and rsync -X.

Each value is what rgtfs holds, checked against the truth outside the mount:
the box's port and path, the bytes actually read, the SHA-256 of the bytes.
"""

import hashlib
import os

import util
from util import ok, run, cat, op_errno

from test_teardown import torch_world, rmdir, archive

GETFATTR = "getfattr"


def xattrs(path):
    """{name: value} of the user.rgtfs.* attributes, via getfattr."""
    r = run([GETFATTR, "--absolute-names", "-d", "-m", "^user\\.rgtfs\\.", "-e", "text", path],
            timeout=30)
    assert r.rc == 0, r
    out = {}
    for line in r.text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            assert v.startswith('"') and v.endswith('"'), line
            out[k] = v[1:-1]
    return out


def getfattr_one(path, name):
    return run([GETFATTR, "--absolute-names", "--only-values", "-n", name, path], timeout=30)


def test_a_checkpoint_says_where_it_comes_from_and_how_much_is_cached(world):
    w = world()
    f = w.ck(0, "run-001", "best.pth")
    box_path = w.box_ck(0, "run-001", "best.pth")
    size = os.path.getsize(box_path)
    assert size > 0

    x = xattrs(f)
    assert x.get("user.rgtfs.cached") == "0", x
    # the box the fake API lists, and the file's path on it
    rel = os.path.relpath(box_path, w.boxes[0].workspace)
    assert x.get("user.rgtfs.source") == "sftp sftp://127.0.0.1:%d /workspace/%s" % (
        w.boxes[0].port, rel), x
    # nothing says the box's digest of a live file: absent, not guessed
    assert "user.rgtfs.sha256" not in x
    r = getfattr_one(f, "user.rgtfs.sha256")
    assert r.rc != 0 and "No such attribute" in r.err.decode(), r
    r = getfattr_one(f, "user.other")
    assert r.rc != 0 and "No such attribute" in r.err.decode(), r

    data = cat(f)
    assert data == open(box_path, "rb").read()
    x = xattrs(f)
    assert x.get("user.rgtfs.cached") == str(size), x

    # read-only like every other change
    assert op_errno("setxattr", f) == "EROFS"


def test_cp_a_and_rsync_X_copy_the_tree_with_its_attributes(world, tmp_path):
    w = world()
    dst = str(tmp_path / "cp")
    ok(["cp", "-a", w.ck(0), dst], timeout=120)
    for dp, _, fns in os.walk(w.box_ck(0)):
        for n in fns:
            rel = os.path.relpath(os.path.join(dp, n), w.box_ck(0))
            copy = os.path.join(dst, rel)
            assert open(copy, "rb").read() == open(os.path.join(dp, n), "rb").read()
            x = xattrs(copy)
            assert x.get("user.rgtfs.source", "").startswith("sftp sftp://127.0.0.1:"), (rel, x)
    dst2 = str(tmp_path / "rsync")
    r = run(["rsync", "-aX", w.ck(0) + "/", dst2 + "/"], timeout=120)
    assert r.rc == 0, r
    assert util.local_snapshot(dst2).keys() == util.local_snapshot(w.box_ck(0)).keys()


def test_an_archived_file_carries_the_digest_its_teardown_verified(world):
    w = torch_world(world)
    want = {}
    for dp, _, fns in os.walk(w.box_ck(0)):
        for n in fns:
            p = os.path.join(dp, n)
            want[os.path.relpath(p, w.box_ck(0))] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert rmdir(w) == "OK", run(["cat", w.f(0, "teardown")]).text
    a = os.path.join(archive(w), "checkpoints")
    for rel, sha in sorted(want.items()):
        f = os.path.join(a, rel)
        x = xattrs(f)
        assert x.get("user.rgtfs.sha256") == sha, (rel, x)
        assert x.get("user.rgtfs.cached") == str(os.path.getsize(os.path.join(w.box_ck(0), rel)))
        # the box is gone: the cache alone holds the bytes
        assert x.get("user.rgtfs.source") == "cache", (rel, x)
        # and the digest is the bytes the mount serves
        assert hashlib.sha256(cat(f)).hexdigest() == sha
    # directories and virtual files carry nothing, and say so cleanly
    r = run([GETFATTR, "--absolute-names", "-d", "-m", "-", a], timeout=30)
    assert r.rc == 0 and "user.rgtfs" not in r.text, r
    r = run([GETFATTR, "--absolute-names", "-d", "-m", "-", os.path.join(archive(w), "status")],
            timeout=30)
    assert r.rc == 0 and "user.rgtfs" not in r.text, r
