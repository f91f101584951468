"""Evidence bundles (--bundle, --sign-key) and `ddbaudit evidence verify`:
a bundle verifies with stock tar, sha256sum and openssl alone; one byte
changed in any file, in the signature or in an object read (--recheck, on a
directory and on moto S3) makes `evidence verify` fail naming it; a hostile
bundle is refused, never followed; KMS signing round-trips on moto; a --state
chain links each bundle to the previous one."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from harness import Case, ROOT, main, run
from moto import MotoCase, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def members(path):
    """{name: bytes} of a bundle, read with Python's tarfile."""
    with tarfile.open(path, "r:gz") as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def repack(src, dst, change=None, extra=()):
    """Writes dst with src's members, change(name, data) -> data applied to
    each (None drops it), then the (TarInfo, bytes) pairs of extra."""
    with tarfile.open(src, "r:gz") as t, tarfile.open(dst, "w:gz") as out:
        for m in t.getmembers():
            data = t.extractfile(m).read()
            if change:
                data = change(m.name, data)
            if data is None:
                continue
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            info.mtime = m.mtime
            out.addfile(info, io.BytesIO(data))
        for info, data in extra:
            out.addfile(info, io.BytesIO(data) if data is not None else None)


def flip(data, at=None):
    b = bytearray(data)
    i = len(b) // 2 if at is None else at
    b[i] ^= 0x01
    return bytes(b)


def need_tools(*names):
    missing = [n for n in names if not shutil.which(n)]
    if missing:
        raise AssertionError("SKIPPED loudly: needs " + ", ".join(missing))


class EvidenceCase(Case):
    def setUp(self):
        super().setUp()
        need_tools("openssl", "tar", "sha256sum")
        self.key = os.path.join(self.dir, "key.pem")
        self.pub = os.path.join(self.dir, "pub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.key],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-out", self.pub],
                       check=True, capture_output=True)

    def bundle(self, *extra, name="b.tar.gz", source=SAMPLES, sign=True):
        path = os.path.join(self.dir, name)
        args = ["verify", source, "--bundle", path, "-q", *extra]
        if sign:
            args += ["--sign-key", self.key]
        status, out, err = run(*args)
        self.assertIn(status, (0, 1), err)
        return path

    def check(self, bundle, *extra):
        status, out, err = run("evidence", "verify", bundle, *extra)
        self.assertNoCrash(status, err)
        return status, out.decode(), err


