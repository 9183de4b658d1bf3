"""TLS to a platform API is always verified (SPEC "Config", ca_file).

The vast.ai stand-in is put behind a TLS front whose certificate a private
CA signed. Without ca_file the API is refused with a clear certificate
error in MOUNT/vastai/.error and no instance is listed (a box is never
trusted from an unverified answer); ca_file naming the wrong CA is refused
the same way; the right CA lists the instances. A ca_file that does not
exist is named in .error, and nothing is asked of the API.
"""

import os
import re

import pytest

import util
from util import ls, read_text, wait_until
from fake_vast import make_instance
from conftest import new_ids
from test_s3_transport import _make_ca, TLSFront

WAIT = 10.0


class _Front:
    """What mount_factory needs of an API: its url and key."""

    def __init__(self, api, port):
        self.api_key = api.api_key
        self.url = "https://127.0.0.1:%d" % port


@pytest.fixture
def tls_api(fake_api, tmp_path):
    ca, crt, key = _make_ca(str(tmp_path), "api")
    other, _, _ = _make_ca(str(tmp_path), "other")
    port = int(fake_api.url.rsplit(":", 1)[1].split("/")[0])
    front = TLSFront(port, crt, key)
    yield fake_api, _Front(fake_api, front.port), ca, other
    front.close()


def test_an_api_with_an_unknown_ca_is_refused(tls_api, mount_factory, hygiene):
    hygiene.allow(r"SSL certificate problem|certificate verify failed")
    api, front, ca, other = tls_api
    iid = new_ids(1)[0]
    api.add(make_instance(iid, direct_port=1, proxy_port=1))
    for extra in ({}, {"ca_file": other}):
        m = mount_factory(front, extra_vastai=extra)
        err = wait_until(lambda: read_text(os.path.join(m.mnt, "vastai", ".error")), WAIT,
                         msg="vastai/.error names the TLS failure")
        assert re.search(r"(?i)certificate|SSL|TLS", err), err
        assert str(iid) not in ls(os.path.join(m.mnt, "vastai"))
        m.cleanup()
    # nothing reached the API's own handlers: every TLS handshake failed
    assert not [r for r in api.log() if "/instances" in r["path"]], api.log()


def test_ca_file_makes_a_private_ca_work(tls_api, mount_factory):
    api, front, ca, _ = tls_api
    iid = new_ids(1)[0]
    api.add(make_instance(iid, direct_port=1, proxy_port=1))
    m = mount_factory(front, extra_vastai={"ca_file": ca})
    wait_until(lambda: str(iid) in ls(os.path.join(m.mnt, "vastai")), WAIT,
               msg="instance listed over verified TLS")
    assert read_text(os.path.join(m.mnt, "vastai", ".error")) == ""


def test_a_missing_ca_file_is_named_and_nothing_is_trusted(tls_api, mount_factory, tmp_path,
                                                           hygiene):
    """Like any other section error (a bad api_url), the mount comes up and
    the platform's .error says what is wrong; no request is sent."""
    hygiene.allow(r"ca_file")
    api, front, _, _ = tls_api
    missing = str(tmp_path / "no-such-ca.pem")
    m = mount_factory(front, extra_vastai={"ca_file": missing})
    err = wait_until(lambda: read_text(os.path.join(m.mnt, "vastai", ".error")), WAIT,
                     msg="vastai/.error names the ca_file")
    assert missing in err and "No such file" in err, err
    assert not [r for r in api.log() if "/instances" in r["path"]], api.log()
