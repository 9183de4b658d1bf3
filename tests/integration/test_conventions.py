"""rgtfs fits the ecosystem: man pages, mount(8)/fstab through mount.fuse3,
the systemd user unit, bash completion, and where meson installs them.

Facts this relies on, found on Debian 12 (util-linux 2.38, fuse3 3.14):
- mount(8) runs /sbin/mount.fuse.rgtfs if it exists, else /sbin/mount.fuse
  (-> mount.fuse3) for type fuse.rgtfs; it drops x-* and noauto, turns
  `user` into noexec,nosuid,nodev, and passes the atime family (relatime).
- mount.fuse3 drops user, nouser, users, auto, noauto, _netdev, nofail and
  runs `/bin/sh -c "'rgtfs' 'SOURCE' 'MOUNTPOINT' '-o' 'OPTS'"`.
- mount(8) clears PATH for its helpers, so /bin/sh finds rgtfs only in its
  default path (/usr/local/bin, /usr/bin, ...). The tests below bind-mount a
  directory holding the binary under test over /usr/local/bin inside a
  private mount namespace (a holder process), so the host is not touched;
  every command that sees that mount runs through nsenter(1) into it.

Rules of the suite: bounded polls, the mount is only touched from child
processes, processes are stopped by PID.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

import util
from util import ok, run, wait_until
from fake_vast import make_instance
from conftest import REPO, _rgtfs_env, new_ids

DOC = os.path.join(REPO, "doc")
PAGES = ["rgtfs.1", "rgtfs-store.1", "rgtfs-verify.1", "rgtfs-teardown.1", "rgtfs-top.1"]
COMPLETION = os.path.join(REPO, "tools", "completion", "rgtfs.bash")
UNIT_IN = os.path.join(REPO, "tools", "systemd", "rgtfs.service.in")
TOOLS = ["rgtfs", "rgtfs-store", "rgtfs-verify", "rgtfs-teardown", "rgtfs-top"]
# Rejected on purpose (secrets never live in the INI): the page says so.
SECRET_KEYS = {"api_key", "secret_key", "access_key", "password"}


def _builddir(rgtfs_bin):
    return os.path.dirname(rgtfs_bin)


def _page(name):
    with open(os.path.join(DOC, name)) as f:
        return f.read()


# ---- 5. man pages ------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_man_page_renders(page):
    path = os.path.join(DOC, page)
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    r = run(["man", "--warnings", "-l", path], env=env, timeout=30)
    assert r.rc == 0, r
    assert r.err.strip() == b"", "man -l %s warned:\n%s" % (page, r.err.decode())
    text = r.out.decode()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert re.search(r"^%s$" % section, text, re.M), "%s: no %s section" % (page, section)
    g = run(["groff", "-man", "-ww", "-z", path], timeout=30)
    assert g.rc == 0 and g.out == b"" and g.err == b"", "groff -ww: %r" % (g,)


def test_rgtfs_page_sections():
    r = ok(["man", "-l", os.path.join(DOC, "rgtfs.1")], timeout=30,
           env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    text = r.text
    for s in ("OPTIONS", "CONFIGURATION", "THE TREE", "TEARDOWN", "THE CACHE", "EXIT STATUS",
              "ENVIRONMENT", "FILES", "EXAMPLES"):
        assert re.search(r"^%s$" % s, text, re.M), "rgtfs.1 lacks %s" % s
    for word in ("fleet.tsv", "fleet.json", ".rgtfs/", "user.rgtfs.sha256", "user.rgtfs.cached",
                 "user.rgtfs.source", "fuse.rgtfs", "EHOSTUNREACH", "ENOSPC", "cache_size="):
        assert word in text, "rgtfs.1 does not mention %s" % word


def _keys_in_config_c():
    """Every key util/config.c knows: [rgtfs] keys, keys it reads with
    config_get(), and the section references (cloud, archive_to)."""
    src = open(os.path.join(REPO, "util", "config.c")).read()
    keys = set(re.findall(r'strcmp\(key,\s*"([a-z0-9_]+)"\)', src))
    keys |= set(re.findall(r'config_get\([^,()]+,\s*"([a-z0-9_]+)"\)', src))
    m = re.search(r"refs\[\]\s*=\s*\{([^}]*)\}", src)
    if m:
        keys |= set(re.findall(r'"([a-z0-9_]+)"', m.group(1)))
    return keys


def _documented(key, page):
    return re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(key), page) is not None


def test_every_config_key_of_config_c_is_in_rgtfs_1():
    keys = _keys_in_config_c()
    # the parse itself must find the keys we know are there
    assert {"connect_timeout", "io_timeout", "sessions", "workers", "readahead",
            "poll_interval", "stale_after", "checkpoint_dir", "transport",
            "trust_cloud", "archive_to"} <= keys, keys
    page = _page("rgtfs.1")
    missing = sorted(k for k in keys if not _documented(k, page))
    assert not missing, "config keys of util/config.c not in doc/rgtfs.1: %s" % missing


def test_every_key_read_anywhere_is_in_rgtfs_1():
    """Keys read outside config.c too (platforms/, cache/, fs/): the helpers
    that take a section and a literal key name."""
    keys = set()
    pat = re.compile(r'\b(?:config_get|sec_get|int_key)\(\s*[A-Za-z_>.-]+\s*,\s*"([a-z0-9_]+)"')
    for top in ("util", "platforms", "cache", "fs"):
        for dp, _, fns in os.walk(os.path.join(REPO, top)):
            for fn in fns:
                if fn.endswith(".c"):
                    keys |= set(pat.findall(open(os.path.join(dp, fn), errors="replace").read()))
    assert "destroy_timeout" in keys and "probe_timeout" in keys, keys
    page = _page("rgtfs.1")
    missing = sorted(k for k in keys - SECRET_KEYS if not _documented(k, page))
    assert not missing, "config keys read by the source but not in doc/rgtfs.1: %s" % missing


# ---- install: meson install --destdir ----------------------------------------------

def _introspect_prefix(builddir):
    import json
    r = ok(["meson", "introspect", "--buildoptions", builddir], timeout=60)
    opts = {o["name"]: o["value"] for o in json.loads(r.text)}
    return opts["prefix"], opts["bindir"], opts["mandir"]


def test_meson_install_puts_pages_unit_and_completions(rgtfs_bin, tmp_path):
    b = _builddir(rgtfs_bin)
    if not os.path.exists(os.path.join(b, "build.ninja")):
        pytest.skip("%s is not a meson build directory" % b)
    dest = str(tmp_path / "dest")
    r = run(["meson", "install", "--no-rebuild", "-C", b, "--destdir", dest], timeout=120)
    assert r.rc == 0, r
    prefix, bindir, mandir = _introspect_prefix(b)
    root = dest + prefix
    for p in PAGES:
        assert os.path.isfile(os.path.join(root, mandir, "man1", p)), p
    units = [os.path.join(dp, f) for dp, _, fs in os.walk(dest) for f in fs
             if f == "rgtfs.service"]
    assert len(units) == 1 and units[0].endswith("/lib/systemd/user/rgtfs.service"), units
    unit = open(units[0]).read()
    exe = shlex.split(_unit_lines(unit)["ExecStart"][0])[0]
    assert exe == os.path.join(prefix, bindir, "rgtfs"), exe
    assert os.access(dest + exe, os.X_OK), "ExecStart names %s, not installed" % exe
    comps = [dp for dp, _, fs in os.walk(dest) if dp.endswith("bash-completion/completions")]
    assert len(comps) == 1, comps
    for t in TOOLS:
        f = os.path.join(comps[0], t)
        assert os.path.isfile(f), "no completion file named %s (bash-completion loads by name)" % t
        assert "complete -F _%s %s" % (t.replace("-", "_"), t) in open(f).read()


# ---- 4. bash completion --------------------------------------------------------------

def _complete(func, line, env=None, words=None, timeout=20):
    """COMPREPLY of completion function @func for the command line @line (the
    cursor at its end). COMP_WORDS is split the way bash splits it (at blanks
    and at COMP_WORDBREAKS characters such as '='), unless @words is given."""
    if words is None:
        words = []
        for w in re.split(r"[ \t]+", line.lstrip()):
            words += [p for p in re.split(r"([=:])", w) if p != ""] or [""]
        if line.endswith(" "):
            words.append("")
    script = ("source %s\n" % shlex.quote(COMPLETION) +
              "COMP_LINE=%s\nCOMP_POINT=${#COMP_LINE}\n" % shlex.quote(line) +
              "COMP_WORDS=(%s)\n" % " ".join(shlex.quote(w) for w in words) +
              "COMP_CWORD=%d\n" % (len(words) - 1) +
              "%s\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % func)
    r = run(["bash", "--norc", "--noprofile", "-c", script], env=env, timeout=timeout)
    assert r.rc == 0, r
    assert r.err == b"", r
    return [x for x in r.out.decode().split("\n") if x]


def test_completion_registers_every_tool():
    r = ok(["bash", "--norc", "-c", "source %s && complete -p" % shlex.quote(COMPLETION)])
    for t in TOOLS:
        assert "complete -F _%s %s" % (t.replace("-", "_"), t) in r.text, r.text


def test_completion_rgtfs_store_subcommands():
    assert _complete("_rgtfs_store", "rgtfs-store ") == [
        "stat", "instances", "hostkeys", "forget-hostkey", "ls", "export", "verify"]
    assert _complete("_rgtfs_store", "rgtfs-store f") == ["forget-hostkey"]
    assert _complete("_rgtfs_store", "rgtfs-store -c /tmp e") == ["export"]
    assert _complete("_rgtfs_store", "rgtfs-store -") == ["-c", "-h"]


def test_completion_rgtfs_options(tmp_path):
    got = _complete("_rgtfs", "rgtfs -o ")
    assert {"config=", "cache=", "cache_size=", "allow_other", "auto_unmount"} <= set(got), got
    assert _complete("_rgtfs", "rgtfs -o cache_s") == ["cache_size="]
    assert _complete("_rgtfs", "rgtfs -o allow_other,conf") == ["allow_other,config="]
    cfg = tmp_path / "my config.ini"
    cfg.write_text("")
    (tmp_path / "cachedir").mkdir()
    # bash hands over "config", "=", "/…/my co": the reply is the part after '='
    assert _complete("_rgtfs", "rgtfs -o config=%s/my" % tmp_path) == [str(cfg)]
    assert _complete("_rgtfs", "rgtfs -o ro,cache=%s/cach" % tmp_path) == [
        str(tmp_path / "cachedir")]
    assert "--version" in _complete("_rgtfs", "rgtfs --v")
    assert _complete("_rgtfs", "rgtfs -o ro %s/cach" % tmp_path) == [str(tmp_path / "cachedir")]


def test_completion_other_tools(tmp_path):
    (tmp_path / "model.safetensors").write_text("")
    assert _complete("_rgtfs_verify", "rgtfs-verify %s/mo" % tmp_path) == [
        str(tmp_path / "model.safetensors")]
    assert _complete("_rgtfs_top", "rgtfs-top --sort co") == ["cost"]
    assert set(_complete("_rgtfs_top", "rgtfs-top -")) >= {"-n", "-1", "--sort"}
    (tmp_path / "mnt").mkdir()
    assert _complete("_rgtfs_top", "rgtfs-top %s/mn" % tmp_path) == [str(tmp_path / "mnt")]
    assert _complete("_rgtfs_teardown", "rgtfs-teardown %s/mn" % tmp_path) == [
        str(tmp_path / "mnt")]


def test_completion_lists_rgtfs_mounts_and_never_runs_their_names(tmp_path):
    """rgtfs-top <TAB> offers the fuse.rgtfs mounts (the list came out empty
    while the caller's IFS=$'\\n' leaked into the reader), and a mount point
    name is data, never code: any local user may mount at a name holding
    $(...) or `...`, which compgen -W would run."""
    pwned = tmp_path / "pwned"
    evil = "%s/a$(touch %s)" % (tmp_path, pwned)
    tick = "%s/b`touch %s`" % (tmp_path, pwned)
    plain = "%s/mnt one" % tmp_path
    esc = lambda p: p.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "proc /proc proc rw,nosuid 0 0\n"
        "rgtfs %s fuse.rgtfs rw,nosuid,nodev,user_id=0,group_id=0 0 0\n" % esc(evil) +
        "rgtfs %s fuse.rgtfs rw,nosuid,nodev,user_id=0,group_id=0 0 0\n" % esc(tick) +
        "rgtfs %s fuse.rgtfs rw,nosuid,nodev,user_id=0,group_id=0 0 0\n" % esc(plain) +
        "sshfs %s/other fuse.sshfs rw 0 0\n" % tmp_path)
    env = dict(os.environ, _RGTFS_MOUNTS_FILE=str(mounts))
    got = _complete("_rgtfs_top", "rgtfs-top %s/" % tmp_path, env=env)
    assert sorted(got) == sorted([evil, tick, plain]), got
    assert _complete("_rgtfs_top", "rgtfs-top %s/a" % tmp_path, env=env) == [evil]
    assert _complete("_rgtfs_top", "rgtfs-top %s/mnt" % tmp_path, env=env) == [plain]
    assert not pwned.exists(), "completion ran a command from a mount point's name"
    # no rgtfs mount matches: plain directories, as before
    (tmp_path / "dir").mkdir()
    assert _complete("_rgtfs_top", "rgtfs-top %s/di" % tmp_path, env=env) == [
        str(tmp_path / "dir")]
    # a caller's IFS=$'\\n' does not leak into the reader
    r = run(["bash", "--norc", "--noprofile", "-c",
             "source %s; IFS=$'\\n'; _rgtfs_mounts" % shlex.quote(COMPLETION)],
            env=env, timeout=20)
    assert r.rc == 0 and sorted(r.out.decode().splitlines()) == sorted([evil, tick, plain]), r
    assert not pwned.exists()


def test_completion_store_ids_from_the_cache(world, store_tool, tmp_path):
    """forget-hostkey PLATFORM/<TAB> lists the instances the cache knows, by
    running `rgtfs-store -c DIR instances` (local LMDB only)."""
    w = world()
    util.ok(["cat", w.f(0, "status")])
    w.mount.unmount()
    env = dict(os.environ, PATH=os.path.dirname(store_tool) + ":" + os.environ["PATH"])
    got = _complete("_rgtfs_store", "rgtfs-store -c %s forget-hostkey vas" % w.mount.cache,
                    env=env)
    assert "vastai/%d" % w.ids[0] in got, got
    # a cache that does not exist is not created by a TAB
    nodir = str(tmp_path / "nocache")
    assert _complete("_rgtfs_store", "rgtfs-store -c %s export " % nodir, env=env) == []
    assert not os.path.exists(nodir)


# ---- 2. mount -t fuse.rgtfs and fstab, through mount.fuse3 ---------------------------

def test_mount_helper_is_there():
    """util-linux mount finds mount.fuse (-> mount.fuse3) for fuse.* types."""
    helpers = [p for p in ("/sbin/mount.fuse.rgtfs", "/sbin/mount.fuse", "/sbin/mount.fuse3")
               if os.path.exists(p)]
    if not helpers:
        pytest.skip("no mount.fuse helper installed (fuse3)")
    assert "/sbin/mount.fuse.rgtfs" not in helpers, "a stale mount.fuse.rgtfs would win"


class Namespace:
    """A holder process in a private mount namespace where /usr/local/bin is
    a directory holding `rgtfs` (the binary under test), so that mount(8) ->
    mount.fuse3 -> /bin/sh (PATH cleared) runs it. Commands run inside with
    run(); stop() kills every rgtfs in it and the holder, by PID."""

    def __init__(self, workdir, rgtfs_bin):
        self.bindir = os.path.join(workdir, "usr-local-bin")
        os.makedirs(self.bindir, exist_ok=True)
        if os.path.isdir("/usr/local/bin"):       # keep what was there
            for n in os.listdir("/usr/local/bin"):
                if n != "rgtfs":
                    os.symlink(os.path.join("/usr/local/bin", n), os.path.join(self.bindir, n))
        os.symlink(rgtfs_bin, os.path.join(self.bindir, "rgtfs"))
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c",
             'mount --bind "$1" /usr/local/bin && echo ready && exec sleep 3600', "sh",
             self.bindir],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError("namespace holder failed: %r" % self.proc.stderr.read())

    def run(self, argv, timeout=30, env=None):
        return run(["nsenter", "-t", str(self.proc.pid), "-m", "--"] + argv,
                   timeout=timeout, env=env)

    def mounts(self):
        out = []
        with open("/proc/%d/mounts" % self.proc.pid) as f:
            for line in f:
                p = line.split()
                out.append((util._unescape_mount_field(p[1]), p[2]))
        return out

    def is_mounted(self, mp):
        return any(m == mp and t.startswith("fuse") for m, t in self.mounts())

    def daemons(self, mp):
        """PIDs of rgtfs processes serving @mp (argv[0] rgtfs, @mp an argument)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                argv = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == b"rgtfs" and mp.encode() in argv:
                pids.append(int(d))
        return pids

    def stop(self):
        for pid in self.daemons_all():
            _kill(pid)
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def daemons_all(self):
        pids = []
        try:
            ns = os.readlink("/proc/%d/ns/mnt" % self.proc.pid)
        except OSError:
            return pids
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != self.proc.pid:
                try:
                    if os.readlink("/proc/%s/ns/mnt" % d) == ns:
                        pids.append(int(d))
                except OSError:
                    pass
        return pids


def _kill(pid):
    for sig, t in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        try:
            wait_until(lambda: not util.pid_alive(pid), t)
            return
        except util.WaitTimeout:
            pass


@pytest.fixture
def helper_world(tmp_path, box_factory, fake_api, user_key, rgtfs_bin):
    """One box listed by the fake API, a config, and a namespace to mount in."""
    for tool in ("unshare", "nsenter", "mount", "umount"):
        if not shutil.which(tool):
            pytest.skip("no %s" % tool)
    if not os.path.exists("/sbin/mount.fuse3") and not os.path.exists("/sbin/mount.fuse"):
        pytest.skip("no mount.fuse3")
    box = box_factory()
    iid = new_ids(1)[0]
    fake_api.add(make_instance(iid, direct_port=box.port, proxy_port=box.port))
    wd = str(tmp_path / "helper")
    os.makedirs(wd)
    conf = util.write_config(os.path.join(wd, "rgtfs.ini"), api_url=fake_api.url,
                             ssh_key=user_key)
    ns = Namespace(wd, rgtfs_bin)
    hw = type("HW", (), {})()
    hw.ns, hw.box, hw.iid, hw.conf = ns, box, iid, conf
    hw.mnt = os.path.join(wd, "mnt")
    hw.cache = os.path.join(wd, "cache")
    os.makedirs(hw.mnt)
    hw.env = _rgtfs_env(wd, fake_api.api_key)
    yield hw
    ns.stop()


def _check_tree_and_unmount(hw, unmount_argv):
    ns, mp = hw.ns, hw.mnt
    wait_until(lambda: ns.is_mounted(mp), 20, msg="mount appears")
    assert ("fuse.rgtfs" in [t for m, t in ns.mounts() if m == mp])
    pids = ns.daemons(mp)
    assert len(pids) == 1, "one rgtfs daemon serves %s: %r" % (mp, pids)
    vdir = os.path.join(mp, "vastai")
    wait_until(lambda: str(hw.iid) in ns.run(["ls", vdir]).text.split(), 15,
               msg="instance listed")
    r = ns.run(["cat", os.path.join(vdir, str(hw.iid), "status")])
    assert r.rc == 0 and r.out == b"running\n", r
    rel = "checkpoints/run-001/best_metrics.json"
    r = ns.run(["cat", os.path.join(vdir, str(hw.iid), rel)])
    want = open(os.path.join(hw.box.workspace, rel), "rb").read()
    assert r.rc == 0 and r.out == want, r
    r = ns.run(unmount_argv + [mp])
    assert r.rc == 0, r
    wait_until(lambda: not ns.is_mounted(mp), 15, msg="mount gone")
    wait_until(lambda: not util.pid_alive(pids[0]), 15, msg="rgtfs exits after unmount")


def test_mount_t_fuse_rgtfs(helper_world):
    hw = helper_world
    opts = "config=%s,cache=%s" % (hw.conf, hw.cache)
    r = hw.ns.run(["mount", "-t", "fuse.rgtfs", "rgtfs", hw.mnt, "-o", opts], env=hw.env)
    assert r.rc == 0, r
    _check_tree_and_unmount(hw, ["umount"])


def test_fstab_line(helper_world, tmp_path):
    """The options users put in fstab: noauto, _netdev, nofail, x-systemd.*,
    user (-> noexec,nosuid,nodev), relatime (passed on by mount)."""
    hw = helper_world
    fstab = str(tmp_path / "fstab")
    with open(fstab, "w") as f:
        f.write("# test fstab\nrgtfs %s fuse.rgtfs noauto,_netdev,nofail,user,relatime,"
                "x-systemd.automount,x-systemd.idle-timeout=60,config=%s,cache=%s 0 0\n"
                % (hw.mnt, hw.conf, hw.cache))
    r = hw.ns.run(["mount", "--fstab", fstab, hw.mnt], env=hw.env)
    assert r.rc == 0, r
    flags = [line for line in open("/proc/%d/mounts" % hw.ns.proc.pid) if hw.mnt in line]
    assert flags and "nosuid" in flags[0] and "noexec" in flags[0], flags
    _check_tree_and_unmount(hw, ["fusermount3", "-u"])


def test_mount_options_on_the_command_line(world):
    """The form mount.fuse3 uses (rgtfs SOURCE MOUNTPOINT -o ...) with the
    fstab-only options rgtfs now ignores instead of failing on them."""
    w = world(extra_args=[
        "rgtfs", "-o", "rw,dev,suid,exec,defaults,auto,noauto,user,nouser,users,_netdev,"
        "nofail,relatime,strictatime,lazytime,nodiratime,comment=x,x-systemd.automount,"
        "x-systemd.requires=network-online.target,x-gvfs-hide"])
    assert w.status() == "running\n"


# ---- 3. the systemd user unit ----------------------------------------------------------

def _unit_lines(text):
    """{Key: [values...]} of a unit file (all sections; continuation lines joined)."""
    out = {}
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def _built_unit(rgtfs_bin):
    p = os.path.join(_builddir(rgtfs_bin), "rgtfs.service")
    if not os.path.exists(p):
        pytest.fail("%s not built (meson configures it from %s)" % (p, UNIT_IN), pytrace=False)
    return p


def test_unit_is_configured_from_its_template(rgtfs_bin):
    text = open(_built_unit(rgtfs_bin)).read()
    assert "@" not in text.replace("%", ""), "unsubstituted @VAR@ left"
    kv = _unit_lines(text)
    assert kv["Type"] == ["simple"]
    argv = shlex.split(kv["ExecStart"][0])
    assert argv[0].endswith("/rgtfs") and "-f" in argv, argv
    assert kv["WantedBy"] == ["default.target"]


def test_systemd_analyze_verify(rgtfs_bin, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze (apt-get install systemd)")
    text = open(_built_unit(rgtfs_bin)).read()
    exe = shlex.split(_unit_lines(text)["ExecStart"][0])[0]
    # the one change: ExecStart names the binary under test, not the
    # installed one (which may not be installed here)
    d = tmp_path / "units"
    d.mkdir()
    unit = d / "rgtfs.service"
    unit.write_text(text.replace(exe + " ", rgtfs_bin + " "))
    rt = tmp_path / "runtime"
    rt.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), MANPATH=_man_path(tmp_path))
    r = run(["systemd-analyze", "--user", "verify", str(unit)], env=env, timeout=60)
    assert r.rc == 0 and r.out == b"" and r.err == b"", r
    # and it would have said so about a unit with a mistake
    bad = d / "bad.service"
    bad.write_text(text.replace(exe + " ", "/nonexistent/rgtfs "))
    r = run(["systemd-analyze", "--user", "verify", str(bad)], env=env, timeout=60)
    assert r.rc != 0 and b"/nonexistent/rgtfs" in r.err, r


