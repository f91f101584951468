"""`ddbaudit replay` into AWS: the Lambda Invoke API (the test server
recomputes every request's SigV4 signature with botocore), an SQS dead-letter
queue on moto_server, and the end-to-end run: a bucket of audit objects on
moto replayed into a reference processor that writes each record back as an
audit object in the seed's format, whose rebuilt log must equal the original
change for change."""
import datetime
import json
import os
import subprocess
import threading
from harness import BINARY, Case, ROOT, main, run
from moto import Moto, require_moto
from target_server import TargetServer

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
            "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
            "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE")


def item_of(rec):
    return json.dumps(rec["dynamodb"]["Keys"], sort_keys=True)


def per_item(records, fields=("eventID",)):
    out = {}
    for r in records:
        out.setdefault(item_of(r), []).append(
            tuple(json.dumps(r["dynamodb"].get(f, r.get(f)), sort_keys=True) for f in fields))
    return out


class EnvCase(Case):
    """Each test gets its own AWS environment, restored afterwards."""
    ENV = {}

    def setUp(self):
        super().setUp()
        self.saved = {k: os.environ.get(k) for k in AWS_VARS}
        for k in AWS_VARS:
            os.environ.pop(k, None)
        os.environ["AWS_CONFIG_FILE"] = self.path("no-config")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = self.path("no-credentials")
        os.environ.update(self.ENV)

    def tearDown(self):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        super().tearDown()

    def replay(self, *args, source=SAMPLES):
        return run("replay", source, "--settle", "0", "-q", *args)

    def reference(self, source=SAMPLES, *args):
        out = self.path("ref.ndjson")
        if os.path.exists(out):
            os.unlink(out)
        status, _, err = self.replay("--target", "file:" + out, "--batch-size", "10000", *args,
                                     source=source)
        self.assertEqual(status, 0, err)
        with open(out) as f:
            return [r for line in f for r in json.loads(line)["Records"]]


