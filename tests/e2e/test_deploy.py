"""The deployable units: `cmake --install` (tool, man page, completions,
library and headers a program links against), the CPack .deb installed with
dpkg and run, the shell completions, the systemd service and timer
(systemd-analyze verify), the Kubernetes CronJob, the AWS Batch job
definition and the Dockerfile. The ddbaudit arguments of each unit are run
for real against the samples, the way a deployment runs them: the documented
first run (--from, no state yet), then the nightly one (--since-state), which
must continue from the watermark the first left in the state, with the
state's path moved into a temporary directory. And --version naming the
commit."""
import fcntl
import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from harness import BINARY, Case, ROOT, main, run

BUILD = os.environ.get("DDA_BUILD_DIR") or os.path.dirname(BINARY)
DEPLOY = os.path.join(ROOT, "samples", "deploy")
SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
with open(os.path.join(ROOT, "samples", "expected.json")) as f:
    EXPECTED = json.load(f)
# The samples hold 06:00 to 12:00 on 2025-07-12: a first run over the first
# three hours, then a nightly run at 12:20, which (with the units' --settle
# 15m, or the default 15m) audits from the watermark, 09:00, to 12:00.
FIRST_RANGE = ["--from", "2025-07-12T06:00Z", "--to", "2025-07-12T09:00Z"]
NIGHT = ["--now", "2025-07-12T12:20Z"]

try:
    import yaml
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-yaml
    try:
        import yaml
    except ImportError:
        yaml = None


