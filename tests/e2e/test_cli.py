"""The command line: help, version, usage errors and exit statuses."""
import json
import os
import re
from harness import ROOT, Case, main, run, verify_json

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
