"""Headless Chromium driven over the DevTools protocol (--remote-debugging-pipe:
NUL-separated JSON messages, Chromium reads fd 3 and writes fd 4). It opens a
page and records what an auditor's browser would do with it: every network
request the page makes, every console message, log entry (CSP violations are
logged there) and exception, the page's figures through Runtime.evaluate
(which DevTools runs whatever the page's CSP says), and a PNG screenshot.

The browser's own background traffic (update checks, sign-in) is not the
page's and is not counted: the Network domain is enabled on the page's session
only, so every request it reports was made by the page."""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import zlib

FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-default-apps", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-pipe"]
DEADLINE = 120  # seconds for one page: a 100,000-finding report takes a few


def find():
    """The chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """What opening one page produced."""

    def __init__(self):
        self.requests = []   # URLs the page requested (the document itself included)
        self.console = []    # (level, text) of console calls
        self.log = []        # (level, source, text) of log entries
        self.exceptions = []
        self.load_seconds = None
        self.cpu_seconds = None  # the browser's, from opening to closing the page
        self.value = None    # the result of the expression evaluated
        self.png = None

    def problems(self, document_url):
        """Everything that should not happen on a self-contained page."""
        out = [f"request {u}" for u in self.requests if u != document_url]
        out += [f"console {lvl}: {txt}" for lvl, txt in self.console]
        out += [f"log {lvl} ({src}): {txt}" for lvl, src, txt in self.log]
        out += [f"exception: {e}" for e in self.exceptions]
        return out


class Browser:
    def __init__(self, binary=None, width=1200, height=900):
        self.binary = binary or find()
        self.profile = tempfile.mkdtemp(prefix="dda-chromium-")
        r, self.to_child = os.pipe()
        self.from_child, w = os.pipe()
        # The child's fd 3 reads commands, fd 4 writes answers: its ends are
        # moved above 4 first so that placing them cannot overwrite each other.
        to_child_r, from_child_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (r, w))
        os.close(r)
        os.close(w)

        def setup():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
            os.setpgid(0, 0)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            preexec_fn=setup, pass_fds=(3, 4))
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def cpu_seconds(self):
        """CPU time (user + system) used so far by the browser's processes
        that are still running (its process group): for benchmarks."""
        total, tick = 0, os.sysconf("SC_CLK_TCK")
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # pgrp
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def close(self):
        try:
            self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self.to_child)
        os.close(self.from_child)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.from_child], [], [], left)
            if ready:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    self.stderr.seek(0)
                    raise RuntimeError("chromium closed its pipe: " +
                                       self.stderr.read()[-2000:].decode(errors="replace"))
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, deadline=None):
        """Sends a command and returns its result; events that arrive meanwhile
        are kept in self.events."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = deadline or time.monotonic() + DEADLINE
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, session, deadline):
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and m.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open(self, url, expression=None, screenshot=False, media=None):
        """Opens url in a new tab and returns a Page; media "print" lays it
        out as for printing."""
        page = Page()
        cpu = self.cpu_seconds()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Log", "Runtime", "Page"):
            self.send(f"{domain}.enable", session=session)
        if media:
            self.send("Emulation.setEmulatedMedia", {"media": media}, session=session)
        self.events = [e for e in self.events if e.get("sessionId") != session]
        start = time.monotonic()
        deadline = start + DEADLINE
        self.send("Page.navigate", {"url": url}, session=session, deadline=deadline)
        self.wait_event("Page.loadEventFired", session, deadline)
        page.load_seconds = time.monotonic() - start
        if expression:
            r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                          session=session, deadline=deadline)
            page.value = r.get("result", {}).get("value")
        if screenshot:
            r = self.send("Page.captureScreenshot", {"format": "png"}, session=session,
                          deadline=deadline)
            page.png = base64.b64decode(r["data"])
        page.cpu_seconds = self.cpu_seconds() - cpu
        self.send("Target.closeTarget", {"targetId": target})
        self._collect(page, session)
        return page

    def _collect(self, page, session):
        for m in self.events:
            if m.get("sessionId") != session:
                continue
            p = m.get("params", {})
            if m["method"] == "Network.requestWillBeSent":
                page.requests.append(p["request"]["url"])
            elif m["method"] == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", "")))
                                for a in p.get("args", []))
                page.console.append((p.get("type"), text))
            elif m["method"] == "Log.entryAdded":
                e = p["entry"]
                page.log.append((e.get("level"), e.get("source"), e.get("text")))
            elif m["method"] == "Runtime.exceptionThrown":
                page.exceptions.append(p["exceptionDetails"].get("text"))
        self.events = [e for e in self.events if e.get("sessionId") != session]


def png_pixels(data):
    """Decodes an 8-bit RGB or RGBA PNG (what Chromium writes) into
    (width, height, channels, rows of bytes), with zlib and the PNG filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            depth, color, interlace = body[8], body[9], body[12]
            assert depth == 8 and color in (2, 6) and not interlace, "unexpected PNG format"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def luminance_variance(data, step=4):
    """Variance of the pixels' grey level (sampled every step pixels): a
    blank page has none."""
    width, height, channels, rows = png_pixels(data)
    vals = []
    for y in range(0, height, step):
        r = rows[y]
        for x in range(0, width, step):
            i = x * channels
            vals.append((299 * r[i] + 587 * r[i + 1] + 114 * r[i + 2]) / 1000)
    mean = sum(vals) / len(vals)
    return sum((v - mean) ** 2 for v in vals) / len(vals)