def read_state(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def report_json(directory):
    """report() for a unit that writes --report DIR."""
    def read(_):
        with open(os.path.join(directory, "report.json")) as f:
            return json.load(f)
    return read


def sh(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    return ""


class DeployCase(Case):
    def need(self, tool):
        path = shutil.which(tool)
        if not path:
            self.skipTest(f"SKIPPED: {tool} is not installed")
        return path

    def first_run_args(self, args):
        """The documented first run: --since-state replaced by the range."""
        self.assertEqual(args.count("--since-state"), 1, args)
        i = args.index("--since-state")
        return args[:i] + FIRST_RANGE + args[i + 1:]

    def state_chain(self, first, nightly, what, state, report):
        """Runs the first run, then the nightly one, as a deployment does;
        report() gives the report of the run just made (report.json or
        stdout). The nightly run starts at the first one's watermark, and the
        two find together what one run over the samples finds."""
        self.assertFalse(os.path.exists(state))
        status, out, err = run(*first, *NIGHT)
        # 06:00 to 09:00 holds only a warning (the retried change).
        self.assertEqual(status, 0, f"{what}, first run: {first}: {err}")
        rep1 = report(out)
        self.assertEqual(rep1["run"]["range"], {"from": "2025-07-12T06:00:00Z",
                                                "to": "2025-07-12T09:00:00Z"})
        self.assertEqual(read_state(state)[0]["watermark"], "2025-07-12T09:00:00.000000Z")
        status, out, nightly_err = run(*nightly, *NIGHT)
        self.assertEqual(status, 1, f"{what}, nightly run: {nightly}: {nightly_err}")
        rep2 = report(out)
        self.assertEqual(rep2["run"]["range"], {"from": "2025-07-12T09:00:00Z",
                                                "to": "2025-07-12T12:00:00Z"})
        self.assertEqual(read_state(state)[0]["watermark"], "2025-07-12T12:00:00.000000Z")
        kinds = sorted(a["kind"] for r in (rep1, rep2) for a in r["anomalies"])
        self.assertEqual(kinds, sorted(EXPECTED["by_kind"]))
        # Run again before the next hour has settled: nothing to audit, exit
        # 0, and nothing written: no report (the last one stays), no metrics
        # line or file, the state as it was. (This run used to audit an empty
        # range and replace the report.)
        with open(state, "rb") as f:
            before = f.read()
        status, out, err = run(*nightly, "--now", "2025-07-12T12:50Z")
        self.assertEqual(status, 0, f"{what}: {err}")
        self.assertEqual(out, b"")
        self.assertNotIn('{"_aws"', err)
        if "-q" not in nightly:
            self.assertIn("nothing to audit", err)
        if report is not json.loads:
            self.assertEqual(report(None), rep2)
        with open(state, "rb") as f:
            self.assertEqual(f.read(), before)
        return rep1, rep2, nightly_err


class InstallTest(DeployCase):
    def test_cmake_install_layout_and_library(self):
        prefix = os.path.join(self.dir, "prefix")
        p = sh("cmake", "--install", BUILD, "--prefix", prefix)
        self.assertEqual(p.returncode, 0, p.stderr)
        want = ["bin/ddbaudit", "share/man/man1/ddbaudit.1",
                "share/bash-completion/completions/ddbaudit",
                "share/zsh/vendor-completions/_ddbaudit",
                "share/doc/ddbaudit/README.md", "share/doc/ddbaudit/operations.md",
                "share/doc/ddbaudit/deploy/ddbaudit.service",
                "share/doc/ddbaudit/deploy/Dockerfile",
                "lib/libddbaudit.a", "include/ddbaudit/ddbaudit.h",
                "lib/pkgconfig/ddbaudit.pc"]
        for rel in want:
            self.assertTrue(os.path.isfile(os.path.join(prefix, rel)), rel)
        tool = os.path.join(prefix, "bin", "ddbaudit")
        self.assertTrue(os.access(tool, os.X_OK))
        self.assertEqual(sh(tool, "--version").stdout, run("--version")[1].decode())
        with open(os.path.join(prefix, "share/man/man1/ddbaudit.1")) as f:
            self.assertTrue(f.read().startswith(".TH DDBAUDIT 1"))
        with open(os.path.join(prefix, "share/bash-completion/completions/ddbaudit")) as f:
            self.assertEqual(f.read(), run("--completions", "bash")[1].decode())

        # A program builds against the installed library through pkg-config.
        self.need("pkg-config")
        prog = self.write("use.c", '#include <ddbaudit/ddbaudit.h>\n#include <stdio.h>\n'
                          'int main(void) { puts(dda_version()); return 0; }\n')
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        flags = sh("pkg-config", "--cflags", "--libs", "ddbaudit", env=env)
        self.assertEqual(flags.returncode, 0, flags.stderr)
        includes = {os.path.realpath(f[2:]) for f in shlex.split(flags.stdout)
                    if f.startswith("-I")}
        self.assertIn(os.path.realpath(os.path.join(prefix, "include")), includes)
        cc = cache_value("CMAKE_C_COMPILER") or "cc"
        extra = []
        if cache_value("DDA_SANITIZE") == "ON":
            extra.append("-fsanitize=address,undefined")
        if cache_value("DDA_FUZZ") == "ON":
            extra.append("-fsanitize=fuzzer-no-link")
        exe = os.path.join(self.dir, "use")
        p = sh(cc, *extra, prog, "-o", exe, *shlex.split(flags.stdout))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sh(exe).stdout.strip(), run("--version")[1].decode().split()[1])


class CompletionTest(DeployCase):
    def bash_complete(self, *words):
        """COMPREPLY for the last word of `ddbaudit WORDS...`."""
        script = os.path.join(BUILD, "completions", "ddbaudit")
        line = ["ddbaudit", *words]
        p = sh("bash", "-c",
               'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
               '_ddbaudit; printf "%s\\n" "${COMPREPLY[@]}"',
               "bash", script, *line, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l for l in p.stdout.splitlines() if l]

    def test_bash(self):
        self.need("bash")
        self.assertEqual(self.bash_complete("ver"), ["verify"])
        self.assertEqual(self.bash_complete("verify", "x", "--met"), ["--metrics"])
        self.assertEqual(self.bash_complete("ls", "x", "--met"), [])  # not an ls option
        self.assertEqual(self.bash_complete("replay", "x", "--dl"), ["--dlq"])
        self.assertEqual(sorted(self.bash_complete("history", "x", "--ke")),
                         ["--key", "--key-schema"])
        self.write("reports/.keep", "")
        self.assertEqual(self.bash_complete("verify", "x", "--report", "rep"), ["reports"])

    def test_every_option_of_each_help_is_completed(self):
        script = run("--completions", "bash")[1].decode()
        for cmd in ("ls", "verify", "history", "replay"):
            m = re.search(rf"^    {cmd}\) opts=\"([^\"]*)\"", script, re.M)
            completed = set(m.group(1).split())
            helped = set(re.findall(r"^  (?:-\w, )?(--[a-z][a-z-]*)", run(cmd, "--help")[1]
                                    .decode(), re.M))
            self.assertEqual(helped - completed, set(), f"{cmd}: in --help, not completed")
            self.assertEqual(completed - helped, set(), f"{cmd}: completed, not in --help")

    def test_zsh(self):
        zsh = self.need("zsh")
        script = os.path.join(BUILD, "completions", "_ddbaudit")
        p = sh(zsh, "-n", script)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The completion system's helpers stubbed to print what they are given.
        probe = ('_arguments() { print -rl -- "$@" }; _describe() { print -r -- describe }; '
                 'words=(ddbaudit verify x --m); CURRENT=4; source "$1"')
        p = sh(zsh, "-f", "-c", probe, "zsh", script)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--metrics:value:_files", p.stdout.splitlines())
        self.assertIn("--versions", p.stdout.splitlines())
        p = sh(zsh, "-f", "-c", probe.replace("verify", "ls"), "zsh", script)
        self.assertNotIn("--metrics:value:_files", p.stdout.splitlines())
        # The commands with their summaries (quotes in them included).
        p = sh(zsh, "-f", "-c", '_describe() { print -rl -- "${commands[@]}" }; '
               'words=(ddbaudit hi); CURRENT=2; source "$1"', "zsh", script)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("history:show one item's timeline with its images",
                      p.stdout.splitlines())
        self.assertIn("help:show a command's options", p.stdout.splitlines())

    def test_bad_shell(self):
        status, _, err = run("--completions", "fish")
        self.assertEqual(status, 2)
        self.assertIn("bash or zsh", err)


class DebTest(DeployCase):
    def test_deb_builds_installs_runs_and_removes(self):
        self.need("cpack")
        dpkg_deb = self.need("dpkg-deb")
        out = os.path.join(self.dir, "pkg")
        p = sh("cpack", "-G", "DEB", "-B", out, cwd=BUILD)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, debs)
        deb = os.path.join(out, debs[0])
        info = sh(dpkg_deb, "-f", deb).stdout
        self.assertRegex(info, r"(?m)^Package: ddbaudit$")
        self.assertRegex(info, r"(?m)^Depends: .*libcurl")
        self.assertRegex(info, r"(?m)^Depends: .*libjansson")
        files = sh(dpkg_deb, "-c", deb).stdout
        for path in ("./usr/bin/ddbaudit", "./usr/share/man/man1/ddbaudit.1",
                     "./usr/share/bash-completion/completions/ddbaudit",
                     "./usr/share/doc/ddbaudit/deploy/ddbaudit.timer"):
            self.assertIn(path, files)
        self.assertNotIn("libddbaudit.a", files)  # the dev component is not in it

        if os.geteuid() != 0 or not shutil.which("dpkg"):
            # Without root, the package is unpacked and run from there.
            print("SKIPPED: dpkg -i needs root; checking the unpacked package",
                  file=sys.stderr)
            root = os.path.join(self.dir, "root")
            self.assertEqual(sh(dpkg_deb, "-x", deb, root).returncode, 0)
            self.check_installed(os.path.join(root, "usr"))
            return
        self.install_and_check(deb)

    def install_and_check(self, deb):
        # dpkg's frontend lock, taken as apt takes it, keeps a concurrent apt
        # or another run of this test out from install to removal; dpkg is
        # told that its frontend holds it.
        with open("/var/lib/dpkg/lock-frontend", "w") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX)
            env = dict(os.environ, DPKG_FRONTEND_LOCKED="1")
            status = sh("dpkg-query", "-W", "-f=${Status}", "ddbaudit", env=env).stdout
            if "installed" in status and "not-installed" not in status:
                self.skipTest("SKIPPED: a ddbaudit package is already installed on this "
                              "machine; not replacing it")
            # --no-triggers: man-db's index rebuild, which the man page
            # triggers, takes half a minute on a busy machine, on install and
            # again on removal; dpkg records it and the next dpkg run does it.
            p = sh("dpkg", "--no-triggers", "-i", deb, env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            try:
                status = sh("dpkg-query", "-W", "-f=${Status}", "ddbaudit").stdout
                self.assertEqual(status, "install ok installed")
                self.check_installed("/usr")
                if shutil.which("systemd-analyze"):
                    d = "/usr/share/doc/ddbaudit/deploy"
                    p = sh("systemd-analyze", "verify", "--man=no",
                           f"{d}/ddbaudit.service", f"{d}/ddbaudit.timer")
                    self.assertEqual((p.returncode, p.stderr), (0, ""))
            finally:
                p = sh("dpkg", "--no-triggers", "--purge", "ddbaudit", env=env)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists("/usr/bin/ddbaudit"))

    def check_installed(self, usr):
        tool = os.path.join(usr, "bin", "ddbaudit")
        p = sh(tool, "--version")
        self.assertEqual(p.stdout, run("--version")[1].decode())
        p = sh(tool, "verify", SAMPLES, "--settle", "0", "--format", "json", "-q")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(json.loads(p.stdout)["summary"]["records"], EXPECTED["records"])


