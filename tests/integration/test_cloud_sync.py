"""An instance whose section says `cloud = NAME`: its checkpoints/ reads from
the box while the box runs, and from the bucket copy under the section's
prefix ({platform}/{id}/) when the box is stopped or gone, so a stopped
instance's synced checkpoints stay readable. Against a real vast.ai-shaped
stand-in, a real sshd box and a real SigV4-verifying S3 server.
"""

import hashlib
import os

import pytest

import util
from s3server import installed, start_s3
from util import ls, op_errno, read_text, wait_until

pytestmark = pytest.mark.skipif(not installed(), reason="s3rver not installed "
                                "(tools/install-s3rver.sh)")

BUCKET = "ckpts"


@pytest.fixture
def s3(tmp_path):
    with start_s3(tmp_path) as s:
        s.make_bucket(BUCKET)
        yield s


def cloud_section(s3, tmp_path, **more):
    """The [cloud:ckpt] section, its keys in 0600 files (no environment)."""
    ak, sk = tmp_path / "ak", tmp_path / "sk"
    ak.write_text(s3.access_key + "\n")
    sk.write_text(s3.secret_key + "\n")
    os.chmod(ak, 0o600)
    os.chmod(sk, 0o600)
    kv = {"endpoint": s3.endpoint, "region": "us-east-1", "bucket": BUCKET,
          "access_key_file": str(ak), "secret_key_file": str(sk)}
    kv.update(more)
    return {"[cloud:ckpt]": kv}


def sync_box_to_bucket(s3, box, iid):
    """What the instance's own sync job does: its checkpoint_dir to
    vastai/<id>/ in the bucket. Returns {relpath: sha256}."""
    root = os.path.join(box.workspace, "checkpoints")
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            with open(p, "rb") as f:
                data = f.read()
            s3.put(BUCKET, "vastai/%s/%s" % (iid, rel), data)
            out[rel] = hashlib.sha256(data).hexdigest()
    return out


