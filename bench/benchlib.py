"""Helpers shared by the benchmark drivers: a free port, timing a child
process, and nginx (installed with apt-get when missing and running as root)."""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(cmd, env=None):
    """Runs cmd; returns (wall s, user+sys CPU s of the child, stdout, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout, p.stderr


def ensure_nginx():
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else None)
    if not found and os.geteuid() == 0:
        for cmd in (["apt-get", "install", "-y", "nginx-light"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "nginx-light"]):
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            found = shutil.which("nginx") or ("/usr/sbin/nginx"
                                              if os.path.exists("/usr/sbin/nginx") else None)
            if found:
                break
    return found or sys.exit("nginx is needed (apt-get install nginx-light)")


def start_nginx(tmp, port, http_block):
    """Runs nginx with one worker in the foreground; returns the process once
    it accepts connections on port."""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"user root;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
                f"error_log {tmp}/error.log;\nevents {{ worker_connections 1024; }}\n"
                f"http {{\n{http_block}\n}}\n")
    proc = subprocess.Popen([ensure_nginx(), "-p", tmp, "-c", conf, "-g", "daemon off;"])
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                sys.exit("nginx did not start")
            time.sleep(0.05)


# Restore and reconcile benchmarks: bench/ddb-log-gen.c writes the log,
# bench/ddb-responder.c serves the table (both built here with cc).

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_c(tmp, name, libs):
    """Compiles bench/NAME.c into tmp; returns the executable's path."""
    out = os.path.join(tmp, name)
    subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", os.path.join(ROOT, "bench", name + ".c"),
                    "-o", out, *libs], check=True)
    return out


def ddb_log(tmp, items):
    """The log of ITEMS items (an INSERT and a MODIFY each), cached in bench/data:
    a directory of objects of 10,000 records."""
    top = os.path.join(ROOT, "bench", "data", f"ddb-{items}")
    if not os.path.exists(top):
        gen = build_c(tmp, "ddb-log-gen", ["-lz"])
        shutil.rmtree(top + ".tmp", ignore_errors=True)
        t = timed([gen, str(items), top + ".tmp"])
        os.replace(top + ".tmp", top)
        size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(top) for n in ns)
        print(f"log: {2 * items:,} records, {size / 1e6:.0f} MB gzipped, "
              f"written in {t['wall']:.1f} s ({t['cpu']:.1f} s CPU)", flush=True)
    return top


class Responder:
    """bench/ddb-responder.c serving ITEMS items as table 'items' on a free port;
    stop() returns its counters (requests, scanned, puts, deletes, put_index_sum)."""

    def __init__(self, tmp, items):
        exe = build_c(tmp, "ddb-responder", ["-ljansson", "-lpthread"])
        self.proc = subprocess.Popen([exe, str(items)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "port":
            sys.exit("ddb-responder did not start")
        self.endpoint = f"http://127.0.0.1:{line[1]}"
        self.env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=self.endpoint,
                        AWS_ENDPOINT_URL_STS=self.endpoint, AWS_ACCESS_KEY_ID="bench",
                        AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                        AWS_DEFAULT_REGION="us-east-1")

    def stop(self):
        self.proc.terminate()
        err = self.proc.communicate()[1].decode().split()
        return {err[i]: int(err[i + 1]) for i in range(1, len(err) - 1, 2)}


def timed(cmd, env=None, ok=(0,)):
    """Runs cmd under /usr/bin/time -v; returns wall and CPU seconds, peak RSS
    (MiB), exit status and stdout. Exits unless the status is in ok."""
    with tempfile.NamedTemporaryFile("r") as tv:
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tv.name, *cmd], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        v = {}
        for line in tv.read().splitlines():
            k, _, val = line.strip().rpartition(": ")
            v[k] = val
    if p.returncode not in ok:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode} (expected {ok}):\n"
                 f"{p.stderr.decode()[-3000:]}")
    h, m, s = (["0"] * 3 + v["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))[-3:]
    return {"wall": int(h) * 3600 + int(m) * 60 + float(s),
            "cpu": float(v["User time (seconds)"]) + float(v["System time (seconds)"]),
            "rss": int(v["Maximum resident set size (kbytes)"]) / 1024.0,
            "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


def print_rows(title, items, rows):
    """Prints a Markdown table of rows, (label, timed() result); when the last
    row is the peer's, each row's speed is given as a multiple of the peer's."""
    print(f"\n{title}: {items:,} items, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| client | wall s | items/s | CPU s | peak RSS MiB | vs peer |")
    print("|---|---:|---:|---:|---:|---:|")
    peer = rows[-1][1]["wall"] if rows[-1][0].startswith("peer") else None
    for label, r in rows:
        ratio = f"{peer / r['wall']:.1f}x" if peer else ""
        print(f"| {label} | {r['wall']:.2f} | {items / r['wall']:,.0f} | {r['cpu']:.2f} "
              f"| {r['rss']:.0f} | {ratio} |")