class SystemdTest(DeployCase):
    def unit(self, name):
        with open(os.path.join(DEPLOY, name)) as f:
            return f.read()

    def test_verify_units(self):
        analyze = self.need("systemd-analyze")
        # verify checks that ExecStart's program exists: the one just built.
        service = self.unit("ddbaudit.service").replace("/usr/bin/ddbaudit", BINARY)
        self.write("ddbaudit.service", service)
        self.write("ddbaudit.timer", self.unit("ddbaudit.timer"))
        p = sh(analyze, "verify", "--man=no", self.path("ddbaudit.service"),
               self.path("ddbaudit.timer"))
        # Unknown keys and bad values are only warnings: none is allowed.
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        p = sh(analyze, "calendar", "*-*-* 01:30:00 UTC")
        self.assertEqual(p.returncode, 0, p.stderr)

    @staticmethod
    def expand(args, env):
        """systemd's expansion: $NAME alone is split into words, ${NAME} is
        one word."""
        out = []
        for a in args:
            m = re.fullmatch(r"\$(\w+)", a)
            if m:
                out += env[m.group(1)].split()
            else:
                out.append(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a))
        return out

    def test_service_arguments_run(self):
        service = self.unit("ddbaudit.service")
        self.assertRegex(service, r"(?m)^Type=oneshot$")
        self.assertRegex(service, r"(?m)^StateDirectory=ddbaudit$")
        self.assertRegex(self.unit("ddbaudit.timer"), r"(?m)^Persistent=true$")
        exec_line = re.search(r"(?m)^ExecStart=((?:[^\n]*\\\n)*[^\n]*)", service).group(1)
        args = shlex.split(exec_line.replace("\\\n", " "))
        self.assertEqual(args[:2], ["/usr/bin/ddbaudit", "verify"])
        # The state is kept in the service's StateDirectory (/var/lib/ddbaudit).
        self.assertEqual(args[args.index("--state") + 1],
                         "${STATE_DIRECTORY}/ddbaudit.state.gz")
        with open(os.path.join(DEPLOY, "ddbaudit.env")) as f:
            envfile = f.read()
        names = dict(re.findall(r"(?m)^(\w+)=(.*)$", envfile))
        self.assertIn("DDBAUDIT_SOURCE", names)
        self.assertIn("DDBAUDIT_METRICS", names)
        self.assertEqual(names["DDBAUDIT_RANGE"], "--since-state")
        # The first run's form, as the env file documents it (commented out).
        first = re.search(r"(?m)^# DDBAUDIT_RANGE=(--from \S+ --to \S+)$", envfile)
        self.assertTrue(first, "ddbaudit.env does not show the first run's range")
        state_dir = self.path("var-lib-ddbaudit", "x")[:-2]
        env = {"DDBAUDIT_SOURCE": SAMPLES, "STATE_DIRECTORY": state_dir,
               "DDBAUDIT_METRICS": self.path("textfile", "ddbaudit.prom")}
        self.assertEqual(len(self.expand(["$DDBAUDIT_RANGE"],
                                         {"DDBAUDIT_RANGE": first.group(1)})), 4)
        nightly = self.expand(args[1:], {**env, "DDBAUDIT_RANGE": names["DDBAUDIT_RANGE"]})
        first_run = self.expand(args[1:], {**env, "DDBAUDIT_RANGE": " ".join(FIRST_RANGE)})
        self.state_chain(first_run, nightly, "ddbaudit.service",
                         os.path.join(state_dir, "ddbaudit.state.gz"),
                         report_json(os.path.join(state_dir, "last-run")))
        with open(env["DDBAUDIT_METRICS"]) as f:
            runs = re.findall(r"(?m)^ddbaudit_runs_total\{[^}]*\} (\d+)$", f.read())
        self.assertEqual(sum(map(int, runs)), 2)  # the "nothing to audit" run writes none


