"""report.html in a real browser (Debian's chromium, headless, driven over the
DevTools protocol by chromium.py): the page loads with no network request, no
console message, no CSP violation and no exception; its figures (read from the
DOM) equal report.json's; its objects table equals the manifest; a screenshot
is not blank; hostile object names and item keys stay text. The harness's own
controls show it sees a request, a console error and a CSP violation."""
import copy
import json
import os
import unittest
import chromium
from harness import Case, ROOT, main, run
from test_cli import SEED

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
# Everything the tests compare, read from the page by DevTools (the page
# itself runs no script: its CSP forbids it).
FIGURES = r"""JSON.stringify({
  verdict: document.getElementById('verdict').dataset.verdict,
  summary: Object.fromEntries([...document.querySelectorAll('[id^="sum-"]')]
             .map(e => [e.id, e.textContent])),
  kinds: Object.fromEntries([...document.querySelectorAll('details.kind')]
           .map(d => [d.dataset.kind, [+d.dataset.count,
                                       d.querySelectorAll('tbody > tr').length]])),
  hours: [...document.querySelectorAll('#chart-anomalies g.hour')].map(g => ({
           hour: g.dataset.hour, records: +g.dataset.records,
           anomalies: +g.dataset.anomalies, in_range: !g.classList.contains('slack'),
           stacked: [...g.querySelectorAll('rect')].reduce((s, r) => s + +r.dataset.n, 0)})),
  record_bars: [...document.querySelectorAll('#chart-records rect')]
                 .map(r => [r.dataset.hour, +r.dataset.records]),
  items: [...document.querySelectorAll('#chart-items rect')]
           .reduce((s, r) => s + +r.dataset.items, 0),
  objects: [...document.querySelectorAll('#objects-table tbody tr')]
             .map(tr => [tr.cells[0].textContent, tr.cells[5].textContent.trim()]),
  manifest: (document.getElementById('manifest-sha256') || {}).textContent,
  legend: [...document.querySelectorAll('table.legend tbody th a')].map(a => a.textContent),
  diffs: document.querySelectorAll('table.diff').length,
  active: document.querySelectorAll('script,img,iframe,object,embed,link,form,base').length,
  text: document.body.textContent,
})"""
# A page with nothing on it has a variance near zero; the report's is hundreds.
MIN_VARIANCE = 50


def flat_summary(summary, prefix="sum-"):
    out = {}
    for k, v in summary.items():
        if isinstance(v, dict):
            out.update(flat_summary(v, f"{prefix}{k}-"))
        else:
            out[prefix + k] = str(v)
    return out


class HtmlCase(Case):
    browser = None

    @classmethod
    def setUpClass(cls):
        if not chromium.find():
            raise unittest.SkipTest("SKIPPED: chromium is not installed (Debian package "
                                    "chromium; scripts/setup installs it)")
        cls.browser = chromium.Browser()

    @classmethod
    def tearDownClass(cls):
        if cls.browser:
            cls.browser.close()

    def report(self, source, *args):
        rdir = os.path.join(self.dir, "rep")
        status, _, err = run("verify", source, "--report", rdir, "--settle", "0", "-q", *args)
        self.assertNoCrash(status, err)
        self.assertIn(status, (0, 1), err)
        with open(os.path.join(rdir, "report.json")) as f:
            rep = json.load(f)
        return rdir, rep

    def render(self, path, screenshot=False):
        url = "file://" + os.path.abspath(path)
        page = self.browser.open(url, expression=FIGURES, screenshot=screenshot)
        self.assertEqual(page.problems(url), [], "the page is not self-contained and quiet")
        return page, json.loads(page.value)


