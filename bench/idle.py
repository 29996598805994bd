"""An idle server: one open tab, a virtual environment inside the checkout, nothing pressed.

    python -m bench.idle [--seconds 30]

Starts `streamlit run app.py` from the checkout (which must hold a `.venv`, the common set-up)
with the project's `.streamlit/config.toml` (file watcher off), opens the Distill page in headless
Chromium and leaves it open; then measures the CPU time of the server and its worker processes
over the window, as a share of one core. For comparison, the same with Streamlit's default
watcher (`--server.fileWatcherType auto`). Target: < 5 % of a core with the project's config.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.serve import ROOT, Server, chromium


def idle_share(seconds: float, args: list[str]) -> tuple[float, int]:
    from playwright.sync_api import expect, sync_playwright
    cache = tempfile.mkdtemp(prefix="kdlab-idle-")
    with Server(cache, args=args) as server, sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page()
        page.goto(f"{server.url}/distill", timeout=300_000)
        expect(page.get_by_role("button", name="Distill")).to_be_visible(timeout=300_000)
        time.sleep(10)   # let start-up work (imports, the workers' start) finish
        c0, t0 = server.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        share = (server.cpu_seconds() - c0) / (time.perf_counter() - t0)
        overflow = open(server.log.name).read().count("Inotify queue overflowed")
        browser.close()
    return share, overflow


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    a = ap.parse_args()
    venv = (ROOT / ".venv").is_dir()
    print(time.strftime("%Y-%m-%d %H:%M"), f"checkout {ROOT} ({'with' if venv else 'WITHOUT'} a .venv inside)")
    for label, args in [("project config (watcher off)", []),
                        ("Streamlit's default watcher", ["--server.fileWatcherType", "auto"])]:
        share, overflow = idle_share(a.seconds, args)
        print(f"{label:32s}: {100 * share:5.1f} % of a core over {a.seconds:.0f} s, "
              f"{overflow} 'Inotify queue overflowed' lines")


if __name__ == "__main__":
    main()