def _man_path(tmp_path):
    """A MANPATH where man:rgtfs(1) (the unit's Documentation=) resolves."""
    m = tmp_path / "man"
    (m / "man1").mkdir(parents=True, exist_ok=True)
    for p in PAGES:
        dst = m / "man1" / p
        if not dst.exists():
            os.symlink(os.path.join(DOC, p), dst)
    return str(m)


def _expand(word, spec, env):
    """systemd's %-specifiers and ${VAR} / $VAR (whole words) in one word."""
    word = re.sub(r"%([hEC%])", lambda m: spec[m.group(1)], word)
    # $$ is systemd's escape for a literal $
    word = re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), ""), word)
    return word


def _command(line, spec, env):
    """argv of one Exec*= line as systemd runs it: '-' prefix noted, $VAR
    alone splits into words, ${VAR} stays one word."""
    ignore = line.startswith("-")
    line = line.lstrip("-@:+!")
    argv = []
    for w in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(_expand(w, spec, env))
    return argv, ignore


@pytest.fixture
def unit_world(tmp_path, box_factory, fake_api, user_key, rgtfs_bin):
    """The unit's commands, expanded for a user whose HOME is under tmp_path,
    with a demo config at %E/rgtfs/config.ini and the API key in
    %E/rgtfs/environment (the unit's EnvironmentFile=)."""
    box = box_factory()
    iid = new_ids(1)[0]
    fake_api.add(make_instance(iid, direct_port=box.port, proxy_port=box.port))
    wd = str(tmp_path / "unit")
    os.makedirs(wd)
    env = _rgtfs_env(wd, None)
    spec = {"h": env["HOME"], "E": env["XDG_CONFIG_HOME"], "C": env["XDG_CACHE_HOME"], "%": "%"}
    os.makedirs(os.path.join(spec["E"], "rgtfs"), exist_ok=True)
    util.write_config(os.path.join(spec["E"], "rgtfs", "config.ini"), api_url=fake_api.url,
                      ssh_key=user_key)
    envfile = os.path.join(spec["E"], "rgtfs", "environment")
    with open(envfile, "w") as f:
        f.write("# read by rgtfs.service\nVAST_API_KEY=%s\n" % fake_api.api_key)
    os.chmod(envfile, 0o600)

    kv = _unit_lines(open(_built_unit(rgtfs_bin)).read())
    uenv = {}
    for e in kv.get("Environment", []):
        for item in shlex.split(e):
            k, _, v = item.partition("=")
            uenv[k] = _expand(v, spec, {})
    for ef in kv.get("EnvironmentFile", []):
        path = _expand(ef.lstrip("-"), spec, {})
        assert path == envfile, (path, envfile)
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                uenv[k] = v
    env.update(uenv)
    u = type("UW", (), {})()
    u.env, u.spec, u.iid, u.box = env, spec, iid, box
    u.mnt = uenv["RGTFS_MOUNTPOINT"]
    assert u.mnt == os.path.join(spec["h"], "rgt")
    u.pre = [_command(x, spec, env) for x in kv.get("ExecStartPre", [])]
    u.start, _ = _command(kv["ExecStart"][0], spec, env)
    u.stop = [_command(x, spec, env) for x in kv.get("ExecStop", [])]
    installed = u.start[0]
    assert installed.endswith("/rgtfs"), u.start
    u.start[0] = rgtfs_bin        # the binary under test in the installed one's place
    u.proc = None
    u.log = os.path.join(wd, "unit.log")
    yield u
    if u.proc and u.proc.poll() is None:
        run([util.FUSERMOUNT, "-u", "-z", u.mnt], timeout=10)
        _kill(u.proc.pid)
    if util.is_mounted(u.mnt):
        run([util.FUSERMOUNT, "-u", "-z", u.mnt], timeout=10)


