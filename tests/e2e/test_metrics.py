"""--metrics: the Prometheus text file read back by a strict parser of the
text exposition format written here and, when it is installed, by
prometheus_client's own parser (the one node_exporter's format follows);
counters carried across runs, failed runs, label escaping, and the
CloudWatch EMF line checked against the structure AWS documents for it. For
verify and for replay (records by outcome, retries, latency)."""
import fcntl
import json
import math
import os
import re
import shutil
import sys
from harness import Case, ROOT, main, run
from target_server import TargetServer

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


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def strict_labels(text, where):
    """Parses '{name="value",...}' exactly as the text format defines it
    (escapes \\, \" and \n only); returns (labels, rest of the line)."""
    assert text.startswith("{"), where
    labels, i = {}, 1
    while text[i] != "}":
        m = LABEL_NAME.match(text, i)
        assert m, f"{where}: bad label name at {text[i:]!r}"
        name, i = m.group(0), m.end()
        assert not name.startswith("__"), f"{where}: reserved label {name}"
        assert text[i:i + 2] == '="', f"{where}: expected =\" after {name}"
        i += 2
        value = []
        while text[i] != '"':
            if text[i] == "\\":
                esc = text[i + 1]
                assert esc in '\\"n', f"{where}: bad escape \\{esc}"
                value.append("\n" if esc == "n" else esc)
                i += 2
            else:
                assert text[i] != "\n", where
                value.append(text[i])
                i += 1
        i += 1
        assert name not in labels, f"{where}: label {name} twice"
        labels[name] = "".join(value)
        if text[i] == ",":
            i += 1
        else:
            assert text[i] == "}", f"{where}: expected , or }} at {text[i:]!r}"
    return labels, text[i + 1:]


def strict_parse(text):
    """The text exposition format (0.0.4), strictly: every line a HELP, a
    TYPE or a sample; one HELP and one TYPE per family, before its samples;
    a family's samples together; counters named _total; no series twice;
    values that are numbers; a newline at the end. Returns
    ({(name, frozenset(labels)): value}, {family: type})."""
    assert text.endswith("\n"), "the file does not end with a newline"
    samples, types, helps, done, current = {}, {}, set(), set(), None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            assert METRIC_NAME.fullmatch(name), where
            assert name not in done, f"{where}: family {name} reopened"
            if current and current != name:
                done.add(current)
            current = name
            if kind == "HELP":
                assert name not in helps, f"{where}: second HELP"
                helps.add(name)
            else:
                assert name not in types, f"{where}: second TYPE"
                assert rest in TYPES, where
                assert not any(k[0] == name for k in samples), f"{where}: TYPE after samples"
                types[name] = rest
            continue
        assert not line.startswith("#") and line, f"{where}: not a sample"
        m = METRIC_NAME.match(line)
        assert m, where
        name = m.group(0)
        labels, rest = strict_labels(line[m.end():], where) if line[m.end()] == "{" else (
            {}, line[m.end():])
        assert rest.startswith(" ") and " " not in rest[1:], f"{where}: value"
        value = float(rest[1:])  # raises on anything that is not a number
        assert name == current, f"{where}: sample outside its family {current}"
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"{where}: duplicate series"
        samples[key] = value
    for name, kind in types.items():
        assert name in helps, f"{name}: TYPE without HELP"
        if kind == "counter":
            assert name.endswith("_total"), f"{name}: a counter not named _total"
            assert all(v >= 0 and v == math.floor(v) for (n, _), v in samples.items()
                       if n == name), f"{name}: a counter that is not a whole number"
    return samples, types


