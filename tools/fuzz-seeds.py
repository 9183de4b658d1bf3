#!/usr/bin/env python3
"""fuzz-seeds.py OUTDIR - write the seed corpus of every fuzz target.

One directory per target under OUTDIR (OUTDIR/<target>/...), made from the
test fixtures (tests/fixtures/platforms/<name>/*.json, tests/fixtures/ckpt/
good and bad, tests/fixtures/fuzz/<target>/ - the inputs fuzzing once
failed on) and from small documents written here in the shapes the
parsers read: S3 listings, SigV4 requests, INI configs, remote names, SFTP
reply packets, roster output. Generated at run time into a build dir, so no
corpus is committed; tools/fuzz-run calls it. Deterministic.
"""
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")


def put(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy_dir(out, target, src, prefix=""):
    if not os.path.isdir(src):
        return
    for n in sorted(os.listdir(src)):
        p = os.path.join(src, n)
        if os.path.isfile(p) and os.path.getsize(p) <= 64 * 1024:
            os.makedirs(os.path.join(out, target), exist_ok=True)
            shutil.copyfile(p, os.path.join(out, target, prefix + n))


def platforms(out):
    for name in ("vastai", "runpod", "lambda", "paperspace", "autodl"):
        copy_dir(out, name, os.path.join(FIX, "platforms", name))
    put(out, "vastai", "log_reply.json",
        '{"success": true, "result_url": '
        '"https://s3.amazonaws.com/vast.ai/instance_logs/abc.log?X=1", '
        '"msg": "ok"}')
    put(out, "vastai", "log_refused.json",
        '{"success": false, "msg": "no such instance"}')
    put(out, "vastai", "log_text.txt", "line 1\nline 2\nline 3\n")
    put(out, "runpod", "logs.sse",
        'event: log\nid: 1\n'
        'data: {"ts":"2026-12-01T10:00:00Z","source":"container",'
        '"line":"step 1 loss 2.3"}\n\n'
        ': comment\r\n'
        'data: {"ts":"t3","source":"system","line":"last\\u001b[2J"}\n')


def ckpt(out):
    copy_dir(out, "ckpt", os.path.join(FIX, "ckpt", "good"), "good_")
    copy_dir(out, "ckpt", os.path.join(FIX, "ckpt", "bad"), "bad_")


def s3xml(out):
    hdr = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
    obj = ('<Contents><Key>{k}</Key><LastModified>2024-01-02T03:04:05.123Z'
           '</LastModified><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag>'
           '<Size>{s}</Size><StorageClass>STANDARD</StorageClass></Contents>')
    put(out, "s3xml", "page1.xml",
        hdr + "<Name>b</Name><Prefix/><KeyCount>1</KeyCount>"
        "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
        + obj.format(k="my-image.jpg", s=434234) + "</ListBucketResult>")
    put(out, "s3xml", "page2.xml",
        hdr + "<Name>q</Name><Prefix>E/</Prefix><KeyCount>3</KeyCount>"
        "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHn=</NextContinuationToken>"
        + obj.format(k="E/a &amp; b.txt", s=0)
        + obj.format(k="E/ckpt/step-1/model.safetensors", s=18446744073709551)
        + "<CommonPrefixes><Prefix>E/\u00e9t\u00e9/</Prefix></CommonPrefixes>"
        "</ListBucketResult>")
    put(out, "s3xml", "urlenc.xml",
        hdr + "<EncodingType>url</EncodingType><KeyCount>2</KeyCount>"
        "<IsTruncated>false</IsTruncated>"
        + obj.format(k="run%2F..%2Fx%0A+y%00z", s=1)
        + obj.format(k="ok/%E2%82%AC.pt", s=2) + "</ListBucketResult>")
    put(out, "s3xml", "error.xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket'
        '</Code><Message>The specified bucket does not exist</Message>'
        '<RequestId>4442587FB7D0A2F9</RequestId></Error>')
    put(out, "s3xml", "doctype.xml",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        '<ListBucketResult><IsTruncated>false</IsTruncated>'
        '<Contents><Key>&a;</Key></Contents></ListBucketResult>')
    put(out, "s3xml", "key.txt", "run1/best.pth")


def sigv4(out):
    put(out, "sigv4", "get_range.txt",
        "GET\n/test.txt\nus-east-1\ns3\n1369353600\n"
        "Hhost:examplebucket.s3.amazonaws.com\nHRange:bytes=0-9\n")
    put(out, "sigv4", "list.txt",
        "GET\n/bucket\neu-west-1\ns3\n1700000000\n"
        "Qlist-type=2\nQprefix=runs/a b+c/\nQcontinuation-token=1ue/X=\n"
        "Qencoding-type=url\nQdelimiter=/\nQflag\n"
        "HHost:127.0.0.1:9000\nPUNSIGNED-PAYLOAD\n")
    put(out, "sigv4", "put_token.txt",
        "PUT\n/bucket/a//./../%20\u00e9\nus-east-1\ns3\n1369353600\n"
        "Hhost:h\nHX-Amz-Meta-A:  two   spaces \nHx-amz-meta-a:again\n"
        "Bhello world\nTFwoGZXIvYXdzEJr//////////token\n")
    put(out, "sigv4", "head.txt",
        "HEAD\n\nus-east-1\ns3\n0\nHhost:h\nP" + "e3b0c442" * 8 + "\n")


def config(out):
    put(out, "config", "full.ini",
        "[rgtfs]\nconnect_timeout = 3\nio_timeout = 7\nsessions = 4\n"
        "workers = 8\nreadahead = 16\n"
        "[vastai]\napi_url = http://127.0.0.1:9\n"
        "api_key_env = VAST_API_KEY ; comment\npoll_interval = 2\n"
        "ssh_key = ~/k\ncheckpoint_dir = /workspace//ckpt/./\n"
        "[runpod]\napi_key_file = ~/.runpod\nstale_after = 0\n"
        "[ssh:gpu1]\nhost = 203.0.113.7\nport = 22\n"
        "strict_host_keys = yes\ntransport = openssh\n"
        "[cloud:arch]\nbucket = b\nregion = us-east-1\n"
        "endpoint = http://127.0.0.1:4569\nprefix = rgtfs/{platform}/{id}\n")
    put(out, "config", "bad.ini",
        "[vastai]\ncheckpoint_dir = /a/../b\n[ssh]\n[nope:x]\n")
    put(out, "config", "accounts.ini",
        "[vastai:work]\napi_key_env = A\n[vastai:home]\napi_key_env = B\n"
        "[lambda]\n[paperspace]\n[autodl]\ntrust_cloud = on\ncloud = arch\n")
    put(out, "config", "size.txt", "20G\n")


def rpath(out):
    put(out, "rpath", "norm.bin", b"//workspace/./checkpoints//\0run1/best.pt")
    put(out, "rpath", "esc.bin", b"a b\n$(x)\x1b[2J\\\xff\xc3\xa9\0..")
    put(out, "rpath", "hex.bin", b"2f776f726b\0%2E%2E/A%2Fb/c")
    put(out, "rpath", "utf8.bin", b"\xed\xa0\x80\xf4\x90\x80\x80\0\xe2\x82\xac")


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def sstr(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


def pkt(typ, body, rid=None):
    p = bytes([typ]) + (u32(rid) if rid is not None else b"") + body
    return u32(len(p)) + p


def attrs_all():
    return (u32(0x8000000F) + u64(1234) + u32(1000) + u32(1000)
            + u32(0o100644) + u32(1700000000) + u32(1700000001)
            + u32(1) + sstr("ext@x") + sstr("data"))


def sftp_wire(out):
    ver = pkt(2, sstr("limits@openssh.com") + sstr("1")
              + sstr("posix-rename@openssh.com") + sstr("1"), rid=3)
    put(out, "sftp_wire", "version.bin", ver)
    put(out, "sftp_wire", "status.bin",
        pkt(101, u32(2) + sstr("No such file") + sstr("en"), rid=7))
    put(out, "sftp_wire", "handle.bin", pkt(102, sstr(b"\x00\x01h"), rid=8))
    put(out, "sftp_wire", "data.bin", pkt(103, sstr(b"hello\0world"), rid=9))
    put(out, "sftp_wire", "attrs.bin", pkt(105, attrs_all(), rid=10))
    name = (u32(2) + sstr("a\nb") + sstr("-rw-r--r-- 1 a b 4 a\nb")
            + attrs_all() + sstr("c") + sstr("c") + u32(0))
    put(out, "sftp_wire", "name.bin", pkt(104, name, rid=11))
    put(out, "sftp_wire", "limits.bin",
        pkt(201, u64(262144) + u64(261120) + u64(261120) + u64(0), rid=12))
    put(out, "sftp_wire", "stream.bin",
        ver + pkt(104, name, rid=13) + pkt(101, u32(1), rid=14))


def roster(out):
    m = b"RGTFS-BEGIN\0"
    put(out, "roster", "list.bin",
        b"Welcome to the box!\n" + m + b"d 4096 1700000000.5 run1\0"
        b"f 10 1700000001.25 run1/best.pth\0f 3 1700000002 run1/a b\nc\0"
        b"l 7 1700000003.0 latest\0")
    put(out, "roster", "escape.bin", m + b"f 1 1 a/../../x\0")
    put(out, "roster", "hash.bin",
        b"motd\n" + m + b"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA"
        b"495991B7852B855  -\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fuzz-seeds.py OUTDIR")
    out = sys.argv[1]
    for f in (platforms, ckpt, s3xml, sigv4, config, rpath, sftp_wire, roster):
        f(out)
    # Every input a target once failed on (and its unit test reproduces):
    # kept as seeds, so each run checks them again first.
    fz = os.path.join(FIX, "fuzz")
    for t in sorted(os.listdir(fz)) if os.path.isdir(fz) else []:
        copy_dir(out, t, os.path.join(fz, t), "regress_")


if __name__ == "__main__":
    main()
