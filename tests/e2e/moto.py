"""Starts moto_server (Python moto 5) on a free loopback port for a test and
stops it afterwards. Tests that need it call require_moto(), which fails the
test loudly, naming what is missing, when moto_server or boto3 is absent."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from fault_proxy import FaultProxy
from harness import Case as _Case


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)

    def client(self, service):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def require_moto():
    missing = []
    if not shutil.which("moto_server"):
        missing.append("moto_server (pip install 'moto[server]')")
    try:
        import boto3  # noqa: F401
    except ImportError:
        missing.append("boto3")
    if missing:
        print("SKIPPED: needs " + ", ".join(missing), file=sys.stderr)
        sys.exit(1)


def put_inserts(s3, bucket, prefix, count, user="u", activity="a", region="us-east-1"):
    """Puts `count` INSERT records in the writer's shape, one object each, at
    PREFIX2025/07/12/08/<user><i>-<activity>.json, a minute apart."""
    import json
    for i in range(count):
        rec = {"timestamp": f"2025-07-12T08:0{i}:00.000001", "eventName": "INSERT",
               "userId": f"{user}{i}", "activityId": activity, "awsRegion": region,
               "eventSource": "aws:dynamodb",
               "newImage": {"UserId": {"S": f"{user}{i}"}, "ActivityId": {"S": activity}}}
        s3.put_object(Bucket=bucket, Key=f"{prefix}2025/07/12/08/{user}{i}-{activity}.json",
                      Body=json.dumps(rec).encode())


def upload_tree(s3, bucket, root, prefix):
    n = 0
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            key = prefix + os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as fh:
                s3.put_object(Bucket=bucket, Key=key, Body=fh.read())
            n += 1
    return n


class MotoCase(_Case):
    """One moto_server (started with MOTO_ENV) and a fault proxy in front of
    it for the class's tests; the proxy's log and rules start empty in each."""
    MOTO_ENV = None

    @classmethod
    def setUpClass(cls):
        require_moto()
        cls.moto = Moto(env=cls.MOTO_ENV)
        cls.s3 = cls.moto.client("s3")
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_REGION": "us-east-1"})
        os.environ.pop("AWS_PROFILE", None)
        cls.proxy = FaultProxy(cls.moto.url)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.moto.stop()

    def setUp(self):
        super().setUp()
        self.proxy.reset()