class KubernetesTest(DeployCase):
    def setUp(self):
        super().setUp()
        if yaml is None:
            self.skipTest("SKIPPED: PyYAML (Debian python3-yaml) is not installed")

    def test_cronjob(self):
        with open(os.path.join(DEPLOY, "kubernetes-cronjob.yaml")) as f:
            docs = list(yaml.safe_load_all(f))
        self.assertEqual(len(docs), 1)
        cj = docs[0]
        self.assertEqual((cj["apiVersion"], cj["kind"]), ("batch/v1", "CronJob"))
        self.assertTrue(cj["metadata"]["name"])
        spec = cj["spec"]
        self.assertEqual(len(spec["schedule"].split()), 5)
        self.assertEqual(spec["concurrencyPolicy"], "Forbid")
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        self.assertIn(pod["restartPolicy"], ("Never", "OnFailure"))
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        (c,) = pod["containers"]
        self.assertTrue(c["name"] and c["image"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        mounts = {m["name"] for m in c.get("volumeMounts", [])}
        self.assertLessEqual(mounts, {v["name"] for v in pod.get("volumes", [])})
        args = list(c["args"])
        self.assertEqual(args[0], "verify")
        args[1] = SAMPLES
        # A pod keeps nothing: the state is in S3, moved here to a local path.
        state = args.index("--state") + 1
        self.assertTrue(args[state].startswith("s3://"), args[state])
        args[state] = self.path("state", "audit-logs.state.gz")
        args[args.index("--report") + 1] = self.path("reports")
        _, _, err = self.state_chain(self.first_run_args(args), args, "CronJob", args[state],
                                     report_json(self.path("reports")))
        if "emf" in args:
            self.assertTrue(any(l.startswith('{"_aws"') for l in err.splitlines()))
        # The first run's form left in place by mistake is refused, loudly.
        status, _, err = run(*self.first_run_args(args), *NIGHT)
        self.assertEqual(status, 2, "a first run again, over audited hours, is refused")
        self.assertIn("watermark", err)


class BatchTest(DeployCase):
    def test_job_definition(self):
        with open(os.path.join(DEPLOY, "aws-batch-job-definition.json")) as f:
            jd = json.load(f)
        # RegisterJobDefinition's required members and Fargate's rules.
        self.assertRegex(jd["jobDefinitionName"], r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
        self.assertEqual(jd["type"], "container")
        cp = jd["containerProperties"]
        self.assertTrue(cp["image"])
        self.assertIn("FARGATE", jd["platformCapabilities"])
        self.assertTrue(cp["executionRoleArn"].startswith("arn:aws:iam::"))
        res = {r["type"]: r["value"] for r in cp["resourceRequirements"]}
        self.assertEqual(set(res), {"VCPU", "MEMORY"})
        self.assertTrue(all(isinstance(v, str) for v in res.values()))
        self.assertGreaterEqual(jd["timeout"]["attemptDurationSeconds"], 60)
        rs = jd["retryStrategy"]
        self.assertTrue(1 <= rs["attempts"] <= 10)
        self.assertLessEqual(len(rs["evaluateOnExit"]), 5)
        for e in rs["evaluateOnExit"]:
            self.assertIn(e["action"], ("RETRY", "EXIT"))
        self.assertNotEqual(cp.get("user"), "0")
        # The reports' volume is one the definition declares.
        volumes = {v["name"] for v in cp.get("volumes", [])}
        for m in cp.get("mountPoints", []):
            self.assertIn(m["sourceVolume"], volumes)
        # Ref:: placeholders are filled from parameters, as Batch does.
        params = jd["parameters"]
        self.assertTrue(params["state"].startswith("s3://"), params["state"])
        params = dict(params, source=SAMPLES, state=self.path("state", "batch.state.gz"))
        args = [params[a[5:]] if a.startswith("Ref::") else a for a in cp["command"]]
        self.assertEqual(args[0], "verify")
        report = args.index("--report") + 1
        self.assertIn(args[report], [m["containerPath"] + "/last-run"
                                     for m in cp.get("mountPoints", [])])
        args[report] = self.path("reports")
        # The report also goes to the logs: stdout is the JSON report.
        rep1, rep2, _ = self.state_chain(self.first_run_args(args), args, "Batch job",
                                         params["state"], json.loads)
        self.assertEqual(rep1["summary"]["records"] + rep2["summary"]["records"],
                         EXPECTED["records"])


SHARD_RANGE = {"from": "2025-07-12T06:00Z", "to": "2025-07-12T12:00Z"}


class ShardedTest(DeployCase):
    """The sharded units run as their engines run them: every shard with the
    same arguments and its index in the engine's variable, then merge over
    the parent directory. The merged report is the one run's."""

    def run_env(self, args, env):
        p = subprocess.run([BINARY, *args], capture_output=True, timeout=600,
                           env=dict(os.environ, **env))
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def single_run(self):
        out = self.path("single")
        status, _, err = run("verify", SAMPLES, "--from", SHARD_RANGE["from"],
                             "--to", SHARD_RANGE["to"], "--report", out, "-q")
        self.assertEqual(status, 1, err)
        return report_json(out)(None)

    def shards_and_merge(self, shard_args, merge_args, rundir, var, n):
        for k in range(n):
            status, _, err = self.run_env(shard_args, {var: str(k)})
            # A shard that read its share exits 0 whatever it found, so the
            # engine goes on to the merge (a failed child fails it).
            self.assertEqual(status, 0, f"shard {k}: {err}")
        self.assertEqual(sorted(os.listdir(rundir)),
                         [f"shard-{k}-of-{n}" for k in range(n)])
        status, _, err = run(*merge_args)
        self.assertEqual(status, 1, f"merge: {err}")
        merged = os.path.join(merge_args[merge_args.index("--report") + 1], "report.json")
        with open(merged) as f:
            rep = json.load(f)
        one = self.single_run()
        for r in (rep, one):
            r.pop("run")
            r.pop("shard", None)
        self.assertEqual(rep, one)
        self.assertEqual(rep["summary"]["records"], EXPECTED["records"])

    def test_aws_batch_array_job_and_merge(self):
        defs = {}
        for name in ("shard", "merge"):
            with open(os.path.join(DEPLOY, f"aws-batch-{name}-job-definition.json")) as f:
                defs[name] = json.load(f)
        for jd in defs.values():
            self.assertRegex(jd["jobDefinitionName"], r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
            cp = jd["containerProperties"]
            volumes = {v["name"] for v in cp.get("volumes", [])}
            for m in cp.get("mountPoints", []):
                self.assertIn(m["sourceVolume"], volumes)
            # Batch fills in a Ref:: only as a whole argument.
            for a in cp["command"]:
                self.assertTrue(a.startswith("Ref::") or "Ref::" not in a, a)
        # A shard's exit 3 (it could not read everything) is retried; merge's
        # exit statuses are the audit's verdict and are not.
        rules = {e.get("onExitCode"): e["action"]
                 for e in defs["shard"]["retryStrategy"]["evaluateOnExit"]}
        self.assertEqual(rules.get("3"), "RETRY")
        self.assertNotIn("0", rules)
        with open(os.path.join(DEPLOY, "aws-batch-submit-sharded")) as f:
            submit = f.read()
        self.assertIn("--array-properties", submit)
        self.assertIn('--depends-on "jobId=$array"', submit)
        self.assertEqual(sh("sh", "-n", os.path.join(DEPLOY, "aws-batch-submit-sharded"))
                         .returncode, 0)
        rundir = self.path("runs", "r1")
        params = dict(defs["shard"]["parameters"], source=SAMPLES, shards="2",
                      rundir=rundir, mergedir=os.path.join(rundir, "merged"), **SHARD_RANGE)

        def fill(cmd):
            return [params[a[5:]] if a.startswith("Ref::") else a for a in cmd]
        shard = fill(defs["shard"]["containerProperties"]["command"])
        tmp = shard.index("--tmp-dir") + 1
        shard[tmp] = self.path("tmp")
        os.makedirs(shard[tmp])
        merge = fill(defs["merge"]["containerProperties"]["command"])
        self.assertEqual(merge[0], "merge")
        self.shards_and_merge(shard, merge, rundir, "AWS_BATCH_JOB_ARRAY_INDEX", 2)

    def test_kubernetes_indexed_job_and_merge(self):
        if yaml is None:
            self.skipTest("SKIPPED: PyYAML (Debian python3-yaml) is not installed")
        with open(os.path.join(DEPLOY, "kubernetes-sharded-job.yaml")) as f:
            text = f.read()
        rundir = self.path("runs")
        filled = (text.replace("@RUN@", "r1").replace("@SHARDS@", "2")
                  .replace("@FROM@", SHARD_RANGE["from"]).replace("@TO@", SHARD_RANGE["to"]))
        shards, merge = list(yaml.safe_load_all(filled))
        self.assertEqual((shards["kind"], merge["kind"]), ("Job", "Job"))
        self.assertEqual(shards["spec"]["completionMode"], "Indexed")
        self.assertEqual(shards["spec"]["completions"], 2)
        pods = [j["spec"]["template"]["spec"] for j in (shards, merge)]
        for pod in pods:
            self.assertEqual(pod["restartPolicy"], "Never")
            self.assertTrue(pod["securityContext"]["runAsNonRoot"])
            (c,) = pod["containers"]
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            self.assertLessEqual(mounts, {v["name"] for v in pod.get("volumes", [])})
        self.assertEqual(sh("sh", "-n", os.path.join(DEPLOY, "kubernetes-sharded-run"))
                         .returncode, 0)
        runs = "/var/lib/ddbaudit/runs"

        def local(args):
            out = []
            for a in args:
                a = a.replace(runs, rundir).replace("/var/lib/ddbaudit/tmp", self.path("tmp"))
                out.append(SAMPLES if a.startswith("s3://") else a)
            return out
        os.makedirs(self.path("tmp"), exist_ok=True)
        shard = local(pods[0]["containers"][0]["args"])
        merge_args = local(pods[1]["containers"][0]["args"])
        self.shards_and_merge(shard, merge_args, os.path.join(rundir, "r1"),
                              "JOB_COMPLETION_INDEX", 2)


# Hours without a record filed under another item's name (the samples' damage
# 4 is at 10:46), which a sharded replay names and exits 1 for.
REPLAY_RANGE = {"from": "2025-07-12T06:00Z", "to": "2025-07-12T10:00Z"}


class ShardedReplayTest(DeployCase):
    """The sharded replay units run as their engines run them: every shard
    with the same arguments and its index in the engine's variable, into one
    processor, which then holds what one unsharded replay sends; a child
    stopped by a configuration error (exit 3), retried by the engine with the
    same arguments, resumes from its own checkpoint."""

    def setUp(self):
        super().setUp()
        from target_server import TargetServer
        self.target = TargetServer()
        self.addCleanup(self.target.stop)

    def run_env(self, args, env):
        p = subprocess.run([BINARY, *args], capture_output=True, timeout=600,
                           env=dict(os.environ, **env))
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def one_replay(self):
        out = self.path("one.ndjson")
        status, _, err = run("replay", SAMPLES, "--from", REPLAY_RANGE["from"], "--to",
                             REPLAY_RANGE["to"], "--target", "file:" + out, "-q")
        self.assertEqual(status, 0, err)
        with open(out) as f:
            return [r for line in f for r in json.loads(line)["Records"]]

    def check_shards(self, shard_args, rundir, var, n, retried):
        for k in range(n):
            if k == retried:  # the first attempt stops at a configuration error
                self.target.fail_first, self.target.fail_status = 1, 404
                status, err = self.run_env(shard_args, {var: str(k)})
                self.assertEqual(status, 3, f"shard {k}: {err}")
                self.target.fail_first, self.target.fail_status = 0, 500
            status, err = self.run_env(shard_args, {var: str(k)})
            self.assertEqual(status, 0, f"shard {k}: {err}")
        self.assertEqual(sorted(os.listdir(rundir)), [f"shard-{k}-of-{n}" for k in range(n)])
        for k in range(n):
            d = os.path.join(rundir, f"shard-{k}-of-{n}")
            self.assertLessEqual({"report.json", "checkpoint.json"}, set(os.listdir(d)))
            with open(os.path.join(d, "report.json")) as f:
                rep = json.load(f)
            self.assertEqual((rep["shard"]["index"], rep["shard"]["count"]), (k, n))
            self.assertTrue(rep["complete"])
        one = self.one_replay()
        got = self.target.accepted
        self.assertEqual({r["eventID"] for r in got}, {r["eventID"] for r in one})
        seqs = [r["dynamodb"]["SequenceNumber"] for r in got]
        first = {}
        for r in got:  # the first time each record arrived, per item
            first.setdefault(json.dumps(r["dynamodb"]["Keys"], sort_keys=True), []).append(
                r["eventID"])
        want = {}
        for r in one:
            want.setdefault(json.dumps(r["dynamodb"]["Keys"], sort_keys=True), []).append(
                r["eventID"])
        self.assertEqual({k: list(dict.fromkeys(v)) for k, v in first.items()}, want)
        self.assertEqual(len(set(seqs)), len({r["eventID"] for r in got}),
                         "two records with one SequenceNumber")

    def test_aws_batch_array_job(self):
        with open(os.path.join(DEPLOY, "aws-batch-replay-shard-job-definition.json")) as f:
            jd = json.load(f)
        self.assertRegex(jd["jobDefinitionName"], r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
        cp = jd["containerProperties"]
        volumes = {v["name"] for v in cp.get("volumes", [])}
        for m in cp.get("mountPoints", []):
            self.assertIn(m["sourceVolume"], volumes)
        for a in cp["command"]:  # Batch fills in a Ref:: only as a whole argument
            self.assertTrue(a.startswith("Ref::") or "Ref::" not in a, a)
        # Exit 3 (stopped: resumable) is retried; 1 (records in the DLQ) and
        # 2 (usage) are not.
        rules = {e.get("onExitCode"): e["action"]
                 for e in jd["retryStrategy"]["evaluateOnExit"]}
        self.assertEqual((rules.get("1"), rules.get("2"), rules.get("3")),
                         ("EXIT", "EXIT", "RETRY"))
        script = os.path.join(DEPLOY, "aws-batch-submit-sharded-replay")
        self.assertEqual(sh("sh", "-n", script).returncode, 0)
        with open(script) as f:
            submit = f.read()
        self.assertIn("--array-properties", submit)
        # The parameters the script makes, as it makes them.
        rundir = self.path("runs", "r1")
        m = re.search(r'"\$rundir" "([^"]*)" "([^"]*)"\)', submit)
        self.assertIsNotNone(m, "the checkpoint and DLQ paths of the submit script")
        params = dict(jd["parameters"], source=SAMPLES, shards="3", target=self.target.url,
                      rundir=rundir, checkpoint=m.group(1).replace("$rundir", rundir),
                      dlq=m.group(2).replace("$rundir", rundir), **REPLAY_RANGE)
        args = [params[a[5:]] if a.startswith("Ref::") else a for a in cp["command"]]
        args[args.index("--tmp-dir") + 1] = os.path.dirname(self.path("tmp", "x"))
        self.assertEqual(args[0], "replay")
        self.check_shards(args, rundir, "AWS_BATCH_JOB_ARRAY_INDEX", 3, retried=1)

    def test_kubernetes_indexed_job(self):
        if yaml is None:
            self.skipTest("SKIPPED: PyYAML (Debian python3-yaml) is not installed")
        with open(os.path.join(DEPLOY, "kubernetes-sharded-replay.yaml")) as f:
            text = f.read()
        filled = (text.replace("@RUN@", "r1").replace("@SHARDS@", "2")
                  .replace("@FROM@", REPLAY_RANGE["from"]).replace("@TO@", REPLAY_RANGE["to"]))
        job = yaml.safe_load(filled)
        self.assertEqual(job["kind"], "Job")
        self.assertEqual(job["spec"]["completionMode"], "Indexed")
        self.assertEqual(job["spec"]["completions"], 2)
        self.assertGreaterEqual(job["spec"]["backoffLimitPerIndex"], 1)
        (rule,) = job["spec"]["podFailurePolicy"]["rules"]
        self.assertEqual((rule["action"], rule["onExitCodes"]["operator"]), ("FailIndex", "In"))
        self.assertNotIn(3, rule["onExitCodes"]["values"])  # exit 3 is retried
        pod = job["spec"]["template"]["spec"]
        self.assertEqual(pod["restartPolicy"], "Never")
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        (c,) = pod["containers"]
        self.assertEqual(rule["onExitCodes"]["containerName"], c["name"])
        self.assertLessEqual({m["name"] for m in c["volumeMounts"]},
                             {v["name"] for v in pod["volumes"]})
        runs = self.path("runs")
        os.makedirs(self.path("tmp"), exist_ok=True)
        args = []
        for a in c["args"]:
            a = a.replace("/var/lib/ddbaudit/runs", runs)
            a = a.replace("/var/lib/ddbaudit/tmp", self.path("tmp"))
            args.append(SAMPLES if a.startswith("s3://") else
                        self.target.url if a.startswith("lambda:") else a)
        self.check_shards(args, os.path.join(runs, "r1"), "JOB_COMPLETION_INDEX", 2,
                          retried=0)


class DockerfileTest(DeployCase):
    def test_multi_stage_slim_non_root(self):
        with open(os.path.join(DEPLOY, "Dockerfile")) as f:
            text = f.read()
        lines = [l.strip() for l in text.replace("\\\n", " ").splitlines()
                 if l.strip() and not l.lstrip().startswith("#")]
        stages = [l.split()[1:] for l in lines if l.upper().startswith("FROM ")]
        self.assertGreaterEqual(len(stages), 2)
        for s in stages:
            self.assertEqual(s[0], "debian:12-slim")
        names = {s[2] for s in stages if len(s) == 3 and s[1].upper() == "AS"}
        for l in lines:
            m = re.match(r"COPY --from=(\S+)", l)
            if m:
                self.assertIn(m.group(1), names)
        final = lines[max(i for i, l in enumerate(lines) if l.upper().startswith("FROM ")):]
        users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
        self.assertTrue(users, "the final stage sets no USER")
        self.assertNotIn(users[-1].split(":")[0], ("0", "root"))
        entry = [l for l in final if l.upper().startswith("ENTRYPOINT ")]
        self.assertEqual(json.loads(entry[-1].split(None, 1)[1]), ["/usr/bin/ddbaudit"])
        if not shutil.which("docker"):
            print("SKIPPED: docker is not installed; the Dockerfile is checked, not built",
                  file=sys.stderr)


class VersionTest(DeployCase):
    def test_version_names_the_commit(self):
        out = run("--version")[1].decode()
        m = re.match(r"^ddbaudit \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,40}|unknown)\)\n$", out)
        self.assertTrue(m, out)
        git = shutil.which("git")
        if git and sh(git, "-C", ROOT, "rev-parse", "--show-toplevel").returncode == 0:
            head = sh(git, "-C", ROOT, "rev-parse", "HEAD").stdout.strip()
            self.assertTrue(head.startswith(m.group(1)), (head, out))

    def test_outside_git_is_unknown_unless_given(self):
        src = os.path.join(self.dir, "src")
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".git", "build*", "samples", "bench", "tests"))
        os.makedirs(os.path.join(src, "tests"))
        for commit, want in ((None, "unknown"), ("0123456789ab", "0123456789ab")):
            b = os.path.join(self.dir, f"b-{want}")
            args = ["cmake", "-S", src, "-B", b, "-DDDA_TESTS=OFF"]
            if commit:
                args.append(f"-DDDA_COMMIT={commit}")
            p = sh(*args)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(os.path.join(b, "generated", "commit.c")) as f:
                self.assertIn(f'return "{want}";', f.read())


if __name__ == "__main__":
    main()
