"""The S3 transport (cache/xfer_s3.c) against a real signature-verifying S3
server (@20minutes/s3rver through s3server.py), driven by tests/s3probe from
the build being tested, with faults from s3fault.py's proxy.

    /usr/bin/python3 -m pytest tests/integration/test_s3_transport.py \\
        --rgtfs build/rgtfs

s3probe is found next to the rgtfs binary given with --rgtfs
(BUILD/tests/s3probe). Needs no mount: only node, s3rver and python3-boto3.
"""

import concurrent.futures
import hashlib
import os
import random
import re
import subprocess
import time

import pytest

from s3server import installed, S3RVER_DIR, s3  # noqa: F401
from s3fault import FaultProxy, hostile_listing, entity_bomb_listing, HOSTILE_KEYS

pytestmark = pytest.mark.skipif(
    not installed() and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
    reason="s3rver not installed in %s (tools/install-s3rver.sh)" % S3RVER_DIR)

B = "bkt"
REGION = "us-east-1"


@pytest.fixture
def probe(rgtfs_bin):
    p = os.path.join(os.path.dirname(rgtfs_bin), "tests", "s3probe")
    if not os.access(p, os.X_OK):
        pytest.fail("s3probe not found next to %s (expected %s)" % (rgtfs_bin, p),
                    pytrace=False)
    return p


