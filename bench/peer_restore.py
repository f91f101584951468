#!/usr/bin/env python3
"""Peer of `ddbaudit restore --to ddb://TABLE` for bench/restore-run: boto3 +
orjson, what a team would write. Reads the log's last image of every item and
writes the present ones with boto3's batch_writer (25 items a request,
unprocessed items resent). Checks nothing. Prints the items written.

usage: peer_restore.py LOG TABLE   (endpoint from AWS_ENDPOINT_URL_DYNAMODB)
"""
import sys

import boto3
from boto3.dynamodb.types import TypeDeserializer

from peer_common import final_images


def main():
    log, table = sys.argv[1], sys.argv[2]
    images = final_images(log)
    des = TypeDeserializer()
    written = 0
    with boto3.resource("dynamodb").Table(table).batch_writer() as batch:
        for image in images.values():
            if image is not None:
                batch.put_item(Item={k: des.deserialize(v) for k, v in image.items()})
                written += 1
    print(written)


if __name__ == "__main__":
    main()
