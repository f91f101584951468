"""Shared helpers for the end-to-end tests: locate the binary, run it, read
its JSON report. Tests are plain unittest cases run by ctest."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("DDA_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("DDBAUDIT") or os.path.join(ROOT, "build", "ddbaudit")


def run(*args, stdin=None, timeout=600):
    """Runs ddbaudit; returns (exit status, stdout, stderr)."""
    p = subprocess.run([BINARY, *args], input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def verify_json(*args, **kw):
    """Runs `ddbaudit verify ... --format json`; returns (status, report, stderr)."""
    status, out, err = run("verify", *args, "--format", "json", **kw)
    if status in (0, 1):
        return status, json.loads(out), err
    return status, None, err


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, *parts):
        p = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write(self, rel, data):
        p = self.path(rel)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return p

    def assertNoCrash(self, status, err):
        self.assertIn(status, (0, 1, 2, 3), f"crashed or killed (status {status}): {err}")
        self.assertNotIn("AddressSanitizer", err)
        self.assertNotIn("runtime error", err)


def main():
    if not os.path.exists(BINARY):
        print(f"SKIPPED: ddbaudit binary not found at {BINARY}", file=sys.stderr)
        sys.exit(1)
    unittest.main(verbosity=2)