class LambdaTargetTest(EnvCase):
    CREDS = ("AKIDREPLAYTEST", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session/token+1=")
    ENV = {"AWS_ACCESS_KEY_ID": CREDS[0], "AWS_SECRET_ACCESS_KEY": CREDS[1],
           "AWS_SESSION_TOKEN": CREDS[2], "AWS_REGION": "eu-west-1"}

    def setUp(self):
        super().setUp()
        self.target = TargetServer()
        self.target.lambda_creds = self.CREDS

    def tearDown(self):
        self.target.stop()
        super().tearDown()

    def test_invoke_is_signed_and_keeps_item_order(self):
        ref = self.reference()
        status, _, err = self.replay("--target", "lambda:audit-fn:live",
                                     "--lambda-endpoint-url", self.target.url,
                                     "--parallelism", "3", "--batch-size", "20")
        self.assertEqual(status, 0, err)
        self.assertEqual(self.target.bad_signatures, [])
        self.assertEqual(len(self.target.invocations), self.target.batches)
        self.assertGreater(self.target.batches, 3)
        self.assertEqual(set(self.target.invocations), {("audit-fn", "live", "RequestResponse")})
        self.assertEqual(per_item(self.target.accepted), per_item(ref))

    def test_endpoint_from_the_environment_and_a_function_arn(self):
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.target.url
        arn = "arn:aws:lambda:eu-west-1:123456789012:function:audit-fn:prod"
        status, _, err = self.replay("--target", "lambda:" + arn, "--event-types", "REMOVE")
        self.assertEqual(status, 0, err)
        self.assertEqual(self.target.bad_signatures, [])
        self.assertTrue(self.target.invocations)
        self.assertEqual({i[0] for i in self.target.invocations}, {arn})
        self.assertEqual({i[1] for i in self.target.invocations}, {None})

    def test_missing_credentials_are_said_before_reading(self):
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            os.environ.pop(k, None)
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        try:
            status, _, err = self.replay("--target", "lambda:audit-fn",
                                         "--lambda-endpoint-url", self.target.url,
                                         source=self.path("no-such-source"))
        finally:
            os.environ.pop("AWS_EC2_METADATA_DISABLED", None)
        self.assertNotEqual(status, 0)
        self.assertIn("credentials", err)
        self.assertNotIn("no-such-source", err)  # the source was never opened
        self.assertEqual(self.target.invocations, [])

    def test_a_wrong_secret_is_refused_before_reading(self):
        # The server's check must be able to fail: sign with another secret.
        os.environ["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", "lambda:audit-fn",
                                     "--lambda-endpoint-url", self.target.url,
                                     "--event-types", "REMOVE", "--max-retries", "0",
                                     "--dlq", "file:" + dlq)
        self.assertEqual(status, 3, err)
        self.assertIn("InvalidSignatureException", err)
        self.assertTrue(self.target.bad_signatures)
        self.assertTrue(all("botocore" in why for why in self.target.bad_signatures))
        self.assertEqual((self.target.invocations, self.target.accepted), ([], []))
        self.assertFalse(os.path.exists(dlq))

    def test_a_missing_function_stops_before_reading_even_in_a_dry_run(self):
        """Reproduction: a missing function was DLQ'd batch by batch, and a dry
        run passed. GetFunction (with the qualifier) now stops the run first."""
        self.target.functions = {("audit-fn", "live")}
        dlq = self.path("dlq.ndjson")
        for spec in ("lambda:audit-fn:prod", "lambda:other-fn"):
            for dry in ((), ("--dry-run",)):
                status, _, err = self.replay("--target", spec, "--lambda-endpoint-url",
                                             self.target.url, "--dlq", "file:" + dlq, *dry,
                                             source=self.path("no-such-source"))
                self.assertEqual(status, 3, err)
                self.assertIn("target %s: ResourceNotFoundException" % spec, err)
                self.assertNotIn("no-such-source", err)
        self.assertEqual(self.target.invocations, [])
        self.assertFalse(os.path.exists(dlq))
        status, _, err = self.replay("--target", "lambda:audit-fn:live", "--dry-run",
                                     "--lambda-endpoint-url", self.target.url)
        self.assertEqual(status, 0, err)

    def test_throttles_are_waited_out(self):
        self.target.throttle_first, self.target.retry_after = 3, "0"
        report = self.path("replay.json")
        status, _, err = self.replay("--target", "lambda:audit-fn", "--lambda-endpoint-url",
                                     self.target.url, "--max-retries", "0", "--report",
                                     report)
        self.assertEqual(status, 0, err)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual((rep["throttled"], rep["retries"]), (3, 0))
        self.assertEqual(rep["acknowledged"], rep["records"])

    def test_dlq_names_the_real_function_and_the_executed_version(self):
        ref = self.reference()
        self.target.poison = {ref[5]["dynamodb"]["SequenceNumber"]}
        self.target.executed_version = "42"
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", "lambda:audit-fn:live",
                                     "--lambda-endpoint-url", self.target.url,
                                     "--batch-size", "1", "--max-retries", "0",
                                     "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        with open(dlq) as f:
            line = json.loads(f.readline())
        self.assertEqual(line["requestContext"]["functionArn"],
                         "arn:aws:lambda:eu-west-1:123456789012:function:audit-fn:live")
        self.assertEqual(line["responseContext"],
                         {"statusCode": 200, "executedVersion": "42",
                          "functionError": "Unhandled"})
        self.assertEqual(line["requestContext"]["approximateInvokeCount"], 1)

    def test_function_error_is_a_failure_and_bisected(self):
        ref = self.reference()
        poison = ref[17]
        self.target.poison = {poison["dynamodb"]["SequenceNumber"]}
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", "lambda:audit-fn",
                                     "--lambda-endpoint-url", self.target.url,
                                     "--batch-size", "40", "--max-retries", "1",
                                     "--bisect-on-error", "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        self.assertEqual(sorted(r["eventID"] for r in self.target.accepted),
                         sorted(r["eventID"] for r in ref if r is not poison))
        with open(dlq) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["responseContext"]["functionError"], "Unhandled")
        self.assertIn("poison record", lines[0]["ddbaudit"]["errorMessage"])
        self.assertEqual([r["eventID"] for r in lines[0]["ddbaudit"]["Records"]],
                         [poison["eventID"]])