def test_stopped_instance_reads_from_the_bucket(world, s3, tmp_path):
    w = world(extra_vastai={"cloud": "ckpt"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    want = sync_box_to_bucket(s3, w.boxes[0], iid)
    assert len(want) >= 3, want
    rels = sorted(want)
    # running: from the box, as always
    first = rels[0]
    assert util.sha256sum(w.ck(0, *first.split("/"))) == want[first]
    # stopped, and the box is not reachable any more
    w.api.set_state(iid, "stopped")
    w.boxes[0].stop()
    wait_until(lambda: w.status() == "stopped\n", 10, msg="seen stopped")
    # every file reads, the ones never read before from the bucket
    got = {rel: util.sha256sum(w.ck(0, *rel.split("/"))) for rel in rels}
    assert got == want
    # sizes are the bucket's, the listing the bucket's
    for rel in rels:
        with open(os.path.join(w.boxes[0].workspace, "checkpoints", rel), "rb") as f:
            assert os.stat(w.ck(0, *rel.split("/"))).st_size == len(f.read())
    assert set(rels) == {os.path.relpath(os.path.join(d, n), w.ck(0))
                         for d, _, fs in os.walk(w.ck(0)) for n in fs}
    # and what only the bucket has (synced after the box went away) shows:
    # the listing and the bytes are the bucket's
    s3.put(BUCKET, "vastai/%s/late/only-in-bucket.bin" % iid, b"synced late\n")
    wait_until(lambda: "late" in ls(w.ck(0)), 10, msg="bucket listing")
    assert util.cat(w.ck(0, "late", "only-in-bucket.bin")) == b"synced late\n"
    # the bucket is read-only here too
    assert op_errno("unlink", w.ck(0, *rels[-1].split("/"))) in ("EROFS", "EPERM", "EACCES")


def test_running_box_wins_over_the_bucket(world, s3, tmp_path):
    """A box that runs is the truth: a stale bucket copy never shadows it."""
    w = world(extra_vastai={"cloud": "ckpt"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    want = sync_box_to_bucket(s3, w.boxes[0], iid)
    rel = sorted(want)[0]
    s3.put(BUCKET, "vastai/%s/%s" % (iid, rel), b"an old copy in the bucket\n")
    with open(os.path.join(w.boxes[0].workspace, "checkpoints", rel), "rb") as f:
        box_bytes = f.read()
    assert util.cat(w.ck(0, *rel.split("/"))) == box_bytes


def test_gone_instance_reads_from_the_bucket(world, s3, tmp_path):
    w = world(extra_vastai={"cloud": "ckpt"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    want = sync_box_to_bucket(s3, w.boxes[0], iid)
    # read one file while it runs, so the cache knows the instance
    rels = sorted(want)
    assert util.sha256sum(w.ck(0, *rels[0].split("/"))) == want[rels[0]]
    w.boxes[0].stop()
    w.api.remove(iid)
    wait_until(lambda: w.status() == "gone\n", 10, msg="seen gone")
    got = {rel: util.sha256sum(w.ck(0, *rel.split("/"))) for rel in rels}
    assert got == want


# ---- trust_cloud: a box that is down, verified against its bucket copy ----------------

def _archive(w, i=0):
    return os.path.join(w.mnt, "archive", "vastai", str(w.ids[i]))


def _down(w, i=0):
    w.api.set_state(w.ids[i], "stopped")
    w.boxes[i].stop()
    wait_until(lambda: w.status(i) == "stopped\n", 10, msg="seen stopped")


def test_trust_cloud_teardown_of_a_stopped_instance(world, s3, tmp_path):
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    want = sync_box_to_bucket(s3, w.boxes[0], iid)
    _down(w)
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err == "OK", "rmdir -> %s; teardown:\n%s" % (
        err, util.run(["cat", w.f(0, "teardown")]).text)
    dels = w.api.deletes()
    assert len(dels) == 1 and str(iid) in dels[0]["path"], dels
    wait_until(lambda: os.path.isdir(_archive(w)), 10, msg="archived")
    a = _archive(w)
    rep = read_text(os.path.join(a, "teardown"))
    assert "bucket copy" in rep and "could not be checked" in rep, rep
    got = {rel: util.sha256sum(os.path.join(a, "checkpoints", *rel.split("/")))
           for rel in want}
    assert got == want
    assert "PULL_MANIFEST.json" in ls(a)
    # the archive is served from the cache alone, the bucket gone too
    s3.stop()
    rel = sorted(want)[-1]
    assert util.sha256sum(os.path.join(a, "checkpoints", *rel.split("/"))) == want[rel]


def test_trust_cloud_refuses_a_corrupt_bucket_copy(world, s3, tmp_path):
    """One object's bytes changed in the bucket while its ETag stayed: the
    MD5 of what was pulled does not match, nothing is destroyed."""
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    want = sync_box_to_bucket(s3, w.boxes[0], iid)
    rel = max(want, key=lambda r: os.path.getsize(
        os.path.join(w.boxes[0].workspace, "checkpoints", r)))
    s3.corrupt_on_disk(BUCKET, "vastai/%s/%s" % (iid, rel))
    _down(w)
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err == "EIO", err
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:") and "MD5" in rep, rep
    assert w.api.deletes() == []
    assert w.api.get(iid) is not None
    assert not os.path.isdir(_archive(w))


def test_without_trust_cloud_a_stopped_box_is_refused(world, s3, tmp_path):
    w = world(extra_vastai={"cloud": "ckpt"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    sync_box_to_bucket(s3, w.boxes[0], iid)
    _down(w)
    err = op_errno("rmdir", w.idir(0), timeout=120)
    assert err == "EHOSTUNREACH", err
    assert w.api.deletes() == []
    assert "cannot be reached" in read_text(w.f(0, "teardown"))


def test_trust_cloud_refuses_an_empty_bucket_copy(world, s3, tmp_path):
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    _down(w)
    err = op_errno("rmdir", w.idir(0), timeout=120)
    assert err in ("ENOENT", "ENODATA"), err
    assert w.api.deletes() == []
    assert "bucket" in read_text(w.f(0, "teardown"))


# ---- review 8: the bucket copy stands in only for a box that is really down -------

@pytest.mark.parametrize("state", ["loading", "unknown"])
def test_box_neither_running_nor_down_is_never_taken_on_its_copy(world, s3, tmp_path, state):
    """The platform says 'loading' (provisioning) or a word rgtfs does not
    know while sshd answers and the box holds a checkpoint the bucket never
    got: no destroy on the strength of the bucket copy."""
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    sync_box_to_bucket(s3, w.boxes[0], iid)
    util.write_file(w.box_ck(0, "only-on-box.pt"), b"newest, never synced\n")
    word = w.api.set_state(iid, state)
    wait_until(lambda: w.status() == word + "\n", 10, msg="seen " + word)
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err != "OK", err
    assert w.api.deletes() == []
    assert read_text(w.f(0, "teardown")).startswith("refused:")


def test_stopped_box_that_still_answers_is_verified_itself(world, s3, tmp_path):
    """The platform says stopped, but the box answers: its bucket copy does
    not stand in for it."""
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    sync_box_to_bucket(s3, w.boxes[0], iid)
    util.write_file(w.box_ck(0, "only-on-box.pt"), b"newest, never synced\n")
    w.api.set_state(iid, "stopped")
    wait_until(lambda: w.status() == "stopped\n", 10, msg="seen stopped")
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err != "OK", err
    assert w.api.deletes() == []
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:") and "box answers" in rep, rep


def test_box_started_during_the_pull_is_not_destroyed(world, s3, tmp_path, proxies):
    """rmdir of a stopped instance; while its bucket copy is pulled (slowly,
    through a 3 MB/s proxy) the user starts it and training writes on: the
    re-list before the destroy call sees it is no longer down."""
    p = proxies(s3.port, rate=3 << 20)
    sec = cloud_section(s3, tmp_path)
    sec["[cloud:ckpt]"]["endpoint"] = "http://127.0.0.1:%d" % p.port
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"}, extra_sections=sec)
    iid = w.ids[0]
    sync_box_to_bucket(s3, w.boxes[0], iid)
    s3.put(BUCKET, "vastai/%s/big.bin" % iid, os.urandom(12 << 20))
    _down(w)
    t0 = p.bytes
    child = util.spawn_op("rmdir", w.idir(0))
    wait_until(lambda: p.bytes >= t0 + (3 << 20) or child.poll() is not None, 60,
               msg="pull under way")
    util.write_file(w.box_ck(0, "written-after-start.pt"), b"new\n")
    w.boxes[0].start()
    w.api.set_state(iid, "running")
    name, _ = util.op_result(child, 180)
    assert name != "OK", name
    assert w.api.deletes() == []
    rep = read_text(w.f(0, "teardown"))
    assert rep.startswith("refused:") and "no longer stopped" in rep, rep


def test_box_seen_with_a_file_its_copy_lacks_is_not_destroyed(world, s3, tmp_path):
    """rgtfs listed ckpt-new.pt on the box while it ran; the sync never
    uploaded it; the box stops: the copy is behind the box, refused."""
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    sync_box_to_bucket(s3, w.boxes[0], iid)
    util.write_file(w.box_ck(0, "ckpt-new.pt"), b"x" * 4096)
    assert "ckpt-new.pt" in ls(w.ck(0))          # rgtfs saw it
    _down(w)
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err == "EBUSY", err
    assert w.api.deletes() == []
    rep = read_text(w.f(0, "teardown"))
    assert "ckpt-new.pt" in rep and "lacks" in rep, rep


def test_keys_that_are_not_names_refuse_a_trust_cloud_teardown(world, s3, tmp_path):
    """An object named like a directory shadows keys below it, and a key
    with a tab is not a name: the roster would miss them, so it refuses."""
    w = world(extra_vastai={"cloud": "ckpt", "trust_cloud": "yes"},
              extra_sections=cloud_section(s3, tmp_path))
    iid = w.ids[0]
    sync_box_to_bucket(s3, w.boxes[0], iid)
    s3.put(BUCKET, "vastai/%s/run" % iid, b"a file named like a dir\n")
    s3.put(BUCKET, "vastai/%s/run/model.bin" % iid, b"weights" * 1000)
    _down(w)
    err = op_errno("rmdir", w.idir(0), timeout=180)
    assert err == "EINVAL", err
    assert w.api.deletes() == []
    assert "cannot map" in read_text(w.f(0, "teardown"))


def test_bucket_tree_reads_are_evictable(world, s3, tmp_path, store_tool):
    """Blocks read through MOUNT/cloud/NAME obey cache_size."""
    from test_eviction import cached_blocks
    mib = 1 << 20
    w = world(mount=False, extra_sections=cloud_section(s3, tmp_path))
    for i in range(3):
        s3.put(BUCKET, "data/e%d.bin" % i, os.urandom(6 * mib))
    w.mount.extra_args = list(w.mount.extra_args) + ["-o", "cache_size=%d" % (8 * mib)]
    w.mount.start()
    for i in range(3):
        util.sha256sum(os.path.join(w.mnt, "cloud", "ckpt", "data", "e%d.bin" % i))
    wait_until(lambda: cached_blocks(store_tool, w.mount.cache) * mib <= 12 * mib, 30,
               msg="evicted down to the bound")
