#!/usr/bin/env python3
"""SigV4 test vectors from botocore, the oracle: for each request, botocore
builds and signs it exactly as the AWS CLI would (credentials and clock fixed),
and we record what it sent. tests/unit/test_sigv4.c rebuilds each request from
its parts (method, bucket, decoded key and query parameters, headers) and must
produce the same canonical request and Authorization header.

usage: tests/data/sigv4/gen_vectors.py > tests/data/sigv4/vectors.json
"""
import datetime
import json
import sys
from urllib.parse import urlsplit, parse_qsl, unquote

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSResponse

FIXED = datetime.datetime(2025, 7, 12, 8, 27, 50)


class FrozenDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return FIXED

    @classmethod
    def now(cls, tz=None):
        return FIXED.replace(tzinfo=tz) if tz else FIXED


botocore.auth.datetime.datetime = FrozenDatetime

ACCESS, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//token+with/slashes="

KEYS = [
    "audit-logs/2025/07/12/08/user123-activity001.json",
    "audit-logs/2025/07/12/08/user 7-act-39.json",
    "audit-logs/2025/07/12/08/a+b=c%d~e-f.json",
    "audit-logs/2025/07/12/08/semi;colon,comma.json",
    "audit-logs/2025/07/12/08/quote\"s'and*star(paren)!.json",
    "audit-logs/2025/07/12/08/Jos\u00e9 M\u00fcller-\u7528\u6237.json",
    "audit-logs/2025/07/12/08/team/ops-deploy.json",
    "audit-logs/2025/07/12/08/hash#question?amp&at@dollar$.json",
    "audit-logs/2025/07/12/08/  double  spaces  .json",
]

captured = []


def capture(request, **kwargs):
    captured.append(request)
    return AWSResponse(request.url, 200, {}, None)


def client(service, token, endpoint=None):
    s = botocore.session.Session()
    s.set_credentials(ACCESS, SECRET, token)
    cfg = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0})
    c = s.create_client(service, region_name="us-east-1", endpoint_url=endpoint, config=cfg)
    c.meta.events.register("before-send", capture)
    return c


def record(service, call):
    captured.clear()
    try:
        call()
    except Exception:
        pass  # the fake response has no body; the request was captured
    req = captured[-1]
    url = urlsplit(req.url)
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v)
               for k, v in req.headers.items()}
    auth = headers["authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    body = req.body or b""
    if hasattr(body, "read"):
        body = body.read()
    return {
        "service": service,
        "method": req.method,
        "url": req.url,
        "host": url.netloc,
        "path": unquote(url.path),
        "query": [[k, v] for k, v in parse_qsl(url.query, keep_blank_values=True)],
        "headers": {h: headers[h] for h in signed if h != "host"},
        "body": body.decode() if isinstance(body, bytes) else body,
        "authorization": auth,
    }


import botocore.config  # noqa: E402  (after the clock is frozen)


def main():
    out = []
    for token in (None, TOKEN):
        s3 = client("s3", token, "http://127.0.0.1:9000")
        for key in KEYS:
            out.append(record("s3", lambda: s3.get_object(Bucket="audit-bucket", Key=key)))
        out.append(record("s3", lambda: s3.list_objects_v2(
            Bucket="audit-bucket", Prefix="audit-logs/2025/07/12/08/", EncodingType="url",
            ContinuationToken="1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+a b", MaxKeys=1000)))
        out.append(record("s3", lambda: s3.list_object_versions(
            Bucket="audit-bucket", Prefix="audit-logs/", KeyMarker="audit-logs/x y+z.json",
            VersionIdMarker="3/L4kqtJl40Nr8X8gdRQBpUMLUo", EncodingType="url")))
        out.append(record("s3", lambda: s3.get_bucket_versioning(Bucket="audit-bucket")))
        lam = client("lambda", token, "http://127.0.0.1:9001")
        out.append(record("lambda", lambda: lam.invoke(
            FunctionName="stream-processor:live", Payload=b'{"Records":[]}')))
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