class MotoReplayTest(EnvCase):
    ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}

    @classmethod
    def setUpClass(cls):
        require_moto()
        cls.moto = Moto()

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def setUp(self):
        super().setUp()
        self.target = TargetServer()

    def tearDown(self):
        self.target.stop()
        super().tearDown()

    def queue(self, name, **attributes):
        sqs = self.moto.client("sqs")
        return sqs, sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def drain(self, sqs, url):
        bodies = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                bodies.append(m["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def test_sqs_dlq_holds_the_records_and_is_redriven(self):
        ref = self.reference()
        poison = ref[21]
        self.target.poison = {poison["dynamodb"]["SequenceNumber"]}
        sqs, url = self.queue("replay-dlq")
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "30",
                                     "--max-retries", "0", "--bisect-on-error",
                                     "--dlq", "sqs:" + url)
        self.assertEqual(status, 1, err)
        bodies = self.drain(sqs, url)
        self.assertEqual(len(bodies), 1)
        msg = json.loads(bodies[0])
        self.assertEqual(msg["requestContext"]["condition"], "RetryAttemptsExhausted")
        self.assertEqual(msg["DDBStreamBatchInfo"]["batchSize"], 1)
        self.assertEqual([r["eventID"] for r in msg["ddbaudit"]["Records"]], [poison["eventID"]])
        # The messages, saved as lines, re-drive the record once fixed.
        saved = self.write("dlq.ndjson", "".join(b + "\n" for b in bodies))
        self.target.poison.clear()
        self.target.accepted.clear()
        status, _, err = self.replay("--target", self.target.url, source=saved)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted], [poison["eventID"]])

    def big_items(self, name, sizes):
        """A source of INSERTs whose images hold a string of each size."""
        root = self.path(name)
        for i, size in enumerate(sizes):
            rec = {"timestamp": "2025-07-12T11:%02d:00.000000" % i, "eventName": "INSERT",
                   "userId": "big%02d" % i, "activityId": "a", "awsRegion": "us-east-1",
                   "eventSource": "aws:dynamodb",
                   "newImage": {"UserId": {"S": "big%02d" % i}, "ActivityId": {"S": "a"},
                                "Blob": {"S": "x" * size}}}
            self.write("%s/2025/07/12/11/big%02d-a.json" % (name, i), json.dumps(rec))
        return root

    def test_sqs_messages_are_split_under_the_size_limit(self):
        source = self.big_items("big", [60000] * 12)
        ref = self.reference(source)
        self.target.fail_first = 10 ** 9
        limit = 256 * 1024  # the queue says its limit; ddbaudit keeps under it
        sqs, url = self.queue("replay-dlq-big", MaximumMessageSize=str(limit))
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "10000",
                                     "--max-retries", "0", "--dlq", "sqs:" + url,
                                     source=source)
        self.assertEqual(status, 1, err)
        bodies = self.drain(sqs, url)
        self.assertGreater(len(bodies), 2)
        self.assertTrue(all(len(b.encode()) <= limit for b in bodies))
        got = [r["eventID"] for b in bodies for r in json.loads(b)["ddbaudit"]["Records"]]
        self.assertEqual(sorted(got), sorted(r["eventID"] for r in ref))
        # One record too big for any message: the run stops, nothing dropped.
        source = self.big_items("huge", [300000])
        status, _, err = self.replay("--target", self.target.url, "--max-retries", "0",
                                     "--dlq", "sqs:" + url, source=source)
        self.assertEqual(status, 3, err)
        self.assertIn("use --dlq file:PATH", err)
        self.assertEqual(self.drain(sqs, url), [])

    def test_a_missing_queue_is_refused_even_in_a_dry_run(self):
        missing = self.moto.url + "/123456789012/no-such-queue"
        status, _, err = self.replay("--target", self.target.url, "--dry-run",
                                     "--dlq", "sqs:" + missing,
                                     source=self.path("no-such-source"))
        self.assertEqual(status, 3, err)
        self.assertIn("cannot use the DLQ", err)
        self.assertNotIn("no-such-source", err)

    def test_a_missing_queue_is_refused_before_anything_is_sent(self):
        ckpt = self.path("ckpt.json")
        self.target.fail_first = 10 ** 9
        missing = self.moto.url + "/123456789012/no-such-queue"
        status, _, err = self.replay("--target", self.target.url, "--max-retries", "0",
                                     "--dlq", "sqs:" + missing, "--checkpoint", ckpt)
        self.assertEqual(status, 3, err)
        self.assertIn("cannot use the DLQ", err)
        self.assertEqual(self.target.batches, 0)
        self.assertFalse(os.path.exists(ckpt))

    def test_a_queue_deleted_during_the_run_stops_it_without_losing_records(self):
        sqs, url = self.queue("replay-dlq-gone")
        ckpt = self.path("ckpt.json")
        self.target.fail_first = 10 ** 9
        # The queue exists when the run starts and is gone when the first
        # failed batch is to be stored.
        self.target.processor_on_failure = lambda: sqs.delete_queue(QueueUrl=url)
        status, _, err = self.replay("--target", self.target.url, "--max-retries", "0",
                                     "--dlq", "sqs:" + url, "--checkpoint", ckpt)
        self.assertEqual(status, 3, err)
        self.assertIn("cannot send to the DLQ", err)
        if os.path.exists(ckpt):  # nothing acknowledged: nothing to skip on resume
            with open(ckpt) as f:
                self.assertEqual(sum(json.load(f)["lanes"]), 0)

    def create_function(self, name):
        import io
        import zipfile
        iam = self.moto.client("iam")
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("index.py", "def handler(event, context):\n    return None\n")
        self.moto.client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
            Code={"ZipFile": code.getvalue()})

    def upload_samples(self, s3, bucket):
        s3.create_bucket(Bucket=bucket)
        uploaded = 0
        for d, _, files in os.walk(SAMPLES):
            for name in files:
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    s3.put_object(Bucket=bucket, Key="audit-logs/" + os.path.relpath(
                        path, SAMPLES), Body=f.read())
                uploaded += 1
        return uploaded

    def test_sigkill_during_a_replay_from_s3_loses_nothing(self):
        self.upload_samples(self.moto.client("s3"), "audit-kill")
        src, ep = "s3://audit-kill/audit-logs/", ("--endpoint-url", self.moto.url)
        ref = self.reference(src, *ep)
        self.target.delay = 0.02
        self.target.fail_first = 2  # and a few failures on the way
        ck = self.path("ck.json")
        args = ["replay", src, "--settle", "0", "-q", "--target", self.target.url,
                "--batch-size", "5", "--parallelism", "3", "--checkpoint", ck, *ep]
        p = subprocess.Popen([BINARY, *args], stderr=subprocess.PIPE)
        self.target.kill_after(p, 60)
        p.stderr.close()
        self.assertGreaterEqual(len(self.target.accepted), 60)
        self.assertLess(len(self.target.accepted), len(ref))
        self.target.delay = 0
        status, _, err = run(*args)
        self.assertEqual(status, 0, err)
        got = [r["eventID"] for r in self.target.accepted]
        self.assertEqual(set(got), {r["eventID"] for r in ref})
        self.assertLessEqual(len(got) - len(ref), 3 * 5)  # at most a batch a lane again
        first = [r for i, r in enumerate(self.target.accepted) if r["eventID"] not in got[:i]]
        self.assertEqual(per_item(first), per_item(ref))

    def test_rebuilt_log_equals_the_original(self):
        """A bucket replayed (with injected failures) into a processor that
        writes seed-format audit objects into another bucket: the rebuilt log
        holds the same changes, item by item, in the same order."""
        s3 = self.moto.client("s3")
        uploaded = self.upload_samples(s3, "audit")
        ep = ("--endpoint-url", self.moto.url)
        # A dry run first: what the replay would ask of S3 and of a Lambda
        # (which must exist: the dry run checks it).
        report = self.path("dry.json")
        lam = ("--lambda-endpoint-url", self.moto.url)
        status, out, err = self.replay("--target", "lambda:audit-fn", "--dry-run", *lam, *ep,
                                       source="s3://audit/audit-logs/")
        self.assertEqual(status, 3, err)
        self.assertIn("ResourceNotFoundException", err)
        self.create_function("audit-fn")
        status, out, err = self.replay("--target", "lambda:audit-fn", "--dry-run", "--report",
                                       report, *lam, *ep, source="s3://audit/audit-logs/")
        self.assertEqual(status, 0, err)
        with open(report) as f:
            dry = json.load(f)
        self.assertEqual(dry["source"]["get_requests"], uploaded)
        self.assertGreaterEqual(dry["source"]["list_requests"], 1)
        self.assertGreater(dry["source"]["estimated_cost_usd"], 0)
        self.assertEqual(dry["target"]["requests"], dry["batches"])
        self.assertAlmostEqual(dry["target"]["estimated_request_cost_usd"],
                               dry["batches"] * 0.20 / 1e6)
        s3.create_bucket(Bucket="rebuilt")
        # The seed's processor overwrites an item's object within an hour:
        # versioning keeps every write.
        s3.put_bucket_versioning(Bucket="rebuilt",
                                 VersioningConfiguration={"Status": "Enabled"})
        lock = threading.Lock()
        last = [datetime.datetime(2000, 1, 1)]

        def processor(records):
            for r in records:
                keys = r["dynamodb"]["Keys"]
                with lock:  # the seed writes utcnow(); kept strictly increasing
                    now = max(datetime.datetime.utcnow(),
                              last[0] + datetime.timedelta(microseconds=1))
                    last[0] = now
                audit = {"timestamp": now.isoformat(), "eventName": r["eventName"],
                         "userId": keys["UserId"]["S"], "activityId": keys["ActivityId"]["S"],
                         "awsRegion": r["awsRegion"], "eventSource": r["eventSource"]}
                if "OldImage" in r["dynamodb"]:
                    audit["oldImage"] = r["dynamodb"]["OldImage"]
                if "NewImage" in r["dynamodb"]:
                    audit["newImage"] = r["dynamodb"]["NewImage"]
                key = "audit-logs/%s/%s-%s.json" % (now.strftime("%Y/%m/%d/%H"),
                                                    audit["userId"], audit["activityId"])
                s3.put_object(Bucket="rebuilt", Key=key, Body=json.dumps(audit),
                              ContentType="application/json")
        self.target.processor = processor
        self.target.fail_first = 3
        status, _, err = self.replay("--target", self.target.url, "--parallelism", "4",
                                     "--batch-size", "25", "--max-retries", "5", *ep,
                                     source="s3://audit/audit-logs/")
        self.assertEqual(status, 0, err)
        fields = ("eventName", "OldImage", "NewImage")
        original = self.reference("s3://audit/audit-logs/", *ep)
        rebuilt = self.reference("s3://rebuilt/audit-logs/", "--versions", *ep)
        self.assertEqual(len(rebuilt), len(original))
        self.assertEqual(per_item(rebuilt, fields), per_item(original, fields))


