"""--metrics: the Prometheus text file read back by prometheus_client's own
parser (the one node_exporter's format follows), counters carried across
runs, failed runs, label escaping, and the CloudWatch EMF line checked
against the structure AWS documents for it."""
import json
import os
import shutil
import sys
from harness import Case, ROOT, main, run

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client (scripts/setup installs it) lives
    # in the system interpreter's dist-packages; pip cannot reach PyPI here.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
with open(os.path.join(ROOT, "samples", "expected.json")) as f:
    EXPECTED = json.load(f)

# The units CloudWatch accepts (MetricDatum.Unit).
EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
             "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
             "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
             "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
             "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def parse(path):
    """{(name, frozenset(labels)): value} and {family: type} of a text file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = s.value
    return text, samples, types


def value(samples, name, **labels):
    """The one series of name whose labels include labels."""
    hits = [v for (n, ls), v in samples.items()
            if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) == 1, f"{name} {labels}: {len(hits)} series"
    return hits[0]


class PrometheusTest(Case):
    def setUp(self):
        super().setUp()
        if text_string_to_metric_families is None:
            self.skipTest("SKIPPED: prometheus_client (Debian python3-prometheus-client) "
                          "is not installed; run scripts/setup")
        self.prom = os.path.join(self.dir, "textfile", "ddbaudit.prom")
        os.makedirs(os.path.dirname(self.prom))

    def verify(self, source, *extra):
        return run("verify", source, "--settle", "0", "--metrics", self.prom, "-q",
                   "--format", "json", *extra)

    def test_sample_run_figures(self):
        status, out, err = self.verify(SAMPLES)
        self.assertEqual(status, 1, err)
        rep = json.loads(out)
        text, s, types = parse(self.prom)
        for fam in ("ddbaudit_records", "ddbaudit_objects", "ddbaudit_read_bytes",
                    "ddbaudit_anomalies", "ddbaudit_runs", "ddbaudit_items"):
            self.assertEqual(types[fam], "counter", fam)  # the parser drops _total
            self.assertIn(f"# TYPE {fam}_total counter", text)
        for fam in ("ddbaudit_last_run_verdict", "ddbaudit_last_success_timestamp_seconds",
                    "ddbaudit_last_run_duration_seconds", "ddbaudit_build_info"):
            self.assertEqual(types[fam], "gauge", fam)
            self.assertIn(f"# HELP {fam} ", text)
        self.assertEqual(value(s, "ddbaudit_records_total"), EXPECTED["records"])
        self.assertEqual(value(s, "ddbaudit_objects_total"), EXPECTED["objects"])
        self.assertEqual(value(s, "ddbaudit_items_total"), EXPECTED["items"])
        self.assertEqual(value(s, "ddbaudit_read_bytes_total"), rep["summary"]["bytes"])
        self.assertEqual(value(s, "ddbaudit_last_run_records"), EXPECTED["records"])
        for kind, n in EXPECTED["by_kind"].items():
            self.assertEqual(value(s, "ddbaudit_anomalies_total", kind=kind), n, kind)
            self.assertEqual(value(s, "ddbaudit_last_run_anomalies", kind=kind), n, kind)
        # Every kind has a series from the first run, zero or not.
        self.assertEqual(value(s, "ddbaudit_anomalies_total", kind="DOUBLE_INSERT",
                               severity="error"), 0)
        sev = {}
        for (n, ls), v in s.items():
            if n == "ddbaudit_last_run_anomalies":
                sev[dict(ls)["severity"]] = sev.get(dict(ls)["severity"], 0) + v
        self.assertEqual(sev, rep["summary"]["anomalies"])
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="findings"), 1)
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="clean"), 0)
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="incomplete"), 0)
        self.assertEqual(value(s, "ddbaudit_last_run_exit_code"), 1)
        last = value(s, "ddbaudit_last_run_timestamp_seconds")
        self.assertEqual(value(s, "ddbaudit_last_success_timestamp_seconds"), last)
        self.assertGreaterEqual(value(s, "ddbaudit_last_run_duration_seconds"), 0)
        version = run("--version")[1].decode()
        info = [dict(ls) for (n, ls), _ in s.items() if n == "ddbaudit_build_info"]
        self.assertEqual(len(info), 1)
        self.assertIn(info[0]["commit"], version)
        self.assertIn(info[0]["version"], version)
        labels = dict(next(ls for (n, ls) in s if n == "ddbaudit_records_total"))
        self.assertEqual(labels, {"command": "verify", "source": SAMPLES})
        # Only the file itself is left in the collector's directory.
        self.assertEqual(os.listdir(os.path.dirname(self.prom)), ["ddbaudit.prom"])

    def test_counters_carry_on_and_a_failure_keeps_last_success(self):
        self.assertEqual(self.verify(SAMPLES)[0], 1)
        _, first, _ = parse(self.prom)
        ok_time = value(first, "ddbaudit_last_success_timestamp_seconds")
        self.assertEqual(self.verify(SAMPLES)[0], 1)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_records_total"), 2 * EXPECTED["records"])
        self.assertEqual(value(s, "ddbaudit_last_run_records"), EXPECTED["records"])
        self.assertEqual(value(s, "ddbaudit_runs_total", verdict="findings"), 2)
        self.assertEqual(value(s, "ddbaudit_anomalies_total", kind="GAP"),
                         2 * EXPECTED["by_kind"]["GAP"])
        ok_time = value(s, "ddbaudit_last_success_timestamp_seconds")
        self.assertGreaterEqual(ok_time, value(first, "ddbaudit_last_run_timestamp_seconds"))

        # A run that fails (a source that cannot be read: exit 3) still
        # writes the file; the verdict says incomplete and the last success
        # is the previous one. The source is the same name, now gone.
        gone = os.path.join(self.dir, "gone")
        shutil.copytree(SAMPLES, gone)
        status, _, err = self.verify(gone)
        self.assertEqual(status, 1, err)
        shutil.rmtree(gone)
        _, before, _ = parse(self.prom)
        status, _, err = self.verify(gone)
        self.assertEqual(status, 3, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="incomplete"), 1)
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="findings"), 0)
        self.assertEqual(value(s, "ddbaudit_last_run_exit_code"), 3)
        self.assertEqual(value(s, "ddbaudit_runs_total", verdict="incomplete"), 1)
        self.assertEqual(value(s, "ddbaudit_runs_total", verdict="findings"), 1)
        self.assertEqual(value(s, "ddbaudit_last_run_records"), 0)
        self.assertEqual(value(s, "ddbaudit_records_total"), EXPECTED["records"])
        self.assertEqual(value(s, "ddbaudit_last_success_timestamp_seconds"),
                         value(before, "ddbaudit_last_success_timestamp_seconds"))
        self.assertGreater(value(s, "ddbaudit_last_run_timestamp_seconds"),
                           value(s, "ddbaudit_last_success_timestamp_seconds"))

    def test_first_run_failing_has_no_success(self):
        status, _, err = self.verify(os.path.join(self.dir, "missing"))
        self.assertEqual(status, 3, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_last_success_timestamp_seconds"), 0)
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="incomplete"), 1)

    def test_a_foreign_previous_file_restarts_the_counters(self):
        with open(self.prom, "w") as f:
            f.write("ddbaudit_records_total{command=\"verify\"} banana\n\0\xff garbage\n")
        self.assertEqual(self.verify(SAMPLES)[0], 1)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_records_total"), EXPECTED["records"])

    def test_clean_run(self):
        src = os.path.join(self.dir, "clean", "audit-logs", "2025", "07", "12", "06")
        os.makedirs(src)
        one = os.path.join(SAMPLES, "2025", "07", "12", "06")
        name = sorted(n for n in os.listdir(one) if n.endswith(".json"))[0]
        shutil.copy(os.path.join(one, name), src)
        status, _, err = self.verify(os.path.join(self.dir, "clean"))
        self.assertEqual(status, 0, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_last_run_verdict", verdict="clean"), 1)
        self.assertEqual(value(s, "ddbaudit_last_run_exit_code"), 0)
        self.assertEqual(value(s, "ddbaudit_records_total"), 1)

    def test_label_values_are_escaped(self):
        # A source name with a quote, a backslash and a line feed: the file
        # must still parse, and give the name back exactly.
        weird = os.path.join(self.dir, 'a"b\\c\nd')
        shutil.copytree(SAMPLES, weird)
        status, _, err = run("verify", weird, "--settle", "0", "--metrics", self.prom, "-q")
        self.assertEqual(status, 1, err)
        text, s, _ = parse(self.prom)
        self.assertIn('source="' + self.dir + '/a\\"b\\\\c\\nd"', text)
        labels = dict(next(ls for (n, ls) in s if n == "ddbaudit_records_total"))
        self.assertEqual(labels["source"], weird)
        self.assertEqual(value(s, "ddbaudit_records_total"), EXPECTED["records"])

    def test_names_not_utf8_are_shown_escaped(self):
        # Label values must be UTF-8: a byte that is not is shown as ddbaudit
        # shows names everywhere (\xFF, backslashes doubled).
        weird = os.path.join(self.dir.encode(), b'a\\b\xff')
        shutil.copytree(SAMPLES.encode(), weird)
        status, _, err = run("verify", weird, "--settle", "0", "--metrics", self.prom, "-q")
        self.assertEqual(status, 1, err)
        _, s, _ = parse(self.prom)
        labels = dict(next(ls for (n, ls) in s if n == "ddbaudit_records_total"))
        self.assertEqual(labels["source"], self.dir + '/a\\\\b\\xFF')

    def test_ignored_and_suppressed_findings_stay_visible(self):
        status, _, err = self.verify(SAMPLES, "--ignore", "DUPLICATE")
        self.assertEqual(status, 1, err)
        text, s, types = parse(self.prom)
        self.assertEqual(types["ddbaudit_last_run_ignored_anomalies"], "gauge")
        self.assertEqual(value(s, "ddbaudit_last_run_ignored_anomalies", kind="DUPLICATE"),
                         EXPECTED["by_kind"]["DUPLICATE"])
        self.assertEqual(value(s, "ddbaudit_last_run_anomalies", kind="DUPLICATE"), 0)
        self.assertNotIn("ddbaudit_last_run_suppressed_anomalies{", text)

    def test_unwritable_path_fails_before_reading(self):
        bad = os.path.join(self.dir, "no-such-dir", "ddbaudit.prom")
        status, _, err = run("verify", SAMPLES, "--metrics", bad, "-q")
        self.assertEqual(status, 3)
        self.assertIn("--metrics", err)
        self.assertIn("no-such-dir", err)
        self.assertFalse(os.path.exists(os.path.dirname(bad)))

    def test_only_verify_takes_it(self):
        status, _, err = run("ls", SAMPLES, "--metrics", self.prom)
        self.assertEqual(status, 2)
        self.assertIn("does not apply", err)


class EmfTest(Case):
    def emf_line(self, *args, env=None):
        status, _, err = run("verify", *args, "--settle", "0", "--metrics", "emf", "-q",
                             "--format", "json")
        lines = [l for l in err.splitlines() if l.startswith("{")]
        self.assertEqual(len(lines), 1, err)
        return status, json.loads(lines[0])

    def check_structure(self, doc):
        """The Embedded Metric Format specification's rules."""
        aws = doc["_aws"]
        self.assertIsInstance(aws["Timestamp"], int)
        self.assertGreater(aws["Timestamp"], 1_500_000_000_000)  # milliseconds
        directives = aws["CloudWatchMetrics"]
        self.assertIsInstance(directives, list)
        for d in directives:
            self.assertIsInstance(d["Namespace"], str)
            self.assertTrue(1 <= len(d["Namespace"]) <= 255)
            self.assertIsInstance(d["Dimensions"], list)
            for dimset in d["Dimensions"]:
                self.assertLessEqual(len(dimset), 30)
                for dim in dimset:
                    self.assertIsInstance(doc[dim], str, dim)
                    self.assertTrue(1 <= len(doc[dim]) <= 1024, dim)
            self.assertLessEqual(len(d["Metrics"]), 100)
            names = set()
            for m in d["Metrics"]:
                self.assertTrue(1 <= len(m["Name"]) <= 255)
                self.assertIn(m.get("Unit", "None"), EMF_UNITS)
                self.assertIn(m["Name"], doc)
                self.assertIsInstance(doc[m["Name"]], (int, float))
                names.add(m["Name"])
            self.assertEqual(len(names), len(d["Metrics"]))

    def test_sample_run(self):
        status, doc = self.emf_line(SAMPLES)
        self.assertEqual(status, 1)
        self.check_structure(doc)
        self.assertEqual(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ddbaudit")
        self.assertEqual(doc["Records"], EXPECTED["records"])
        self.assertEqual(doc["Objects"], EXPECTED["objects"])
        self.assertEqual(doc["GAP"], EXPECTED["by_kind"]["GAP"])
        self.assertEqual(doc["Verdict"], "findings")
        self.assertEqual((doc["Success"], doc["ExitCode"]), (1, 1))
        self.assertEqual(doc["Command"], "verify")
        self.assertEqual(doc["Source"], SAMPLES)
        units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        self.assertEqual((units["Duration"], units["Bytes"]), ("Seconds", "Bytes"))
        self.assertEqual((doc["IgnoredAnomalies"], doc["SuppressedAnomalies"]), (0, 0))

    def test_failed_run_and_namespace(self):
        os.environ["AWS_EMF_NAMESPACE"] = "Audit/Nightly"
        try:
            status, doc = self.emf_line(os.path.join(self.dir, "missing"))
        finally:
            del os.environ["AWS_EMF_NAMESPACE"]
        self.assertEqual(status, 3)
        self.check_structure(doc)
        self.assertEqual(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Audit/Nightly")
        self.assertEqual((doc["Success"], doc["ExitCode"], doc["Verdict"]),
                         (0, 3, "incomplete"))

    def test_long_source_fits_a_dimension(self):
        deep = os.path.join(self.dir, *(["d" * 200] * 6))
        shutil.copytree(SAMPLES, deep)
        status, doc = self.emf_line(deep)
        self.assertEqual(status, 1)
        self.check_structure(doc)
        self.assertEqual(doc["Source"], deep[:1024])


if __name__ == "__main__":
    main()
