"""A private S3-compatible server (@20minutes/s3rver 4.0.4) for the tests.

Installed by tools/install-s3rver.sh into ${RGTFS_S3RVER_DIR:-/opt/rgtfs-test/s3rver}
(tools/install-deps.sh runs it). The server verifies SigV4 signatures; see
TESTING.md and test_s3_fixture.py for how it differs from AWS S3.

Use from a test (boto3 comes from Debian's python3-boto3):

    from s3server import start_s3, S3Server
    with start_s3(tmp_path) as s3:          # started, and stopped at the end
        s3.make_bucket("ckpt")
        s3.put("ckpt", "a/b.bin", b"...")
        env = dict(os.environ, **s3.env())  # for a child process

or the pytest fixture `s3` defined in this module (import it into a test module
or conftest: `from s3server import s3  # noqa: F401`), which yields a started
S3Server in the test's tmp_path and stops it afterwards.

S3Server(workdir, access_key="S3RVER", secret_key="S3RVER", region="us-east-1",
         host="127.0.0.1", port=0, silent=False)
    workdir      directory of its own (created): workdir/data is the server's
                 data directory, workdir/s3rver.log its output, workdir/port the
                 port it listens on once it is up.
    access_key, secret_key
                 the one key pair the server accepts. With anything other than
                 the default S3RVER/S3RVER the default pair is revoked, so it
                 then gets InvalidAccessKeyId (403).
    region       only what clients sign with; the server accepts any region.
    port         0: the server picks a free port (no race); or a fixed port.

  .start(timeout=20)   starts `node --openssl-legacy-provider` with the server
                       (path-style buckets only, i.e. --no-vhost-buckets), polls
                       (bounded) until it answers HTTP; raises S3ServerError with
                       the log's tail if it does not. Returns self.
                       start() after stop() restarts it on the same port with
                       the same data (objects, ETags) kept.
  .stop(timeout=5)     SIGTERM to the node process (by PID, own process group),
                       SIGKILL after `timeout`, reaped; never raises. Idempotent.
  context manager      `with S3Server(...) as s3:` starts and stops.
  .pid, .port, .log_path, .data_dir
  .endpoint            "http://127.0.0.1:PORT"
  .host_port           "127.0.0.1:PORT"
  .access_key, .secret_key, .region ("us-east-1")
  .env()               {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                        "AWS_DEFAULT_REGION", "AWS_REGION"} for child processes
                        (the endpoint is not included: pass .endpoint yourself).
  .client(endpoint=None, access_key=None, secret_key=None, region=None,
          retries=0, timeout=10)
                       a new boto3 S3 client, path-style addressing, SigV4,
                       no retries by default; endpoint e.g. a FaultProxy's
                       (s3fault.py) .endpoint. Defaults are this server's.
  .s3                  a shared client from .client() (made on first use).

  Bucket/object helpers (all through .s3, i.e. signed S3 requests; they raise
  botocore's ClientError on S3 errors):
  .make_bucket(name)                  CreateBucket; returns name.
  .put(bucket, key, data: bytes, **extra)   PutObject; returns the ETag as
                       the server sent it (quoted hex MD5). extra goes to
                       put_object (e.g. Metadata={...}, ContentType=...).
  .put_file(bucket, key, path)        PutObject of a local file; returns ETag.
  .get(bucket, key, range=None) -> bytes
                       GetObject; range is the raw Range header value
                       ("bytes=0-99"). Note the server's range bugs (below).
  .head(bucket, key) -> dict or None  HeadObject: None if the key does not
                       exist, else {"size": int, "etag": str (quoted),
                       "last_modified": datetime, "metadata": {...},
                       "content_type": str, "raw": <boto3's whole answer>}.
  .list(bucket, prefix="") -> [dict]  every object under prefix (ListObjectsV2,
                       following continuation tokens), sorted by key:
                       {"key", "size", "etag", "last_modified"}.
  .keys(bucket, prefix="") -> [str]   just the keys.
  .delete(bucket, key)                DeleteObject (no error if absent).
  .corrupt(bucket, key, offset=None) -> int
                       rewrite the object through S3 with one byte flipped
                       (XOR 0xFF) at offset (default: the middle); same key,
                       same size. The ETag CHANGES (it is the MD5 of the new
                       bytes) and so does Last-Modified. Returns the offset.
  .corrupt_on_disk(bucket, key, offset=None, keep_etag=True, keep_mtime=True) -> int
                       flip one byte directly in the server's on-disk copy,
                       bypassing S3. With keep_etag (default) the stored ETag
                       (the cached MD5 in the .md5 file beside the object) is
                       left as it was: the server then serves the new bytes
                       with the OLD ETag, same size and (keep_mtime) the same
                       Last-Modified (which is the file's mtime). keep_etag=False
                       drops the cached MD5, so the server recomputes it: new
                       ETag, old Last-Modified. Returns the offset.
  .object_path(bucket, key)           the on-disk file holding an object's bytes.

Server facts (measured by test_s3_fixture.py, 4.0.4 on node 20):
  - SigV4 is verified (wrong secret: 403 SignatureDoesNotMatch; unknown key:
    403 InvalidAccessKeyId); the payload hash (x-amz-content-sha256) is NOT
    checked against the body; the Host header is part of the signature as
    the client sent it, so a client pointed at a proxy that forwards Host
    unchanged still verifies. Requests without any signature are served
    (anonymous access is allowed).
  - `/bucket/?list-type=2` (trailing slash) fails signature verification.
  - ETag = quoted MD5 of the bytes, also for multipart uploads (no "-N").
  - Range: "bytes=A-B" with A<=B, B>0 is right; "bytes=-N" returns the FIRST
    N+1 bytes (not the last N); "bytes=0-0" (any end of 0) returns the whole
    object as 206 with Content-Range bytes 0-(size-1)/size.
  - If-Match is ignored; If-None-Match and If-Modified-Since give 304.
  - x-amz-checksum-* are not stored or returned, and a wrong one is not refused.
  - ListObjectsV2 XML: keys with & < > ' are escaped twice ("a&b" is sent as
    <Key>a&amp;amp;b</Key>, so a client reads "a&amp;b"; " is right);
    encoding-type=url is ignored (keys are never URL-encoded); the xmlns is
    "http://doc.s3.amazonaws.com/2006-03-01/" (AWS: ".../s3.amazonaws.com/doc/...").
    Continuation tokens work only under --openssl-legacy-provider (without
    it a truncated listing is a 500).
  - Any region in the credential scope verifies. Idle keep-alive
    connections are closed by the server after 5 s (Keep-Alive: timeout=5).
  - The package ships no bin/ (no `s3rver` command): this module starts
    lib/s3rver.js with `node -e`.
"""

