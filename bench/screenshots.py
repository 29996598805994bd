"""Screenshots of every page, as a new user sees them (and the README's picture).

Starts `streamlit run app.py` on a free port with a private cache, opens each page in headless
Debian Chromium through Playwright, runs the Distill page's default distillation, and writes
PNGs to artifacts/ (or --out). `--readme` also copies the Distill picture to docs/.

    python -m bench.screenshots [--out artifacts] [--readme]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["", "lessons", "distill", "temperature", "sweep", "ensembles", "specialists", "transfer_set",
         "hinton_mnist", "sequences", "losses", "prune", "tradeoffs", "data", "runs"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "artifacts"))
    ap.add_argument("--readme", action="store_true", help="copy the Distill picture to docs/")
    args = ap.parse_args(argv)
    from playwright.sync_api import expect, sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KDLAB_CACHE": os.environ.get("KDLAB_CACHE", tempfile.mkdtemp(prefix="kdlab-shots-"))}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.headless", "true", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            ws = ""   # the first page's workspace, kept in every later address (its runs are listed)
            for name in PAGES:
                page.goto(f"{url}/{name}{ws}", timeout=180_000)
                page.wait_for_timeout(1500)
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=180_000)
                if name == "distill":
                    page.get_by_role("button", name="Distill").click()
                    expect(page.get_by_text(re.compile("points better|points worse|made no difference"))
                           .first).to_be_visible(timeout=180_000)
                    page.wait_for_timeout(2000)
                    ws = "?ws=" + re.search(r"ws=([A-Za-z0-9_-]+)", page.url).group(1)
                shot = out / f"page-{name or 'home'}.png"
                page.screenshot(path=str(shot))
                print(shot, flush=True)
            browser.close()
    finally:
        proc.terminate()
    if args.readme:
        shutil.copy(out / "page-distill.png", ROOT / "docs" / "screenshot-distill.png")


if __name__ == "__main__":
    main()