def _unit_start(u):
    for argv, ignore in u.pre:
        r = run(argv, env=u.env, timeout=30)
        assert r.rc == 0 or ignore, r
    assert os.path.isdir(u.mnt)
    with open(u.log, "ab") as logf:
        u.proc = subprocess.Popen(u.start, env=u.env, stdin=subprocess.DEVNULL, stdout=logf,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: util.is_mounted(u.mnt) or u.proc.poll() is not None, 20,
               msg="unit's rgtfs mounts")
    assert util.is_mounted(u.mnt), open(u.log).read()
    vdir = os.path.join(u.mnt, "vastai")
    wait_until(lambda: str(u.iid) in util.ok(["ls", vdir]).text.split(), 15,
               msg="instance listed")
    assert util.read_text(os.path.join(vdir, str(u.iid), "status")) == "running\n"
    # the unit's paths: config from %E, cache in %C/rgtfs
    assert os.path.isdir(os.path.join(u.spec["C"], "rgtfs"))


def test_unit_exec_start_and_exec_stop(unit_world):
    u = unit_world
    _unit_start(u)
    for argv, ignore in u.stop:
        r = run(argv, env=u.env, timeout=30)
        assert r.rc == 0, r
    wait_until(lambda: not util.is_mounted(u.mnt), 15, msg="mount gone after ExecStop")
    assert u.proc.wait(15) == 0, open(u.log).read()