import contextlib
import http.client
import os
import signal
import subprocess
import time

S3RVER_VERSION = "4.0.4"
S3RVER_DIR = os.environ.get("RGTFS_S3RVER_DIR", "/opt/rgtfs-test/s3rver")
NODE = os.environ.get("RGTFS_NODE", "node")
DEFAULT_KEY = "S3RVER"
DEFAULT_SECRET = "S3RVER"
OBJ_SUFFIX = "._S3rver_object"

# Started with `node -e`: argv = [pkgdir, datadir, address, port, portfile];
# the key pair comes in the environment (not on a command line).
_LAUNCHER = r"""
const fs = require('fs');
const [pkg, dir, address, port, portFile] = process.argv.slice(1);
const S3rver = require(pkg + '/lib/s3rver.js');
const AWSAccount = require(pkg + '/lib/models/account.js');
const key = process.env.S3RVER_ACCESS_KEY, secret = process.env.S3RVER_SECRET_KEY;
if (key !== 'S3RVER' || secret !== 'S3RVER') {
  AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
  AWSAccount.DUMMY_ACCOUNT.createKeyPair(key, secret);
}
fs.mkdirSync(dir, { recursive: true });
const server = new S3rver({
  directory: dir, address, port: Number(port), vhostBuckets: false,
  silent: process.env.S3RVER_SILENT === '1', allowMismatchedSignatures: false,
});
server.run().then((a) => {
  fs.writeFileSync(portFile + '.tmp', String(a.port));
  fs.renameSync(portFile + '.tmp', portFile);
  console.log('S3rver listening on %s:%d', a.address, a.port);
}, (err) => { console.error('s3rver failed to start:', err); process.exit(1); });
"""


