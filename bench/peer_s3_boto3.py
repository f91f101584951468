#!/usr/bin/env python3
"""The boto3 peer of bench/s3-run: list a prefix with a paginator, then GET
every object from a pool of 32 threads (one client, which boto3 allows to be
shared) and parse each body as JSON. Prints the number of objects read.

usage: peer_s3_boto3.py ENDPOINT BUCKET PREFIX
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def main():
    endpoint, bucket, prefix = sys.argv[1:4]
    s3 = boto3.client("s3", endpoint_url=endpoint,
                      config=Config(max_pool_connections=32, retries={"mode": "standard"}))
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]

    def get(key):
        json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return 1

    with ThreadPoolExecutor(32) as pool:
        n = sum(pool.map(get, keys, chunksize=64))
    print(n)


if __name__ == "__main__":
    main()