class Probe:
    def __init__(self, exe, endpoint, env, prefix=""):
        self.exe, self.endpoint, self.env, self.prefix = exe, endpoint, env, prefix

    def run(self, *args, env=None, prefix=None, timeout=60, input=None):
        e = dict(self.env, **(env or {}))
        return subprocess.run([self.exe, self.endpoint, REGION, B,
                               self.prefix if prefix is None else prefix]
                              + [str(a) for a in args],
                              env=e, capture_output=True, timeout=timeout, input=input)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, r.stderr.decode()
        return r

    def ls(self, path, **kw):
        """{name: (kind, size, mtime, etag)} and the stderr note."""
        r = self.ok("ls", path, **kw)
        out = {}
        for line in r.stdout.decode().splitlines():
            kind, size, mtime, etag, name = line.split(" ", 4)
            assert name not in out, "listed twice: " + name
            out[name] = (kind, int(size), int(mtime), etag)
        return out, r.stderr.decode()

    def cat(self, path, off, length, **kw):
        return self.ok("cat", path, off, length, **kw).stdout

    def err(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 1, (r.returncode, r.stdout[:200], r.stderr)
        m = re.match(r"error: (E[A-Z0-9?]+) \(-?\d+\): (.*)", r.stderr.decode())
        assert m, r.stderr
        return m.group(1), m.group(2)


def md5q(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


@pytest.fixture
def env(s3):
    e = dict(os.environ, **s3.env())
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        e.pop(k, None)
    return e


@pytest.fixture
def pr(probe, s3, env):
    s3.make_bucket(B)
    return Probe(probe, s3.endpoint, env)


def put_many(s3, items, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(lambda kv: s3.put(B, kv[0], kv[1]), items))


# ---- listing and stat ----------------------------------------------------------------

def test_listing_follows_continuation_tokens(s3, pr):
    """1205 keys in one directory: two pages, every name and size right,
    prefixes on the first and the last page, one only with deeper keys
    (needs install-s3rver.sh's listing patch)."""
    want = {"f%04d.bin" % i: b"x" * (i % 97) for i in range(1205)}
    put_many(s3, [("many/" + k, v) for k, v in want.items()]
             + [("many/sub/inner.txt", b"in"), ("many/sub2/x", b"x"),
                ("many/a_dir/x", b"x"),    # a prefix on the first page
                ("many/sub3/deep/x", b"x")])
    got, note = pr.ls("/many")
    assert note == ""
    files = {k: v for k, v in got.items() if v[0] == "f"}
    assert set(files) == set(want)
    for k, data in want.items():
        kind, size, mtime, etag = files[k]
        assert size == len(data) and etag == md5q(data)
        assert abs(mtime - time.time()) < 3600
    for d in ("sub", "sub2", "sub3", "a_dir"):
        assert got[d][0] == "d", d
    assert len(got) == 1209

    # the bound is an error, never a shorter listing
    kind, why = pr.err("ls", "/many", env={"S3PROBE_MAX_PAGES": "1"})
    assert kind == "E2BIG" and "partial" in why
    kind, why = pr.err("ls", "/many", env={"S3PROBE_MAX_ENTRIES": "1100"})
    assert kind == "E2BIG" and "1100 entries" in why


def test_tree_stat_and_prefix(s3, pr):
    data = os.urandom(4096)
    s3.put(B, "root/run1/model.safetensors", data)
    s3.put(B, "root/run1/ckpt/step1.pt", b"pt")
    s3.put(B, "root/run1/marker/", b"")          # a directory marker object
    s3.put(B, "root/top.json", b"{}")
    s3.put(B, "elsewhere.txt", b"not under the prefix")

    p = Probe(pr.exe, pr.endpoint, pr.env, prefix="root")
    assert p.ok("stat", "/").stdout == b"dir\n"
    out = p.ok("stat", "/run1/model.safetensors").stdout.decode().split()
    head = s3.head(B, "root/run1/model.safetensors")
    assert out[0] == "file" and int(out[1]) == 4096 and out[3] == head["etag"]
    assert int(out[2]) == int(head["last_modified"].timestamp())
    assert p.ok("stat", "/run1").stdout == b"dir\n"          # implicit directory
    assert p.ok("stat", "/run1/ckpt").stdout == b"dir\n"
    assert p.ok("stat", "/run1/marker").stdout == b"dir\n"

    root, note = p.ls("/")
    assert set(root) == {"run1", "top.json"} and note == ""
    assert root["run1"][0] == "d" and root["top.json"] == ("f", 2, root["top.json"][2],
                                                           md5q(b"{}"))
    run1, _ = p.ls("/run1")
    assert set(run1) == {"model.safetensors", "ckpt", "marker"}
    marker, _ = p.ls("/run1/marker")
    assert marker == {}            # its own marker object is not an entry

    kind, why = p.err("ls", "/run1/nope")
    assert kind == "ENOENT" and "no such directory" in why
    assert Probe(pr.exe, pr.endpoint, pr.env, prefix="nothing/here").ls("/")[0] == {}

    # an object and a prefix of the same name: one entry, the object, as stat
    s3.put(B, "root/twice", b"obj")
    s3.put(B, "root/twice/inner", b"in")
    root2, note = p.ls("/")
    assert root2["twice"][0] == "f" and "both an object and a prefix" in note
    assert p.ok("stat", "/twice").stdout.startswith(b"file 3 ")
    s3.delete(B, "root/twice")
    s3.delete(B, "root/twice/inner")

    # "root/" and "root" are the same root; the whole bucket without one
    assert Probe(pr.exe, pr.endpoint, pr.env, prefix="root/").ls("/")[0] == root
    assert set(pr.ls("/")[0]) == {"root", "elsewhere.txt"}

    kind, why = p.err("stat", "/run1/nope")
    assert kind == "ENOENT" and "no such object" in why
    kind, _ = p.err("cat", "/run1/nope", 0, 10)
    assert kind == "ENOENT"
    kind, _ = p.err("stat", "/elsewhere.txt")
    assert kind == "ENOENT"
    kind, _ = p.err("stat", "/run1/../top.json")       # never sent as a key
    assert kind == "ENOENT"


def test_names_with_spaces_and_escapes(s3, pr):
    keys = ["d/sp ace.bin", "d/plus+sign", "d/pct%25x", "d/\u00e9t\u00e9 \u20ac", "d/q=1&b"]
    for k in keys:
        s3.put(B, k, k.encode())
    got, _ = pr.ls("/d")
    # s3rver escapes '&' twice in listings (s3server.py): that one name is off
    assert {"sp ace.bin", "plus+sign", "pct%25x", "\\xc3\\xa9t\\xc3\\xa9 \\xe2\\x82\\xac"} \
        <= set(got)
    for k in keys:
        assert pr.cat("/" + k, 0, 100) == k.encode()
        assert int(pr.ok("stat", "/" + k).stdout.split()[1]) == len(k.encode())


# ---- reads ---------------------------------------------------------------------------

def test_ranged_reads_match(s3, pr):
    size = 3 * 1024 * 1024 + 12345
    data = os.urandom(size)
    s3.put(B, "big.bin", data)
    s3.put(B, "one.bin", b"Z")
    s3.put(B, "empty.bin", b"")
    assert pr.cat("/big.bin", 0, size) == data              # 1 MiB preads, one handle
    assert pr.cat("/big.bin", 0, size + 5000) == data       # short only at EOF
    rnd = random.Random(7)
    for _ in range(20):
        off = rnd.randrange(size)
        ln = rnd.randrange(1, 300000)
        assert pr.cat("/big.bin", off, ln) == data[off:off + ln], (off, ln)
    for off, ln in ((0, 1), (1, 1), (size - 1, 1), (size - 1, 10), (size, 10),
                    (size + 100, 10), (1048575, 2)):
        assert pr.cat("/big.bin", off, ln) == data[off:off + ln], (off, ln)
    assert pr.cat("/one.bin", 0, 1) == b"Z"
    assert pr.cat("/one.bin", 0, 100) == b"Z"
    # An empty object is read as its expected size says, without a ranged
    # GET (s3rver never answers "Range: bytes=0-N" on an empty object).
    r = pr.ok("statread", "/empty.bin", 0, 100, input=b"\n")
    assert r.stdout.decode().split()[:2] == ["file", "0"]
    assert r.stdout.endswith(b"\n")


def test_vectored_reads_land_in_order(s3, pr, proxied):
    # preadv: one request's 206 body scattered straight into the buffers,
    # split at READ_MAX (64 MiB) inside a buffer, short only at EOF.
    size = (64 << 20) + (3 << 20) + 7
    data = os.urandom(size)
    s3.put(B, "v.bin", data)
    M = 1 << 20

    def catv(off, sizes, probe=pr):
        return probe.ok("catv", "/v.bin", off, ",".join(str(n) for n in sizes),
                        timeout=120).stdout

    assert catv(0, [1, 0, 5]) == data[:6]
    assert catv(0, [1]) == data[:1]                      # bytes=0-1 asked, 1 kept
    assert catv(12345, [M] * 8) == data[12345:12345 + 8 * M]
    # 70 MiB from offset 1: two GETs, the second starting inside buffer 0
    assert catv(1, [40 * M, 30 * M]) == data[1:1 + 70 * M]
    assert catv(size - 10, [4, 4, 4, 4]) == data[size - 10:]   # short at EOF
    assert catv(size, [10]) == b""
    # a body cut once is asked again and written again from the start
    px, p = proxied
    px.fail("truncate", times=1, at=3000, method="GET", path="/bkt/v.bin")
    assert catv(M - 3, [M, 7, M], probe=p) == data[M - 3:M - 3 + 2 * M + 7]
    px.fail("truncate", times=None, at=3000, method="GET", path="/bkt/v.bin")
    kind, _ = p.err("catv", "/v.bin", 0, "%d,%d" % (M, M))
    assert kind in ("EIO", "ETIMEDOUT")
    px.clear_faults()


def test_rewritten_between_stat_and_read_is_estale(s3, pr):
    s3.put(B, "w.bin", b"version one, long")
    p = subprocess.Popen([pr.exe, pr.endpoint, REGION, B, "", "statread", "/w.bin", "0", "100"],
                         env=pr.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline().decode().split()
    assert first[0] == "file" and first[3] == md5q(b"version one, long")
    s3.put(B, "w.bin", b"version TWO, long")       # same size, new ETag
    out, err = p.communicate(b"go\n", timeout=30)
    assert p.returncode == 1 and out == b"", (out, err)
    assert err.startswith(b"error: ESTALE"), err
    assert b"changed in the bucket" in err

    # unchanged: the same read succeeds
    p = subprocess.Popen([pr.exe, pr.endpoint, REGION, B, "", "statread", "/w.bin", "0", "100"],
                         env=pr.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.readline()
    out, err = p.communicate(b"go\n", timeout=30)
    assert p.returncode == 0 and out == b"version TWO, long", err


# ---- credentials and errors --------------------------------------------------------

def test_wrong_secret_is_a_clear_403(s3, pr):
    s3.put(B, "a.bin", b"a")
    bad = {"AWS_SECRET_ACCESS_KEY": "not-the-secret-zzz"}
    kind, why = pr.err("ls", "/", env=bad)
    assert kind == "EACCES"
    assert "access denied (wrong secret or no permission)" in why
    assert "SignatureDoesNotMatch" in why
    kind, why = pr.err("stat", "/a.bin", env=bad)
    assert kind == "EACCES" and "access denied" in why
    kind, why = pr.err("cat", "/a.bin", 0, 1, env=bad)
    assert kind == "EACCES" and "SignatureDoesNotMatch" in why
    for args in (("ls", "/"), ("stat", "/a.bin"), ("cat", "/a.bin", 0, 1)):
        r = pr.run(*args, env=bad)
        assert b"not-the-secret-zzz" not in r.stderr + r.stdout
        assert s3.secret_key.encode() not in r.stderr
        assert b"Signature=" not in r.stderr and b"Credential=" not in r.stderr
    kind, why = pr.err("ls", "/", env={"AWS_ACCESS_KEY_ID": "NOSUCHKEY"})
    assert kind == "EACCES" and "InvalidAccessKeyId" in why


def test_missing_credentials_name_the_variable(pr):
    e = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials"}
    r = subprocess.run([pr.exe, pr.endpoint, REGION, B, "", "ls", "/"], capture_output=True,
                       env={k: v for k, v in dict(pr.env, **e).items()
                            if k != "AWS_SECRET_ACCESS_KEY"}, timeout=30)
    assert r.returncode == 1 and b"AWS_SECRET_ACCESS_KEY" in r.stderr
    assert pr.env["AWS_ACCESS_KEY_ID"].encode() not in r.stderr


def test_no_such_bucket(probe, s3, env):
    p = Probe(probe, s3.endpoint, env)
    kind, why = p.err("ls", "/")
    assert kind == "ENOENT" and "no bucket bkt" in why


# ---- faults through the proxy --------------------------------------------------------

@pytest.fixture
def proxied(s3, pr):
    with FaultProxy(s3.port) as px:
        yield px, Probe(pr.exe, px.endpoint, pr.env)


def test_slowdown_is_retried_then_bounded(s3, proxied):
    px, p = proxied
    s3.put(B, "a.bin", b"abcdef")
    px.fail("slowdown", times=2, method="GET", path="/bkt/a.bin")
    assert p.cat("/a.bin", 0, 6) == b"abcdef"
    assert px.count(method="GET", path="/bkt/a.bin") == 3

    px.clear_log()
    px.fail("slowdown", times=None, method="GET", path="/bkt/a.bin")
    t0 = time.monotonic()
    kind, why = p.err("cat", "/a.bin", 0, 6)
    assert kind == "EAGAIN" and "SlowDown" in why and "attempts" in why
    assert time.monotonic() - t0 < 20
    assert px.count(method="GET", path="/bkt/a.bin") == 5       # 1 + 4 retries
    px.clear_faults()

    px.fail("500", times=None, method="HEAD")
    kind, why = p.err("stat", "/a.bin")
    assert kind == "EIO" and "HTTP 500" in why


def test_hung_server_times_out(s3, proxied):
    px, p = proxied
    s3.put(B, "a.bin", b"abcdef")
    px.fail("hang", times=None, seconds=30, method="GET")
    t0 = time.monotonic()
    kind, why = p.err("cat", "/a.bin", 0, 6, env={"S3PROBE_IO_MS": "2000"})
    assert kind == "ETIMEDOUT", why
    assert time.monotonic() - t0 < 10


def test_cut_bodies_are_errors(s3, proxied):
    px, p = proxied
    put_many(s3, [("d/k%03d" % i, b"v") for i in range(50)])
    s3.put(B, "a.bin", os.urandom(5000))
    # a listing cut anywhere is never a shorter directory
    # (times=None: a cut body is a transport failure that http.c retries)
    for at in (0, 10, 200, 1500, 3000):
        px.fail("truncate", times=None, at=at, method="GET", query={"list-type": "2"})
        r = p.run("ls", "/d")
        assert r.returncode == 1, (at, r.stdout[:200])
        assert r.stdout == b""
        px.clear_faults()
    # once: the retry gets the whole answer
    px.fail("truncate", times=1, at=100, method="GET", query={"list-type": "2"})
    assert len(p.ls("/d")[0]) == 50
    px.fail("truncate", times=None, at=100, method="GET", path="/bkt/a.bin")
    kind, _ = p.err("cat", "/a.bin", 0, 5000)
    assert kind in ("EIO", "ETIMEDOUT")
    px.clear_faults()
    assert len(p.ls("/d")[0]) == 50


def test_hostile_listing_skips_and_reports(s3, proxied):
    px, p = proxied
    safe = ["dotdot", "dotdot_only", "dot", "double_slash", "leading_slash",
            "trailing_slash", "newline", "tab_cr", "long"]
    keys = [HOSTILE_KEYS[k] for k in safe] + ["good.bin", "also good \u00e9"]
    px.fail("body", times=None, method="GET", query={"list-type": "2"},
            body=hostile_listing(keys, bucket=B))
    got, note = p.ls("/")
    assert set(got) == {"good.bin", "also good \\xc3\\xa9"}
    m = re.search(r"skipped (\d+) keys; first: (.*)", note)
    assert m and int(m.group(1)) == len(safe), note
    assert all(32 <= ord(c) < 127 for c in note.strip()), repr(note)

    # keys XML 1.0 cannot hold, or S3 never sends: the page is refused
    for bad in ("nul", "invalid_utf8", "long_path"):
        px.clear_faults()
        px.fail("body", times=None, method="GET", query={"list-type": "2"},
                body=hostile_listing([HOSTILE_KEYS[bad], "good.bin"], bucket=B))
        r = p.run("ls", "/")
        assert r.returncode == 1 and r.stdout == b"", bad
        assert b"bad listing" in r.stderr or b"1024" in r.stderr, r.stderr

    px.clear_faults()
    px.fail("body", times=None, method="GET", query={"list-type": "2"},
            body=entity_bomb_listing(B))
    t0 = time.monotonic()
    kind, why = p.err("ls", "/")
    assert kind == "EIO" and "DOCTYPE" in why
    assert time.monotonic() - t0 < 5


# ---- TLS: verification always on, an extra CA file adds trust --------------------------

def _make_ca(d, name):
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    import shutil
    if not shutil.which("openssl"):
        pytest.skip("no openssl binary")
    ca_key, ca = os.path.join(d, name + "-ca.key"), os.path.join(d, name + "-ca.pem")
    key, csr, crt = (os.path.join(d, name + s) for s in ("-srv.key", "-srv.csr", "-srv.pem"))
    ext = os.path.join(d, name + "-ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=rgtfs test CA " + name)
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


class TLSFront:
    """TLS on 127.0.0.1:<free port>, relaying raw bytes to a plain port (so
    the Host header the client signed reaches the server unchanged)."""

    def __init__(self, upstream_port, crt, key):
        import socket
        import ssl
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.up = upstream_port
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        import socket
        import threading
        while not self.stop_ev.is_set():
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                t = self.ctx.wrap_socket(c, server_side=True)
            except OSError:
                c.close()       # a client that refused our certificate
                continue
            u = socket.create_connection(("127.0.0.1", self.up))
            for a, b in ((t, u), (u, t)):
                th = threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                th.start()
                self.threads.append(th)

    def close(self):
        self.stop_ev.set()
        self.ls.close()


def test_tls_verified_and_ca_file(s3, pr, tmp_path):
    s3.put(B, "a.bin", b"over tls")
    ca, crt, key = _make_ca(str(tmp_path), "one")
    other_ca, _, _ = _make_ca(str(tmp_path), "two")
    front = TLSFront(s3.port, crt, key)
    try:
        p = Probe(pr.exe, "https://127.0.0.1:%d" % front.port, pr.env)
        # unknown CA: refused, no bytes, no retry storm
        r = p.run("cat", "/a.bin", 0, 8)
        assert r.returncode == 1 and r.stdout == b"", r.stderr
        assert re.search(rb"(?i)certificate|SSL|TLS", r.stderr), r.stderr
        r = p.run("cat", "/a.bin", 0, 8, env={"S3PROBE_CA_FILE": other_ca})
        assert r.returncode == 1 and r.stdout == b"", r.stderr
        # the right CA as the extra file: verified, and it works
        assert p.cat("/a.bin", 0, 8, env={"S3PROBE_CA_FILE": ca}) == b"over tls"
        got, _ = p.ls("/", env={"S3PROBE_CA_FILE": ca})
        assert set(got) == {"a.bin"}
    finally:
        front.close()


# ---- upload (xfer_s3_put, for archives) ------------------------------------------------

def test_put_uploads_and_retries_with_the_same_body(s3, pr, proxied):
    px, p = proxied
    data = os.urandom(5 * 1024 * 1024 + 3)
    r = pr.ok("put", "/up/archive.tar", input=data)
    assert r.stdout.decode().strip() == md5q(data)
    assert s3.get(B, "up/archive.tar") == data
    assert pr.cat("/up/archive.tar", 0, len(data)) == data
    assert pr.ok("put", "/up/empty", input=b"").stdout.decode().strip() == md5q(b"")
    assert s3.head(B, "up/empty")["size"] == 0

    # a 503 then success: the body is sent again, whole
    px.fail("slowdown", times=1, method="PUT", path="/bkt/up/again.bin")
    small = os.urandom(100000)
    assert p.ok("put", "/up/again.bin", input=small).stdout.decode().strip() == md5q(small)
    assert px.count(method="PUT", path="/bkt/up/again.bin") == 2
    assert s3.get(B, "up/again.bin") == small
    sha = [rq.header("x-amz-content-sha256") for rq in px.requests(method="PUT")]
    assert sha and all(h == hashlib.sha256(small).hexdigest() for h in sha)

    kind, _ = pr.err("put", "/", input=b"x")
    assert kind == "EISDIR"
    kind, why = pr.err("put", "/up/x", input=b"x", env={"AWS_SECRET_ACCESS_KEY": "bad"})
    assert kind == "EACCES" and "access denied" in why


def test_error_codes_are_named(s3, proxied):
    px, p = proxied
    s3.put(B, "a.bin", b"abc")
    px.fail("status", times=None, method="GET", status=403, code="RequestTimeTooSkewed",
            message="The difference between the request time and the current time "
                    "is too large.")
    kind, why = p.err("cat", "/a.bin", 0, 3)
    assert kind == "EACCES" and "clock" in why and "RequestTimeTooSkewed" in why
    px.clear_faults()
    px.fail("status", times=None, method="GET", status=429, code="TooManyRequests",
            message="slow down")
    kind, why = p.err("cat", "/a.bin", 0, 3)
    assert kind == "EAGAIN" and "429" in why
    px.clear_faults()
    px.fail("status", times=None, method="GET", status=400,
            code="AuthorizationHeaderMalformed", message="wrong region")
    kind, why = p.err("cat", "/a.bin", 0, 3)
    assert kind == "EIO" and "region" in why
    px.clear_faults()
    assert p.cat("/a.bin", 0, 3) == b"abc"