def parse(path):
    """{(name, frozenset(labels)): value} and {family: type} of a text file,
    read by the strict parser, and checked against prometheus_client's
    reading when it is installed (which names counter families without
    _total)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    samples, types = strict_parse(text)
    if text_string_to_metric_families is not None:
        theirs = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                theirs[(s.name, frozenset(s.labels.items()))] = s.value
        assert theirs == samples, "prometheus_client reads the file otherwise"
    else:
        print("NOTE: prometheus_client is not installed; the strict parser alone read "
              "the file", file=sys.stderr)
    # Families by the name prometheus_client gives them (a counter's without _total).
    types = {(n[:-6] if t == "counter" else n): t for n, t in types.items()}
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

    def test_only_verify_and_replay_take_it(self):
        status, _, err = run("ls", SAMPLES, "--metrics", self.prom)
        self.assertEqual(status, 2)
        self.assertIn("does not apply", err)
        status, _, err = run("history", SAMPLES, "--key", "UserId=u,ActivityId=a",
                             "--metrics", self.prom)
        self.assertEqual(status, 2)
        self.assertIn("does not apply", err)

    def test_the_strict_parser_refuses_what_the_format_does_not_allow(self):
        """The parser this file relies on when prometheus_client is absent."""
        good = ('# HELP a_total x\n# TYPE a_total counter\na_total{l="q\\"\\\\\\n"} 3\n')
        samples, _ = strict_parse(good)
        self.assertEqual(samples, {("a_total", frozenset({("l", 'q"\\\n')})): 3})
        for bad in ('# HELP a_total x\n# TYPE a_total counter\na_total 3',  # no newline
                    '# HELP a x\n# TYPE a counter\na 3\n',  # counter without _total
                    '# HELP a x\n# TYPE a gauge\na{l="\\t"} 3\n',  # bad escape
                    '# HELP a x\n# TYPE a gauge\na 3\na 4\n',  # duplicate series
                    '# HELP a x\n# TYPE a gauge\na banana\n',  # not a number
                    '# HELP a x\n# TYPE a gauge\nb 1\n',  # outside its family
                    '# HELP a x\n# TYPE a gauge\na 1\n# TYPE a gauge\n',  # TYPE twice
                    '# HELP a x\n# TYPE a gauge\na{l="x",l="y"} 1\n'):  # label twice
            with self.assertRaises((AssertionError, ValueError), msg=bad):
                strict_parse(bad)


def replay_report(path):
    with open(path) as f:
        return json.load(f)


class ReplayPrometheusTest(Case):
    """replay --metrics FILE: records by outcome, skipped changes, retries,
    throttles, latency and the run's outcome, named ddbaudit_replay_*."""

    def setUp(self):
        super().setUp()
        self.prom = self.path("textfile", "replay.prom")
        self.target = TargetServer()

    def tearDown(self):
        self.target.stop()
        super().tearDown()

    def replay(self, *args, source=SAMPLES):
        report = self.path("report.json")
        status, _, err = run("replay", source, "--settle", "0", "-q", "--target",
                             self.target.url, "--metrics", self.prom, "--report", report,
                             *args)
        rep = replay_report(report) if os.path.exists(report) else None
        if os.path.exists(report):
            os.unlink(report)
        return status, rep, err

    def test_a_clean_replay(self):
        status, rep, err = self.replay("--batch-size", "50")
        self.assertEqual(status, 0, err)
        text, s, types = parse(self.prom)
        sent = len(self.target.accepted)
        self.assertEqual(value(s, "ddbaudit_replay_records_total", outcome="delivered"), sent)
        self.assertEqual(rep["acknowledged"], sent)
        for outcome in ("resumed", "dead_lettered", "dropped", "failed"):
            self.assertEqual(value(s, "ddbaudit_replay_records_total", outcome=outcome), 0)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_records", outcome="delivered"),
                         sent)
        self.assertEqual(value(s, "ddbaudit_replay_skipped_records_total",
                               reason="duplicate"), rep["duplicates_skipped"])
        self.assertEqual(rep["duplicates_skipped"], EXPECTED["by_kind"]["DUPLICATE"])
        self.assertEqual(value(s, "ddbaudit_replay_skipped_records_total", reason="filtered"),
                         0)
        self.assertEqual(value(s, "ddbaudit_replay_batches_total"), rep["batches"])
        self.assertEqual(value(s, "ddbaudit_replay_batches_total"), self.target.batches)
        self.assertEqual(value(s, "ddbaudit_replay_objects_total"), EXPECTED["objects"])
        self.assertGreater(value(s, "ddbaudit_replay_record_bytes_total"), 0)
        self.assertGreater(value(s, "ddbaudit_replay_read_bytes_total"), 0)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_outcome", outcome="clean"), 1)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_outcome", outcome="failures"), 0)
        self.assertEqual(value(s, "ddbaudit_replay_runs_total", outcome="clean"), 1)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_exit_code"), 0)
        self.assertEqual(value(s, "ddbaudit_replay_last_success_timestamp_seconds"),
                         value(s, "ddbaudit_replay_last_run_timestamp_seconds"))
        # Latency in seconds (the report has milliseconds), as quantiles.
        p50 = value(s, "ddbaudit_replay_last_run_batch_latency_seconds", quantile="0.5")
        p99 = value(s, "ddbaudit_replay_last_run_batch_latency_seconds", quantile="0.99")
        self.assertAlmostEqual(p50, rep["latency_p50_ms"] / 1000, places=6)
        self.assertAlmostEqual(p99, rep["latency_p99_ms"] / 1000, places=6)
        self.assertLessEqual(p50, p99)
        self.assertGreater(p50, 0)
        # Conventions: every family ours, counters _total, units in the name.
        for fam, kind in types.items():
            self.assertTrue(fam.startswith("ddbaudit_replay_") or fam == "ddbaudit_build_info",
                            fam)
        for (name, labels), _ in s.items():
            if name != "ddbaudit_build_info":
                self.assertEqual(dict(labels)["command"], "replay")
                self.assertEqual(dict(labels)["source"], SAMPLES)
        self.assertEqual(types["ddbaudit_replay_records"], "counter")
        self.assertEqual(types["ddbaudit_replay_last_run_delivery_seconds"], "gauge")
        self.assertEqual(os.listdir(os.path.dirname(self.prom)), ["replay.prom"])

    def test_dead_letters_retries_and_counters_carried(self):
        ref_status, _, err = run("replay", SAMPLES, "--settle", "0", "-q", "--target",
                                 "file:" + self.path("ref.ndjson"), "--batch-size", "10000")
        self.assertEqual(ref_status, 0, err)
        with open(self.path("ref.ndjson")) as f:
            ref = json.loads(f.readline())["Records"]
        self.target.poison = {ref[33]["dynamodb"]["SequenceNumber"]}
        self.target.throttle_first = 2
        self.target.retry_after = "0"
        dlq = self.path("dlq.ndjson")
        args = ("--batch-size", "50", "--max-retries", "1", "--bisect-on-error",
                "--dlq", "file:" + dlq)
        status, rep, err = self.replay(*args)
        self.assertEqual(status, 1, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_replay_records_total", outcome="dead_lettered"), 1)
        self.assertEqual(value(s, "ddbaudit_replay_records_total", outcome="delivered"),
                         len(ref) - 1)
        self.assertEqual(value(s, "ddbaudit_replay_retries_total"), rep["retries"])
        self.assertGreater(rep["retries"], 0)
        self.assertEqual(value(s, "ddbaudit_replay_throttles_total"), 2)
        self.assertEqual(value(s, "ddbaudit_replay_bisections_total"), rep["bisections"])
        self.assertGreater(rep["bisections"], 0)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_outcome", outcome="failures"), 1)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_exit_code"), 1)
        # A failures run is complete: it moves the last success.
        self.assertEqual(value(s, "ddbaudit_replay_last_success_timestamp_seconds"),
                         value(s, "ddbaudit_replay_last_run_timestamp_seconds"))

        # The second run (the poison still there) adds to the counters.
        status, _, err = self.replay(*args)
        self.assertEqual(status, 1, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_replay_records_total", outcome="dead_lettered"), 2)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_records", outcome="dead_lettered"),
                         1)
        self.assertEqual(value(s, "ddbaudit_replay_runs_total", outcome="failures"), 2)
        self.assertEqual(value(s, "ddbaudit_replay_throttles_total"), 2)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_throttles"), 0)

    def test_a_stopped_run_counts_what_is_left_and_keeps_the_last_success(self):
        self.target.poison = set()
        status, rep, err = self.replay("--batch-size", "10")
        self.assertEqual(status, 0, err)
        _, before, _ = parse(self.prom)
        planned = rep["records"]
        # Every batch fails, and there is no DLQ: the run stops (exit 3).
        self.target.fail_first = 10 ** 6
        status, rep, err = self.replay("--batch-size", "10", "--max-retries", "0")
        self.assertEqual(status, 3, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_records", outcome="failed"),
                         planned)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_records", outcome="delivered"), 0)
        self.assertEqual(value(s, "ddbaudit_replay_records_total", outcome="failed"), planned)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_outcome", outcome="incomplete"), 1)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_exit_code"), 3)
        self.assertEqual(value(s, "ddbaudit_replay_last_success_timestamp_seconds"),
                         value(before, "ddbaudit_replay_last_success_timestamp_seconds"))
        self.assertGreater(value(s, "ddbaudit_replay_last_run_timestamp_seconds"),
                           value(s, "ddbaudit_replay_last_success_timestamp_seconds"))

    def test_a_target_that_refuses_at_the_preflight(self):
        """A run that cannot start still writes the file (nothing planned)."""
        self.target.stop()
        status, _, err = run("replay", SAMPLES, "--settle", "0", "-q", "--target",
                             self.target.url, "--metrics", self.prom)
        self.target = TargetServer()
        self.assertEqual(status, 3, err)
        _, s, _ = parse(self.prom)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_outcome", outcome="incomplete"), 1)
        self.assertEqual(value(s, "ddbaudit_replay_last_success_timestamp_seconds"), 0)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_records", outcome="delivered"), 0)
        self.assertEqual(value(s, "ddbaudit_replay_last_run_objects"), 0)

    def test_a_refused_concurrent_run_leaves_the_metrics_alone(self):
        out = self.path("sent.ndjson")
        status, _, err = run("replay", SAMPLES, "--settle", "0", "-q", "--target",
                             "file:" + out, "--metrics", self.prom)
        self.assertEqual(status, 0, err)
        with open(self.prom, "rb") as f:
            before = f.read()
        with open(out, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            status, _, err = run("replay", SAMPLES, "--settle", "0", "-q", "--target",
                                 "file:" + out, "--metrics", self.prom)
        self.assertEqual(status, 3, err)
        self.assertIn("in use by another replay", err)
        with open(self.prom, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(os.listdir(os.path.dirname(self.prom)), ["replay.prom"])

    def test_a_dry_run_writes_none(self):
        status, _, err = run("replay", SAMPLES, "--settle", "0", "--target", self.target.url,
                             "--metrics", self.prom, "--dry-run")
        self.assertEqual(status, 0, err)
        self.assertIn("a dry run writes no metrics", err)
        self.assertFalse(os.path.exists(self.prom))

    def test_unwritable_path_fails_before_reading(self):
        bad = os.path.join(self.dir, "no-such-dir", "replay.prom")
        status, _, err = run("replay", SAMPLES, "--settle", "0", "--target", self.target.url,
                             "--metrics", bad)
        self.assertEqual(status, 3, err)
        self.assertIn("--metrics", err)
        self.assertEqual(self.target.options + self.target.batches, 0)


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


class ReplayEmfTest(Case):
    check_structure = EmfTest.check_structure

    def test_replay_line(self):
        out = self.path("sent.ndjson")
        status, _, err = run("replay", SAMPLES, "--settle", "0", "-q", "--target",
                             "file:" + out, "--metrics", "emf", "--report",
                             self.path("r.json"))
        self.assertEqual(status, 0, err)
        lines = [l for l in err.splitlines() if l.startswith("{")]
        self.assertEqual(len(lines), 1, err)
        doc = json.loads(lines[0])
        self.check_structure(doc)
        rep = replay_report(self.path("r.json"))
        self.assertEqual((doc["Command"], doc["Outcome"], doc["Success"], doc["ExitCode"]),
                         ("replay", "clean", 1, 0))
        self.assertEqual(doc["Delivered"], rep["acknowledged"])
        self.assertEqual(doc["Records"], rep["records"])
        self.assertEqual(doc["DuplicatesSkipped"], rep["duplicates_skipped"])
        self.assertEqual((doc["DeadLettered"], doc["Dropped"], doc["Failed"]), (0, 0, 0))
        self.assertAlmostEqual(doc["BatchLatencyP99"], rep["latency_p99_ms"] / 1000, places=6)
        units = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        self.assertEqual((units["BatchLatencyP50"], units["RecordBytes"]), ("Seconds", "Bytes"))


if __name__ == "__main__":
    main()