class S3ServerError(Exception):
    pass


def package_dir():
    return os.path.join(S3RVER_DIR, "node_modules", "@20minutes", "s3rver")


def installed():
    """True if the pinned s3rver is installed (tools/install-s3rver.sh)."""
    import json
    try:
        with open(os.path.join(package_dir(), "package.json")) as f:
            return json.load(f).get("version") == S3RVER_VERSION
    except (OSError, ValueError):
        return False


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


class S3Server:
    def __init__(self, workdir, access_key=DEFAULT_KEY, secret_key=DEFAULT_SECRET,
                 region="us-east-1", host="127.0.0.1", port=0, silent=False):
        self.dir = os.path.abspath(str(workdir))
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "s3rver.log")
        self.port_file = os.path.join(self.dir, "port")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.host = host
        self.port = port or None
        self._want_port = port
        self.silent = silent
        self.proc = None
        self.pid = None
        self._s3 = None

    # ---- lifecycle ---------------------------------------------------------

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def host_port(self):
        return "%s:%d" % (self.host, self.port)

    def start(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            return self
        if not installed():
            raise S3ServerError("@20minutes/s3rver %s is not installed in %s "
                                "(run tools/install-s3rver.sh)" % (S3RVER_VERSION, S3RVER_DIR))
        os.makedirs(self.data_dir, exist_ok=True)
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        env = dict(os.environ, S3RVER_ACCESS_KEY=self.access_key,
                   S3RVER_SECRET_KEY=self.secret_key, S3RVER_SILENT="1" if self.silent else "0")
        env.pop("NODE_OPTIONS", None)
        # a restart keeps the port it had (and the data directory)
        port = self._want_port or self.port or 0
        self.port = port or None
        argv = [NODE, "--openssl-legacy-provider", "-e", _LAUNCHER, package_dir(),
                self.data_dir, self.host, str(port), self.port_file]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise S3ServerError("s3rver exited with %s:\n%s"
                                        % (self.proc.returncode, self.log_tail()))
                if self.port is None:
                    try:
                        with open(self.port_file) as f:
                            self.port = int(f.read().strip())
                    except (OSError, ValueError):
                        pass
                if self.port and self.answers():
                    return self
                if time.monotonic() >= deadline:
                    raise S3ServerError("s3rver did not answer within %.0f s:\n%s"
                                        % (timeout, self.log_tail()))
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def answers(self, timeout=2):
        """True if the server answers an HTTP request (anonymous GET /)."""
        try:
            c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                return 200 <= r.status < 500
            finally:
                c.close()
        except OSError:
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5):
        p, self.proc = self.proc, None
        if self._s3 is not None:
            with contextlib.suppress(Exception):
                self._s3.close()
            self._s3 = None
        if p is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            if p.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=wait)
        # the server is one node process (own session); anything still in
        # its process group goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- clients -------------------------------------------------------------

    def env(self):
        return {"AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region}

    def client(self, endpoint=None, access_key=None, secret_key=None, region=None,
               retries=0, timeout=10):
        import boto3
        from botocore.config import Config
        kw = dict(signature_version="s3v4", s3={"addressing_style": "path"},
                  retries={"total_max_attempts": retries + 1, "mode": "standard"},
                  connect_timeout=timeout, read_timeout=timeout)
        try:    # botocore >= 1.36 adds CRC checksums to every request unless told not to
            cfg = Config(request_checksum_calculation="when_required",
                         response_checksum_validation="when_required", **kw)
        except TypeError:
            cfg = Config(**kw)
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key if secret_key is not None else self.secret_key,
            region_name=region or self.region, config=cfg)

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = self.client()
        return self._s3

    # ---- buckets and objects -------------------------------------------------------

    def make_bucket(self, name):
        self.s3.create_bucket(Bucket=name)
        return name

    def put(self, bucket, key, data, **extra):
        return self.s3.put_object(Bucket=bucket, Key=key, Body=bytes(data), **extra)["ETag"]

    def put_file(self, bucket, key, path):
        with open(path, "rb") as f:
            return self.s3.put_object(Bucket=bucket, Key=key, Body=f)["ETag"]

    def get(self, bucket, key, range=None):
        kw = {"Range": range} if range else {}
        r = self.s3.get_object(Bucket=bucket, Key=key, **kw)
        with contextlib.closing(r["Body"]) as b:
            return b.read()

    def head(self, bucket, key):
        from botocore.exceptions import ClientError
        try:
            r = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return {"size": r["ContentLength"], "etag": r["ETag"],
                "last_modified": r["LastModified"], "metadata": r.get("Metadata", {}),
                "content_type": r.get("ContentType"), "raw": r}

    def list(self, bucket, prefix=""):
        out = []
        kw = {"Bucket": bucket, "Prefix": prefix}
        while True:
            r = self.s3.list_objects_v2(**kw)
            for o in r.get("Contents", []):
                out.append({"key": o["Key"], "size": o["Size"], "etag": o["ETag"],
                            "last_modified": o["LastModified"]})
            if not r.get("IsTruncated"):
                break
            kw["ContinuationToken"] = r["NextContinuationToken"]
        return sorted(out, key=lambda o: o["key"])

    def keys(self, bucket, prefix=""):
        return [o["key"] for o in self.list(bucket, prefix)]

    def delete(self, bucket, key):
        self.s3.delete_object(Bucket=bucket, Key=key)

    def corrupt(self, bucket, key, offset=None):
        data = bytearray(self.get(bucket, key))
        if not data:
            raise ValueError("cannot corrupt an empty object")
        off = len(data) // 2 if offset is None else offset
        data[off] ^= 0xFF
        self.put(bucket, key, bytes(data))
        return off

    # ---- the server's on-disk copy -------------------------------------------------

    def object_path(self, bucket, key):
        parts = key.split("/")
        return os.path.join(self.data_dir, bucket, *parts[:-1], parts[-1] + OBJ_SUFFIX)

    def corrupt_on_disk(self, bucket, key, offset=None, keep_etag=True, keep_mtime=True):
        p = self.object_path(bucket, key)
        st = os.stat(p)
        if st.st_size == 0:
            raise ValueError("cannot corrupt an empty object")
        off = st.st_size // 2 if offset is None else offset
        with open(p, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
        if not keep_etag:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p + ".md5")
        if keep_mtime:
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        return off


@contextlib.contextmanager
def start_s3(tmp_path, name="s3", **kw):
    """Context manager: an S3Server in tmp_path/name, started, stopped at exit."""
    srv = S3Server(os.path.join(str(tmp_path), name), **kw)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


try:
    import pytest

    @pytest.fixture
    def s3(tmp_path):
        """A started S3Server (default credentials) in tmp_path/s3."""
        if not installed():
            pytest.fail("@20minutes/s3rver %s not installed in %s (run "
                        "tools/install-s3rver.sh)" % (S3RVER_VERSION, S3RVER_DIR),
                        pytrace=False)
        with start_s3(tmp_path) as srv:
            yield srv
except ImportError:     # usable without pytest (e.g. from a tool)
    pass
