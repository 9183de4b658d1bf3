"""The S3 test fixtures (s3server.py, s3fault.py) do what they say, and the
server verifies signatures. Also pins down how @20minutes/s3rver 4.0.4 differs
from AWS S3 (the "fact" tests): if one fails after an upgrade, the fact
changed; update s3server.py's docstring and TESTING.md.

Needs no rgtfs binary: only node, the installed s3rver and python3-boto3.
"""

import hashlib
import http.client
import os
import re
import socket
import threading
import time

import pytest

from s3server import S3Server, start_s3, installed, S3RVER_DIR, s3  # noqa: F401
from s3fault import FaultProxy, hostile_listing, entity_bomb_listing, HOSTILE_KEYS

# Without the server installed these tests are skipped, except under CI=true,
# where the s3 fixture fails instead (CI must never pass by skipping).
pytestmark = pytest.mark.skipif(
    not installed() and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
    reason="s3rver not installed in %s (tools/install-s3rver.sh)" % S3RVER_DIR)

B = "bkt"


def md5q(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


def client_error(excinfo):
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def signed_request(srv, method, target, body=b"", headers=None, host_port=None,
                   secret=None, payload_hash=None, timeout=10):
    """Send one SigV4-signed request exactly as given (target = path?query,
    already encoded) to host_port (default the server); returns
    (status, headers dict, body)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    hp = host_port or srv.host_port
    req = AWSRequest(method=method, url="http://%s%s" % (hp, target), data=body,
                     headers=dict(headers or {}))
    if payload_hash:
        req.headers["X-Amz-Content-SHA256"] = payload_hash
    S3SigV4Auth(Credentials(srv.access_key, secret or srv.secret_key), "s3",
                srv.region).add_auth(req)
    host, port = hp.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", hp)
        for k, v in req.headers.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def anon_request(srv, method, target, headers=None):
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        c.request(method, target, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def s3b(s3):
    """The s3 fixture with bucket B holding a 100 KiB object 'dir/obj.bin'."""
    s3.make_bucket(B)
    s3.data = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(100 * 1024))
    s3.put(B, "dir/obj.bin", s3.data)
    return s3


@pytest.fixture
def proxy(s3b):
    px = FaultProxy(s3b.port).start()
    yield px
    px.stop()


# ---- the server ----------------------------------------------------------------------

def test_correct_client_puts_lists_gets(s3):
    s3.make_bucket(B)
    etag = s3.put(B, "a/b/c.txt", b"hello")
    assert etag == md5q(b"hello")
    s3.put(B, "top.bin", b"\x00" * 10)
    assert s3.get(B, "a/b/c.txt") == b"hello"
    assert s3.keys(B) == ["a/b/c.txt", "top.bin"]
    assert s3.keys(B, "a/") == ["a/b/c.txt"]
    h = s3.head(B, "a/b/c.txt")
    assert h["size"] == 5 and h["etag"] == etag
    assert s3.head(B, "nope") is None
    s3.delete(B, "top.bin")
    assert s3.keys(B) == ["a/b/c.txt"]
    s3.delete(B, "top.bin")         # absent: no error


def test_put_file_and_listing_pages(s3, tmp_path):
    s3.make_bucket(B)
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(3000))
    assert s3.put_file(B, "f.bin", str(p)) == md5q(p.read_bytes())
    for i in range(5):
        s3.put(B, "many/%02d" % i, b"x")
    r = s3.s3.list_objects_v2(Bucket=B, Prefix="many/", MaxKeys=2)
    assert r["IsTruncated"] and len(r["Contents"]) == 2        # continuation tokens work
    assert s3.keys(B, "many/") == ["many/%02d" % i for i in range(5)]


def test_wrong_secret_or_key_is_refused(s3):
    from botocore.exceptions import ClientError
    s3.make_bucket(B)
    bad = s3.client(secret_key="not-the-secret")
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=B)
    assert client_error(e) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=B, Key="x", Body=b"x")
    assert client_error(e) == (403, "SignatureDoesNotMatch")
    assert s3.keys(B) == []
    with pytest.raises(ClientError) as e:
        s3.client(access_key="NOSUCHKEY").list_objects_v2(Bucket=B)
    assert client_error(e) == (403, "InvalidAccessKeyId")


def test_custom_credentials(tmp_path):
    from botocore.exceptions import ClientError
    with start_s3(tmp_path, access_key="AKIATESTKEY", secret_key="s3cr3t/+=") as srv:
        srv.make_bucket(B)
        srv.put(B, "k", b"v")
        assert srv.keys(B) == ["k"]
        assert srv.env() == {"AWS_ACCESS_KEY_ID": "AKIATESTKEY",
                             "AWS_SECRET_ACCESS_KEY": "s3cr3t/+=",
                             "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
        with pytest.raises(ClientError) as e:
            srv.client(access_key="S3RVER", secret_key="S3RVER").list_objects_v2(Bucket=B)
        assert client_error(e) == (403, "InvalidAccessKeyId")


def test_stop_leaves_no_process(tmp_path):
    srv = S3Server(tmp_path / "x").start()
    pid = srv.pid
    assert srv.endpoint == "http://127.0.0.1:%d" % srv.port and srv.answers()
    srv.stop()
    assert not os.path.exists("/proc/%d" % pid)
    assert not srv.answers()
    srv.stop()                      # idempotent


def test_restart_keeps_port_and_data(s3b):
    port, etag = s3b.port, s3b.head(B, "dir/obj.bin")["etag"]
    s3b.stop()
    assert not s3b.answers()
    s3b.start()
    assert s3b.port == port and s3b.head(B, "dir/obj.bin")["etag"] == etag


def test_ranged_get(s3b):
    d = s3b.data
    assert s3b.get(B, "dir/obj.bin", range="bytes=10-19") == d[10:20]
    assert s3b.get(B, "dir/obj.bin", range="bytes=100000-") == d[100000:]
    assert s3b.get(B, "dir/obj.bin", range="bytes=5-5") == d[5:6]
    r = s3b.s3.get_object(Bucket=B, Key="dir/obj.bin", Range="bytes=1000-1999")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == "bytes 1000-1999/%d" % len(d)
    assert r["Body"].read() == d[1000:2000]


def test_corrupt_changes_bytes_and_etag(s3b):
    d = s3b.data
    before = s3b.head(B, "dir/obj.bin")
    off = s3b.corrupt(B, "dir/obj.bin")
    assert off == len(d) // 2
    got = s3b.get(B, "dir/obj.bin")
    assert len(got) == len(d) and got != d
    assert got[off] == d[off] ^ 0xFF and got[:off] == d[:off] and got[off + 1:] == d[off + 1:]
    after = s3b.head(B, "dir/obj.bin")
    assert after["etag"] == md5q(got) != before["etag"]
    assert s3b.keys(B) == ["dir/obj.bin"]


def test_corrupt_on_disk_keeps_etag(s3b):
    d = s3b.data
    before = s3b.head(B, "dir/obj.bin")
    off = s3b.corrupt_on_disk(B, "dir/obj.bin", offset=7)
    got = s3b.get(B, "dir/obj.bin")
    assert got[7] == d[7] ^ 0xFF and len(got) == len(d)
    after = s3b.head(B, "dir/obj.bin")
    assert off == 7
    assert after["etag"] == before["etag"] == md5q(d)             # the stale ETag
    assert after["last_modified"] == before["last_modified"]
    assert after["size"] == before["size"]
    assert [o["etag"] for o in s3b.list(B)] == [md5q(d)]           # listing too
    # and with keep_etag=False the server recomputes it
    s3b.corrupt_on_disk(B, "dir/obj.bin", offset=7, keep_etag=False)
    assert s3b.get(B, "dir/obj.bin") == d
    assert s3b.head(B, "dir/obj.bin")["etag"] == md5q(d)
    s3b.corrupt_on_disk(B, "dir/obj.bin", offset=8, keep_etag=False)
    h = s3b.head(B, "dir/obj.bin")
    assert h["etag"] == md5q(s3b.get(B, "dir/obj.bin")) != md5q(d)
    assert h["last_modified"] == before["last_modified"]


# ---- measured facts of the server (see s3server.py's docstring) ----------------------

def test_fact_suffix_and_zero_end_ranges_are_wrong(s3b):
    d = s3b.data
    assert s3b.get(B, "dir/obj.bin", range="bytes=-100") == d[:101]     # S3: d[-100:]
    assert s3b.get(B, "dir/obj.bin", range="bytes=0-0") == d            # S3: d[:1]


def test_fact_conditionals(s3b):
    from botocore.exceptions import ClientError
    etag = s3b.head(B, "dir/obj.bin")["etag"]
    r = s3b.s3.get_object(Bucket=B, Key="dir/obj.bin", IfMatch='"0123"')   # S3: 412
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        s3b.s3.get_object(Bucket=B, Key="dir/obj.bin", IfNoneMatch=etag)
    assert client_error(e)[0] == 304


def test_fact_trailing_slash_bucket_url_fails_verification(s3b):
    st, _, body = signed_request(s3b, "GET", "/%s?list-type=2" % B)
    assert st == 200 and b"dir/obj.bin" in body
    st, _, body = signed_request(s3b, "GET", "/%s/?list-type=2" % B)
    assert st == 403 and b"SignatureDoesNotMatch" in body


def test_fact_anonymous_allowed_and_payload_hash_unchecked(s3b):
    st, body = anon_request(s3b, "GET", "/%s?list-type=2" % B)
    assert st == 200 and b"dir/obj.bin" in body
    st, body = anon_request(s3b, "GET", "/%s/dir/obj.bin" % B)
    assert st == 200 and body == s3b.data
    # a signed PUT whose x-amz-content-sha256 does not match the body is stored
    st, _, _ = signed_request(s3b, "PUT", "/%s/lie" % B, body=b"actual",
                              payload_hash=hashlib.sha256(b"claimed").hexdigest())
    assert st == 200 and s3b.get(B, "lie") == b"actual"


def test_fact_any_region_verifies(s3b):
    assert "dir/obj.bin" in str(s3b.client(region="eu-west-3").list_objects_v2(Bucket=B))


def test_fact_listing_escapes_twice(s3):
    s3.make_bucket(B)
    for k in ("a&b", "q\"x", "sp ace"):
        s3.put(B, k, b"x")
    st, hdrs, body = signed_request(s3, "GET", "/%s?encoding-type=url&list-type=2" % B)
    assert st == 200 and hdrs["keep-alive"] == "timeout=5"
    assert b"<Key>a&amp;amp;b</Key>" in body and b"<Key>sp ace</Key>" in body
    assert b'xmlns="http://doc.s3.amazonaws.com/2006-03-01/"' in body
    assert s3.get(B, "a&b") == b"x"         # the object itself is under its real key


def test_fact_multipart_etag_is_plain_md5(s3):
    s3.make_bucket(B)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    up = s3.s3.create_multipart_upload(Bucket=B, Key="mp")
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.s3.upload_part(Bucket=B, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)
        assert r["ETag"] == md5q(p)
        done.append({"ETag": r["ETag"], "PartNumber": i})
    r = s3.s3.complete_multipart_upload(Bucket=B, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": done})
    whole = b"".join(parts)
    assert r["ETag"] == md5q(whole)      # S3: md5(md5(p1)+md5(p2))-2
    assert s3.head(B, "mp")["etag"] == md5q(whole)
    assert s3.get(B, "mp") == whole


def test_fact_no_checksums(s3):
    import base64
    s3.make_bucket(B)
    data = b"checksummed"
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    s3.s3.put_object(Bucket=B, Key="c", Body=data, ChecksumSHA256=sha)
    h = s3.s3.head_object(Bucket=B, Key="c", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in h
    assert not any(k.startswith("x-amz-checksum")
                   for k in h["ResponseMetadata"]["HTTPHeaders"])
    # a wrong checksum is not refused either
    s3.s3.put_object(Bucket=B, Key="c2", Body=data, ChecksumSHA256=base64.b64encode(
        b"\0" * 32).decode())
    assert s3.get(B, "c2") == data


# ---- the fault proxy -------------------------------------------------------------

def test_proxy_forwards_signed_requests(s3b, proxy):
    from botocore.exceptions import ClientError
    cli = s3b.client(endpoint=proxy.endpoint)
    r = cli.get_object(Bucket=B, Key="dir/obj.bin", Range="bytes=100-199")
    assert r["Body"].read() == s3b.data[100:200]
    cli.put_object(Bucket=B, Key="via/proxy", Body=b"p" * 70000)
    assert s3b.get(B, "via/proxy") == b"p" * 70000
    assert [o["Key"] for o in cli.list_objects_v2(Bucket=B, Prefix="via/")["Contents"]] \
        == ["via/proxy"]
    assert cli.head_object(Bucket=B, Key="via/proxy")["ContentLength"] == 70000
    assert proxy.count(method="GET", path="/bkt/dir/obj.bin") == 1
    g = proxy.requests(method="GET", path="/bkt/dir/obj.bin")[0]
    assert g.range == "bytes=100-199" and g.status == 206 and g.fault is None
    assert g.header("Host") == proxy.host_port
    assert proxy.count(method="PUT") == 1 and proxy.count(method="HEAD") == 1
    assert proxy.count(query={"list-type": "2"}) == 1
    assert proxy.requests(query={"list-type": "2"})[0].query["prefix"] == "via/"
    # the signature still counts through the proxy
    bad = s3b.client(endpoint=proxy.endpoint, secret_key="wrong")
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=B)
    assert client_error(e) == (403, "SignatureDoesNotMatch")
    assert proxy.log[-1].status == 403


def test_proxy_signed_for_upstream_host_fails(s3b, proxy):
    # Host is forwarded as sent; a request signed for another host:port fails
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url="%s/%s?list-type=2" % (s3b.endpoint, B))
    S3SigV4Auth(Credentials(s3b.access_key, s3b.secret_key), "s3", s3b.region).add_auth(req)
    c = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    c.putrequest("GET", "/%s?list-type=2" % B, skip_host=True, skip_accept_encoding=True)
    c.putheader("Host", proxy.host_port)
    for k, v in req.headers.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    assert r.status == 403 and b"SignatureDoesNotMatch" in r.read()
    c.close()


@pytest.mark.parametrize("kind,status,code", [("slowdown", 503, "SlowDown"),
                                              ("500", 500, "InternalError"),
                                              ("403", 403, "AccessDenied")])
def test_proxy_error_faults(s3b, proxy, kind, status, code):
    from botocore.exceptions import ClientError
    cli = s3b.client(endpoint=proxy.endpoint)
    f = proxy.fail(kind, times=2, method="GET", path="/bkt/dir/obj.bin")
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            cli.get_object(Bucket=B, Key="dir/obj.bin")
        assert client_error(e) == (status, code)
    assert cli.get_object(Bucket=B, Key="dir/obj.bin")["Body"].read() == s3b.data
    assert f.remaining == 0 and f.hits == 2
    log = proxy.requests(method="GET", path="/bkt/dir/obj.bin")
    assert [(r.status, r.fault) for r in log] == [(status, kind), (status, kind), (200, None)]
    # a HEAD is not a GET: unaffected by that predicate, and an error HEAD has no body
    proxy.fail(kind, method="HEAD")
    with pytest.raises(ClientError) as e:
        cli.head_object(Bucket=B, Key="dir/obj.bin")
    assert client_error(e)[0] == status


def test_proxy_status_fault_and_query_predicate(s3b, proxy):
    from botocore.exceptions import ClientError
    cli = s3b.client(endpoint=proxy.endpoint)
    proxy.fail("status", status=429, code="TooManyRequests", message="slow",
               query={"list-type": "2", "prefix": None})
    assert cli.get_object(Bucket=B, Key="dir/obj.bin")["ContentLength"] == len(s3b.data)
    assert cli.list_objects_v2(Bucket=B)["KeyCount"] == 1          # no prefix= sent
    with pytest.raises(ClientError) as e:
        cli.list_objects_v2(Bucket=B, Prefix="dir/")
    assert client_error(e) == (429, "TooManyRequests")
    assert cli.list_objects_v2(Bucket=B, Prefix="dir/")["KeyCount"] == 1
    assert [r.status for r in proxy.log] == [200, 200, 429, 200]


def test_proxy_hang_then_timeout(s3b, proxy):
    from botocore.exceptions import ReadTimeoutError
    cli = s3b.client(endpoint=proxy.endpoint, timeout=1)
    proxy.fail("hang", seconds=2.5, method="GET")
    t0 = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        cli.get_object(Bucket=B, Key="dir/obj.bin")
    assert 0.9 < time.monotonic() - t0 < 2.4
    assert proxy.log[-1].fault == "hang" and proxy.log[-1].status is None
    assert cli.get_object(Bucket=B, Key="dir/obj.bin")["Body"].read() == s3b.data


def test_proxy_hang_ends_at_stop(s3b):
    px = FaultProxy(s3b.port).start()
    px.fail("hang", seconds=60)
    out = {}

    def call():
        t0 = time.monotonic()
        try:
            with socket.create_connection((px.host, px.port), timeout=30) as s:
                s.sendall(b"GET /bkt HTTP/1.1\r\nHost: x\r\n\r\n")
                out["data"] = s.recv(100)
        except OSError as e:
            out["data"] = e
        out["t"] = time.monotonic() - t0
    th = threading.Thread(target=call)
    th.start()
    from util import wait_until
    wait_until(lambda: px.count() == 1, 10, msg="request reached the proxy")
    t0 = time.monotonic()
    px.stop()
    th.join(10)
    assert time.monotonic() - t0 < 5 and out["t"] < 10
    assert out["data"] == b"" or isinstance(out["data"], OSError), out   # closed, no answer
    assert not [t for t in threading.enumerate() if t.name.startswith("s3fault-")]


def test_proxy_truncate(s3b, proxy):
    cli = s3b.client(endpoint=proxy.endpoint)
    proxy.fail("truncate", at=1000, method="GET")
    r = cli.get_object(Bucket=B, Key="dir/obj.bin")
    assert r["ContentLength"] == len(s3b.data)
    with pytest.raises(Exception) as e:
        r["Body"].read()
    assert re.search(r"(?i)incomplete|IncompleteRead|ResponseStreaming|Connection|read",
                     repr(e.value)), repr(e.value)
    assert proxy.log[-1].fault == "truncate" and proxy.log[-1].status == 200
    # raw view: exactly 1000 body bytes, then EOF
    proxy.fail("truncate", at=1000, method="GET")
    st, _, body = _raw_get_through(s3b, proxy, "/bkt/dir/obj.bin")
    assert st == 200 and body == s3b.data[:1000]


def _raw_get_through(srv, px, target):
    """Signed GET through the proxy; the body read until EOF or Content-Length."""
    try:
        return signed_request(srv, "GET", target, host_port=px.host_port)
    except http.client.IncompleteRead as e:
        return 200, {}, e.partial


def test_proxy_reset(s3b, proxy):
    from botocore.exceptions import EndpointConnectionError, ConnectionClosedError
    cli = s3b.client(endpoint=proxy.endpoint)
    proxy.fail("reset", method="GET")
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        cli.get_object(Bucket=B, Key="dir/obj.bin")
    assert proxy.log[-1].fault == "reset"


def test_proxy_hostile_listing(s3b, proxy):
    for name in sorted(HOSTILE_KEYS):
        doc = hostile_listing([HOSTILE_KEYS[name], "ok/key"], bucket=B)
        proxy.fail("body", body=doc, query={"list-type": "2"})
        st, hdrs, body = signed_request(s3b, "GET", "/%s?list-type=2" % B,
                                        host_port=proxy.host_port)
        assert st == 200 and body == doc, name
        assert int(hdrs["content-length"]) == len(doc)
        assert hdrs["content-type"] == "application/xml"
        assert proxy.log[-1].fault == "body"
        # only once: the next listing is the server's own
        st, _, body = signed_request(s3b, "GET", "/%s?list-type=2" % B,
                                     host_port=proxy.host_port)
        assert st == 200 and b"dir/obj.bin" in body and body != doc
    assert b"bad-\xff\xfe-name" in hostile_listing([HOSTILE_KEYS["invalid_utf8"]])
    assert b"<Key>line1\nline2</Key>" in hostile_listing([HOSTILE_KEYS["newline"]])


def test_proxy_hostile_listing_reaches_boto3(s3b, proxy):
    proxy.fail("body", body=hostile_listing(["a/../../x", "/abs", "a//b", "n\nl"], bucket=B),
               query={"list-type": "2"})
    keys = [o["Key"] for o in s3b.client(endpoint=proxy.endpoint)
            .list_objects_v2(Bucket=B)["Contents"]]
    assert keys == ["a/../../x", "/abs", "a//b", "n\nl"]


def test_proxy_entity_bomb(s3b, proxy):
    doc = entity_bomb_listing(B)
    assert b"<!DOCTYPE" in doc and b"&lol9;" in doc and len(doc) < 2000
    proxy.fail("body", body=doc, query={"list-type": "2"})
    st, _, body = signed_request(s3b, "GET", "/%s?list-type=2" % B, host_port=proxy.host_port)
    assert st == 200 and body == doc


def test_proxy_predicates_times_and_log(s3b, proxy):
    cli = s3b.client(endpoint=proxy.endpoint)
    s3b.put(B, "other", b"o")
    f = proxy.fail("500", times=None, path=re.compile(r"^/bkt/dir/"))
    from botocore.exceptions import ClientError
    for _ in range(3):
        with pytest.raises(ClientError):
            cli.get_object(Bucket=B, Key="dir/obj.bin")
    assert cli.get_object(Bucket=B, Key="other")["Body"].read() == b"o"
    assert f.hits == 3 and f.remaining is None
    proxy.clear_faults()
    assert cli.get_object(Bucket=B, Key="dir/obj.bin")["ContentLength"] == len(s3b.data)
    assert proxy.count(method="GET") == 5
    assert proxy.count(match=lambda r: r.fault == "500") == 3
    proxy.clear_log()
    assert proxy.count() == 0
    with pytest.raises(ValueError):
        proxy.fail("nonsense")


def test_proxy_stop_leaves_no_threads(s3b):
    before = set(threading.enumerate())
    px = FaultProxy(s3b.port).start()
    cli = s3b.client(endpoint=px.endpoint)       # keeps its connection open
    for _ in range(3):
        cli.list_objects_v2(Bucket=B)
    px.stop()
    cli.close()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, left
    with pytest.raises(OSError):
        socket.create_connection((px.host, px.port), timeout=2).close()


def test_deep_keys_show_as_common_prefixes(s3b):
    """s3rver 4.0.4 left out of CommonPrefixes a prefix whose keys all lie
    deeper than one level; install-s3rver.sh patches that, so the server
    lists as S3 does. This fails on an unpatched install."""
    s3b.put(B, "deep/a/b/c.pt", b"x")
    r = s3b.s3.list_objects_v2(Bucket=B, Delimiter="/")
    assert {p["Prefix"] for p in r.get("CommonPrefixes", [])} >= {"deep/", "dir/"}, r
    r = s3b.s3.list_objects_v2(Bucket=B, Delimiter="/", Prefix="deep/")
    assert [p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["deep/a/"], r
