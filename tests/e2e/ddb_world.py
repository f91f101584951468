"""A seed world for the DynamoDB tests: random changes to a set of items,
written as the seed writer's audit objects (one object per change, under
audit-logs/YYYY/MM/DD/HH/<userId>-<activityId>.json, at most one change of an
item an hour so that no object overwrites another) and applied to a table
through boto3, so that the log and the table agree. It records the table's
true state after every change, for restore tests."""
import datetime
import json
import os
import random
from moto import MotoCase

KEYS = [{"AttributeName": "UserId", "KeyType": "HASH"},
        {"AttributeName": "ActivityId", "KeyType": "RANGE"}]
DEFS = [{"AttributeName": "UserId", "AttributeType": "S"},
        {"AttributeName": "ActivityId", "AttributeType": "S"}]
START = datetime.datetime(2025, 7, 12, 0, 0, tzinfo=datetime.timezone.utc)


def create_table(ddb, name):
    ddb.create_table(TableName=name, KeySchema=KEYS, AttributeDefinitions=DEFS,
                     BillingMode="PAY_PER_REQUEST")


def key_of(user, act):
    return {"UserId": {"S": user}, "ActivityId": {"S": act}}


def image(rng, user, act, version):
    return {**key_of(user, act), "Version": {"N": str(version)},
            "Amount": {"N": f"{rng.randint(0, 99999) / 100:g}"},
            "Status": {"S": rng.choice(["NEW", "PAID", "SHIPPED"])},
            "Tags": {"SS": sorted(rng.sample(["a", "b", "c", "d"], 2))}}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


class World:
    """changes: [(time, user, act, event, old, new)] in time order; truth:
    {key tuple: image} after all of them."""

    def __init__(self, items=30, hours=6, seed=7):
        rng = random.Random(seed)
        self.changes = []
        self.truth = {}
        self.hours = hours
        for i in range(items):
            user, act = f"user{i:03d}", f"act{i % 4}"
            cur, version = None, 0
            for h in range(hours):
                if rng.random() < 0.35:
                    continue
                t = START + datetime.timedelta(hours=h, minutes=rng.randint(0, 59),
                                               seconds=rng.randint(0, 59),
                                               microseconds=rng.randint(0, 999999))
                if cur is None:
                    version += 1
                    new = image(rng, user, act, version)
                    self.changes.append((t, user, act, "INSERT", None, new))
                    cur = new
                elif rng.random() < 0.15:
                    self.changes.append((t, user, act, "REMOVE", cur, None))
                    cur = None
                else:
                    version += 1
                    new = image(rng, user, act, version)
                    self.changes.append((t, user, act, "MODIFY", cur, new))
                    cur = new
            if cur is not None:
                self.truth[(user, act)] = cur
        self.changes.sort(key=lambda c: c[0])

    def state_at(self, t):
        """{key tuple: image} after every change at or before t."""
        state = {}
        for when, user, act, ev, _, new in self.changes:
            if when > t:
                break
            if ev == "REMOVE":
                state.pop((user, act), None)
            else:
                state[(user, act)] = new
        return state

    def write_log(self, root):
        """The audit objects under root/audit-logs; returns that directory."""
        base = os.path.join(root, "audit-logs")
        for t, user, act, ev, old, new in self.changes:
            d = os.path.join(base, t.strftime("%Y/%m/%d/%H"))
            os.makedirs(d, exist_ok=True)
            rec = {"timestamp": iso(t), "eventName": ev, "userId": user, "activityId": act,
                   "awsRegion": "us-east-1", "eventSource": "aws:dynamodb"}
            if old is not None:
                rec["oldImage"] = old
            if new is not None:
                rec["newImage"] = new
            with open(os.path.join(d, f"{user}-{act}.json"), "w") as f:
                json.dump(rec, f)
        return base

    def apply(self, ddb, table):
        for _, user, act, ev, _, new in self.changes:
            if ev == "REMOVE":
                ddb.delete_item(TableName=table, Key=key_of(user, act))
            else:
                ddb.put_item(TableName=table, Item=new)


class DdbCase(MotoCase):
    """A moto_server for DynamoDB (and S3), with AWS_ENDPOINT_URL_DYNAMODB set
    for the ddbaudit runs and a boto3 client in self.ddb."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = cls.moto.url
        cls.ddb = cls.moto.client("dynamodb")
