"""The command line: help, version, usage errors and exit statuses."""
import json
import os
import re
from harness import ROOT, Case, main, run, verify_json
from fault_proxy import Rule
from moto import MotoCase, upload_tree
from test_s3 import SAMPLES

SEED = {"timestamp": "2025-07-12T08:27:50.412608", "eventName": "INSERT", "userId": "u1",
        "activityId": "a1", "awsRegion": "us-east-1", "eventSource": "aws:dynamodb",
        "newImage": {"UserId": {"S": "u1"}, "ActivityId": {"S": "a1"}, "V": {"N": "1"}}}


class CliTest(Case):
    def test_help_and_version(self):
        for args in (["--help"], ["verify", "--help"], ["history", "--help"], ["ls", "--help"]):
            status, out, _ = run(*args)
            self.assertEqual(status, 0, args)
            self.assertIn(b"usage: ddbaudit", out)
        status, out, _ = run("--version")
        self.assertEqual(status, 0)
        self.assertRegex(out.decode(), r"^ddbaudit \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        cases = [[], ["frobnicate"], ["verify"], ["verify", ".", "--from", "yesterday"],
                 ["verify", ".", "--fail-on", "sometimes"], ["verify", ".", "--since", "3x"],
                 ["verify", ".", "--from", "2025-07-12T10:00", "--to", "2025-07-12T09:00"],
                 ["verify", ".", "--format", "xml"], ["history", "."],
                 ["history", ".", "--key", "UserId"], ["ls", ".", "--report", "x"],
                 ["verify", ".", "--key-schema", "A:RANGE"], ["verify", ".", "extra", "args"]]
        for args in cases:
            status, _, err = run(*args)
            self.assertEqual(status, 2, f"{args}: {err}")
            self.assertTrue(err.strip(), f"{args}: no message")
        # The message names the option, not its argument.
        status, _, err = run("ls", ".", "--settle", "0")
        self.assertEqual(status, 2, err)
        self.assertIn("'--settle' does not apply to ls", err)

    def test_missing_source_is_runtime_failure(self):
        status, _, err = run("verify", self.path("does-not-exist"))
        self.assertEqual(status, 3)
        self.assertIn("cannot open", err)

    def test_exit_status_follows_fail_on(self):
        good = self.write("good.ndjson", json.dumps(SEED) + "\n")
        status, rep, _ = verify_json(good)
        self.assertEqual(status, 0)
        self.assertEqual(rep["summary"]["anomalies"], {"error": 0, "warning": 0, "info": 0})
        # A MODIFY first in range is UNKNOWN_PRIOR (info): fails only with --fail-on info.
        mod = dict(SEED, eventName="MODIFY", oldImage=SEED["newImage"])
        f = self.write("mod.ndjson", json.dumps(mod) + "\n")
        self.assertEqual(verify_json(f)[0], 0)
        self.assertEqual(verify_json(f, "--fail-on", "warning")[0], 0)
        self.assertEqual(verify_json(f, "--fail-on", "info")[0], 1)
        bad = self.write("bad.ndjson", "{not json\n")
        self.assertEqual(verify_json(bad)[0], 1)
        self.assertEqual(verify_json(bad, "--fail-on", "never")[0], 0)

    def test_summary_line_and_quiet(self):
        good = self.write("good.ndjson", json.dumps(SEED) + "\n")
        status, _, err = run("verify", good, "--format", "csv")
        self.assertEqual(status, 0)
        self.assertRegex(err, r"1 objects, 1 records \(1 valid, 0 invalid\), 1 items")
        status, _, err = run("verify", good, "--format", "csv", "-q")
        self.assertEqual(err, "")

    def test_stdin(self):
        data = (json.dumps(SEED) + "\n").encode()
        status, out, err = run("verify", "-", "--format", "json", stdin=data)
        self.assertEqual(status, 0, err)
        self.assertEqual(json.loads(out)["summary"]["records"], 1)

    def test_report_dir(self):
        good = self.write("good.ndjson", json.dumps(SEED) + "\n")
        out = self.path("reports", "nested")
        status, stdout, err = run("verify", good, "--report", out)
        self.assertEqual(status, 0, err)
        self.assertEqual(stdout, b"")
        import hashlib, os
        for name in ("report.json", "anomalies.csv", "report.md", "manifest.ndjson"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        rep = json.load(open(os.path.join(out, "report.json")))
        self.assertEqual(rep["schema"], "ddbaudit.report/v1")
        digest = hashlib.sha256(open(os.path.join(out, "manifest.ndjson"), "rb").read()).hexdigest()
        self.assertEqual(rep["manifest"]["sha256"], digest)
        line = json.loads(open(os.path.join(out, "manifest.ndjson")).readline())
        self.assertEqual(line["sha256"], hashlib.sha256(open(good, "rb").read()).hexdigest())

    def test_since_needs_a_unit(self):
        """A bare number is refused, naming the units and the likely meaning."""
        status, _, err = run("verify", ".", "--since", "24")
        self.assertEqual(status, 2, err)
        self.assertIn("s, m, h, d or w", err)
        self.assertIn("24h", err)
        good = self.write("good.ndjson", json.dumps(SEED) + "\n")
        for since in ("24h", "90m", "2d", "1w", "3600s"):
            status, _, err = run("verify", good, "--since", since, "--format", "csv",
                                 "--now", "2025-07-12T09:00:00Z")
            self.assertIn(status, (0, 1), f"{since}: {err}")

    def test_from_takes_offsets(self):
        """--from and --to take a date alone, a Z or an offset: all one instant."""
        f = self.write("good.ndjson", json.dumps(SEED) + "\n")
        for from_ in ("2025-07-12T08:27:50Z", "2025-07-12T10:27:50+02:00",
                      "2025-07-12T03:27:50-0500", "2025-07-12 08:27:50"):
            status, rep, err = verify_json(f, "--from", from_, "--to", "2025-07-12T08:27:51Z")
            self.assertEqual(status, 0, f"{from_}: {err}")
            self.assertEqual(rep["summary"]["records"], 1, from_)
        status, rep, err = verify_json(f, "--from", "2025-07-12T10:27:51+02:00")
        self.assertEqual(rep["summary"]["records"], 0, err)

    def test_invalid_choices_list_the_valid_ones(self):
        cases = [(["verify", ".", "--format", "xml"], "json, csv, md or html"),
                 (["history", ".", "--key", "A=b", "--format", "md"], "text or json"),
                 (["ls", ".", "--format", "csv"], "text or json"),
                 (["verify", ".", "--fail-on", "bad"], "error, warning, info or never"),
                 (["verify", ".", "--progress", "x"], "auto, always or never"),
                 (["replay", ".", "--target", "-", "--view", "ALL"], "NEW_AND_OLD_IMAGES"),
                 (["replay", ".", "--target", "-", "--on-failure", "x"], "hold-item"),
                 (["replay", ".", "--target", "-", "--event-types", "PUT"], "INSERT, MODIFY")]
        for args, valid in cases:
            status, _, err = run(*args)
            self.assertEqual(status, 2, f"{args}: {err}")
            self.assertIn(valid, err, args)

    def test_unknown_flags_and_commands_suggest_the_nearest(self):
        cases = [(["verify", ".", "--formt", "json"], "did you mean '--format'?"),
                 (["verify", ".", "--fromat", "json"], "did you mean '--format'?"),
                 (["ls", ".", "--frm", "2025-07-12"], "did you mean '--from'?"),
                 (["verify", ".", "--report-dir", "x"], "did you mean '--report'?"),
                 (["verify", ".", "--key-shema", "A:HASH"], "did you mean '--key-schema'?"),
                 (["replay", ".", "--dead-letter", "x"], "unknown option '--dead-letter'"),
                 (["ls", ".", "--ver"], "ambiguous: --versions, --verbose, --version"),
                 (["verify", ".", "--from"], "option '--from' needs a value"),
                 (["verify", ".", "--versions=yes"], "option '--versions' takes no value"),
                 (["verify", ".", "-x"], "unknown option '-x'"),
                 (["verfy", "."], "did you mean 'verify'?"),
                 (["histroy", "."], "did you mean 'history'?"),
                 (["help", "replya"], "did you mean 'replay'?")]
        for args, says in cases:
            status, _, err = run(*args)
            self.assertEqual(status, 2, f"{args}: {err}")
            self.assertIn(says, err, args)
        # Nothing near: no guess, and the command's help is named.
        status, _, err = run("verify", ".", "--zzzzzzzz")
        self.assertEqual(status, 2)
        self.assertNotIn("did you mean", err)
        self.assertIn("ddbaudit verify --help", err)
        # A flag of another command is not suggested for this one.
        status, _, err = run("ls", ".", "--fail-onn", "error")
        self.assertNotIn("--fail-on'", err)
        status, _, err = run("frobnicate")
        self.assertNotIn("did you mean", err)
        self.assertIn("usage: ddbaudit", err)

    def test_version_and_help_forms(self):
        status, version, _ = run("--version")
        self.assertEqual(status, 0)
        for args in (["-V"], ["version"], ["ls", "--version"], ["verify", "-V"],
                     ["history", "--version"], ["replay", "--version"]):
            status, out, err = run(*args)
            self.assertEqual((status, out), (0, version), f"{args}: {err}")
        for cmd in ("ls", "verify", "history", "replay"):
            status, out, _ = run("help", cmd)
            self.assertEqual(status, 0)
            self.assertEqual(out, run(cmd, "--help")[1], cmd)
            self.assertIn(f"usage: ddbaudit {cmd}".encode(), out)
        status, out, _ = run("help")
        self.assertEqual(status, 0)
        self.assertIn(b"s3://BUCKET/PREFIX/", out)
        self.assertIn(b"help <command>", out)

    def test_help_footers_name_only_the_command_s_options(self):
        """ls has no --fail-on: its exit status says what ls's statuses mean."""
        _, out, _ = run("ls", "--help")
        self.assertNotIn(b"--fail-on", out)
        self.assertIn(b"0 listed", out)
        _, out, _ = run("verify", "--help")
        self.assertIn(b"1 anomalies at or above --fail-on", out)
        _, out, _ = run("history", "--help")
        self.assertIn(b"1 an error-severity anomaly", out)


class HistoryExitTest(Case):
    def log(self, *records):
        return self.write("log.ndjson", "".join(json.dumps(r) + "\n" for r in records))

    def test_key_names_matching_nothing_name_the_log_s(self):
        f = self.log(SEED)
        status, _, err = run("history", f, "--key", "userid=u1,activityid=a1")
        self.assertEqual(status, 1, err)
        self.assertRegex(err, r"no item has key attribute '(userid|activityid)'")
        self.assertIn("the log's items are keyed by UserId (S), ActivityId (S)", err)
        status, _, err = run("history", f, "--key", "UserId=N:1,ActivityId=a1")
        self.assertEqual(status, 1, err)
        self.assertIn("no item has key attribute 'UserId' of type N", err)
        status, _, err = run("history", f, "--key", "UserId=u1")
        self.assertEqual(status, 1, err)
        self.assertIn("keyed by UserId (S), ActivityId (S)", err)
        status, _, err = run("history", f, "--key", "UserId=u1", "--format", "json")
        self.assertEqual(status, 1, err)
        # The right names for an item that did not change: nothing wrong.
        status, out, err = run("history", f, "--key", "UserId=u2,ActivityId=a1")
        self.assertEqual(status, 0, err)
        self.assertIn("no events for this item", err)
        self.assertNotIn("keyed by", err)

    def test_exit_1_when_the_item_has_an_error(self):
        img = lambda v: {"UserId": {"S": "u1"}, "ActivityId": {"S": "a1"}, "V": {"N": str(v)}}
        gap = dict(SEED, eventName="MODIFY", timestamp="2025-07-12T08:30:00.000000",
                   oldImage=img(5), newImage=img(6))
        other = dict(SEED, userId="u2", newImage=dict(img(1), UserId={"S": "u2"}))
        f = self.log(SEED, gap, other)
        status, out, err = run("history", f, "--key", "UserId=u1,ActivityId=a1")
        self.assertEqual(status, 1, err)
        self.assertIn(b"GAP (error)", out)
        status, out, err = run("history", f, "--key", "UserId=u1,ActivityId=a1",
                               "--format", "json")
        self.assertEqual(status, 1, err)
        self.assertEqual(json.loads(out)["count"], 2)
        # Another item of the same log is clean.
        status, _, err = run("history", f, "--key", "UserId=u2,ActivityId=a1")
        self.assertEqual(status, 0, err)
        # Information (UNKNOWN_PRIOR: history before the range) is not an error.
        status, out, err = run("history", self.log(gap), "--key", "UserId=u1,ActivityId=a1")
        self.assertEqual(status, 0, err)
        self.assertIn(b"UNKNOWN_PRIOR (info)", out)

    def test_nothing_to_read_is_not_a_quiet_item(self):
        """A wrong source or a range without records: exit 1, not "no events"."""
        os.makedirs(self.path("empty", "x"))
        status, _, err = run("history", self.path("empty"), "--key", "UserId=u1,ActivityId=a1")
        self.assertEqual(status, 1, err)
        self.assertIn("no records in the range", err)
        status, _, err = run("history", self.log(SEED), "--key", "UserId=u1,ActivityId=a1",
                             "--from", "2030-01-01")
        self.assertEqual(status, 1, err)
        self.assertIn("EMPTY_RANGE", err)

    def test_unreadable_objects_are_mentioned(self):
        """An object that could not be read may have held the item's changes."""
        self.write("logs/audit-logs/2025/07/12/08/u1-a1.json", json.dumps(SEED))
        self.write("logs/audit-logs/2025/07/12/08/u9-a9.json", '{"eventName": "MOD')
        status, out, err = run("history", self.path("logs"), "--key", "UserId=u1,ActivityId=a1")
        self.assertEqual(status, 0, err)
        self.assertIn(b"1 events", out)
        self.assertIn("1 error names no item", err)
        self.assertIn("may miss changes", err)


class LsFormatTest(Case):
    def test_ls_json_lines(self):
        """ls --format json: one object a line, the same objects as the text form."""
        body = json.dumps(SEED) + "\n"
        self.write("logs/audit-logs/2025/07/12/08/u1-a1.json", body)
        self.write("logs/audit-logs/2025/07/12/09/u2-a1.json", body)
        self.write("logs/notes.txt", "not an hour\n")
        status, out, err = run("ls", self.path("logs"), "--format", "json")
        self.assertEqual(status, 0, err)
        rows = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual(len(rows), 3)
        for row in rows:
            self.assertEqual(list(row), ["key", "version", "etag", "size", "last_modified",
                                         "hour"])
            self.assertRegex(row["last_modified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        by_key = {r["key"]: r for r in rows}
        first = by_key["audit-logs/2025/07/12/08/u1-a1.json"]
        self.assertEqual(first["size"], len(body))
        self.assertEqual(first["hour"], "2025-07-12T08:00:00Z")
        self.assertIsNone(first["version"])
        self.assertIsNone(by_key["notes.txt"]["hour"])
        text = run("ls", self.path("logs"))[1].decode().splitlines()
        self.assertEqual([line.split()[-1] for line in text], [r["key"] for r in rows])
        # The range prunes the JSON listing as it does the text one.
        status, out, err = run("ls", self.path("logs"), "--format", "json",
                               "--from", "2025-07-12T12:00Z")
        self.assertEqual(status, 0, err)
        self.assertNotIn(b"/08/", out)


class S3CliTest(MotoCase):
    """-v: prefixes listed, requests retried and the request count on stderr; -v -v:
    every request; never a secret. ls --format json from S3."""
    SECRET, TOKEN = "wJalrXUtnFEMI-NEVER-LOGGED", "FwoGZXIvYXdzE-NEVER-LOGGED"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.create_bucket(Bucket="audit")
        cls.count = upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")

    def ls(self, *args):
        env = {"AWS_SECRET_ACCESS_KEY": self.SECRET, "AWS_SESSION_TOKEN": self.TOKEN}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return run("ls", "s3://audit/audit-logs/", "--endpoint-url", self.proxy.url,
                       "--from", "2025-07-12T08:00Z", "--to", "2025-07-12T10:00Z", *args)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)

    def assertNoSecret(self, err):
        for secret in (self.SECRET, self.TOKEN, "Signature=", "Credential="):
            self.assertNotIn(secret, err)

    def test_quiet_by_default(self):
        status, _, err = self.ls()
        self.assertEqual(status, 0, err)
        self.assertNotIn("listing s3://", err)

    def test_prefixes_and_retries(self):
        self.proxy.rules.append(Rule("GET", "list-type=2", 503, 1))
        status, out, err = self.ls("-v")
        self.assertEqual(status, 0, err)
        # The range's hours with an hour of slack each side: 07, 08, 09, 10.
        listed = re.findall(r"listing s3://audit/(\S+)", err)
        self.assertEqual(listed, [f"audit-logs/2025/07/12/{h:02d}/" for h in (7, 8, 9, 10)])
        self.assertIn("range: from 2025-07-12T08:00:00Z to 2025-07-12T10:00:00Z", err)
        self.assertRegex(err, r"GET http://127\.0\.0\.1:\d+/audit\?\S*list-type=2\S*: "
                              r"HTTP 503, \d+ bytes; retrying in [\d.]+ s \(attempt 2 of \d+\)")
        self.assertEqual(len(re.findall("retrying", err)), 4)
        listed_n = int(re.search(r"listed (\d+) objects under 4 prefixes", err).group(1))
        self.assertEqual(listed_n, len(out.splitlines()))
        m = re.search(r"s3://audit: (\d+) requests, (\d+) retried", err)
        self.assertEqual(int(m.group(2)), 4)
        self.assertEqual(int(m.group(1)), len(self.proxy.log) - 4)
        self.assertNotIn(": HTTP 200", err)  # every request only with -v -v
        self.assertIn("credentials from", err)
        self.assertNoSecret(err)

    def test_every_request_at_debug(self):
        status, _, err = self.ls("-v", "-v")
        self.assertEqual(status, 0, err)
        answered = re.findall(r"GET http://\S+: HTTP (\d+), \d+ bytes \(1 attempt\)", err)
        self.assertEqual(len(answered), len(self.proxy.log))
        self.assertIn("200", answered)
        self.assertNoSecret(err)

    def test_ls_json_from_s3(self):
        """ls --format json on S3: the listing's ETag, size and LastModified."""
        status, out, err = self.ls("--format", "json")
        self.assertEqual(status, 0, err)
        rows = [json.loads(line) for line in out.decode().splitlines()]
        self.assertGreater(len(rows), 0)
        for row in rows[:5]:
            head = self.s3.head_object(Bucket="audit", Key=row["key"])
            self.assertEqual(row["etag"], head["ETag"].strip('"'))
            self.assertEqual(row["size"], head["ContentLength"])
            self.assertEqual(row["last_modified"],
                             head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.assertEqual(row["hour"], row["key"][11:24].replace("/", "-", 2)
                             .replace("/", "T") + ":00:00Z")


def options_in(text):
    """The long options a text names: --help output, the man page (its \\- and font
    escapes undone) or the README."""
    text = re.sub(r"\\f[BIRP]", "", text.replace("\\-", "-"))
    return set(re.findall(r"(?<![\w-])--([a-z][a-z-]*[a-z])", text))


class DocsAgreeTest(Case):
    """--help, the man page and the README name the same options, and each command's
    --help names exactly the options the command takes."""
    COMMANDS = ("ls", "verify", "history", "replay", "reconcile", "restore", "evidence",
                "merge")

    def takes(self, cmd, option):
        # The value is a path in the test's directory: an option that names an
        # output (--metrics is written even by a failed run) must not write
        # into the working directory, the source tree.
        _, _, err = run(cmd, self.path("no-such-source"), f"--{option}={self.path('x')}")
        return "unknown option" not in err and "does not apply" not in err

    def test_help_and_man_page_agree(self):
        with open(os.path.join(ROOT, "docs", "ddbaudit.1")) as f:
            man = options_in(f.read())
        helps = {cmd: options_in(run(cmd, "--help")[1].decode()) for cmd in self.COMMANDS}
        every = set().union(*helps.values())
        self.assertEqual(sorted(every - man), [], "in --help, not in the man page")
        self.assertEqual(sorted(man - every), [], "in the man page, not in any --help")
        for cmd in self.COMMANDS:
            taken = {o for o in man if self.takes(cmd, o)}
            self.assertEqual(sorted(helps[cmd] - taken), [], f"{cmd} --help names these")
            self.assertEqual(sorted(taken - helps[cmd]), [], f"{cmd} takes these")

    def test_readme_names_real_options(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            lines = [line for line in f if "cmake" not in line and "ctest" not in line]
        every = set().union(*(options_in(run(c, "--help")[1].decode()) for c in self.COMMANDS))
        self.assertEqual(sorted(options_in("".join(lines)) - every), [])


class StandAloneTest(Case):
    # Planning notes and style guides outside the repository are not shipped with it, so
    # nothing in it may send a reader there: the design is in the project's own docs.
    # The names are split so that this file does not match itself.
    CITED = re.compile("|".join([r"DESIGN" + r"\.md", r"STYLE" + r"\.md", r"\.\./shared/",
                                 r"/work" + r"/(?:shared|briefs|main)"]))

    def test_no_citations_outside_the_repository(self):
        found = []
        for top, dirs, files in os.walk(ROOT):
            rel = os.path.relpath(top, ROOT)
            dirs[:] = [d for d in dirs if not (d.startswith(".") or
                                               (rel == "." and d.startswith("build")))]
            for name in files:
                if name.startswith("."):
                    continue  # .git of a worktree names where the repository lives
                path = os.path.join(top, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue  # binary: fuzz corpora, archives
                for n, line in enumerate(text.splitlines(), 1):
                    if self.CITED.search(line):
                        found.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
        self.assertEqual(found, [], "\n".join(found))


if __name__ == "__main__":
    main()