class BundleTest(EvidenceCase):
    def test_verifies_with_stock_tools_only(self):
        rdir = os.path.join(self.dir, "r")
        path = self.bundle("--report", rdir)
        out = os.path.join(self.dir, "x")
        os.mkdir(out)
        subprocess.run(["tar", "-xzf", path, "-C", out], check=True)
        names = set(os.listdir(out))
        # Every file --report writes, whatever formats there are, and the sums.
        reports = set(os.listdir(rdir)) - {".lock"}
        self.assertIn("report.html", reports)
        self.assertEqual(names, reports | {"SHA256SUMS", "SHA256SUMS.sig", "SIGNATURE.json"})
        p = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(out, "SHA256SUMS")) as f:
            listed = {line.split("  ", 1)[1].rstrip("\n") for line in f}
        # Every file but the sums and the signature, SIGNATURE.json included.
        self.assertEqual(listed, names - {"SHA256SUMS", "SHA256SUMS.sig"})
        p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", self.pub,
                            "-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"],
                           cwd=out, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Signature Verified Successfully", p.stdout)
        # SIGNATURE.json names the key as `openssl pkey -pubout -outform DER | sha256sum`.
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", self.pub, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        with open(os.path.join(out, "SIGNATURE.json")) as f:
            sig = json.load(f)
        self.assertEqual(sig["algorithm"], "Ed25519")
        self.assertEqual(sig["key"]["public_key_sha256"], hashlib.sha256(der).hexdigest())
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual(rep["manifest"]["sha256"],
                         sha256_file(os.path.join(out, "manifest.ndjson")))
        self.assertEqual(rep["evidence"], {"bundle": "b.tar.gz", "previous_bundle_sha256": None})

    def test_entries_are_sorted_owned_by_root_and_timed_by_the_run(self):
        path = self.bundle()
        with tarfile.open(path, "r:gz") as t:
            ms = t.getmembers()
            rep = json.loads(t.extractfile("report.json").read())
        self.assertEqual([m.name for m in ms], sorted(m.name for m in ms))
        import datetime
        started = datetime.datetime.strptime(rep["run"]["started"], "%Y-%m-%dT%H:%M:%SZ")
        started = int(started.replace(tzinfo=datetime.timezone.utc).timestamp())
        for m in ms:
            self.assertEqual((m.uid, m.gid, m.mode, m.type), (0, 0, 0o644, tarfile.REGTYPE))
            self.assertEqual(m.mtime, started)
        with open(path, "rb") as f:
            self.assertEqual(f.read(10)[4:8], b"\0\0\0\0", "gzip header carries no time")

    def test_same_reports_as_report_dir(self):
        rdir = os.path.join(self.dir, "r")
        path = self.bundle("--report", rdir)
        m = members(path)
        for name in set(os.listdir(rdir)) - {".lock"}:
            with open(os.path.join(rdir, name), "rb") as f:
                self.assertEqual(f.read(), m[name], name)

    def test_unsigned_bundle(self):
        path = self.bundle(sign=False)
        self.assertNotIn("SHA256SUMS.sig", members(path))
        status, out, err = self.check(path)
        self.assertEqual(status, 0, out + err)
        self.assertIn("signature: ok: none", out)
        # A key asked for, and no signature: that is a failure.
        status, out, err = self.check(path, "--pubkey", self.pub)
        self.assertEqual(status, 1, out + err)
        self.assertIn("signature: FAIL: the bundle is not signed", out)

    def test_bundle_that_cannot_be_written(self):
        path = os.path.join(self.dir, "no", "such", "dir", "b.tar.gz")
        status, out, err = run("verify", SAMPLES, "--bundle", path, "-q")
        self.assertEqual(status, 3, err)
        self.assertIn("cannot write the bundle '%s'" % path, err)
        self.assertFalse(os.path.exists(os.path.dirname(path)))

    def test_bad_sign_keys_are_usage_errors(self):
        rsa = os.path.join(self.dir, "rsa.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-out", rsa],
                       check=True, capture_output=True)
        b = os.path.join(self.dir, "b.tar.gz")
        cases = [(["--bundle", b, "--sign-key", rsa], "not an Ed25519 key"),
                 (["--bundle", b, "--sign-key", self.pub], "not an unencrypted PEM private"),
                 (["--bundle", b, "--sign-key", os.path.join(self.dir, "nope")], "cannot open"),
                 (["--bundle", b, "--sign-key", "kms:"], "needs a key id"),
                 (["--sign-key", self.key], "needs --bundle")]
        for args, want in cases:
            status, _, err = run("verify", SAMPLES, *args)
            self.assertEqual(status, 2, err)
            self.assertIn(want, err)
            self.assertFalse(os.path.exists(b))


