"""Remote names and tree shapes: newlines, 255-byte names, bytes that are not
UTF-8, shell metacharacters, big directories, deep trees, and special files.
All list and read exactly as on the box; nothing hangs or escapes the tree."""

import os

import util
from util import ok, run, cat, snapshot, local_snapshot, tree_diff, listdir_raw

HOSTILE = [
    b"line1\nline2.pt",
    b"a" * 251 + b".bin",                          # 255 bytes
    "\u00e9".encode() * 127 + b"x",                 # 255 bytes of UTF-8
    b"\xff\xfe not utf-8 \x80.ckpt",
    b"with space and 'single' \"double\".json",
    b"-leading-dash",
    b".hidden",
    b"star*?[glob]{a,b}",
    b"back\\slash",
    b"tab\there",
    b"percent%s%n%d",
    b"$(touch pwned)`id`;|&",
    b"\xe2\x80\xae-rtl-override",
    b"x",
]


def _make_names(ck):
    root = os.path.join(os.fsencode(ck), b"names")
    os.makedirs(root, exist_ok=True)
    for i, n in enumerate(HOSTILE):
        util.write_file(os.path.join(root, n), util.pattern_bytes(1000 + 97 * i, i), util.BASE_MTIME + i)
    d = os.path.join(root, b"d" * 255)                 # a 255-byte directory name
    util.write_file(os.path.join(d, b"z" * 255), b"deep bytes\n", util.BASE_MTIME)
    util.write_file(os.path.join(root, b"dir\nwith newline", b"f"), b"in a newline dir\n",
                    util.BASE_MTIME)
    return root


def test_hostile_names_list_and_read(world, tmp_path):
    w = world(populate=False)
    root = _make_names(w.box_ck(0))
    mroot = os.path.join(w.ck(0), "names")
    assert listdir_raw(mroot) == set(os.listdir(root))
    assert tree_diff(snapshot(mroot), local_snapshot(root)) == []
    # each file by name with cat (argv carries any byte but NUL)
    for n in HOSTILE:
        p = os.path.join(os.fsencode(mroot), n)
        assert cat(os.fsdecode(p)) == open(os.path.join(root, n), "rb").read(), n
    r = ok(["find", mroot, "-type", "f", "-print0"])
    assert len([x for x in r.out.split(b"\0") if x]) == len(HOSTILE) + 2
    ok(["ls", "-la", mroot])
    r = ok(["rsync", "-a", mroot + "/", str(tmp_path / "copy") + "/"], timeout=60)
    assert tree_diff(local_snapshot(str(tmp_path / "copy")), local_snapshot(root)) == []
    assert not os.path.exists("pwned") and not (tmp_path / "pwned").exists()


def test_names_that_are_too_long_or_odd_do_not_break_the_directory(world):
    """Lookups of names longer than 255 bytes or that do not exist fail
    cleanly (ENAMETOOLONG/ENOENT), and the directory keeps working."""
    w = world()
    err = util.op_errno("stat", w.ck(0, "n" * 300))
    assert err in ("ENAMETOOLONG", "ENOENT"), err
    err = util.op_errno("stat", w.ck(0, "no-such-file"))
    assert err == "ENOENT", err
    err = util.op_errno("stat", os.path.join(w.mnt, "vastai", "99999999"))
    assert err == "ENOENT", err
    err = util.op_errno("stat", os.path.join(w.mnt, "vastai", "not-a-number"))
    assert err == "ENOENT", err
    assert ok(["ls", w.ck(0)]).rc == 0


def test_large_directory(world):
    w = world(populate=False)
    d = w.box_ck(0, "many")
    os.makedirs(d)
    n = 3000
    for i in range(n):
        with open(os.path.join(d, "f%05d.json" % i), "w") as f:
            f.write('{"i": %d}\n' % i)
        os.utime(os.path.join(d, "f%05d.json" % i), (util.BASE_MTIME + i, util.BASE_MTIME + i))
    r = ok(["ls", "-1", w.ck(0, "many")], timeout=120)
    names = r.text.split("\n")[:-1]
    assert len(names) == n and names == sorted(os.listdir(d))
    assert tree_diff(snapshot(w.ck(0, "many"), hashing=False), local_snapshot(d, hashing=False)) == []
    for i in (0, 1234, n - 1):
        assert cat(w.ck(0, "many", "f%05d.json" % i)) == b'{"i": %d}\n' % i


def test_deep_tree(world):
    w = world(populate=False)
    parts = ["level%02d" % i for i in range(40)]
    p = w.box_ck(0, *parts)
    util.write_file(os.path.join(p, "leaf.txt"), b"leaf\n", util.BASE_MTIME)
    r = ok(["find", w.ck(0), "-name", "leaf.txt"], timeout=60)
    assert r.text.strip() == w.ck(0, *parts, "leaf.txt")
    assert cat(w.ck(0, *parts, "leaf.txt")) == b"leaf\n"


def test_special_files_do_not_hang_or_escape(world):
    """Symlinks, a FIFO and a dangling link on the box: listing is bounded,
    regular files still read, and no read returns bytes from outside the
    box's checkpoint tree: not a client-side file (a symlink followed by the
    client kernel), not the box's /etc/shadow."""
    w = world()
    ck = w.box_ck(0)
    # /workspace differs between the client (the host) and the box (its own
    # bind mount): a file there exists on the client only.
    marker = "/workspace/rgtfs-client-only-%d.txt" % w.ids[0]
    with open(marker, "wb") as f:
        f.write(b"CLIENT-SIDE FILE, MUST NOT BE SERVED\n")
    try:
        os.symlink(marker, os.path.join(ck, "abs-link"))
        os.symlink("run-001/best_metrics.json", os.path.join(ck, "rel-link"))
        os.symlink("../" * 12 + "etc/shadow", os.path.join(ck, "escape-link"))
        os.symlink("dangling-target", os.path.join(ck, "dangling"))
        os.mkfifo(os.path.join(ck, "fifo"))
        r = run(["ls", "-la", w.ck(0)], timeout=30)
        assert r.rc == 0 and not r.timed_out, r
        r = run(["find", w.ck(0)], timeout=30)
        assert not r.timed_out, r
        for n in ("fifo", "abs-link", "escape-link", "dangling", "rel-link"):
            r = run(["cat", w.ck(0, n)], timeout=30)
            assert not r.timed_out, "reading %s hung" % n
            assert b"MUST NOT BE SERVED" not in r.out, "%s served a client-side file" % n
            assert not r.out.startswith(b"root:"), "%s served /etc/shadow" % n
        # regular files are unaffected
        assert cat(w.ck(0, "run-001", "best_metrics.json")) == open(
            os.path.join(ck, "run-001", "best_metrics.json"), "rb").read()
    finally:
        os.unlink(marker)