def test_unit_stop_by_sigterm_unmounts(unit_world):
    """What systemd does after ExecStop (or when ExecStop failed on a busy
    mount): SIGTERM to the main process, which unmounts and exits 0."""
    u = unit_world
    _unit_start(u)
    os.kill(u.proc.pid, signal.SIGTERM)
    # a stop by signal is a clean stop: exit 0, so systemd does not mark the
    # unit failed
    assert u.proc.wait(15) == 0, open(u.log).read()
    wait_until(lambda: not util.is_mounted(u.mnt), 10, msg="mount gone after SIGTERM")
    # and the next start works on the same mount point (ExecStartPre)
    _unit_start(u)
    for argv, ignore in u.stop:
        assert run(argv, env=u.env, timeout=30).rc == 0
    assert u.proc.wait(15) == 0


def _run_start_pre(u):
    for argv, ignore in u.pre:
        r = run(argv, env=u.env, timeout=30)
        assert r.rc == 0 or ignore, r


def test_unit_start_pre_detaches_only_a_dead_mount(unit_world):
    """ExecStartPre's fusermount3 -u -z is for the dead mount a crash
    leaves; a healthy rgtfs already mounted there (started by hand) must
    stay mounted and keep serving."""
    u = unit_world
    _unit_start(u)
    status = os.path.join(u.mnt, "vastai", str(u.iid), "status")
    _run_start_pre(u)
    assert util.is_mounted(u.mnt), "ExecStartPre detached a healthy mount"
    assert u.proc.poll() is None, open(u.log).read()
    assert util.ok(["cat", status], 30).text == "running\n"
    # a dead one (the daemon killed: ENOTCONN) is detached, and the unit
    # starts again on the same mount point
    os.kill(u.proc.pid, signal.SIGKILL)
    u.proc.wait(10)
    # (the root's attributes stay cached for a moment; then it is dead)
    wait_until(lambda: b"Transport endpoint is not connected" in run(
        ["stat", u.mnt], env=dict(os.environ, LC_ALL="C"), timeout=10).err, 10,
        msg="the mount is dead")
    assert util.is_mounted(u.mnt)
    _unit_start(u)
    for argv, ignore in u.stop:
        assert run(argv, env=u.env, timeout=30).rc == 0
    assert u.proc.wait(15) == 0