class VerifyTest(EvidenceCase):
    def test_everything_holds(self):
        path = self.bundle()
        status, out, err = self.check(path, "--pubkey", self.pub)
        self.assertEqual(status, 0, out + err)
        lines = out.splitlines()
        self.assertTrue(all(": ok: " in line for line in lines), out)
        for want in ["bundle", "signature", "sha256 report.json", "sha256 manifest.ndjson",
                     "sha256 SIGNATURE.json", "report manifest_sha256", "report counts"]:
            self.assertTrue(any(line.startswith(want + ": ok") for line in lines), want)
        status, out, err = self.check(path, "--pubkey", self.pub, "--format", "json")
        doc = json.loads(out)
        self.assertEqual((doc["exit"], doc["result"]), (0, "ok"))
        self.assertTrue(all(c["status"] == "ok" for c in doc["checks"]))

    def test_usage_errors(self):
        path = self.bundle()
        for args, want in [((), "no action given"), (("check", path), "unknown action 'check'"),
                           (("verify",), "no BUNDLE given"),
                           (("verify", path, "--pubkey", self.pub, "--kms", "k"),
                            "cannot be combined"),
                           (("verify", path, "--from", "2025-07-12"), "does not apply"),
                           (("verify", path, "--format", "csv"), "invalid --format")]:
            with self.subTest(args=args):
                status, out, err = run("evidence", *args)
                self.assertEqual(status, 2, err)
                self.assertIn(want, err)
                self.assertEqual(out, b"")

    def test_signature_present_but_not_checked(self):
        status, out, err = self.check(self.bundle())
        self.assertEqual(status, 3, out + err)
        self.assertIn("signature: ERROR: present, not checked", out)

    def test_another_key(self):
        other = os.path.join(self.dir, "other.pem")
        otherpub = os.path.join(self.dir, "otherpub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", other], check=True)
        subprocess.run(["openssl", "pkey", "-in", other, "-pubout", "-out", otherpub], check=True)
        status, out, err = self.check(self.bundle(), "--pubkey", otherpub)
        self.assertEqual(status, 1, out + err)
        self.assertIn("signature: FAIL", out)

    def test_one_byte_of_any_file_or_the_signature(self):
        path = self.bundle()
        for name in members(path):
            with self.subTest(name=name):
                bad = os.path.join(self.dir, "bad.tar.gz")
                repack(path, bad, lambda n, d: flip(d) if n == name else d)
                status, out, err = self.check(bad, "--pubkey", self.pub)
                self.assertEqual(status, 1, out + err)
                if name in ("SHA256SUMS", "SHA256SUMS.sig"):
                    self.assertIn("signature: FAIL", out)
                else:
                    self.assertIn(f"sha256 {name}: FAIL: differs", out)
                    self.assertIn("signature: ok", out)

    def test_a_file_changed_with_its_sum_breaks_the_signature(self):
        path = self.bundle()
        m = members(path)
        new_md = m["report.md"] + b"\nall clean\n"
        sums = m["SHA256SUMS"].decode().replace(hashlib.sha256(m["report.md"]).hexdigest(),
                                                hashlib.sha256(new_md).hexdigest()).encode()
        bad = os.path.join(self.dir, "bad.tar.gz")
        repack(path, bad, lambda n, d: new_md if n == "report.md"
               else sums if n == "SHA256SUMS" else d)
        status, out, err = self.check(bad, "--pubkey", self.pub)
        self.assertEqual(status, 1, out + err)
        self.assertIn("sha256 report.md: ok", out)
        self.assertIn("signature: FAIL", out)

    def test_missing_and_extra_files(self):
        path = self.bundle()
        bad = os.path.join(self.dir, "bad.tar.gz")
        repack(path, bad, lambda n, d: None if n == "anomalies.csv" else d)
        status, out, err = self.check(bad, "--pubkey", self.pub)
        self.assertEqual(status, 1, out + err)
        self.assertIn("sha256 anomalies.csv: FAIL: listed in SHA256SUMS, missing", out)
        info = tarfile.TarInfo("notes.txt")
        info.size = 4
        repack(path, bad, extra=[(info, b"<p/>")])
        status, out, err = self.check(bad, "--pubkey", self.pub)
        self.assertEqual(status, 1, out + err)
        self.assertIn("bundle: FAIL: unexpected entry 'notes.txt'", out)
        # A file of a known name that SHA256SUMS does not list.
        unsigned = self.bundle(sign=False, name="u.tar.gz")
        info = tarfile.TarInfo("SIGNATURE.json")
        info.size = 2
        repack(unsigned, bad, extra=[(info, b"{}")])
        status, out, err = self.check(bad)
        self.assertEqual(status, 1, out + err)
        self.assertIn("sha256 SIGNATURE.json: FAIL: in the bundle, not listed", out)

    def test_hostile_entries_are_named_not_followed(self):
        path = self.bundle()
        bad = os.path.join(self.dir, "bad.tar.gz")
        trav = tarfile.TarInfo("../escape.txt")
        trav.size = 1
        link = tarfile.TarInfo("report.md")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        dup = tarfile.TarInfo("manifest.ndjson")
        dup.size = 2
        big = tarfile.TarInfo("SIGNATURE.json")
        big.size = 70000
        for extra, want in [((trav, b"x"), "unexpected entry '../escape.txt'"),
                            ((link, None), "'report.md' is not a regular file"),
                            ((dup, b"{}"), "'manifest.ndjson' appears twice"),
                            ((big, b" " * 70000), "'SIGNATURE.json' appears twice")]:
            with self.subTest(want=want):
                repack(path, bad, extra=[extra])
                status, out, err = self.check(bad, "--pubkey", self.pub)
                self.assertEqual(status, 1, out + err)
                self.assertIn("bundle: FAIL: " , out)
                self.assertIn(want, out)
                self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.dir),
                                                             "escape.txt")))
        # An oversized small file, alone.
        repack(path, bad, lambda n, d: b" " * 70000 if n == "SIGNATURE.json" else d)
        status, out, err = self.check(bad, "--pubkey", self.pub)
        self.assertEqual(status, 1, out + err)
        self.assertIn("'SIGNATURE.json' is larger than a bundle's file may be", out)

    def test_unreadable_bundles_are_exit_3(self):
        garbage = self.write("garbage.tar.gz", b"not a tarball at all" * 10)
        for path in (garbage, os.path.join(self.dir, "missing.tar.gz")):
            status, out, err = self.check(path)
            self.assertEqual(status, 3, out + err)
            self.assertIn("bundle: ERROR", out)
        path = self.bundle()
        with open(path, "rb") as f:
            data = f.read()
        cut = self.write("cut.tar.gz", data[: len(data) // 2])
        status, out, err = self.check(cut, "--pubkey", self.pub)
        self.assertEqual(status, 3, out + err)

    def test_malformed_sums(self):
        path = self.bundle(sign=False)
        bad = os.path.join(self.dir, "bad.tar.gz")
        for sums, want in [(b"zz  report.json\n", "line 1 is too short"),
                           (b"0" * 64 + b"  report.json", "does not end with a newline"),
                           (b"0" * 64 + b"  a/b\n", "not a plain name"),
                           (b"0" * 64 + b"  x\n" + b"1" * 64 + b"  x\n", "lists 'x' again")]:
            with self.subTest(want=want):
                repack(path, bad, lambda n, d: sums if n == "SHA256SUMS" else d)
                status, out, err = self.check(bad)
                self.assertEqual(status, 1, out + err)
                self.assertIn("SHA256SUMS: FAIL: not in sha256sum's format", out)
                self.assertIn(want, out)

    def test_report_against_manifest(self):
        # Consistent sums, signature left out: the report still has to
        # agree with the manifest it names.
        path = self.bundle(sign=False)
        m = members(path)
        lines = m["manifest.ndjson"].splitlines(keepends=True)
        man = b"".join(lines[1:])
        sums = m["SHA256SUMS"].decode().replace(
            hashlib.sha256(m["manifest.ndjson"]).hexdigest(),
            hashlib.sha256(man).hexdigest()).encode()
        bad = os.path.join(self.dir, "bad.tar.gz")
        repack(path, bad, lambda n, d: man if n == "manifest.ndjson"
               else sums if n == "SHA256SUMS" else d)
        status, out, err = self.check(bad)
        self.assertEqual(status, 1, out + err)
        self.assertIn("report manifest_sha256: FAIL", out)
        self.assertIn("report counts: FAIL: report.json counts 223 objects", out)


class RecheckTest(EvidenceCase):
    def test_local_directory(self):
        src = os.path.join(self.dir, "audit-logs")
        shutil.copytree(SAMPLES, src)
        path = self.bundle(source=src)
        status, out, err = self.check(path, "--pubkey", self.pub, "--recheck")
        self.assertEqual(status, 0, out + err)
        self.assertIn("recheck: ok: 223 objects", out)
        victim = os.path.join(src, "2025", "07", "12", "08")
        name = sorted(os.listdir(victim))[0]
        with open(os.path.join(victim, name), "rb") as f:
            data = f.read()
        with open(os.path.join(victim, name), "wb") as f:
            f.write(flip(data))
        status, out, err = self.check(path, "--pubkey", self.pub, "--recheck")
        self.assertEqual(status, 1, out + err)
        self.assertIn(f"'audit-logs/2025/07/12/08/{name}': its bytes hash to", out)
        self.assertIn("recheck: FAIL: 222 objects hash as recorded, 1 do not", out)
        os.unlink(os.path.join(victim, name))
        status, out, err = self.check(path, "--pubkey", self.pub, "--recheck")
        self.assertEqual(status, 1, out + err)
        self.assertIn("cannot be read back", out)

    def test_names_that_are_not_utf8(self):
        src = os.path.join(self.dir, "audit-logs")
        shutil.copytree(SAMPLES, src)
        hour = os.path.join(src, "2025", "07", "12", "08")
        odd = os.path.join(os.fsencode(hour), b"caf\xe9-a.json")
        with open(os.path.join(hour, sorted(os.listdir(hour))[0]), "rb") as f:
            data = f.read()
        with open(odd, "wb") as f:
            f.write(data)
        path = self.bundle(source=src)
        man = [json.loads(line) for line in members(path)["manifest.ndjson"].splitlines()]
        self.assertTrue(any("key_b64" in m for m in man))
        status, out, err = self.check(path, "--pubkey", self.pub, "--recheck")
        self.assertEqual(status, 0, out + err)
        self.assertIn("recheck: ok: 224 objects", out)
        with open(odd, "wb") as f:
            f.write(flip(data))
        status, out, err = self.check(path, "--pubkey", self.pub, "--recheck")
        self.assertEqual(status, 1, out + err)
        self.assertIn("caf\\xE9-a.json': its bytes hash to", out)

    def test_a_source_that_is_gone(self):
        src = os.path.join(self.dir, "audit-logs")
        shutil.copytree(SAMPLES, src)
        path = self.bundle(source=src)
        shutil.rmtree(src)
        status, out, err = self.check(path, "--pubkey", self.pub, "--recheck")
        self.assertEqual(status, 3, out + err)
        self.assertIn("recheck: ERROR: the source", out)


class ChainTest(EvidenceCase):
    RUNS = [("2025-07-12T06:00Z", "2025-07-12T09:00Z"),
            ("2025-07-12T09:00Z", "2025-07-12T12:00Z")]

    def test_state_links_bundles(self):
        state = os.path.join(self.dir, "s.state.gz")
        paths = []
        for i, (frm, to) in enumerate(self.RUNS):
            paths.append(self.bundle("--from", frm, "--to", to, "--state", state,
                                     "--now", "2026-01-01T00:00Z", name=f"b{i}.tar.gz"))
        first = json.loads(members(paths[0])["report.json"])
        second = json.loads(members(paths[1])["report.json"])
        self.assertIsNone(first["evidence"]["previous_bundle_sha256"])
        self.assertEqual(second["evidence"]["previous_bundle_sha256"], sha256_file(paths[0]))
        with gzip.open(state, "rt") as f:
            trailer = json.loads(f.read().splitlines()[-1])
        self.assertEqual(trailer["bundle_sha256"], sha256_file(paths[1]))
        status, out, err = self.check(paths[1], "--pubkey", self.pub, "--previous", paths[0])
        self.assertEqual(status, 0, out + err)
        self.assertIn("chain: ok", out)
        # The wrong predecessor, or a changed one, breaks the link.
        status, out, err = self.check(paths[1], "--pubkey", self.pub, "--previous", paths[1])
        self.assertEqual(status, 1, out + err)
        self.assertIn("chain: FAIL: report.json records previous bundle sha256", out)
        with open(paths[0], "ab") as f:
            f.write(b"\0")
        status, out, err = self.check(paths[1], "--pubkey", self.pub, "--previous", paths[0])
        self.assertEqual(status, 1, out + err)
        self.assertIn("chain: FAIL", out)
        # The first bundle links nothing.
        status, out, err = self.check(paths[1], "--pubkey", self.pub, "--previous",
                                      os.path.join(self.dir, "nope.tar.gz"))
        self.assertEqual(status, 3, out + err)
        self.assertIn("chain: ERROR: cannot open the previous bundle", out)

    def test_a_state_without_bundle_field_still_reads(self):
        state = os.path.join(self.dir, "s.state.gz")
        frm, to = self.RUNS[0]
        status, _, err = run("verify", SAMPLES, "--from", frm, "--to", to, "--state", state,
                             "--now", "2026-01-01T00:00Z", "-q", "--format", "json")
        self.assertIn(status, (0, 1), err)
        with gzip.open(state, "rt") as f:
            self.assertNotIn("bundle_sha256", f.read().splitlines()[-1])
        frm, to = self.RUNS[1]
        path = self.bundle("--from", frm, "--to", to, "--state", state,
                           "--now", "2026-01-01T00:00Z")
        rep = json.loads(members(path)["report.json"])
        self.assertIsNone(rep["evidence"]["previous_bundle_sha256"])


class SampleTest(Case):
    """samples/evidence: the checked-in bundle verifies with stock tools and with
    ddbaudit, and still matches samples/audit-logs."""
    SAMPLE = os.path.join(ROOT, "samples", "evidence")

    def test_sample_bundle(self):
        need_tools("openssl", "tar", "sha256sum")
        bundle = os.path.join(self.SAMPLE, "sample-bundle.tar.gz")
        pub = os.path.join(self.SAMPLE, "TEST-KEY-DO-NOT-USE.pub.pem")
        out = os.path.join(self.dir, "x")
        os.mkdir(out)
        subprocess.run(["tar", "-xzf", bundle, "-C", out], check=True)
        subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out, check=True)
        p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                            "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"], cwd=out,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(out, "report.json")) as f:
            self.assertEqual(json.load(f)["run"]["source"], "samples/audit-logs")
        # The report names its source relative to the repository's root.
        from harness import BINARY
        p = subprocess.run([BINARY, "evidence", "verify", bundle, "--pubkey", pub, "--recheck"],
                           cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("recheck: ok: 223 objects", p.stdout)
        with open(os.path.join(self.SAMPLE, "TEST-KEY-DO-NOT-USE.pem")) as f:
            self.assertIn("PRIVATE KEY", f.read())


class KmsAndS3Test(MotoCase):
    def setUp(self):
        super().setUp()
        need_tools("openssl")
        os.environ["AWS_ENDPOINT_URL_KMS"] = self.moto.url
        self.kms = self.moto.client("kms")

    def tearDown(self):
        os.environ.pop("AWS_ENDPOINT_URL_KMS", None)
        super().tearDown()

    def s3_bundle(self, bucket, *extra, name="b.tar.gz"):
        path = os.path.join(self.dir, name)
        status, _, err = run("verify", f"s3://{bucket}/audit-logs/", "--endpoint-url",
                             self.moto.url, "--settle", "0", "--bundle", path, "-q", *extra)
        self.assertIn(status, (0, 1), err)
        return path

    def test_kms_signature_round_trips(self):
        self.s3.create_bucket(Bucket="kmsb")
        upload_tree(self.s3, "kmsb", SAMPLES, "audit-logs/")
        key = self.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        kid = key["KeyMetadata"]["KeyId"]
        path = self.s3_bundle("kmsb", "--sign-key", f"kms:{kid}")
        m = members(path)
        sig = json.loads(m["SIGNATURE.json"])
        self.assertEqual(sig["algorithm"], "ECDSA_SHA_256")
        self.assertEqual(sig["key"]["key_id"], kid)
        # KMS's own name of the key: its id (moto) or its ARN (AWS).
        self.assertIn(sig["key"]["kms_key_id"], (kid, key["KeyMetadata"]["Arn"]))
        self.assertEqual(sig["message_type"], "RAW")
        ok = self.kms.verify(KeyId=kid, Message=m["SHA256SUMS"], MessageType="RAW",
                             Signature=m["SHA256SUMS.sig"], SigningAlgorithm="ECDSA_SHA_256")
        self.assertTrue(ok["SignatureValid"])
        # Stock openssl with the key's public half, as an auditor without AWS would.
        der = self.kms.get_public_key(KeyId=kid)["PublicKey"]
        self.assertEqual(sig["key"]["public_key_sha256"], hashlib.sha256(der).hexdigest())
        for n in ("SHA256SUMS", "SHA256SUMS.sig"):
            self.write(n, m[n])
        self.write("kms.der", der)
        subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", "kms.der",
                        "-out", "kms.pem"], cwd=self.dir, check=True)
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", "kms.pem", "-signature",
                            "SHA256SUMS.sig", "SHA256SUMS"], cwd=self.dir, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        status, out, err = run("evidence", "verify", path, "--kms", kid)
        self.assertEqual(status, 0, out.decode() + err)
        self.assertIn(b"signature: ok: ECDSA_SHA_256 by KMS key", out)
        bad = os.path.join(self.dir, "bad.tar.gz")
        repack(path, bad, lambda n, d: flip(d, 10) if n == "SHA256SUMS.sig" else d)
        status, out, err = run("evidence", "verify", bad, "--kms", kid)
        self.assertEqual(status, 1, out.decode() + err)
        self.assertIn(b"signature: FAIL", out)
        # Another KMS key does not vouch for it.
        other = self.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        status, out, err = run("evidence", "verify", path, "--kms",
                               other["KeyMetadata"]["KeyId"])
        self.assertEqual(status, 1, out.decode() + err)

    def test_kms_failures_are_named(self):
        self.s3.create_bucket(Bucket="kmsf")
        upload_tree(self.s3, "kmsf", SAMPLES, "audit-logs/")
        path = os.path.join(self.dir, "b.tar.gz")
        status, _, err = run("verify", "s3://kmsf/audit-logs/", "--endpoint-url", self.moto.url,
                             "--settle", "0", "--bundle", path, "-q", "--sign-key",
                             "kms:00000000-0000-0000-0000-000000000000")
        self.assertEqual(status, 3, err)
        self.assertIn("cannot write the bundle", err)
        self.assertIn("KMS GetPublicKey", err)
        self.assertFalse(os.path.exists(path))

    def test_recheck_s3_objects(self):
        self.s3.create_bucket(Bucket="recheck")
        upload_tree(self.s3, "recheck", SAMPLES, "audit-logs/")
        path = self.s3_bundle("recheck")
        args = ["evidence", "verify", path, "--recheck", "--endpoint-url", self.moto.url]
        status, out, err = run(*args)
        self.assertEqual(status, 0, out.decode() + err)
        self.assertIn(b"recheck: ok: 223 objects of 's3://recheck/audit-logs/'", out)
        key = sorted(o["Key"] for o in self.s3.list_objects_v2(
            Bucket="recheck", Prefix="audit-logs/2025/07/12/08/")["Contents"])[0]
        body = self.s3.get_object(Bucket="recheck", Key=key)["Body"].read()
        self.s3.put_object(Bucket="recheck", Key=key, Body=flip(body))
        status, out, err = run(*args)
        self.assertEqual(status, 1, out.decode() + err)
        self.assertIn(f"'{key}': its bytes hash to".encode(), out)
        self.s3.delete_object(Bucket="recheck", Key=key)
        status, out, err = run(*args)
        self.assertEqual(status, 1, out.decode() + err)
        self.assertIn(b"cannot be read back: HTTP 404", out)

    def test_recheck_reads_the_recorded_version(self):
        self.s3.create_bucket(Bucket="versioned")
        self.s3.put_bucket_versioning(Bucket="versioned",
                                      VersioningConfiguration={"Status": "Enabled"})
        upload_tree(self.s3, "versioned", SAMPLES, "audit-logs/")
        path = self.s3_bundle("versioned", "--versions")
        man = [json.loads(line) for line in members(path)["manifest.ndjson"].splitlines()]
        self.assertTrue(all(m.get("versionId") for m in man))
        key = man[0]["key"]
        body = self.s3.get_object(Bucket="versioned", Key=key)["Body"].read()
        self.s3.put_object(Bucket="versioned", Key=key, Body=flip(body))
        args = ["evidence", "verify", path, "--recheck", "--endpoint-url", self.moto.url]
        # The recorded version is unchanged: the newer one is not what was audited.
        status, out, err = run(*args)
        self.assertEqual(status, 0, out.decode() + err)
        self.s3.delete_object(Bucket="versioned", Key=key, VersionId=man[0]["versionId"])
        status, out, err = run(*args)
        self.assertEqual(status, 1, out.decode() + err)
        self.assertIn(f"'{key}' version {man[0]['versionId']}".encode(), out)

    def test_unreachable_s3_is_exit_3(self):
        self.s3.create_bucket(Bucket="unreach")
        upload_tree(self.s3, "unreach", SAMPLES, "audit-logs/")
        path = self.s3_bundle("unreach")
        env_port = "http://127.0.0.1:1"
        status, out, err = run("evidence", "verify", path, "--recheck", "--endpoint-url",
                               env_port)
        self.assertEqual(status, 3, out.decode() + err)
        self.assertIn(b"recheck: ERROR: stopped at the first object", out)


if __name__ == "__main__":
    main()
