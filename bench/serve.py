"""A served app for the browser benchmarks: start `streamlit run app.py`, measure its processes.

- `Server(cache_dir, ...)`: the app on a free local port (with the project's .streamlit/config.toml),
  its worker processes included in `rss_mb()` and `cpu_seconds()` (read from /proc).
- `chromium(pw)`: Debian's Chromium through Playwright, with the flags this machine needs.
- `RESULT_CLOCK` / `RESULT_TIME`: a clock inside the page, from a click to a result on screen (below).

Why a clock in the page: Playwright's `expect(...).to_be_visible()` polls with a backoff (0, 20,
50, 100, 100, then every 500 ms), so a result that appears at 0.45 s is seen at ~0.77 s: for the
sub-second runs the polling step was as large as what is measured, and every poll walks the DOM
on the cores the server trains on. The clock is a MutationObserver: it notes the time of the
click (the event, in the page's own clock) and the first frame painted after an element matching
`selector` shows text matching `pattern` (and, with `absent`, no element matching `absent` is left:
a spinner or progress bar). It also collects the texts of `[data-testid=stProgress]` matching
`seen` (the queue positions a classroom's session was shown), counts the DOM's mutation batches and
notes whether a live view (a progress bar) was shown. Nothing polls the page while it runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("KDLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(p.name))
    return out


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += _children(p)
    return tree


class Server:
    def __init__(self, cache_dir: str | Path, env: dict | None = None, args: list[str] | None = None,
                 cwd: Path = ROOT, timeout: float = 120):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "KDLAB_CACHE": str(cache_dir), **(env or {})}
        for name in ("KDLAB_EXECUTOR", "KDLAB_SUBMIT_WAIT"):   # the app's own defaults
            if name not in (env or {}):
                full_env.pop(name, None)
        self.log = open(Path(cache_dir) / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(cwd / "app.py"), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1", *(args or [])],
            cwd=cwd, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("streamlit did not start; see " + self.log.name)

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])   # utime + stime
            except OSError:
                pass
        return total / TICKS

    def stop(self) -> None:
        for pid in reversed(self.pids()):
            try:
                os.kill(pid, 15)
            except OSError:
                pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def chromium_cpu_seconds() -> float:
    """CPU seconds used so far by every Chromium process on this machine (the benchmark's browsers)."""
    total = 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if b"chromium" not in (p / "cmdline").read_bytes():
                continue
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICKS


RESULT_CLOCK = r"""
(o) => {
  const re = new RegExp(o.pattern), seenRe = o.seen ? new RegExp(o.seen, "g") : null;
  const k = window.__kdClock = {click: null, found: null, painted: null, seen: [], batches: 0, live: false};
  document.addEventListener("click", () => { if (k.click === null) k.click = performance.now(); }, true);
  let queued = false;
  const check = () => {
    queued = false;
    if (k.found !== null || k.click === null) return;
    if (seenRe) for (const el of document.querySelectorAll("[data-testid=stProgress]"))
      for (const m of (el.textContent || "").matchAll(seenRe)) if (!k.seen.includes(m[0])) k.seen.push(m[0]);
    if (o.absent && document.querySelector(o.absent)) return;
    for (const el of document.querySelectorAll(o.selector)) {
      if (re.test(el.textContent || "") && el.getClientRects().length) {
        k.found = performance.now();
        requestAnimationFrame(() => requestAnimationFrame(() => { k.painted = performance.now(); }));
        observer.disconnect();
        return;
      }
    }
  };
  const observer = new MutationObserver(() => {
    k.batches += 1;
    if (!k.live && document.querySelector("[data-testid=stProgress]")) k.live = true;
    if (!queued) { queued = true; queueMicrotask(check); }
  });
  observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""
# seconds from the click to the painted result, once there (else null), and the queue texts seen
RESULT_TIME = "() => { const k = window.__kdClock; return k && k.painted !== null ? " \
              "{seconds: (k.painted - k.click) / 1000, seen: k.seen, batches: k.batches, live: k.live} : null; }"


def result_clock(pattern: str, selector: str = "[data-testid=stCaptionContainer]", absent: str | None = None,
                 seen: str | None = None) -> dict:
    """The argument of RESULT_CLOCK: a result is an element matching `selector` whose text matches the
    regular expression `pattern` (JavaScript syntax), with no element matching `absent` left."""
    return {"pattern": pattern, "selector": selector, "absent": absent, "seen": seen}


def timed_click(page, button, clock: dict, timeout_ms: float = 300_000) -> float:
    """Click `button` (a sync Playwright locator) and return the seconds to the result `clock` describes."""
    page.evaluate(RESULT_CLOCK, clock)
    button.click()
    return page.wait_for_function(RESULT_TIME, polling=250, timeout=timeout_ms).json_value()["seconds"]


def chromium(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
