"""Every cached block carries a CRC32C, checked on every read from the cache
(issue 11, "The archive is the only copy: keep it honest").

One byte is flipped inside data.mdb with rgtfs unmounted (the way a bit goes
bad on disk; LMDB checks its pages' structure, not the bytes of values), then
the mount is started again:

- a live instance's file: the bad block is fetched again from the box and the
  read returns the box's bytes; the log (and MOUNT/.rgtfs/log) names the block;
- an archived file (after a real rmdir teardown; the box is gone): the read
  fails with EIO, sha256sum never prints a digest, the log names the block,
  and rgtfs-store verify reports FAIL "block N fails its checksum".
"""

import hashlib
import os
import re
import sys

import pytest

import util
from util import read_text
from util import MIB, BASE_MTIME, PY, run, wait_until

MARK = b"rgtfs-block-crc-mark-3c9d51e0a7"        # unique in the whole cache
CRC_LINE = r"cached block 1 of \S*step 10\.bin fails its checksum"

# Reads a file through a fresh page cache (the kernel may keep pages of an
# unchanged file), so that the read reaches rgtfs.
_REREAD = r'''
import errno, hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
h = hashlib.sha256()
try:
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        h.update(b)
    print("OK", h.hexdigest())
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
'''


def reread(path):
    r = run([PY, "-c", _REREAD, path], timeout=60)
    assert r.rc == 0, r
    return r.text.split()


def marked_box(w, size=3 * MIB):
    """checkpoints/run1/step 10.bin on box 0, MARK inside its block 1."""
    data = bytearray(os.urandom(size))
    data[MIB + 100:MIB + 100 + len(MARK)] = MARK
    path = w.box_ck(0, "run1", "step 10.bin")
    util.write_file(path, bytes(data), mtime=BASE_MTIME + 1)
    return bytes(data)


def flip_marked_byte(cache):
    """Flip one bit of MARK in data.mdb (rgtfs unmounted); how many copies."""
    return util.flip_in_cache(cache, MARK)


def start_listed(w):
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in os.listdir(os.path.join(w.mnt, "vastai")), 10,
               msg="instance listed")


def rgtfs_log(w):
    return util.read_text(os.path.join(w.mnt, ".rgtfs", "log"))


@pytest.mark.deadline(120)
def test_a_corrupted_block_of_a_live_file_is_fetched_again(world, hygiene):
    hygiene.allow(CRC_LINE + "; fetching it again")
    w = world(populate=False, mount=False)
    want = marked_box(w)
    sha = hashlib.sha256(want).hexdigest()
    start_listed(w)
    path = w.ck(0, "run1", "step 10.bin")
    assert util.cat(path) == want                     # cached now
    assert w.mount.unmount() == 0
    assert flip_marked_byte(w.mount.cache) >= 1, "the marked block is not in data.mdb"

    start_listed(w)
    # the corrupted block is not served: it is fetched from the box again
    assert reread(path) == ["OK", sha]
    log = w.mount.read_log()
    assert re.search(CRC_LINE + "; fetching it again", log), log[-3000:]
    # (once, or twice when read-ahead and the reader met it together)
    seen = len(re.findall(CRC_LINE, log))
    assert re.search(CRC_LINE, rgtfs_log(w))
    # the repaired block is in the cache: warm again, and no new complaint
    assert reread(path) == ["OK", sha]
    assert len(re.findall(CRC_LINE, w.mount.read_log())) == seen
    assert w.mount.unmount() == 0
    # ...and survives a remount with the box gone
    w.boxes[0].kill()
    start_listed(w)
    assert reread(path) == ["OK", sha]
    assert len(re.findall(CRC_LINE, w.mount.read_log())) == seen


def store(tool, cache, *args, timeout=120):
    return run([tool, "-c", cache] + list(args), timeout=timeout)


@pytest.mark.deadline(240)
def test_a_corrupted_block_of_an_archived_file_reads_eio(world, hygiene, store_tool):
    hygiene.allow(CRC_LINE + "; no remote has it")
    w = world(populate=False, mount=False, extra_vastai={"destroy_timeout": 8})
    want = marked_box(w)
    other = util.write_file(w.box_ck(0, "e0.bin"), os.urandom(2 * MIB + 5),
                            mtime=BASE_MTIME)
    with open(other, "rb") as f:
        other_sha = hashlib.sha256(f.read()).hexdigest()
    start_listed(w)
    err = util.op_errno("rmdir", w.idir(0), timeout=120)
    assert err == "OK", "rmdir -> %s\n%s" % (err, run(["cat", w.f(0, "teardown")]).text)
    arch = os.path.join(w.mnt, "archive", "vastai", str(w.ids[0]))
    wait_until(lambda: run(["ls", arch], timeout=30).rc == 0, 10, msg="archived")
    path = os.path.join(arch, "checkpoints", "run1", "step 10.bin")
    assert reread(path) == ["OK", hashlib.sha256(want).hexdigest()]
    assert w.mount.unmount() == 0
    w.boxes[0].kill()                                  # no box to fetch from
    assert flip_marked_byte(w.mount.cache) >= 1, "the marked block is not in data.mdb"

    w.mount.start()
    wait_until(lambda: run(["ls", arch], timeout=30).rc == 0, 10, msg="archive listed")
    assert read_text(os.path.join(arch, ".error")) == ""     # nothing read yet
    # never the wrong bytes: EIO, and no digest at all
    assert reread(path) == ["EIO"]
    # the archive's .error says which file and block, and why
    err = read_text(os.path.join(arch, ".error"))
    assert re.fullmatch(r"read /workspace/checkpoints/run1/step 10\.bin: cached block 1 fails its checksum "
                        r"\(CRC32C\) and nothing else has it: reads of it fail \(EIO\)\n",
                        err), err
    r = run(["cat", path], timeout=60)
    assert r.rc != 0 and b"Input/output error" in r.err, r
    r = run(["sha256sum", path], timeout=60)
    assert r.rc != 0 and r.out == b"", r
    # the block before the bad one still reads (the damage is one block)
    with open(path, "rb") as f:
        assert f.read(MIB) == want[:MIB]
    # the archive's other file is whole
    assert reread(os.path.join(arch, "checkpoints", "e0.bin")) == ["OK", other_sha]
    log = w.mount.read_log()
    assert re.search(CRC_LINE + "; no remote has it: the read fails", log), log[-3000:]
    assert re.search(CRC_LINE, rgtfs_log(w))
    assert w.mount.unmount() == 0

    # rgtfs-store: verify names the block, export refuses the file
    name = "vastai/%d" % w.ids[0]
    r = store(store_tool, w.mount.cache, "verify", name)
    assert r.rc == 1, r
    lines = r.text.splitlines()
    bad = [ln for ln in lines if not ln.startswith("OK ")]
    assert len(bad) == 1 and bad[0].startswith(
        "FAIL    %s/run1/step 10.bin: block 1 fails its checksum" % name), lines
    assert any(ln.startswith("OK ") and ln.endswith("/e0.bin") for ln in lines), lines
    out = w.mount.workdir + "/exported"
    r = store(store_tool, w.mount.cache, "export", name, out)
    assert r.rc == 1 and b"block 1 fails its checksum" in r.err, r
    assert not os.path.exists(os.path.join(out, "run1", "step 10.bin"))
    assert not os.path.exists(os.path.join(out, "PULL_MANIFEST.json"))