class SqsRegionTest(EnvCase):
    """An AWS queue URL's region signs the DLQ's requests, whatever
    --region says; a custom endpoint's queue uses the configured region."""
    CREDS = ("AKIDSQSTEST", "sqs-secret-key", "")
    ENV = {"AWS_ACCESS_KEY_ID": CREDS[0], "AWS_SECRET_ACCESS_KEY": CREDS[1],
           "AWS_REGION": "us-east-1"}

    def setUp(self):
        super().setUp()
        self.target = TargetServer()
        self.sqs = TargetServer()
        self.sqs.sqs_creds = self.CREDS

    def tearDown(self):
        self.target.stop()
        self.sqs.stop()
        super().tearDown()

    def test_queue_url_region_signs_the_dlq(self):
        self.target.fail_first = 10 ** 9
        os.environ["AWS_ENDPOINT_URL_SQS"] = self.sqs.url
        url = "https://sqs.eu-west-2.amazonaws.com/123456789012/replay-dlq"
        status, _, err = self.replay("--target", self.target.url, "--event-types", "REMOVE",
                                     "--max-retries", "0", "--region", "ap-south-1",
                                     "--dlq", "sqs:" + url)
        self.assertEqual(status, 1, err)
        self.assertEqual(self.sqs.bad_signatures, [])
        self.assertTrue(self.sqs.sqs_messages)
        self.assertEqual(set(self.sqs.sqs_regions), {"eu-west-2"})
        # A queue on a custom endpoint: the configured region.
        self.sqs.sqs_regions.clear()
        os.environ.pop("AWS_ENDPOINT_URL_SQS")
        status, _, err = self.replay("--target", self.target.url, "--event-types", "REMOVE",
                                     "--max-retries", "0", "--dlq",
                                     "sqs:" + self.sqs.url + "123456789012/replay-dlq")
        self.assertEqual(status, 1, err)
        self.assertEqual(set(self.sqs.sqs_regions), {"us-east-1"})


if __name__ == "__main__":
    main()
