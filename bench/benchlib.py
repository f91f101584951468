"""Helpers shared by the benchmark drivers: a free port, timing a child
process, and nginx (installed with apt-get when missing and running as root)."""
import os
import resource
import shutil
import socket
import subprocess
import sys
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