def test_unit_stop_timeout_is_bounded(rgtfs_bin):
    """A stop waits for a teardown under way, but not forever."""
    kv = _unit_lines(open(_built_unit(rgtfs_bin)).read())
    assert kv.get("TimeoutStopSec") == ["15min"], kv.get("TimeoutStopSec")


def test_a_missing_parent_of_an_explicit_cache_refuses_to_start(rgtfs_bin, fake_api, tmp_path):
    """fstab's cache=/mnt/disk/rgtfs while the disk is not mounted: rgtfs must
    not make a fresh cache under the mount point (where the disk would later
    hide an archive, the only copy of a run); it refuses. The default cache
    place (XDG_CACHE_HOME) is made, parents and all, on a first start."""
    conf = tmp_path / "rgtfs.ini"
    conf.write_text("[vastai]\napi_url = %s\napi_key_env = VAST_API_KEY\n" % fake_api.url)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    gone = tmp_path / "disk" / "not-mounted"
    env = _rgtfs_env(str(tmp_path), fake_api.api_key)
    r = run([rgtfs_bin, "-f", "-o", "config=%s" % conf, "-o", "cache=%s" % (gone / "rgtfs"),
             str(mnt)], env=env, timeout=30)
    assert r.rc == 1, r
    assert "cache" in r.err.decode(), r
    assert not (tmp_path / "disk").exists(), "rgtfs made the missing parents"
    assert not util.is_mounted(str(mnt))

    # the default place, under a HOME with no .cache yet: made, and it mounts
    assert not os.path.exists(env["XDG_CACHE_HOME"])
    p = subprocess.Popen([rgtfs_bin, "-f", "-o", "config=%s" % conf, str(mnt)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        wait_until(lambda: util.is_mounted(str(mnt)) or p.poll() is not None, 20,
                   msg="rgtfs mounted with the default cache")
        assert p.poll() is None, p.stderr.read()
        assert os.path.isdir(os.path.join(env["XDG_CACHE_HOME"], "rgtfs"))
        assert stat_mode(env["XDG_CACHE_HOME"]) == 0o700
    finally:
        run(["fusermount3", "-u", str(mnt)], timeout=20)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def stat_mode(path):
    return os.stat(path).st_mode & 0o777
