#!/usr/bin/env python3
"""The listing half of the benchmark's S3 endpoint: nginx serves GETs of
objects from disk and hands every request with a query string to this
server, which answers ListObjectsV2 (prefix, continuation token, max-keys,
encoding-type=url, delimiter), GetBucketVersioning and
GetObjectLockConfiguration from an index of the files built at start.
ETags are the objects' real MD5s, as S3 gives for single-part uploads.

usage: s3_list_responder.py ROOT PORT   (ROOT holds one directory per bucket)
"""
import bisect
import datetime
import hashlib
import http.server
import os
import socketserver
import sys
import urllib.parse
from xml.sax.saxutils import escape


def index(root):
    buckets = {}
    for bucket in sorted(os.listdir(root)):
        base = os.path.join(root, bucket)
        entries = []
        for d, _, files in os.walk(base):
            for f in files:
                path = os.path.join(d, f)
                key = os.path.relpath(path, base).replace(os.sep, "/")
                st = os.stat(path)
                with open(path, "rb") as fh:
                    md5 = hashlib.md5(fh.read()).hexdigest()
                mtime = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
                entries.append((key, st.st_size, md5, mtime.strftime("%Y-%m-%dT%H:%M:%S.000Z")))
        entries.sort()
        buckets[bucket] = entries
    return buckets


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        bucket = urllib.parse.unquote(u.path).strip("/").split("/")[0]
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        entries = self.server.buckets.get(bucket)
        if entries is None:
            return self.reply(404, "<Error><Code>NoSuchBucket</Code></Error>")
        if "versioning" in q:
            return self.reply(200, "<VersioningConfiguration/>")
        if "object-lock" in q:
            return self.reply(404, "<Error><Code>ObjectLockConfigurationNotFoundError</Code>"
                                   "<Message>none</Message></Error>")
        self.list_v2(bucket, entries, q)

    do_HEAD = do_GET

    def list_v2(self, bucket, entries, q):
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        url = q.get("encoding-type") == "url"
        maxk = min(int(q.get("max-keys", "1000")), 1000)
        after = q.get("continuation-token") or q.get("start-after") or ""
        i = bisect.bisect_right(entries, (after, float("inf"))) if after else \
            bisect.bisect_left(entries, (prefix,))
        enc = (lambda s: urllib.parse.quote(s, safe="/")) if url else escape
        out, prefixes, n, last = [], [], 0, ""
        while i < len(entries) and entries[i][0].startswith(prefix) and n < maxk:
            key, size, md5, mtime = entries[i]
            if delim and delim in key[len(prefix):]:
                cp = key[:len(prefix) + key[len(prefix):].index(delim) + len(delim)]
                if not prefixes or prefixes[-1] != cp:
                    prefixes.append(cp)
                    n += 1
                # Skip the rest of this common prefix.
                i = bisect.bisect_left(entries, (cp + "\U0010ffff",))
                last = cp
                continue
            out.append(f"<Contents><Key>{enc(key)}</Key><LastModified>{mtime}</LastModified>"
                       f"<ETag>&quot;{md5}&quot;</ETag><Size>{size}</Size>"
                       f"<StorageClass>STANDARD</StorageClass></Contents>")
            n, last, i = n + 1, key, i + 1
        truncated = i < len(entries) and entries[i][0].startswith(prefix)
        body = ['<?xml version="1.0" encoding="UTF-8"?>',
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                f"<Name>{bucket}</Name><Prefix>{enc(prefix)}</Prefix><KeyCount>{n}</KeyCount>",
                f"<MaxKeys>{maxk}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"]
        if url:
            body.append("<EncodingType>url</EncodingType>")
        if truncated:
            body.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
        body += out
        body += [f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>" for p in prefixes]
        body.append("</ListBucketResult>")
        self.reply(200, "".join(body))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    root, port = sys.argv[1], int(sys.argv[2])
    srv = Server(("127.0.0.1", port), Handler)
    srv.buckets = index(root)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