class SamplesHtmlTest(HtmlCase):
    def test_figures_equal_report_json(self):
        rdir, rep = self.report(SAMPLES)
        page, dom = self.render(os.path.join(rdir, "report.html"), screenshot=True)
        self.assertEqual(dom["verdict"], rep["run"]["verdict"])
        self.assertEqual(dom["summary"], flat_summary(rep["summary"]))
        self.assertEqual(dom["summary"]["sum-records"], str(rep["summary"]["records"]))
        # Every finding is listed, UNKNOWN_PRIOR one row an item as in the CSV.
        self.assertEqual({k: v[0] for k, v in dom["kinds"].items()},
                         rep["summary"]["by_kind"])
        self.assertEqual({k: v[1] for k, v in dom["kinds"].items()},
                         rep["summary"]["by_kind"])
        self.assertEqual(sorted(dom["legend"]), sorted(rep["summary"]["by_kind"]))
        want = [{k: h[k] for k in ("hour", "records", "anomalies", "in_range")}
                for h in rep["hours"]]
        self.assertEqual([{k: h[k] for k in ("hour", "records", "anomalies", "in_range")}
                          for h in dom["hours"]], want)
        for h in dom["hours"]:
            self.assertEqual(h["stacked"], h["anomalies"], h["hour"])
        self.assertEqual(dom["record_bars"], [[h["hour"], h["records"]] for h in rep["hours"]])
        self.assertEqual(dom["items"], rep["summary"]["items"])
        # The objects table is the manifest: same keys, same SHA-256.
        with open(os.path.join(rdir, "manifest.ndjson")) as f:
            man = [json.loads(line) for line in f]
        self.assertEqual(sorted(dom["objects"]), sorted([m["key"], m["sha256"]] for m in man))
        self.assertEqual(dom["manifest"], rep["manifest"]["sha256"])
        # The samples' GAP has an attribute diff, shown in its item's timeline.
        gaps = [a for a in rep["anomalies"] if a["kind"] == "GAP" and a.get("diff")]
        self.assertTrue(gaps, "the samples should hold a GAP with a diff")
        self.assertGreaterEqual(dom["diffs"], len(gaps))
        for name in gaps[0]["diff"]["changed"]:
            self.assertIn(name, dom["text"])
        # Full details, never cut.
        for a in rep["anomalies"]:
            self.assertIn(a["detail"], dom["text"])
        self.assertEqual(dom["active"], 0)
        self.assertGreater(chromium.luminance_variance(page.png), MIN_VARIANCE,
                           "the screenshot is blank")

    def test_print_opens_closed_sections(self):
        rdir, rep = self.report(SAMPLES)
        url = "file://" + os.path.join(rdir, "report.html")
        # The objects' section starts closed; on paper every row is laid out.
        probe = """JSON.stringify([document.getElementById('objects-table').open,
          [...document.querySelectorAll('#objects-table tbody tr')]
            .filter(tr => tr.checkVisibility()).length])"""
        for media, want in (("screen", 0), ("print", rep["summary"]["objects"])):
            page = self.browser.open(url, expression=probe, media=media)
            self.assertEqual(page.problems(url), [])
            self.assertEqual(json.loads(page.value), [False, want], media)

    def test_format_html_on_stdout(self):
        status, out, err = run("verify", SAMPLES, "--format", "html", "--settle", "0")
        self.assertEqual(status, 1, err)
        page = self.write("out.html", out)
        _, dom = self.render(page)
        self.assertEqual(dom["verdict"], "findings")


class HostileHtmlTest(HtmlCase):
    def test_names_and_keys_stay_text(self):
        hour = os.path.join(self.dir, "src", "2025", "07", "12", "08")
        os.makedirs(hour)
        # Object names hold no '/': no closing tags, but opening ones do.
        names = [b"<script>document.title='x'<!--.json",
                 b"\"><img src=x onerror=alert(1)>.json",
                 b"bad-\xff\xfe<b>.json"]
        for name in names[:2]:
            with open(os.path.join(os.fsencode(hour), name), "wb") as f:
                f.write(b"{not json <script>")
        rec = copy.deepcopy(SEED)
        rec["userId"] = "<img src=http://ddbaudit-test.invalid/b.png>"
        rec["newImage"]["UserId"]["S"] = rec["userId"]
        rec["newImage"]["<svg onload=alert(1)>"] = {"S": "</td></table><script>x</script>"}
        with open(os.path.join(os.fsencode(hour), names[2]), "w") as f:
            json.dump(rec, f)
        rdir, rep = self.report(os.path.join(self.dir, "src"))
        self.assertTrue(rep["anomalies"])
        _, dom = self.render(os.path.join(rdir, "report.html"))
        self.assertEqual(dom["active"], 0, "data became markup")
        self.assertIn("<script>document.title='x'<!--.json", dom["text"])
        self.assertIn("\"><img src=x onerror=alert(1)>.json", dom["text"])
        self.assertIn("bad-\\xFF\\xFE<b>.json", dom["text"])
        self.assertEqual(dom["summary"], flat_summary(rep["summary"]))


class ControlsTest(HtmlCase):
    """The harness would see what it asserts never happens."""

    def test_the_harness_sees_requests_console_errors_and_csp_violations(self):
        csp = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'; img-src data:\">")
        body = ("<img src=\"http://ddbaudit-test.invalid/a.png\">"
                "<script>console.error('boom')</script>")
        open_page = self.write("open.html", f"<!DOCTYPE html><html><head></head><body>{body}"
                                            "</body></html>")
        strict = self.write("strict.html", f"<!DOCTYPE html><html><head>{csp}</head><body>"
                                           f"{body}</body></html>")
        url = "file://" + open_page
        p = self.browser.open(url, screenshot=True)
        problems = p.problems(url)
        self.assertIn("request http://ddbaudit-test.invalid/a.png", problems)
        self.assertIn("console error: boom", problems)
        self.assertLess(chromium.luminance_variance(p.png), MIN_VARIANCE)
        url = "file://" + strict
        problems = self.browser.open(url).problems(url)
        self.assertTrue(any("Content Security Policy" in x for x in problems), problems)


if __name__ == "__main__":
    main()
