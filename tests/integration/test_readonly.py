"""Everything under the mount is read-only: writes, creates, unlinks, renames,
links, chmod, truncate and utimes fail with EROFS; rmdir of anything but an
instance directory (the teardown request, see test_teardown.py) fails; and
none of it changes a byte on the box or sends a mutating API call."""

import os

import util
from util import run, cat, op_errno, ls, box_tree_sha

FILE_OPS = ["open_w", "open_rw", "open_append", "open_trunc", "unlink", "chmod", "truncate",
            "utime"]
LENIENT = {"chown": {"EROFS", "EPERM"}, "setxattr": {"EROFS", "EPERM", "ENOTSUP", "EOPNOTSUPP"}}


def _targets(w):
    files = [w.f(0, n) for n in ("status", "status_msg", "info.json", "ssh", "log", "teardown",
                                 ".error")]
    files += [os.path.join(w.mnt, "vastai", ".error"),
              w.ck(0, "run-001", "best.pth"), w.ck(0, "run-001", "best_metrics.json"),
              w.ck(0, "empty.bin"), w.ck(0, "run-001", "step-01000", "small.txt")]
    dirs = [w.mnt, os.path.join(w.mnt, "vastai"), os.path.join(w.mnt, "archive"), w.idir(0),
            w.ck(0), w.ck(0, "run-001"), w.ck(0, "empty-dir"), w.ck(0, "run-001", "step-01000")]
    return files, dirs


def _state(w):
    return (box_tree_sha(w.boxes[0].workspace), len(w.api.mutations()))


def test_syscalls_that_modify_get_erofs(world):
    w = world()
    files, dirs = _targets(w)
    cat(w.ck(0, "run-001", "best.pth"))
    before = _state(w)
    bad = []

    def expect(op, args, allowed):
        got = op_errno(op, *args)
        if got not in allowed:
            bad.append("%s %s -> %s, want %s" % (op, " ".join(os.path.relpath(a, w.mnt)
                                                          for a in args), got, "/".join(sorted(allowed))))
    for f in files:
        for op in FILE_OPS:
            expect(op, [f], {"EROFS"})
        expect("rename", [f, f + ".renamed"], {"EROFS"})
        expect("rename", [f, os.path.join(w.ck(0), "moved-here")], {"EROFS"})
        expect("link", [f, f + ".hardlink"], {"EROFS"})
        for op, allowed in LENIENT.items():
            expect(op, [f], allowed)
    for d in dirs:
        expect("create", [os.path.join(d, "new-file")], {"EROFS"})
        expect("mkdir", [os.path.join(d, "new-dir")], {"EROFS"})
        expect("symlink", ["/etc/passwd", os.path.join(d, "new-link")], {"EROFS"})
        expect("mkfifo", [os.path.join(d, "new-fifo")], {"EROFS"})
        expect("chmod", [d], {"EROFS"})
        expect("utime", [d], {"EROFS"})
        if d != w.mnt:
            expect("rename", [d, d + "-renamed"], {"EROFS"})
    assert bad == [], "\n".join(bad)
    assert _state(w) == before, "the box or the API changed"
    assert w.api.mutations() == []


def test_rmdir_of_anything_but_an_instance_is_refused(world):
    """rmdir of an instance directory is the teardown request (test_teardown.py);
    rmdir of any other directory under the mount fails and destroys nothing."""
    w = world()
    before = _state(w)
    bad = []
    for d in [w.ck(0), w.ck(0, "empty-dir"), w.ck(0, "run-001"),
              w.ck(0, "run-001", "step-01000"),
              os.path.join(w.mnt, "vastai"), os.path.join(w.mnt, "archive")]:
        got = op_errno("rmdir", d)
        if got not in ("EPERM", "EROFS", "ENOTEMPTY", "EACCES"):
            bad.append("rmdir %s -> %s" % (os.path.relpath(d, w.mnt), got))
    assert bad == [], "\n".join(bad)
    assert _state(w) == before
    assert w.api.deletes() == [] and w.api.mutations() == []
    assert w.status() == "running\n"
    assert str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai"))
    assert ls(w.ck(0)) >= {"run-001", "empty-dir", "empty.bin"}


def test_shell_tools_report_read_only(world, tmp_path):
    w = world()
    before = _state(w)
    local = tmp_path / "local.bin"
    local.write_bytes(b"local bytes\n")
    cmds = [
        "echo x > %s" % w.f(0, "status"),
        "echo x >> %s" % w.ck(0, "run-001", "best_metrics.json"),
        "touch %s" % w.ck(0, "run-001", "new.pth"),
        "touch %s" % w.ck(0, "run-001", "best.pth"),
        "mkdir %s" % w.ck(0, "newdir"),
        "cp %s %s" % (local, w.ck(0, "run-001") + "/"),
        "mv %s %s" % (w.ck(0, "run-001", "best.pth"), w.ck(0, "run-001", "best.pth.bak")),
        "rm -f %s" % w.ck(0, "run-001", "best.pth"),
        "truncate -s 0 %s" % w.ck(0, "run-001", "best.pth"),
        "chmod 600 %s" % w.ck(0, "run-001", "best.pth"),
        "ln -s x %s" % w.ck(0, "link"),
        "rsync -a %s %s" % (local, w.ck(0) + "/"),
        "sed -i s/a/b/ %s" % w.ck(0, "run-001", "best_metrics.json"),
    ]
    bad = []
    for c in cmds:
        r = run(c, timeout=30)
        if r.rc == 0:
            bad.append("succeeded: " + c)
        elif b"Read-only file system" not in r.err and not c.startswith(("rsync", "sed")):
            bad.append("%s: %s" % (c, r.err.decode(errors="replace").strip()))
    assert bad == [], "\n".join(bad)
    assert _state(w) == before
    assert w.api.mutations() == []


def test_rm_rf_an_instance_changes_nothing(world):
    """`rm -rf` from a careless tool must not destroy the box (gotcha 17)."""
    w = world()
    want = cat(w.ck(0, "run-001", "best.pth"))       # cached before the attempt
    before = _state(w)
    r = run(["rm", "-rf", w.idir(0)], timeout=60)
    assert r.rc != 0, "rm -rf of an instance directory succeeded"
    r = run(["rm", "-rf", os.path.join(w.mnt, "vastai")], timeout=60)
    assert r.rc != 0
    # (a deliberate rmdir afterwards, from its own process, is a teardown
    # request: test_teardown.py::test_rm_rf_of_an_instance_...)
    assert w.api.deletes() == [], "rgtfs sent a DELETE"
    assert w.api.mutations() == []
    assert _state(w) == before, "the box's files changed"
    assert str(w.ids[0]) in ls(os.path.join(w.mnt, "vastai"))
    assert w.status() == "running\n"
    assert cat(w.ck(0, "run-001", "best.pth")) == want
    assert util.tree_diff(util.snapshot(w.ck(0)), util.local_snapshot(w.box_ck(0))) == []
