"""cache_size (SPEC "The cache"): evictable data stays under the bound, least
recently used files first; archived data is never evicted, whatever the
bound, and reads back with the box and the API gone."""
import os
import re

import util
from util import MIB, BASE_MTIME, run, wait_until

CACHE_SIZE = 8 * MIB
FILE = 6 * MIB


def cached_blocks(store_tool, cache):
    r = run([store_tool, "-c", cache, "stat"], timeout=30)
    assert r.rc == 0, r
    return int(re.search(r"^blocks (\d+)$", r.text, re.M).group(1))


def world_with_files(world, n):
    w = world(populate=False, mount=False, extra_vastai={"destroy_timeout": 8})
    shas = {}
    for i in range(n):
        p = w.box_ck(0, "e%d.bin" % i)
        shas[i] = util.write_big_file(p, FILE, seed=40 + i, mtime=BASE_MTIME + i)
    w.mount.extra_args = list(w.mount.extra_args) + ["-o", "cache_size=%d" % CACHE_SIZE]
    w.mount.start()
    wait_until(lambda: str(w.ids[0]) in os.listdir(os.path.join(w.mnt, "vastai")), 10,
               msg="instance listed")
    return w, shas


def test_evictable_data_stays_under_cache_size(world, store_tool):
    w, shas = world_with_files(world, 3)
    cache = w.mount.cache
    for i in range(3):
        assert util.sha256sum(w.ck(0, "e%d.bin" % i)) == shas[i]
    # 18 MiB read through an 8 MiB bound: the oldest files went
    wait_until(lambda: cached_blocks(store_tool, cache) * MIB <= CACHE_SIZE, 10,
               msg="cache back under cache_size")
    # the newest file is still cached: it reads with the box gone
    w.boxes[0].kill()
    assert util.sha256sum(w.ck(0, "e2.bin")) == shas[2]


def test_archived_data_is_never_evicted(world, store_tool):
    w, shas = world_with_files(world, 3)
    err = util.op_errno("rmdir", w.idir(0), timeout=120)
    assert err == "OK", run(["cat", w.f(0, "teardown")]).text
    a = os.path.join(w.mnt, "archive", "vastai", str(w.ids[0]), "checkpoints")
    # the archive holds 18 MiB, over cache_size: all of it stays
    assert cached_blocks(store_tool, w.mount.cache) * MIB >= 3 * FILE
    # and reading other data afterwards does not push it out
    w.boxes[0].kill()
    w.api.stop()
    for i in range(3):
        assert util.sha256sum(os.path.join(a, "e%d.bin" % i)) == shas[i]
    assert cached_blocks(store_tool, w.mount.cache) * MIB >= 3 * FILE
